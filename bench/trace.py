"""What frame traces cost (``--trace-frames``, on by default): memory per charge point, and CPU
per message of the swarm in Locust with and without them.

    python -m bench.trace                       # 15,000 rings; 3 rounds of 2,000 CPs x 1 Hz
    python -m bench.trace --rounds 1 --check

1. **memory**: ``--rings`` traces of ``--trace-frames`` frames (32) filled as a heartbeating
   charge point fills its own (a Heartbeat and its answer, over and over, until the ring is
   full: its steady state), in a fresh process; the growth of its resident memory (RSS) per
   trace, and ``sys.getsizeof`` of one trace and its ring.
2. **CPU per message**: :mod:`bench.locust_client` against the embedded CSMS, 2,000 charge points
   heartbeating every second as in :mod:`bench.latency`, with ``--trace-frames 0`` and with the
   default, in turns, ``--rounds`` times each; the CPU seconds per 1,000 messages of each, summed
   over the rounds, and their ratio. Also a trace's own cost per frame, timed in this process.

``--check`` exits 1 unless a full trace grows a process by at most 2 KiB and the swarm with
traces spends at most 1.05x the CPU per message of the swarm without.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time

from bench.latency import run_client
from bench.measure import log, rss_kib
from swarm.csms import CsmsProcess
from swarm.protocol.trace import DEFAULT_FRAMES, FrameTrace, Tracer

KIB_BAR = 2.0
CPU_BAR = 1.05
HEARTBEAT = b'[2,"%d","Heartbeat",{}]'
ANSWER = b'[3,"%d",{"currentTime":"2026-12-02T09:41:07.123Z"}]'


def fill(trace: FrameTrace, frames: int) -> None:
    """Fill ``trace`` as a heartbeating charge point does: past full, so the ring turns."""
    for n in range(1000, 1000 + frames):
        trace.record(True, HEARTBEAT % n, time.perf_counter())
        trace.record(False, ANSWER % n, time.perf_counter())


async def _rings(rings: int, frames: int) -> dict[str, float]:
    tracer = Tracer(frames)
    ids = [f"CP-{i:06d}" for i in range(rings)]  # a charge point's own, not its trace's
    kept: list[FrameTrace | None] = [None] * rings
    gc.collect()
    base = rss_kib()
    kept[:] = [tracer.trace(cp) for cp in ids]
    for trace in kept:
        assert trace is not None
        fill(trace, frames)
    grown = (rss_kib() - base) / rings
    one = kept[0]
    assert one is not None
    sized = (sys.getsizeof(one) + sys.getsizeof(one._ring)) / 1024
    started = time.perf_counter()
    fill(one, 10_000)
    per_frame = (time.perf_counter() - started) / 20_000 * 1e6
    return {"kib": grown, "sized_kib": sized, "frames": one._count, "us_per_frame": per_frame}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rings", type=int, default=15_000)
    parser.add_argument("--trace-frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument("--charge-points", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between Heartbeats")
    parser.add_argument("--spawn-rate", type=float, default=500.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    parser.add_argument("--measure-rings", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.measure_rings:
        print(json.dumps(asyncio.run(_rings(options.rings, options.trace_frames))))
        return 0

    log(f"memory: {options.rings:,} traces of {options.trace_frames} frames")
    command = [sys.executable, "-m", "bench.trace", "--measure-rings"]
    command += ["--rings", str(options.rings), "--trace-frames", str(options.trace_frames)]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=600, check=True)
    rings = json.loads(done.stdout.splitlines()[-1])

    cpu = {0: [0.0, 0], options.trace_frames: [0.0, 0]}  # CPU seconds, messages
    with CsmsProcess.start([]) as csms:
        for round_ in range(options.rounds):
            for frames in cpu:
                log(f"round {round_ + 1}: the swarm in Locust, --trace-frames {frames}")
                result = run_client(
                    "bench.locust_client", csms.url, options, extra=["--trace-frames", str(frames)]
                )
                cpu[frames][0] += result.cpu_s
                cpu[frames][1] += result.messages
    off, on = (seconds / max(1, messages) * 1000 for seconds, messages in cpu.values())

    kib_ok, cpu_ok = rings["kib"] <= KIB_BAR, on <= CPU_BAR * off
    print(
        f"\nmemory: {options.rings:,} full traces of {options.trace_frames} frames"
        f" ({rings['frames']} frames fit, Heartbeats and their answers)\n"
        f"  RSS growth per trace: {rings['kib']:.2f} KiB (bar {KIB_BAR:g}) "
        f"{'ok' if kib_ok else 'MISSED'}; sys.getsizeof, the trace and its ring:"
        f" {rings['sized_kib']:.2f} KiB\n"
        f"  a frame recorded: {rings['us_per_frame']:.2f} µs\n"
        f"\nCPU per 1,000 messages, {options.charge_points:,} charge points x"
        f" {1 / options.interval:g} Hz, {options.rounds} x {options.duration:g} s each:\n"
        f"  --trace-frames 0: {off:.4f} s; --trace-frames {options.trace_frames}: {on:.4f} s;"
        f" ratio {on / off:.3f} (bar {CPU_BAR:g}) {'ok' if cpu_ok else 'MISSED'}"
    )
    return 0 if (kib_ok and cpu_ok) or not options.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
