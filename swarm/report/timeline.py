"""Latency and failures second by second, at the samples' own resolution.

Locust keeps response times rounded to whole milliseconds, so its history draws a latency of a
few tenths of a millisecond as steps between 0 and 1. The swarm sees every sample: each process
that runs charge points adds them to a :class:`Timeline`, into one histogram per second and
action whose buckets are 2 % wide (from 1 µs up), so a percentile read from it is within 1 %
of the true one. A worker hands its master the seconds it is done with (:meth:`Timeline.drain`,
with its stats report); the master adds its workers' histograms together (:meth:`Timeline.take`).

Once a second is old enough that no more samples can come for it (:meth:`Timeline.tick`), it is
closed into a :class:`Second`: per action its requests, failures and p50, p95, p99 and maximum,
with the fleet's states at that time. The web UI's Charge points tab draws the last
:data:`KEEP` seconds live, and the run's folder writes every one to ``timeline.csv``, which
``latency.png`` is drawn from.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm.protocol.samples import Sample
from swarm.report.fleet import FleetStatus

REPORT_KEY = "ocpp_swarm_timeline"
"""Key of a worker's drained seconds in the data of its stats report to the master."""

KEEP = 900
"""Closed seconds kept in memory, for the web UI: the last 15 minutes."""

GROWTH = 1.02
"""Each histogram bucket is 2 % wider than the one below it."""

SMALLEST_MS = 0.001
"""The bottom of the first bucket: 1 µs. A quicker sample counts in it."""

PERCENTILES = (0.5, 0.95, 0.99)

TIMELINE_CSV = "timeline.csv"
TIMELINE_COLUMNS = ("second", "type", "name", "requests", "failures", "p50", "p95", "p99", "max")
"""A row of ``timeline.csv``: one action's round trips in one second, times in ms."""

_LOG_GROWTH = math.log(GROWTH)

Histogram = collections.Counter[int]
"""Samples per bucket: bucket ``i`` holds the times from ``SMALLEST_MS * GROWTH**i`` up to the
next bucket's."""


def bucket(ms: float) -> int:
    """The histogram bucket of a response time in milliseconds."""
    if ms <= SMALLEST_MS:
        return 0
    return int(math.log(ms / SMALLEST_MS) / _LOG_GROWTH)


def bucket_value(index: int) -> float:
    """The value a bucket stands for: its geometric middle, within 1 % of all it holds."""
    return SMALLEST_MS * GROWTH ** (index + 0.5)


def percentiles(histogram: Histogram, fractions: Iterable[float] = PERCENTILES) -> list[float]:
    """The values below which ``fractions`` of the samples lie (nearest rank), in ms."""
    total = sum(histogram.values())
    ranks = [max(1, math.ceil(fraction * total)) for fraction in fractions]
    values: list[float] = []
    seen = 0
    buckets = sorted(histogram.items())
    position = 0
    for rank in ranks:
        while seen < rank and position < len(buckets):
            seen += buckets[position][1]
            position += 1
        values.append(bucket_value(buckets[position - 1][0]) if buckets else math.nan)
    return values


@dataclass(slots=True)
class Action:
    """One action's round trips in one second."""

    requests: int
    failures: int
    p50: float
    p95: float
    p99: float
    max: float

    def as_list(self) -> list[Any]:
        return [self.requests, self.failures, self.p50, self.p95, self.p99, self.max]


@dataclass(slots=True)
class Second:
    """One closed second of the run: each action's round trips and the fleet's states."""

    t: int
    """The second, as a Unix time."""
    actions: dict[str, Action] = field(default_factory=dict)
    """By ``"<request type> <name>"`` (``"OCPP Heartbeat"``, ``"OCPP201 Heartbeat"``)."""
    fleet: FleetStatus | None = None
    """The fleet's states as the second was noted (None if it was not)."""

    @property
    def failures(self) -> int:
        return sum(action.failures for action in self.actions.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON for the web UI: actions as ``[requests, failures, p50, p95, p99, max]``."""
        return {
            "t": self.t,
            "actions": {key: action.as_list() for key, action in self.actions.items()},
            "states": self.fleet.states if self.fleet is not None else None,
            "charging": self.fleet.charging if self.fleet is not None else None,
            "failures": self.failures,
        }


class _Open:
    """A second still open: a histogram and the failures of each action."""

    __slots__ = ("failures", "fleet", "histograms")

    def __init__(self) -> None:
        self.histograms: dict[str, Histogram] = {}
        self.failures: collections.Counter[str] = collections.Counter()
        self.fleet: FleetStatus | None = None

    def close(self, t: int) -> Second:
        actions = {}
        for key in sorted(self.histograms.keys() | self.failures.keys()):
            histogram = self.histograms.get(key, Histogram())
            p50, p95, p99, top = percentiles(histogram, (*PERCENTILES, 1.0))
            actions[key] = Action(sum(histogram.values()), self.failures[key], p50, p95, p99, top)
        return Second(t, actions, self.fleet)


class Timeline:
    """The run's seconds: those still open, by the second, and the last :data:`KEEP` closed.

    ``lag`` is how many seconds after its end a second is closed: long enough for its last
    samples to arrive (a worker's come with its next stats report, every 3 s).
    """

    def __init__(self, lag: float = 2.0, keep: int = KEEP) -> None:
        self.lag = lag
        self._open: dict[int, _Open] = {}
        self.closed: collections.deque[Second] = collections.deque(maxlen=keep)
        self._closed_until = 0
        """Seconds up to this one are closed: samples that come for them come too late."""
        self.late = 0
        """Samples that came for a second already closed, and were not counted in it."""

    def add(self, sample: Sample, now: float) -> None:
        """Count a sample handed to Locust at Unix time ``now``."""
        second = self._second(int(now))
        if second is None:
            self.late += 1
            return
        key = f"{sample.request_type} {sample.name}"
        if sample.error is not None:
            second.failures[key] += 1
        histogram = second.histograms.get(key)
        if histogram is None:
            histogram = second.histograms[key] = Histogram()
        histogram[bucket(sample.response_time)] += 1

    def drain(self, before: float) -> list[list[Any]]:
        """Hand over the seconds that ended before ``before`` (a worker's, for its master):
        ``[[second, key, [[bucket, count], ...], failures], ...]``; they are forgotten here."""
        data: list[list[Any]] = []
        for t in [t for t in self._open if t + 1 <= before]:
            second = self._open.pop(t)
            for key in second.histograms.keys() | second.failures.keys():
                buckets = sorted(second.histograms.get(key, Histogram()).items())
                data.append([t, key, [list(item) for item in buckets], second.failures[key]])
        return data

    def take(self, data: Iterable[list[Any]]) -> None:
        """Add what a worker drained (a master's); a malformed entry is skipped."""
        for entry in data:
            try:
                t, key, buckets, failures = entry
                second = self._second(int(t))
                if second is None:
                    self.late += sum(int(count) for _, count in buckets)
                    continue
                histogram = second.histograms.setdefault(str(key), Histogram())
                for index, count in buckets:
                    histogram[int(index)] += int(count)
                if failures:
                    second.failures[str(key)] += int(failures)
            except (TypeError, ValueError):
                continue

    def tick(self, now: float, fleet: FleetStatus | None = None) -> list[Second]:
        """Note the fleet's states for the current second, and close the seconds that ended
        ``lag`` seconds before ``now``; return those closed, oldest first."""
        current = self._second(int(now)) if fleet is not None else None
        if current is not None:
            current.fleet = fleet
        due = sorted(t for t in self._open if t + 1 + self.lag <= now)
        closed = [self._open.pop(t).close(t) for t in due]
        if due:
            self._closed_until = due[-1]
        self.closed.extend(closed)
        return closed

    def recent(self, after: int = 0) -> list[Second]:
        """The closed seconds kept that come after ``after``."""
        return [second for second in self.closed if second.t > after]

    def _second(self, t: int) -> _Open | None:
        """The open second ``t``; None if it is closed already."""
        second = self._open.get(t)
        if second is None:
            if t <= self._closed_until:
                return None
            second = self._open[t] = _Open()
        return second
