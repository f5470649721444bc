"""What every benchmark client measures, and how it prints it: one JSON line on stdout."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from swarm.protocol.trace import DEFAULT_FRAMES
from swarm.station.versions import VERSIONS


def cpu_seconds() -> float:
    """User and system CPU time of this process, all threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_kib() -> int:
    """This process's resident memory now, in KiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


BOOT_LIMIT = 300.0
"""Seconds a client waits, from its first start, for every charge point to boot."""


def wait_for_boots(
    booted: Callable[[], int], wanted: int, started: float, sleep: Callable[[float], object]
) -> float:
    """Wait until ``booted()`` reaches ``wanted`` (or :data:`BOOT_LIMIT` has passed since
    ``started``, a ``time.monotonic()``); return the seconds since ``started``."""
    while booted() < wanted and time.monotonic() - started < BOOT_LIMIT:
        sleep(0.05)
    return time.monotonic() - started


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


@dataclass
class Result:
    client: str
    charge_points: int
    """Charge points that were connected and booted when the window opened."""
    messages: int
    """Heartbeat round trips answered in the window."""
    failures: int
    window_s: float
    cpu_s: float
    median_ms: float
    p95_ms: float
    p99_ms: float
    window_start: float = 0.0
    """Wall-clock time (``time.time()``) when the window opened, to line up the CSMS's CPU."""
    locust_median_ms: float | None = None
    """The median Locust reports (whole milliseconds below 100 ms), where Locust ran."""
    connect_s: float = float("nan")
    """Seconds from the first charge point's start to the last one's accepted boot."""
    connect_failures: int = 0
    rss_base_kib: int = 0
    """This process's resident memory before the first charge point started."""
    rss_kib: int = 0
    """... and when the window closed."""

    @property
    def kib_per_charge_point(self) -> float:
        growth = self.rss_kib - self.rss_base_kib
        return growth / self.charge_points if self.charge_points else float("nan")

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu_s / self.messages * 1000 if self.messages else float("nan")

    @classmethod
    def from_times(
        cls,
        client: str,
        charge_points: int,
        times_ms: list[float],
        failures: int,
        window: Window,
    ) -> Result:
        times_ms = sorted(times_ms)
        return cls(
            client,
            charge_points,
            len(times_ms),
            failures,
            window.seconds,
            window.cpu,
            percentile(times_ms, 0.5),
            percentile(times_ms, 0.95),
            percentile(times_ms, 0.99),
            window.start,
        )

    def emit(self) -> None:
        print(json.dumps(asdict(self)), flush=True)


class Window:
    """The measured stretch of a run: wall time and this process's CPU time."""

    def __init__(self) -> None:
        self.start = time.time()
        self._cpu, self._monotonic = cpu_seconds(), time.monotonic()
        self.seconds = self.cpu = 0.0

    def close(self) -> Window:
        self.seconds = time.monotonic() - self._monotonic
        self.cpu = cpu_seconds() - self._cpu
        return self


async def measure_counted(
    client: str,
    options: argparse.Namespace,
    times: list[float],
    counts: dict[str, int],
    started: float,
    rss_base: int,
) -> Result:
    """The window of an asyncio client that counts its own charge points: wait for them to boot
    (``counts["booted"]``, from ``started``, a ``time.monotonic()``), warm up, then measure
    ``times`` and ``counts["failures"]`` over ``--duration`` seconds."""
    while counts["booted"] < options.charge_points and time.monotonic() - started < BOOT_LIMIT:
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - started
    await asyncio.sleep(options.warmup)
    log(f"{client}: {counts['booted']} booted, measuring {options.duration:g} s")
    times.clear()
    counts["failures"] = 0
    window = Window()
    await asyncio.sleep(options.duration)
    window.close()
    result = Result.from_times(client, counts["booted"], times, counts["failures"], window)
    result.connect_s, result.connect_failures = connect_s, counts["connect_failures"]
    result.rss_base_kib, result.rss_kib = rss_base, rss_kib()
    return result


def client_arguments(
    description: str, *, ocpp_version: bool = False, trace_frames: bool = False
) -> argparse.Namespace:
    """The options every client takes, so the orchestrator drives them alike; with
    ``ocpp_version``, ``--ocpp-version`` too (the swarm's clients: the raw client speaks 1.6);
    with ``trace_frames``, the swarm's ``--trace-frames``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="CSMS base URL, ws://host:port")
    parser.add_argument("--charge-points", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between Heartbeats")
    parser.add_argument(
        "--spawn-rate", type=float, default=500.0, help="charge points started per second"
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds after the last accepted boot"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    if ocpp_version:
        parser.add_argument(
            "--ocpp-version", choices=VERSIONS, default="1.6", help="every charge point's version"
        )
    if trace_frames:
        parser.add_argument(
            "--trace-frames", type=int, default=DEFAULT_FRAMES, help="as the swarm's option"
        )
    return parser.parse_args()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
