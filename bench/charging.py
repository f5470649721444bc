"""What physical charging costs (EVs, charging limits, meter values as configured): a charging
fleet's memory per charge point and CPU per message, now and at the revision before, in one run.

    python -m bench.charging                          # 1.6 and 2.0.1, about 12 minutes
    python -m bench.charging --ocpp-version 1.6 --rounds 1 --check

The baseline is the tree of ``--baseline`` (a git revision; by default the last one before the
EVs), taken with ``git archive`` into a temporary folder, with this revision's
:mod:`bench.charging_client` put in it. That one client then runs against each tree's swarm in
turn, every charge point charging, all against one embedded CSMS (this revision's):

1. **memory**: ``--memory-charge-points`` (15,000) in Locust, their Heartbeats and MeterValues
   every ``--memory-interval`` seconds (30); the growth of the process's resident memory (RSS)
   per charge point, once each;
2. **CPU per message**: ``--charge-points`` (2,000), their Heartbeats and MeterValues every
   ``--interval`` seconds (1); the CPU seconds per 1,000 round trips, summed over ``--rounds``
   turns each, and their ratio.

``--check`` exits 1 unless, in every version, a charge point now takes at most 1 KiB more than at
the baseline and the swarm spends at most 1.05x its CPU per message.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from bench.latency import run_client
from bench.measure import Result, log
from swarm.csms import CsmsProcess
from swarm.station.versions import VERSIONS

BASELINE = "cb152c9"
"""The last revision before the EVs: a session drew a steady share of --charging-power."""
KIB_BAR = 1.0
CPU_BAR = 1.05
CLIENT = "bench.charging_client"
ROOT = Path(__file__).resolve().parent.parent


def baseline_tree(revision: str, folder: Path) -> Path:
    """``revision``'s tree in ``folder``, with this revision's charging client in its bench."""
    archive = subprocess.run(
        ["git", "archive", revision], cwd=ROOT, capture_output=True, check=False, timeout=60
    )
    if archive.returncode != 0:
        raise SystemExit(f"no baseline: git archive {revision}: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        # Python before 3.11.4 has no extraction filters; the archive is this repository's own.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(folder, **safe)
    if not (folder / "bench" / "measure.py").exists():
        raise SystemExit(f"no baseline: {revision} has no bench/measure.py for the client")
    shutil.copy(ROOT / "bench" / "charging_client.py", folder / "bench")
    return folder


def measure(
    url: str, trees: list[Path], options: argparse.Namespace, version: str, rounds: int
) -> list[list[Result]]:
    """``rounds`` runs of the client in each tree, in turns: each tree's results."""
    results: list[list[Result]] = [[] for _ in trees]
    for round_ in range(rounds):
        for tree, runs in zip(trees, results, strict=True):
            log(f"{version}, round {round_ + 1}: {tree}, {options.charge_points:,} charge points")
            runs.append(run_client(CLIENT, url, options, version, cwd=str(tree)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", default=BASELINE, help="a git revision (default %(default)s)")
    parser.add_argument("--ocpp-version", nargs="+", choices=VERSIONS, default=list(VERSIONS))
    parser.add_argument("--memory-charge-points", type=int, default=15_000)
    parser.add_argument("--memory-interval", type=float, default=30.0)
    parser.add_argument("--charge-points", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--spawn-rate", type=float, default=500.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    options = parser.parse_args()
    memory = argparse.Namespace(**vars(options))
    memory.charge_points, memory.interval = options.memory_charge_points, options.memory_interval
    memory.duration = 5.0

    report, ok = [], True
    with tempfile.TemporaryDirectory() as folder, CsmsProcess.start([]) as csms:
        trees = [ROOT, baseline_tree(options.baseline, Path(folder))]  # now, then
        for version in options.ocpp_version:
            now, then = (runs[0].kib_per_charge_point for runs in measure(
                csms.url, trees, memory, version, 1
            ))  # fmt: skip
            cpu_now, cpu_then = (
                sum(r.cpu_s for r in runs) / max(1, sum(r.messages for r in runs)) * 1000
                for runs in measure(csms.url, trees, options, version, options.rounds)
            )
            kib_ok, cpu_ok = now - then <= KIB_BAR, cpu_now <= CPU_BAR * cpu_then
            ok = ok and kib_ok and cpu_ok
            report.append(
                f"OCPP {version}, every charge point charging:\n"
                f"  memory, {memory.charge_points:,} charge points: {now:.2f} KiB each now,"
                f" {then:.2f} at {options.baseline}; {now - then:+.2f} KiB (bar +{KIB_BAR:g})"
                f" {'ok' if kib_ok else 'MISSED'}\n"
                f"  CPU per 1,000 messages, {options.charge_points:,} x {1 / options.interval:g}"
                f" Hz, {options.rounds} x {options.duration:g} s: {cpu_now:.4f} s now,"
                f" {cpu_then:.4f} s at {options.baseline}; ratio {cpu_now / cpu_then:.3f}"
                f" (bar {CPU_BAR:g}) {'ok' if cpu_ok else 'MISSED'}"
            )
    print("\n" + "\n".join(report))
    return 0 if ok or not options.check else 1


if __name__ == "__main__":
    raise SystemExit(main())
