"""A run's folder, ``<results dir>/<locustfile>-<timestamp>/``, and what goes in it.

The process that holds the run's stats writes it (a master, or a process on its own; never a
worker), so ``--processes N`` and master/worker runs give the same folder as a lone process:

- ``locust_stats.csv``, ``locust_stats_history.csv`` (full history), ``locust_failures.csv``,
  ``locust_exceptions.csv``: Locust's CSV, whether or not ``--csv`` asks for another copy;
- ``report.html``: Locust's HTML report, unless ``--html`` names another file (written here
  on SIGTERM, where Locust quits without one);
- ``fleet.csv``: every second, the charge points per state and the watts their sessions draw
  (see :mod:`swarm.report.fleet`);
- ``timeline.csv``: every second, each action's requests, failures and p50, p95, p99 and
  maximum latency, at the samples' own resolution (see :mod:`swarm.report.timeline`);
- ``summary.json``: per-request figures, the fleet's peak states and its final ones (as the test
  ended, before its users stopped) with its charge points per OCPP version, CALLERRORs and CSMS
  calls, the workers a master lost, the thresholds' outcomes, the charge points traced;
- ``thresholds.xml``: the thresholds as JUnit XML, when any are given;
- ``traces/``: the frames of the charge points that failed (see :mod:`swarm.locust.traces`);
- ``latency.png`` and ``fleet.png``: the pictures (``python -m swarm.report`` redraws them).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
from locust import stats as locust_stats
from locust.env import Environment
from locust.html import get_html_report, process_html_filename

from swarm.locust import traces
from swarm.locust.options import swarm_options
from swarm.report import plots, thresholds
from swarm.report.fleet import STATES, FleetStatus
from swarm.report.timeline import TIMELINE_COLUMNS, TIMELINE_CSV, Second

logger = logging.getLogger(__name__)

FLEET_COLUMNS = ("timestamp", "users", *STATES, "charging", "power_w")
SAMPLE_INTERVAL = 1.0
"""Seconds between rows of ``fleet.csv``: Locust's CSV history interval."""
FLUSH_INTERVAL = 5.0

THRESHOLDS_MISSED = 3
"""Exit code of a run that missed a threshold (Locust's own are 1 for failures, 2 for errors)."""


def folder_name(locustfile: str, started: datetime) -> str:
    """``<locustfile stem>-<YYYYmmdd-HHMMSS>``; several locustfiles join their stems by ``+``."""
    stems = [Path(name.strip()).stem for name in locustfile.split(",") if name.strip()]
    return f"{'+'.join(stems) or 'locust'}-{started:%Y%m%d-%H%M%S}"


def without_credentials(url: str) -> str:
    """``url`` without a ``user:password@`` part: a summary must not carry secrets."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class RunFolder:
    """Writes one run's folder while it runs (CSV every second) and when it ends.

    ``fleet`` gives the fleet's current :class:`FleetStatus` (summed over the workers).
    """

    def __init__(
        self,
        environment: Environment,
        path: Path,
        fleet: Callable[[], FleetStatus],
        checks: Sequence[thresholds.Threshold] = (),
        workers_lost: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.environment = environment
        self.path = path
        self.fleet = fleet
        self.checks = list(checks)
        self.workers_lost = workers_lost
        """The workers a master lost, as they are lost (see :class:`.workers.Workers`)."""
        self.started = datetime.now(UTC)
        self.peak: dict[str, int] = dict.fromkeys((*STATES, "charging", "power_w"), 0)
        self._at_stop: FleetStatus | None = None
        self._csv = locust_stats.StatsCSVFileWriter(
            environment, locust_stats.PERCENTILES_TO_REPORT, str(path / "locust"), True
        )
        self._fleet_file = (path / "fleet.csv").open("w", newline="", encoding="utf-8")
        self._fleet_rows = csv.writer(self._fleet_file)
        self._fleet_rows.writerow(FLEET_COLUMNS)
        self._timeline_file = (path / TIMELINE_CSV).open("w", newline="", encoding="utf-8")
        self._timeline_rows = csv.writer(self._timeline_file)
        self._timeline_rows.writerow(TIMELINE_COLUMNS)
        self._greenlets = [gevent.spawn(self._csv.stats_writer), gevent.spawn(self._record)]
        options = environment.parsed_options
        tracer = traces.tracer(options)
        self.traces = traces.TraceFolder(
            path / traces.FOLDER, tracer.limit, every_frame=tracer.every_frame
        )
        """Where the frame traces go (see :mod:`swarm.locust.traces`)."""
        if options is not None and not options.html_file:
            options.html_file = str(path / "report.html")  # Locust writes it before quitting

    @classmethod
    def create(
        cls,
        environment: Environment,
        fleet: Callable[[], FleetStatus],
        checks: Sequence[thresholds.Threshold] = (),
        workers_lost: Sequence[dict[str, Any]] = (),
    ) -> RunFolder | None:
        """Make a new folder under ``--results-dir`` and start writing; None if that is empty."""
        options = environment.parsed_options
        root = getattr(options, "results_dir", "results")
        if not root:
            return None
        name = folder_name(getattr(options, "locustfile", None) or "locust", datetime.now())
        path = Path(root) / name
        for attempt in range(2, 100):  # two runs in one second: number the later ones
            try:
                path.mkdir(parents=True)
                break
            except FileExistsError:
                path = Path(root) / f"{name}-{attempt}"
        else:
            raise ValueError(f"--results-dir: too many runs named {name} in {root}")
        return cls(environment, path, fleet, checks, workers_lost)

    def _record(self) -> None:
        flushed = time.monotonic()
        while True:
            self._write_fleet_row()
            if time.monotonic() - flushed >= FLUSH_INTERVAL:
                self._fleet_file.flush()
                flushed = time.monotonic()
            gevent.sleep(SAMPLE_INTERVAL)

    def _write_fleet_row(self) -> FleetStatus:
        status = self.fleet()
        runner = self.environment.runner
        counts = {**status.states, "charging": status.charging, "power_w": status.power_w}
        for key, count in counts.items():
            self.peak[key] = max(self.peak.get(key, 0), count)
        users = runner.user_count if runner is not None else 0
        self._fleet_rows.writerow(
            [f"{time.time():.1f}", users, *(counts.get(key, 0) for key in FLEET_COLUMNS[2:])]
        )
        return status

    def add_seconds(self, seconds: Iterable[Second]) -> None:
        """Write closed seconds to ``timeline.csv``: a row per second and action."""
        if self._timeline_file.closed:
            return
        for second in seconds:
            for key, action in second.actions.items():
                kind, _, name = key.partition(" ")
                self._timeline_rows.writerow(
                    [second.t, kind, name, action.requests, action.failures]
                    + [f"{value:.4g}" for value in action.as_list()[2:]]
                )

    def note_stop(self) -> None:
        """Note the fleet as a test ends, before Locust stops its users and their charge points
        (``test_stopping``): the summary's final states. After :meth:`finish` (on Ctrl-C,
        Locust quits before it stops the users), nothing."""
        if not self._fleet_file.closed:
            self._at_stop = self._write_fleet_row()

    def finish(self) -> bool:
        """Write the final CSV, the summary, the thresholds and the pictures.

        Returns whether every threshold passed; a missed one sets the exit code to
        :data:`THRESHOLDS_MISSED` (unless one is set already) and is logged, one line each.
        """
        gevent.killall(self._greenlets)
        last = self._write_fleet_row()
        # The states before the users stopped; the counts of CALLERRORs and calls to the end.
        final = last
        if self._at_stop is not None:
            final = replace(self._at_stop, callerrors=last.callerrors, csms_calls=last.csms_calls)
        self._fleet_file.close()
        self._timeline_file.close()
        self._csv.close_files()
        self._write_final_csv()
        self.traces.close()
        if self.traces.refused:
            logger.info(
                "ocpp-swarm: %d frame traces left out, of charge points past --trace-limit %d",
                self.traces.refused,
                self.traces.limit,
            )
        stats = self.environment.stats
        outcomes = thresholds.evaluate(self.checks, stats, self.peak["accepted"])
        ended = datetime.now(UTC)
        seconds = (ended - self.started).total_seconds()
        for outcome in outcomes:
            (logger.info if outcome.passed else logger.error)("threshold: %s", outcome)
        passed = all(outcome.passed for outcome in outcomes)
        if outcomes:
            thresholds.write_junit(
                outcomes, self.path / "thresholds.xml", suite=self.path.name, seconds=seconds
            )
        if not passed and not self.environment.process_exit_code:
            self.environment.process_exit_code = THRESHOLDS_MISSED
        summary = self._summary(final, outcomes, ended, seconds)
        (self.path / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        try:
            self._write_html_report()
        except Exception:  # as with the pictures
            logger.exception("could not write the HTML report of %s", self.path)
        try:
            plots.render(self.path)
        except Exception:  # the pictures must not cost the run its other results
            logger.exception("could not draw the pictures of %s", self.path)
        logger.info("ocpp-swarm: results in %s/", self.path)
        return passed

    def _write_html_report(self) -> None:
        # Locust writes its HTML report before the quitting event when a run ends or on Ctrl-C,
        # but not on SIGTERM: write it then. A file older than this run is not this run's.
        options = self.environment.parsed_options
        if options is None or not options.html_file or self.environment.runner is None:
            return
        process_html_filename(options)
        path = Path(options.html_file)
        with contextlib.suppress(OSError):
            if path.stat().st_mtime >= self.started.timestamp():
                return
        path.parent.mkdir(parents=True, exist_ok=True)
        report = get_html_report(self.environment, show_download_link=False)
        path.write_text(report, encoding="utf-8")

    def _write_final_csv(self) -> None:
        # The writer rewrites these every second; at the end they must hold the final figures.
        writer = self._csv
        for suffix, write in (
            ("stats", writer.requests_csv),
            ("failures", writer.failures_csv),
            ("exceptions", writer.exceptions_csv),
        ):
            with (self.path / f"locust_{suffix}.csv").open("w", newline="") as file:
                write(csv.writer(file))

    def _summary(
        self,
        final: FleetStatus,
        outcomes: Sequence[thresholds.Outcome],
        ended: datetime,
        seconds: float,
    ) -> dict[str, Any]:
        environment = self.environment
        stats = environment.stats
        options = environment.parsed_options
        return {
            "run": self.path.name,
            "locustfile": getattr(options, "locustfile", None),
            "host": without_credentials(environment.host or ""),
            "started": self.started.isoformat(timespec="seconds"),
            "ended": ended.isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "options": swarm_options(options) if options is not None else {},
            "requests": [
                _entry(entry) for entry in (*locust_stats.sort_stats(stats.entries), stats.total)
            ],
            "fail_ratio": stats.total.fail_ratio,
            "fleet": {"peak": self.peak, "final": final.as_dict()},
            "workers_lost": [dict(worker) for worker in self.workers_lost],
            "thresholds": [
                {"threshold": str(o.threshold), "value": o.value, "passed": o.passed}
                for o in outcomes
            ],
            "passed": all(o.passed for o in outcomes) if outcomes else None,
            "traced": list(self.traces.traced),
        }


def _entry(entry: locust_stats.StatsEntry) -> dict[str, Any]:
    count = entry.num_requests
    return {
        "type": entry.method or "",
        "name": entry.name,
        "requests": count,
        "failures": entry.num_failures,
        "median_ms": entry.median_response_time if count else None,
        "p95_ms": entry.get_response_time_percentile(0.95) if count else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if count else None,
        "max_ms": round(entry.max_response_time, 3) if count else None,
        "per_second": round(entry.total_rps, 3),
    }
