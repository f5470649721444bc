"""Latency and CPU per message: the swarm in Locust against the lean client, same run.

    make bench                      # python -m bench.latency
    python -m bench.latency --charge-points 2000 --interval 1 --duration 20 --rounds 2
    python -m bench.latency --no-201   # the four 1.6 clients only: about a third quicker

One embedded CSMS process serves six clients in turn, each a fresh process with the same load
(N charge points, one Heartbeat each per interval, started at the same rate):

1. the lean client (the baseline: websockets' sans-I/O protocol on uvloop, callbacks only);
2. a task per connection on websockets' asyncio ``Connection`` (the baseline that was: it shows
   what a task and a ``Connection`` cost per message);
3. the swarm's engine and charge points without Locust;
4. the swarm inside Locust, its figures read from Locust's own stats;
5. and 6. the same two with ``--ocpp-version 2.0.1``: every charge point a 2.0.1 station
   (skipped with ``--no-201``). The first two speak 1.6 only.

It prints each client's median, p95, p99 and CPU per 1,000 messages, the CSMS's CPU in the same
window, and the ratios of the swarm in Locust to the baseline against the bar: median within
max(1.5x, +1 ms) and CPU per message within 1.5x; then the ratio of CPU per message of the 2.0.1
stations to the 1.6 charge points, both in Locust, against the bar of 1.25x (and without Locust,
for information). ``--check`` exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import psutil

from bench.measure import BOOT_LIMIT, Result, log
from swarm.csms import CsmsProcess

CLIENTS = ("bench.lean_client", "bench.raw_client", "bench.engine_client", "bench.locust_client")
CLIENTS_201 = ("bench.engine_client", "bench.locust_client")
"""The clients run again with ``--ocpp-version 2.0.1``."""
LEAN, TASK = "lean client", "task per connection"
ENGINE, SWARM = "swarm engine, no Locust", "swarm in Locust"
ENGINE_201, SWARM_201 = "2.0.1 engine, no Locust", "2.0.1 in Locust"
VERSION_BAR = 1.25
"""A 2.0.1 station's cost, CPU per message and memory per charge point, over a 1.6 charge
point's, both in Locust."""


class CpuRecorder:
    """Samples a process's CPU time twice a second, to read it over any window afterwards;
    with ``children``, its children's too (a CSMS over several processes)."""

    def __init__(self, pid: int, children: bool = False) -> None:
        self._process = psutil.Process(pid)
        self._children = children
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            processes = [self._process]
            if self._children:
                processes += self._process.children(recursive=True)
            cpu = 0.0
            for process in processes:
                with contextlib.suppress(psutil.Error):  # one that has just ended
                    times = process.cpu_times()
                    cpu += times.user + times.system
            self._samples.append((time.time(), cpu))

    def between(self, start: float, end: float) -> float:
        inside = [cpu for at, cpu in self._samples if start <= at <= end]
        return inside[-1] - inside[0] if len(inside) > 1 else float("nan")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def run_client(
    module: str,
    url: str,
    options: argparse.Namespace,
    ocpp_version: str = "1.6",
    extra: Sequence[str] = (),
    cwd: str | None = None,
) -> Result:
    """Run ``python -m module`` (in ``cwd``: the tree whose ``bench`` and ``swarm`` it runs)
    at ``options``' load against ``url``; its result."""
    command = [
        sys.executable, "-m", module, "--url", url,
        "--charge-points", str(options.charge_points), "--interval", str(options.interval),
        "--spawn-rate", str(options.spawn_rate), "--warmup", str(options.warmup),
        "--duration", str(options.duration),
    ]  # fmt: skip
    if ocpp_version != "1.6":
        command += ["--ocpp-version", ocpp_version]
    command += extra
    # A client waits BOOT_LIMIT seconds at most for its charge points, then measures.
    timeout = BOOT_LIMIT + options.warmup + options.duration + 60
    where = f" in {cwd}" if cwd else ""
    try:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False, cwd=cwd
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{module}{where} did not finish within {timeout:g} s") from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{module}{where} failed with exit code {done.returncode}")
    return Result(**json.loads(lines[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--charge-points", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between Heartbeats")
    parser.add_argument("--spawn-rate", type=float, default=500.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per client")
    parser.add_argument("--rounds", type=int, default=1, help="run the clients this many times")
    parser.add_argument(
        "--no-201",
        dest="ocpp201",
        action="store_false",
        help="skip the two 2.0.1 clients (the 1.6 ones, ratios and bars stay)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    options = parser.parse_args()

    results: list[tuple[Result, float]] = []
    with CsmsProcess.start([]) as csms:
        recorder = CpuRecorder(csms.pid)
        try:
            for round_ in range(options.rounds):
                clients = [(module, "1.6") for module in CLIENTS]
                if options.ocpp201:
                    clients += [(module, "2.0.1") for module in CLIENTS_201]
                for module, version in clients:
                    log(f"round {round_ + 1}: {module} {version}")
                    result = run_client(module, csms.url, options, version)
                    csms_cpu = recorder.between(
                        result.window_start, result.window_start + result.window_s
                    )
                    results.append((result, csms_cpu))
        finally:
            recorder.stop()

    print(
        f"\n{options.charge_points} charge points, one Heartbeat each per {options.interval:g} s,"
        f" {options.duration:g} s measured per client\n"
    )
    print(
        f"{'client':<26} {'CPs':>6} {'msgs/s':>8} {'fails':>6} {'median':>8} {'p95':>8}"
        f" {'p99':>8} {'CPU/1k msgs':>12} {'CSMS CPU':>9}"
    )
    for r, csms_cpu in results:
        print(
            f"{r.client:<26} {r.charge_points:>6} {r.messages / r.window_s:>8.0f} {r.failures:>6}"
            f" {r.median_ms:>6.2f}ms {r.p95_ms:>6.1f}ms {r.p99_ms:>6.1f}ms"
            f" {r.cpu_per_1k:>10.3f} s {csms_cpu / r.window_s:>8.0%}"
        )

    def figure(client: str, attribute: str) -> float:
        values = sorted(getattr(r, attribute) for r, _ in results if r.client == client)
        return values[len(values) // 2]

    raw_median, raw_cpu = figure(LEAN, "median_ms"), figure(LEAN, "cpu_per_1k")
    swarm_median, swarm_cpu = figure(SWARM, "median_ms"), figure(SWARM, "cpu_per_1k")
    reported_median = figure(SWARM, "locust_median_ms")
    median_bar = max(1.5 * raw_median, raw_median + 1.0)
    median_ok, cpu_ok = swarm_median <= median_bar, swarm_cpu <= 1.5 * raw_cpu
    print(
        f"\nmedian, swarm in Locust / lean client: {swarm_median:.2f} / {raw_median:.2f} ms"
        f" = {swarm_median / raw_median:.2f}x (bar: <= {median_bar:.2f} ms)"
        f" {'ok' if median_ok else 'MISSED'}"
    )
    print(
        f"Locust's own table says {reported_median:g} ms: it rounds to whole milliseconds, and"
        " where the median rounds to 0 it shows the minimum instead"
    )
    print(
        f"CPU per 1k msgs, swarm in Locust / lean client: {swarm_cpu:.3f} / {raw_cpu:.3f} s"
        f" = {swarm_cpu / raw_cpu:.2f}x (bar: <= 1.50x) {'ok' if cpu_ok else 'MISSED'}"
    )
    version_ok = True
    if options.ocpp201:
        swarm_201_cpu = figure(SWARM_201, "cpu_per_1k")
        version_ok = swarm_201_cpu <= VERSION_BAR * swarm_cpu
        print(
            f"CPU per 1k msgs, 2.0.1 / 1.6 in Locust: {swarm_201_cpu:.3f} / {swarm_cpu:.3f} s"
            f" = {swarm_201_cpu / swarm_cpu:.2f}x (bar: <= {VERSION_BAR:.2f}x)"
            f" {'ok' if version_ok else 'MISSED'}"
        )
        engine_cpu, engine_201_cpu = figure(ENGINE, "cpu_per_1k"), figure(ENGINE_201, "cpu_per_1k")
        print(
            f"CPU per 1k msgs, 2.0.1 / 1.6 engine, no Locust: {engine_201_cpu:.3f}"
            f" / {engine_cpu:.3f} s = {engine_201_cpu / engine_cpu:.2f}x"
        )
    return 0 if (median_ok and cpu_ok and version_ok) or not options.check else 1


if __name__ == "__main__":
    sys.exit(main())
