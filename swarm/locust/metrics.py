"""Live metrics for Prometheus: with ``--prometheus-port P``, the process that holds Locust's
stats (a master, or a process on its own; never a worker) serves ``/metrics`` on port P, with
``prometheus_client``'s own HTTP server and a registry of its own (no process metrics):

- ``ocpp_swarm_request_duration_seconds``: per request type and name (Locust's, e.g.
  ``OCPP``/``Heartbeat``), a histogram of the round trips, :data:`BUCKETS_MS` apart;
- ``ocpp_swarm_requests_total`` and ``ocpp_swarm_failures_total``, per type and name too, the
  failures also per text (``error``): at most :data:`MAX_ERRORS` texts, the rest ``other``;
- ``ocpp_swarm_csms_calls_total``: the calls the CSMS sent that the charge points answered, by
  request type (``CSMS``, ``CSMS201``) and action;
- ``ocpp_swarm_charge_points`` by state, ``ocpp_swarm_charge_points_by_version`` by OCPP
  version, ``ocpp_swarm_charging``, ``ocpp_swarm_users`` and ``ocpp_swarm_workers``: gauges
  read when scraped, from the fleet's status as the run folder and the web UI read it.

The counters are the swarm's own sums (:class:`RequestCounts`), not Locust's stats: Locust
resets those (``--reset-stats``, the web UI's reset), a Prometheus counter only rises. A process
on its own counts the requests Locust's ``request`` event reports; a worker counts them too, and
sends what it counted since its last report with each stats report, as Locust sends its stats;
the master adds them up. Per request that is a dict lookup, a bisect and three additions: no
lock, no ``Histogram.observe``. Nothing here listens to requests without ``--prometheus-port``.
No lock is needed either: in a Locust process (patched by gevent) the server's thread is a
greenlet, so a scrape reads the counts between two requests, never during one.

This module loads no Locust (the environment is only read), so its parts work in plain Python.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from swarm.locust.context import context
from swarm.protocol.samples import CSMS_TYPES
from swarm.report.fleet import FleetStatus

if TYPE_CHECKING:
    from locust.env import Environment

BUCKETS_MS = (
    0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
)  # fmt: skip
"""Upper bounds of the round-trip histogram's buckets, in milliseconds as Locust reports them:
a CSMS on loopback answers a Heartbeat in a fraction of a millisecond, one under load in tens or
hundreds, and a CALL times out at 30 s by default. Served in seconds, as Prometheus has it."""

MAX_ERRORS = 50
"""Failure texts that get a label value of their own; later ones are counted as :data:`OTHER`:
each distinct label value is a series Prometheus keeps, and a CSMS's texts have no bound."""

OTHER = "other"
"""The label value of the failure texts past :data:`MAX_ERRORS`."""

ERROR_TEXT_MAX = 200
"""Characters of a failure text kept in its label."""

REPORT_KEY = "ocpp_swarm_metrics"
"""Key of a worker's counts since its last report, in the data of its stats report."""

Key = tuple[str, str]
"""A request's type and name, as Locust's ``request`` event gives them."""


class _Row:
    """One request type and name's sums: requests, and the bucket counts and the sum of the
    round trips (milliseconds) of those that have one."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS_MS) + 1)  # the last: over the last bound (+Inf)


class RequestCounts:
    """Requests per type and name, summed from Locust's ``request`` event or from workers'
    reports: counts, failures per text, and the round trips' histogram."""

    def __init__(self, max_errors: int = MAX_ERRORS) -> None:
        self.rows: dict[Key, _Row] = {}
        self.errors: dict[tuple[str, str, str], int] = {}
        """Failures per request type, name and failure text (the label value)."""
        self._max_errors = max_errors
        self._texts: set[str] = set()  # those with a label value of their own

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        exception: Any = None,
        **_kwargs: Any,
    ) -> None:
        """A listener of Locust's ``request`` event: count one request."""
        row = self.rows.get((request_type, name))
        if row is None:
            row = self.rows[request_type, name] = _Row()
        row.count += 1
        if response_time is not None:  # Locust allows requests without one
            row.buckets[bisect_left(BUCKETS_MS, response_time)] += 1
            row.total += response_time
        if exception:  # what Locust counts as a failure
            text = exception if isinstance(exception, str) else repr(exception)
            self._count_error(request_type, name, text, 1)

    def _count_error(self, request_type: str, name: str, text: str, count: int) -> None:
        text = text[:ERROR_TEXT_MAX]
        if text not in self._texts:
            if len(self._texts) < self._max_errors:
                self._texts.add(text)
            else:
                text = OTHER
        key = (request_type, name, text)
        self.errors[key] = self.errors.get(key, 0) + count

    def drain(self) -> dict[str, list[list[Any]]]:
        """What was counted since the last drain, as msgpack takes it; counting starts over."""
        data = {
            "rows": [
                [request_type, name, row.count, row.total, row.buckets]
                for (request_type, name), row in self.rows.items()
            ],
            "errors": [[*key, count] for key, count in self.errors.items()],
        }
        self.rows, self.errors = {}, {}
        return data

    def merge(self, data: dict[str, list[list[Any]]] | None) -> None:
        """Add a worker's :meth:`drain` to these counts."""
        if not data:
            return
        for request_type, name, count, total, buckets in data.get("rows", ()):
            row = self.rows.get((request_type, name))
            if row is None:
                row = self.rows[request_type, name] = _Row()
            row.count += count
            row.total += total
            for index, bucket in enumerate(buckets[: len(row.buckets)]):
                row.buckets[index] += bucket
        for request_type, name, text, count in data.get("errors", ()):
            self._count_error(request_type, name, text, count)


class SwarmCollector:
    """The metrics of :class:`RequestCounts` and of the fleet, made when Prometheus scrapes."""

    def __init__(
        self,
        counts: RequestCounts,
        fleet: Callable[[], FleetStatus],
        users: Callable[[], int],
        workers: Callable[[], int],
    ) -> None:
        self.counts = counts
        self.fleet = fleet
        self.users = users
        self.workers = workers

    def collect(self) -> Iterator[Metric]:
        rows = sorted(self.counts.rows.items())
        labels = ["type", "name"]
        durations = HistogramMetricFamily(
            "ocpp_swarm_request_duration_seconds",
            "Round trips of the charge points' requests, by Locust request type and name",
            labels=labels,
        )
        requests = CounterMetricFamily(
            "ocpp_swarm_requests", "Requests, by Locust request type and name", labels=labels
        )
        failures = CounterMetricFamily(
            "ocpp_swarm_failures",
            f"Failed requests, by type, name and failure text (at most {MAX_ERRORS} texts,"
            f" the rest '{OTHER}')",
            labels=[*labels, "error"],
        )
        csms_calls = CounterMetricFamily(
            "ocpp_swarm_csms_calls",
            "Calls the CSMS sent that the charge points answered, by request type and action",
            labels=["type", "action"],
        )
        for (request_type, name), row in rows:
            durations.add_metric(
                [request_type, name], _cumulative(row.buckets), sum_value=row.total / 1000
            )
            requests.add_metric([request_type, name], row.count)
            if request_type in CSMS_TYPES:
                csms_calls.add_metric([request_type, name], row.count)
        for key, count in sorted(self.counts.errors.items()):
            failures.add_metric(list(key), count)
        yield from (durations, requests, failures, csms_calls)
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        status = self.fleet()
        states = GaugeMetricFamily(
            "ocpp_swarm_charge_points", "Charge points, by state", labels=["state"]
        )
        for state, count in status.states.items():
            states.add_metric([state], count)
        versions = GaugeMetricFamily(
            "ocpp_swarm_charge_points_by_version",
            "Charge points, by OCPP version",
            labels=["version"],
        )
        for version, count in status.versions.items():
            versions.add_metric([version], count)
        yield states
        yield versions
        yield GaugeMetricFamily(
            "ocpp_swarm_charging",
            "Charge points with a charging session running",
            value=status.charging,
        )
        yield GaugeMetricFamily("ocpp_swarm_users", "Locust users running", value=self.users())
        yield GaugeMetricFamily(
            "ocpp_swarm_workers",
            "Locust workers connected to the master (0 for a process on its own)",
            value=self.workers(),
        )


_LE = (*(floatToGoString(bound / 1000) for bound in BUCKETS_MS), "+Inf")
"""The buckets' ``le`` labels: their bounds in seconds."""


def _cumulative(buckets: list[int]) -> list[tuple[str, int]]:
    """Bucket counts as Prometheus takes them: each with those below it, under its bound."""
    result, running = [], 0
    for bound, count in zip(_LE, buckets, strict=True):
        running += count
        result.append((bound, running))
    return result


def serve(environment: Environment, *, master: bool) -> RequestCounts | None:
    """On a master (``master``) or a process on its own: with ``--prometheus-port``, serve
    ``/metrics`` on it from now on, counting the requests Locust reports (a process on its
    own) or those its workers report (a master); return the counts.

    Raises ValueError naming the option if the port cannot be listened on.
    """
    port = getattr(environment.parsed_options, "prometheus_port", 0)
    if not port:
        return None
    counts = RequestCounts()
    runner = environment.runner
    collector = SwarmCollector(
        counts,
        context(environment).fleet,
        users=lambda: runner.user_count if runner is not None else 0,
        workers=(lambda: runner.worker_count) if master else (lambda: 0),
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        start_http_server(port, registry=registry)  # a daemon thread: a greenlet, here
    except OSError as exc:
        raise ValueError(
            f"--prometheus-port {port}: cannot listen: {exc.strerror or exc}"
        ) from None
    if master:
        environment.events.worker_report.add_listener(
            lambda data, **_: counts.merge(data.get(REPORT_KEY))
        )
    else:
        environment.events.request.add_listener(counts.on_request)
    return counts


def report_from_worker(environment: Environment) -> None:
    """On a worker: once a test starts with ``--prometheus-port`` in the master's options (a
    worker takes them then), count the requests, and send the counts with each stats report."""
    counts = RequestCounts()

    def send(data: dict[str, Any], **_kwargs: Any) -> None:
        data[REPORT_KEY] = counts.drain()

    def on_test_start(**_kwargs: Any) -> None:
        if getattr(environment.parsed_options, "prometheus_port", 0):
            environment.events.test_start.remove_listener(on_test_start)  # fire iterates a copy
            environment.events.request.add_listener(counts.on_request)
            environment.events.report_to_master.add_listener(send)

    environment.events.test_start.add_listener(on_test_start)
