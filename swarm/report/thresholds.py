"""Pass/fail thresholds of a run, for performance CI: options, evaluation, JUnit XML.

Call :func:`thresholds_from_options` when the run starts, so that a typo fails at once rather
than after the run, and :func:`evaluate` when it ends; print each :class:`Outcome` (one line)
and exit non-zero if one did not pass. :func:`write_junit` reports them to CI.

Percentiles are Locust's own figures, as its reports show them: response times are kept in
buckets (147 ms counts as 150 ms, 3432 ms as 3400 ms). A threshold on requests that never
happened fails: it would otherwise be a check that cannot fail.
"""

from __future__ import annotations

import argparse
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swarm.protocol.samples import CALL_TYPES, CSMS, CSMS201, OCPP, OCPP201, WEBSOCKET

if TYPE_CHECKING:  # importing locust monkey-patches the process with gevent
    from locust.stats import RequestStats, StatsEntry

REQUEST_TYPES = (OCPP, CSMS, OCPP201, CSMS201, WEBSOCKET)
"""Request types a name may be prefixed with: ``CSMS TriggerMessage``, ``OCPP201 Heartbeat``."""

AGGREGATED = "Aggregated"
"""Name of all requests together, as Locust's reports call them."""

JUNIT_CLASSNAME = "ocpp-swarm.report.thresholds"


@dataclass(frozen=True, slots=True)
class Threshold:
    """
    A limit a run must keep.

    Args:
        metric: ``"p95"`` or ``"p99"`` (milliseconds), ``"fail_ratio"`` (0 to 1) or
            ``"booted"`` (charge points booted at once at the peak).
        limit: Most milliseconds or failure ratio; least charge points booted.
        name: Request name for ``"p95"`` and ``"p99"``, :data:`AGGREGATED` for all
            requests; else ``""``.
        request_type: One of :data:`REQUEST_TYPES`; ``""`` picks the ``OCPP`` (1.6) requests
            of that name if there are any, else the ``OCPP201`` ones, else the only ones of
            that name.

    """

    metric: str
    limit: float
    name: str = ""
    request_type: str = ""

    @property
    def subject(self) -> str:
        """What is measured: ``p95 of BootNotification``, ``failure ratio``."""
        if self.metric == "fail_ratio":
            return "failure ratio"
        if self.metric == "booted":
            return "charge points booted"
        request = f"{self.request_type} {self.name}" if self.request_type else self.name
        return f"{self.metric} of {request}"

    @property
    def bound(self) -> str:
        """The limit in words: ``at most 500 ms``, ``at most 0.1 %``, ``at least 1000``."""
        if self.metric == "booted":
            return f"at least {_number(self.limit)}"
        return f"at most {self.format_value(self.limit)}"

    def format_value(self, value: float) -> str:
        """A measured value of this metric, with its unit."""
        if self.metric == "fail_ratio":
            return f"{_number(value * 100)} %"
        if self.metric == "booted":
            return _number(value)
        return f"{_number(value)} ms"

    def __str__(self) -> str:
        if self.metric == "booted":
            return f"at least {_number(self.limit)} charge points booted"
        return f"{self.subject} {self.bound}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """
    A threshold and what the run measured.

    Args:
        threshold: The threshold.
        value: What was measured; :obj:`None` when there was nothing to measure.
        passed: Whether the run kept the threshold.
        note: Why nothing was measured, when it wasn't for lack of requests.

    """

    threshold: Threshold
    value: float | None
    passed: bool
    note: str = ""

    def __str__(self) -> str:
        threshold = self.threshold
        if self.value is not None:
            measured = threshold.format_value(self.value)
        elif self.note:
            measured = self.note
        elif threshold.metric == "fail_ratio":
            measured = "no requests"
        else:
            measured = "no such requests"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict} {threshold.subject}: {measured} ({threshold.bound})"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Parsing: each function raises ValueError with a message that the caller prefixes with the
# option's name.


def _limits(metric: str, text: str) -> list[Threshold]:
    if not text.strip():
        return []
    thresholds = []
    for item in text.split(","):
        name, equals, ms = item.rpartition("=")
        name = name.strip()
        if not equals or not name:
            raise ValueError(f"expected NAME=MS, got {item.strip()!r}")
        try:
            limit = float(ms)
        except ValueError:
            limit = math.nan
        if not math.isfinite(limit) or limit < 0:
            raise ValueError(f"expected MS to be milliseconds, 0 or more, got {item.strip()!r}")
        request_type, _, rest = name.partition(" ")
        if request_type not in REQUEST_TYPES:
            request_type, rest = "", name
        name = rest.strip()
        if not name:
            raise ValueError(f"expected a request name after the type, got {item.strip()!r}")
        thresholds.append(Threshold(metric, limit, name, request_type))
    return thresholds


def _fail_ratio(text: str) -> list[Threshold]:
    if not text.strip():
        return []
    try:
        ratio = float(text)
    except ValueError:
        ratio = math.nan
    if not 0 <= ratio <= 1:  # also refuses nan
        raise ValueError(f"expected a ratio from 0 to 1, got {text!r}")
    return [Threshold("fail_ratio", ratio)]


def _booted(text: str) -> list[Threshold]:
    if not text.strip():
        return []
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"expected a whole number, 1 or more, got {text!r}")
    return [Threshold("booted", count)]


def _checked(parse: Callable[[str], list[Threshold]]) -> Callable[[str], str]:
    """An argparse ``type``: refuses a bad value when options are parsed, keeps the text."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    return check


def add_arguments(parser: Any) -> None:
    """
    Add the threshold options to Locust's parser (``events.init_command_line_parser``).

    They work from Locust's config files too. ``--check-p95`` and ``--check-p99`` may be
    given several times, or as a list in a config file. They stay out of the web UI: only a
    headless run checks them.

    Args:
        parser: Locust's parser, or any :class:`argparse.ArgumentParser`.

    """
    group = parser.add_argument_group(
        "ocpp-swarm thresholds",
        "Pass/fail checks at the end of a headless run: one line each, and a non-zero exit"
        " code if one fails. NAME is a request name (BootNotification: its OCPP 1.6 one, if"
        " any), optionally after its type and a space (CSMS TriggerMessage, OCPP201"
        " Heartbeat), or Aggregated for all requests",
    )
    actions = [
        group.add_argument(
            "--check-p95",
            action="append",
            type=_checked(lambda text: _limits("p95", text)),
            metavar="NAME=MS[,NAME=MS...]",
            help="95th percentile response times of requests must be at most MS milliseconds",
        ),
        group.add_argument(
            "--check-p99",
            action="append",
            type=_checked(lambda text: _limits("p99", text)),
            metavar="NAME=MS[,NAME=MS...]",
            help="99th percentile response times of requests must be at most MS milliseconds",
        ),
        group.add_argument(
            "--check-fail-ratio",
            type=_checked(_fail_ratio),
            metavar="RATIO",
            help="Failures per request, over all requests, must be at most RATIO (0 to 1;"
            " 0.001 is 0.1 %%)",
        ),
        group.add_argument(
            "--check-booted",
            type=_checked(_booted),
            metavar="N",
            help="At least N charge points must have been booted at once at some point",
        ),
    ]
    for action in actions:
        action.include_in_web_ui = False


def thresholds_from_options(options: argparse.Namespace) -> list[Threshold]:
    """
    Read thresholds from Locust's parsed options.

    Values may be strings, or lists of strings for ``--check-p95`` and ``--check-p99``;
    options that aren't set, or are missing, set no threshold.

    Args:
        options: Locust's parsed options (``environment.parsed_options``).

    Returns:
        The thresholds, in the order of the options: p95, p99, failure ratio, booted.

    Raises:
        ValueError: If a value is invalid; the message names the option and the value.

    """
    parsers: list[tuple[str, Callable[[str], list[Threshold]]]] = [
        ("check_p95", lambda text: _limits("p95", text)),
        ("check_p99", lambda text: _limits("p99", text)),
        ("check_fail_ratio", _fail_ratio),
        ("check_booted", _booted),
    ]
    thresholds: list[Threshold] = []
    for dest, parse in parsers:
        option = f"--{dest.replace('_', '-')}"
        raw = getattr(options, dest, None)
        values = raw if isinstance(raw, list | tuple) else [] if raw is None else [raw]
        seen: set[tuple[str, str]] = set()
        for value in values:
            try:
                parsed = parse(str(value))
            except ValueError as exc:
                raise ValueError(f"{option}: {exc}") from None
            for threshold in parsed:
                key = (threshold.request_type, threshold.name)
                if key in seen:
                    raise ValueError(f"{option}: {str(value)!r} repeats {' '.join(key).strip()}")
                seen.add(key)
            thresholds.extend(parsed)
    return thresholds


# Evaluation.


def _entry(stats: RequestStats, threshold: Threshold) -> StatsEntry | str | None:
    """The stats entry a threshold is about; why there's none, if it's ambiguous."""
    if threshold.request_type:
        entry = stats.entries.get((threshold.name, threshold.request_type))
        return entry if entry is not None and entry.num_requests else None
    if threshold.name == AGGREGATED:
        return stats.total if stats.total.num_requests else None
    # stats.entries makes missing entries on lookup: search it, don't index it.
    found = {
        request_type: entry
        for (name, request_type), entry in stats.entries.items()
        if name == threshold.name and entry.num_requests
    }
    for call_type in CALL_TYPES:  # OCPP (1.6) first: a bare name meant it before 2.0.1 came
        if call_type in found:
            return found[call_type]
    if len(found) > 1:
        return f"requests of types {', '.join(sorted(found))}; name one"
    return next(iter(found.values()), None)


def _measure(threshold: Threshold, stats: RequestStats, peak_booted: int) -> Outcome:
    value: float | None
    if threshold.metric == "booted":
        return Outcome(threshold, peak_booted, peak_booted >= threshold.limit)
    if threshold.metric == "fail_ratio":
        total = stats.total
        value = total.num_failures / total.num_requests if total.num_requests else None
    elif threshold.metric in ("p95", "p99"):
        entry = _entry(stats, threshold)
        if isinstance(entry, str):
            return Outcome(threshold, None, False, entry)
        percent = int(threshold.metric[1:]) / 100
        value = None if entry is None else entry.get_response_time_percentile(percent)
    else:
        raise ValueError(f"unknown metric: {threshold.metric!r}")
    return Outcome(threshold, value, value is not None and value <= threshold.limit)


def evaluate(
    thresholds: Sequence[Threshold], stats: RequestStats, peak_booted: int
) -> list[Outcome]:
    """
    Check thresholds against the statistics of a run.

    Args:
        thresholds: The thresholds, from :func:`thresholds_from_options`.
        stats: The run's statistics (``environment.stats``), for the whole run.
        peak_booted: Most charge points booted (accepted) at once during the run.

    Returns:
        One outcome per threshold, in the same order.

    """
    return [_measure(threshold, stats, peak_booted) for threshold in thresholds]


def write_junit(outcomes: Sequence[Outcome], path: Path, *, suite: str, seconds: float) -> None:
    """
    Write outcomes as a JUnit XML report: one test case per threshold.

    A failed threshold's test case holds a ``failure`` whose message is the outcome's line.
    The file's folder is created if needed.

    Args:
        outcomes: Outcomes from :func:`evaluate`.
        path: Where to write the report.
        suite: Name of the test suite, e.g. the name of the run.
        seconds: How long the run lasted.

    """
    failures = sum(not outcome.passed for outcome in outcomes)
    counts = {"tests": str(len(outcomes)), "failures": str(failures), "errors": "0"}
    time = f"{seconds:.3f}"
    root = ET.Element("testsuites", {**counts, "time": time})
    testsuite = ET.SubElement(root, "testsuite", {"name": suite, **counts, "time": time})
    for outcome in outcomes:
        testcase = ET.SubElement(
            testsuite,
            "testcase",
            {"classname": JUNIT_CLASSNAME, "name": str(outcome.threshold), "time": "0"},
        )
        if not outcome.passed:
            failure = ET.SubElement(testcase, "failure", {"message": str(outcome)})
            failure.text = str(outcome)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
