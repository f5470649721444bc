"""Frame traces in the run's folder: what the charge points that failed and the CSMS said.

Every process that runs charge points drains its engine's traces (:mod:`swarm.protocol.trace`)
with its samples; a worker sends them to its master (:data:`TRACES_MESSAGE`); the process that
writes the run's folder writes them, in ``traces/``:

- ``<chargePointId>.jsonl``: a line per frame, in order, each written once, and a line per
  failure where it came::

      {"at": "2026-12-02T09:41:07.120Z", "n": 41, "dir": "sent", "frame": "[2,\\"9\\",...]"}
      {"at": "2026-12-02T09:41:37.121Z", "failed": "OCPP Heartbeat: CallTimeout"}

  ``n`` counts the charge point's frames from its start; a gap means frames not kept. A frame
  cut at :data:`~swarm.protocol.trace.TEXT_LIMIT` bytes has its ``length``.
- ``index.csv``: ``charge_point,time,failure``, a row per failure traced.

At most ``--trace-limit`` charge points are traced, the first to fail over all workers; with
``--trace-all``, every frame of every charge point.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from swarm.protocol.trace import DEFAULT_FRAMES, Trace, TracedFrame, Tracer

logger = logging.getLogger(__name__)

TRACES_MESSAGE = "ocpp_swarm_traces"
"""The message a worker sends its master with the traces its charge points handed in."""

FOLDER = "traces"
_UNSAFE = re.compile(r"[^A-Za-z0-9._~-]|^\.")
INDEX_COLUMNS = ("charge_point", "time", "failure")


def tracer(options: Any) -> Tracer:
    """The tracer that ``--trace-frames``, ``--trace-limit`` and ``--trace-all`` ask for."""
    return Tracer(
        getattr(options, "trace_frames", DEFAULT_FRAMES),
        getattr(options, "trace_limit", 100),
        every_frame=getattr(options, "trace_all", False),
    )


def tab_rows(traced: dict[str, int]) -> list[dict[str, Any]]:
    """The Charge points tab's rows of the charge points traced, with their failures so far."""
    return [{"what": "traced", "item": cp, "count": n} for cp, n in traced.items()]


def to_message(traces: Sequence[Trace]) -> list[Any]:
    """Traces as a worker sends them: plain lists, as Locust's messages carry them."""
    return [[t.charge_point_id, t.failures, [list(frame) for frame in t.frames]] for t in traces]


def from_message(data: Iterable[Any]) -> list[Trace]:
    """The traces of a worker's message."""
    return [
        Trace(
            str(cp), [(at, str(what)) for at, what in failures], [TracedFrame(*f) for f in frames]
        )
        for cp, failures, frames in data
    ]


class TraceFolder:
    """Writes the traces of a run into ``path`` (made with the first), up to ``limit`` charge
    points, or every one with ``every_frame``."""

    def __init__(self, path: Path, limit: int, *, every_frame: bool = False) -> None:
        self.path = path
        self.limit = limit
        self.every_frame = every_frame
        self.traced: dict[str, int] = {}
        """The charge points traced, in the order they came, with their failures so far."""
        self.refused = 0
        """Traces left out: of charge points past the limit."""
        self._index: Any = None
        self._closed = False

    def take(self, traces: Iterable[Trace]) -> None:
        """Write ``traces`` (a batch: frames and failures of a charge point, in order)."""
        if self._closed:
            logger.debug("ocpp-swarm: frame traces after the run's folder was finished")
            return
        by_charge_point: dict[str, list[Trace]] = {}
        for trace in traces:
            cp = trace.charge_point_id
            if cp not in self.traced and not self.every_frame and len(self.traced) >= self.limit:
                self.refused += 1
                continue
            self.traced[cp] = self.traced.get(cp, 0) + len(trace.failures)
            by_charge_point.setdefault(cp, []).append(trace)
        if not by_charge_point:
            return
        try:
            self._write(by_charge_point)
        except OSError:  # a full disk, say: the run and its other results go on
            logger.exception("ocpp-swarm: could not write the frame traces in %s", self.path)

    def close(self) -> None:
        self._closed = True
        if self._index is not None:
            self._index.close()

    def _write(self, by_charge_point: dict[str, list[Trace]]) -> None:
        if self._index is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._index = (self.path / "index.csv").open("w", newline="", encoding="utf-8")
            csv.writer(self._index).writerow(INDEX_COLUMNS)
        index = csv.writer(self._index)
        for cp, traces in by_charge_point.items():
            lines: list[tuple[float, dict[str, Any]]] = []
            for trace in traces:
                for at, what in trace.failures:
                    index.writerow([cp, _time(at), what])
                    lines.append((at, {"at": _time(at), "failed": what}))
                lines += [(frame.at, _frame_line(frame)) for frame in trace.frames]
            if not lines:
                continue
            lines.sort(key=lambda line: line[0])  # stable: frames keep their order
            with (self.path / f"{_UNSAFE.sub('_', cp)}.jsonl").open("a", encoding="utf-8") as file:
                file.writelines(json.dumps(line) + "\n" for _, line in lines)
        self._index.flush()


def _frame_line(frame: TracedFrame) -> dict[str, Any]:
    line = {"at": _time(frame.at), "n": frame.number, "dir": frame.direction, "frame": frame.text}
    if frame.length > len(frame.text.encode()):
        line["length"] = frame.length
    return line


def _time(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
