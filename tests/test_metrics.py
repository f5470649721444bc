"""Live metrics for Prometheus (``--prometheus-port``, swarm/locust/metrics.py): the counts and
the collector in plain Python; the counters across a reset of Locust's stats, in a Locust
process; ``/metrics`` scraped during real runs, a process on its own and a master with two
workers, against a CSMS that fails some Heartbeats and sends calls, read with
``prometheus_client``'s own parser and held to Locust's stats at the end; the Grafana dashboard
held to the metrics ``/metrics`` serves.

Locust runs in subprocesses (importing it here would monkey-patch this process with gevent);
each is bounded by a timeout and checked to leave no process behind.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from swarm.csms import Csms, CsmsConfig
from swarm.locust.metrics import (
    BUCKETS_MS,
    MAX_ERRORS,
    OTHER,
    RequestCounts,
    SwarmCollector,
)
from swarm.report.fleet import FleetStatus
from tests.scripted import call_in, free_port, in_thread
from tests.test_locust import LOCUST, ROOT, child, finished

DASHBOARD = ROOT / "deploy" / "grafana" / "ocpp-swarm.json"

Labels = tuple[tuple[str, str], ...]


class Scrape:
    """One exposition's samples: ``{sample name: {labels: value}}``, labels sorted."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples: dict[str, dict[Labels, float]] = {}
        for family in self.families.values():
            for sample in family.samples:
                by_labels = self.samples.setdefault(sample.name, {})
                by_labels[tuple(sorted(sample.labels.items()))] = sample.value

    def by(self, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
        """A sample's values summed over the labels not named."""
        sums: Counter[tuple[str, ...]] = Counter()
        for key, value in self.samples.get(sample, {}).items():
            named = dict(key)
            sums[tuple(named[label] for label in labels)] += value
        return dict(sums)

    def value(self, sample: str, **labels: str) -> float:
        return self.samples[sample][tuple(sorted(labels.items()))]


def exposition(counts: RequestCounts, fleet: FleetStatus | None = None) -> Scrape:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SwarmCollector(counts, lambda: fleet or FleetStatus(), lambda: 7, lambda: 0))
    return Scrape(generate_latest(registry).decode())


# The counts and the collector, in plain Python.


def test_round_trips_fall_in_the_bucket_of_their_upper_bound() -> None:
    counts = RequestCounts()
    for milliseconds in (0.1, 0.25, 0.2501, 1, 59_999, 60_000, 60_001):
        counts.on_request("OCPP", "Heartbeat", milliseconds)
    counts.on_request("OCPP", "Heartbeat", None)  # counted, but has no round trip
    scrape = exposition(counts)
    buckets = {
        dict(key)["le"]: value
        for key, value in scrape.samples["ocpp_swarm_request_duration_seconds_bucket"].items()
    }
    bounds = list(buckets)
    assert bounds[0] == "0.00025" and bounds[-2:] == ["60.0", "+Inf"]
    assert len(buckets) == len(BUCKETS_MS) + 1
    assert buckets["0.00025"] == 2  # 0.1 and 0.25 ms: a bound holds the values equal to it
    assert buckets["0.0005"] == 3  # and 0.2501 ms
    assert buckets["0.001"] == 4
    assert buckets["30.0"] == 4
    assert buckets["60.0"] == 6  # 59.999 and 60 s
    assert buckets["+Inf"] == 7  # 60.001 s
    labels = {"name": "Heartbeat", "type": "OCPP"}
    assert scrape.value("ocpp_swarm_request_duration_seconds_count", **labels) == 7
    total = scrape.value("ocpp_swarm_request_duration_seconds_sum", **labels)
    assert total == pytest.approx((0.1 + 0.25 + 0.2501 + 1 + 59_999 + 60_000 + 60_001) / 1000)
    assert scrape.value("ocpp_swarm_requests_total", **labels) == 8
    assert scrape.value("ocpp_swarm_users") == 7


def test_failure_texts_are_bounded_and_the_rest_counted_as_other() -> None:
    counts = RequestCounts(max_errors=3)
    for text in ("CALLERROR InternalError", "CallTimeout", "CALLERROR InternalError", "x" * 500):
        counts.on_request("OCPP", "Heartbeat", 1.0, exception=text)
    for text in ("connection lost: 1006", "refused", "x" * 500):
        counts.on_request("WebSocket", "connect", 1.0, exception=text)
    counts.on_request("OCPP", "Heartbeat", 1.0, exception=None)
    counts.on_request("OCPP", "Heartbeat", 1.0, exception="")  # Locust counts no failure
    failures = exposition(counts).by("ocpp_swarm_failures_total", "type", "name", "error")
    assert failures == {
        ("OCPP", "Heartbeat", "CALLERROR InternalError"): 2,
        ("OCPP", "Heartbeat", "CallTimeout"): 1,
        ("OCPP", "Heartbeat", "x" * 200): 1,  # cut to 200 characters
        ("WebSocket", "connect", OTHER): 2,  # past the third text
        ("WebSocket", "connect", "x" * 200): 1,  # a text known already keeps its value
    }
    requests = exposition(counts).by("ocpp_swarm_requests_total", "type", "name")
    assert requests == {("OCPP", "Heartbeat"): 6, ("WebSocket", "connect"): 3}
    assert MAX_ERRORS >= 20


def test_workers_counts_reach_the_master_once_each() -> None:
    master, workers = RequestCounts(), [RequestCounts(), RequestCounts()]
    for index, worker in enumerate(workers):
        for _ in range(index + 2):
            worker.on_request("OCPP201", "Heartbeat", 0.3)
        worker.on_request("CSMS", "ClearCache", 2.0)
        worker.on_request("OCPP", "Authorize", 3.0, exception="CALLERROR InternalError")
    for worker in workers:
        # As Locust sends a worker's report: through msgpack.
        master.merge(msgpack.unpackb(msgpack.packb(worker.drain())))
        master.merge(msgpack.unpackb(msgpack.packb(worker.drain())))  # nothing new: adds 0
    master.merge(None)  # a report of a worker that counts nothing
    scrape = exposition(master)
    assert scrape.by("ocpp_swarm_requests_total", "type", "name") == {
        ("OCPP201", "Heartbeat"): 5,
        ("CSMS", "ClearCache"): 2,
        ("OCPP", "Authorize"): 2,
    }
    assert scrape.by("ocpp_swarm_csms_calls_total", "type", "action") == {("CSMS", "ClearCache"): 2}
    assert scrape.by("ocpp_swarm_failures_total", "type", "name", "error") == {
        ("OCPP", "Authorize", "CALLERROR InternalError"): 2
    }
    heartbeat = {"type": "OCPP201", "name": "Heartbeat"}
    bucket = "ocpp_swarm_request_duration_seconds_bucket"
    assert scrape.value(bucket, le="0.0005", **heartbeat) == 5
    assert scrape.value(bucket, le="0.00025", **heartbeat) == 0


def test_fleet_gauges_show_the_fleet_s_status() -> None:
    fleet = FleetStatus()
    fleet.states.update(accepted=5, offline=2)
    fleet.versions.update({"1.6": 4, "2.0.1": 3})
    fleet.charging = 1
    scrape = exposition(RequestCounts(), fleet)
    assert scrape.by("ocpp_swarm_charge_points", "state")[("accepted",)] == 5
    assert scrape.by("ocpp_swarm_charge_points", "state")[("offline",)] == 2
    assert scrape.by("ocpp_swarm_charge_points_by_version", "version") == {
        ("1.6",): 4,
        ("2.0.1",): 3,
    }
    assert scrape.value("ocpp_swarm_charging") == 1
    assert scrape.value("ocpp_swarm_workers") == 0


RESET_SCRIPT = """
import argparse, json, sys, urllib.request
from locust import events
from locust.env import Environment
from swarm.locust import metrics

listeners = len(events.request._handlers)
environment = Environment(events=events, parsed_options=argparse.Namespace(prometheus_port=0))
assert metrics.serve(environment, master=False) is None  # no port: nothing served, no listener
assert len(events.request._handlers) == listeners
environment = Environment(events=events, parsed_options=argparse.Namespace(prometheus_port=PORT))
runner = environment.create_local_runner()
metrics.serve(environment, master=False)
def fire(n):
    for _ in range(n):
        events.request.fire(request_type="OCPP", name="Heartbeat", response_time=0.4,
                            response_length=0, exception="CallTimeout", context={})
fire(10)
runner.stats.reset_all()  # what --reset-stats and the web UI's reset do
events.reset_stats.fire()
fire(5)
text = urllib.request.urlopen("http://127.0.0.1:PORT/metrics", timeout=5).read().decode()
entry = runner.stats.get("Heartbeat", "OCPP")
print(json.dumps({"locust": [entry.num_requests, entry.num_failures], "metrics": text}))
"""


@pytest.mark.timeout(60)
def test_counters_rise_across_a_reset_of_locust_s_stats() -> None:
    port = free_port()
    script = textwrap.dedent(RESET_SCRIPT).replace("PORT", str(port))
    with child([sys.executable, "-c", script]) as proc:
        finished(proc, timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["locust"] == [5, 5]  # Locust counts from its reset
    scrape = Scrape(result["metrics"])
    labels = {"type": "OCPP", "name": "Heartbeat"}
    assert scrape.value("ocpp_swarm_requests_total", **labels) == 15
    assert scrape.value("ocpp_swarm_failures_total", error="CallTimeout", **labels) == 15
    assert scrape.value("ocpp_swarm_request_duration_seconds_count", **labels) == 15


# /metrics during real runs.


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as response:
        return json.load(response)


def scrape(port: int) -> Scrape | None:
    """``/metrics`` on loopback ``port``, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as response:
            return Scrape(response.read().decode())
    except OSError:
        return None


def wait_for(what: str, check: Callable[[], Any], timeout: float, proc: Any) -> Any:
    """Poll ``check`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.running(), f"Locust exited before {what}:\n{proc.read()[1][-3000:]}"
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout} s:\n{proc.read()[1][-3000:]}")


def locust_view(web_port: int) -> tuple[str, dict[Any, int], dict[Any, int], dict[Any, int]]:
    """Locust's state and its stats, from its web UI: requests and failures per type and
    name, and failures per type, name and text."""
    report = http_json(f"http://127.0.0.1:{web_port}/stats/requests")
    rows = [row for row in report["stats"] if row["name"] != "Aggregated"]
    requests = {(row["method"], row["name"]): row["num_requests"] for row in rows}
    failures = {(row["method"], row["name"]): row["num_failures"] for row in rows}
    errors = {(e["method"], e["name"], e["error"]): e["occurrences"] for e in report["errors"]}
    return report["state"], requests, {k: n for k, n in failures.items() if n}, errors


def metrics_view(port: int) -> tuple[dict[Any, float], dict[Any, float], dict[Any, float]]:
    found = scrape(port)
    assert found is not None
    return (
        found.by("ocpp_swarm_requests_total", "type", "name"),
        found.by("ocpp_swarm_failures_total", "type", "name"),
        found.by("ocpp_swarm_failures_total", "type", "name", "error"),
    )


def agreeing(web_port: int, port: int) -> tuple[Any, ...] | None:
    """Locust's stats and /metrics once the test has stopped, if they agree."""
    state, requests, failures, errors = locust_view(web_port)
    if state != "stopped":
        return None
    ours = metrics_view(port)
    if ours != (requests, failures, errors) or metrics_view(port) != ours:
        return None
    return ours


@pytest.mark.timeout(90)
@pytest.mark.parametrize("processes", [0, 2], ids=["alone", "master and 2 workers"])
def test_metrics_agree_with_locust_s_stats(processes: int) -> None:
    users, port, web_port = 20, free_port(), free_port()
    distributed = []
    if processes:
        master_port = free_port()
        distributed = ["--processes", str(processes), "--master-bind-port", str(master_port)]
        distributed += ["--master-port", str(master_port)]
    with in_thread(lambda: Csms(CsmsConfig(port=0, heartbeat_interval=1))) as (csms, loop):
        command = [
            LOCUST, "-f", "locustfile.py", "--autostart", "--autoquit", "30", "-t", "5s",
            "-u", str(users), "-r", str(users), "--host", csms.url, "--results-dir", "",
            "--web-host", "127.0.0.1", "--web-port", str(web_port),
            "--prometheus-port", str(port), "--ocpp-version", "1.6,2.0.1",
            "--heartbeat-interval", "0.3", "--authorize-interval", "0",
            "--exit-code-on-error", "0", *distributed,
        ]  # fmt: skip
        with child(command) as proc:

            def booted() -> Scrape | None:
                found = scrape(port)
                accepted = found and found.by("ocpp_swarm_charge_points", "state")[("accepted",)]
                return found if accepted == users else None

            # During the run: the whole fleet, its versions, the users and workers.
            during = wait_for("booted fleet", booted, 20, proc)
            versions = during.by("ocpp_swarm_charge_points_by_version", "version")
            assert versions[("1.6",)] + versions[("2.0.1",)] == users, versions
            assert versions[("1.6",)] and versions[("2.0.1",)], versions
            assert during.value("ocpp_swarm_users") == users
            assert during.value("ocpp_swarm_workers") == processes
            # Failures and the CSMS's calls, while it runs.
            call_in(loop, lambda: csms.set_faults(callerror="InternalError", share=0.5))
            campaign = asyncio.run_coroutine_threadsafe(
                csms.campaign("ClearCache", {}, timeout=5), loop
            ).result(10)
            assert campaign.answered == users, campaign
            time.sleep(1.0)
            call_in(loop, csms.clear_faults)
            # Once the test has stopped and the last reports are in: the same counts.
            final = wait_for("agreement", lambda: agreeing(web_port, port), 20, proc)
            last = scrape(port)
            proc.process.send_signal(signal.SIGTERM)
            finished(proc, timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    requests, failures, errors = final
    boots = requests[("OCPP", "BootNotification")] + requests[("OCPP201", "BootNotification")]
    assert boots == users
    assert requests[("OCPP", "Heartbeat")] > users and requests[("OCPP201", "Heartbeat")] > users
    assert failures[("OCPP", "Heartbeat")] > 0, failures
    assert errors[("OCPP", "Heartbeat", "CALLERROR InternalError")] > 0, errors
    csms_calls = last.by("ocpp_swarm_csms_calls_total", "type", "action")
    assert csms_calls == {
        ("CSMS", "ClearCache"): requests[("CSMS", "ClearCache")],
        ("CSMS201", "ClearCache"): requests[("CSMS201", "ClearCache")],
    }
    assert sum(csms_calls.values()) == users
    # Each histogram counts its requests, its buckets rising to them.
    buckets = last.samples["ocpp_swarm_request_duration_seconds_bucket"]
    for (request_type, name), count in requests.items():
        labels = {"type": request_type, "name": name}
        assert last.value("ocpp_swarm_request_duration_seconds_count", **labels) == count
        assert last.value("ocpp_swarm_request_duration_seconds_sum", **labels) > 0
        mine = [v for key, v in buckets.items() if {**dict(key), **labels} == dict(key)]
        assert mine == sorted(mine) and mine[-1] == count, (labels, mine)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.timeout(60)
def test_a_port_already_in_use_is_refused_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [
            LOCUST, "-f", "locustfile.py", "--headless", "-u", "1", "-t", "5s",
            "--results-dir", "", "--prometheus-port", str(port),
        ]  # fmt: skip
        with child(command) as proc:
            finished(proc, timeout=30)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"ocpp-swarm: --prometheus-port {port}: cannot listen: " in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# The Grafana dashboard.


def queried_metrics(expression: str) -> set[str]:
    """The swarm's metric names a PromQL expression reads (those in label values aside)."""
    expression = re.sub(r'"[^"]*"', '""', expression)
    return set(re.findall(r"\bocpp_swarm_[a-zA-Z0-9_:]*", expression))


def test_the_dashboard_queries_only_metrics_that_metrics_serves() -> None:
    counts = RequestCounts()
    counts.on_request("OCPP", "Heartbeat", 1.0, exception="CallTimeout")
    counts.on_request("CSMS", "Reset", 1.0)
    found = exposition(counts)
    served = set(found.samples) | set(found.families)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = [p for row in dashboard["panels"] for p in (row, *row.get("panels", ()))]
    queried: set[str] = set()
    for panel in panels:
        for target in panel.get("targets", ()):
            names = queried_metrics(target["expr"])
            assert names, f"panel {panel['title']!r} reads no metric of the swarm"
            assert names <= served, (panel["title"], names - served)
            queried |= names
    for variable in dashboard.get("templating", {}).get("list", ()):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        assert queried_metrics(text) <= served, variable
    # What the dashboard is for: latency per action, failures, the fleet's states.
    assert {
        "ocpp_swarm_request_duration_seconds_bucket",
        "ocpp_swarm_failures_total",
        "ocpp_swarm_charge_points",
    } <= queried
    assert any("histogram_quantile" in t["expr"] for p in panels for t in p.get("targets", ()))
