"""The timeline of latency and failures: percentiles at the samples' own resolution, seconds
closed once no more samples can come, workers' seconds added together on the master."""

from __future__ import annotations

import math
import random

import pytest

from swarm.protocol.samples import Sample
from swarm.report.fleet import FleetStatus
from swarm.report.timeline import Timeline, bucket, bucket_value

T0 = 1_800_000_000  # a whole second, as a Unix time


def heartbeat(ms: float, error: str | None = None) -> Sample:
    return Sample("OCPP", "Heartbeat", ms, error)


def exact(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@pytest.mark.parametrize("ms", [0.0004, 0.0123, 0.25, 0.731, 1.0, 17.5, 2500.0, 3.6e6])
def test_a_bucket_stands_for_its_samples_within_1_percent(ms: float) -> None:
    if ms > 0.001:
        assert abs(bucket_value(bucket(ms)) - ms) <= 0.0101 * ms
    else:
        assert bucket(ms) == 0  # below 1 µs: the first bucket


def test_percentiles_of_sub_millisecond_samples_are_exact_within_1_percent() -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(math.log(0.3), 0.5) for _ in range(5000)]
    timeline = Timeline(lag=0)
    for value in values:
        timeline.add(heartbeat(value), T0 + 0.5)
    (second,) = timeline.tick(T0 + 2)
    action = second.actions["OCPP Heartbeat"]
    assert (action.requests, action.failures) == (5000, 0)
    for got, fraction in ((action.p50, 0.5), (action.p95, 0.95), (action.p99, 0.99)):
        assert abs(got - exact(values, fraction)) <= 0.0101 * exact(values, fraction)
    assert abs(action.max - max(values)) <= 0.0101 * max(values)
    # Locust's whole milliseconds would give 0 for the median of these.
    assert 0.2 < action.p50 < 0.4


def test_a_second_closes_only_once_its_lag_has_passed_and_keeps_the_fleet() -> None:
    timeline = Timeline(lag=2)
    timeline.add(heartbeat(1.0), T0 + 0.1)
    fleet = FleetStatus(states={**FleetStatus().states, "accepted": 3})
    assert timeline.tick(T0 + 0.9, fleet) == []
    assert timeline.tick(T0 + 2.9) == []  # ended 1.9 s ago
    (second,) = timeline.tick(T0 + 3.0)
    assert second.t == T0 and second.fleet == fleet
    assert second.as_dict()["states"]["accepted"] == 3
    # A sample for a closed second comes too late: counted as late, not in a second again.
    timeline.add(heartbeat(1.0), T0 + 0.5)
    assert timeline.late == 1
    assert [s.t for s in timeline.tick(T0 + 10)] == []
    assert [s.t for s in timeline.recent(after=T0 - 1)] == [T0]


def test_failures_count_per_second_and_action() -> None:
    timeline = Timeline(lag=0)
    timeline.add(heartbeat(30_000.0, "CallTimeout"), T0 + 0.2)
    timeline.add(heartbeat(1.0), T0 + 0.3)
    timeline.add(Sample("WebSocket", "connection lost", 0.0, "code 1006"), T0 + 1.2)
    first, second = timeline.tick(T0 + 5)
    assert (first.actions["OCPP Heartbeat"].failures, first.failures) == (1, 1)
    assert second.failures == 1 and "WebSocket connection lost" in second.actions


def test_workers_drained_seconds_add_up_on_the_master() -> None:
    rng = random.Random(3)
    samples = [(heartbeat(rng.uniform(0.1, 5.0)), T0 + rng.uniform(0, 3)) for _ in range(600)]
    alone, master = Timeline(lag=0), Timeline(lag=0)
    workers = [Timeline(), Timeline()]
    for n, (sample, when) in enumerate(samples):
        alone.add(sample, when)
        workers[n % 2].add(sample, when)
    for worker in workers:
        data = worker.drain(before=T0 + 1)  # the first second only, then the rest
        master.take(data)
        master.take(worker.drain(before=T0 + 3))
        assert worker.drain(before=T0 + 10) == []
    master.take([["garbage"], [T0, "OCPP Heartbeat", [["x", 1]], 0]])  # skipped
    expected = [s.as_dict() for s in alone.tick(T0 + 10)]
    assert [s.as_dict() for s in master.tick(T0 + 10)] == expected
    assert len(expected) == 3
