"""A whole machine: the swarm through Locust's own command line, over ``--processes``.

    python -m bench.machine                         # 15,000 in one process, 30,000 in two
    python -m bench.machine --machine-per-process 5000 --machine-processes 1,2

Each row is a headless ``locust`` run of the default locustfile, ``--machine-per-process``
charge points per Locust process (one process: no ``--processes``; more: ``--processes N``,
Locust's master and N workers), each heartbeating every ``--machine-interval`` seconds (60),
against one embedded CSMS
spread over as many processes as the largest row has (``python -m swarm.csms --workers N``),
from two loopback source addresses (one has 28,000 ports to a CSMS). What it reads is the run
folder's: the fleet's peak of accepted charge points (``summary.json``), every failed request of
the run (``locust_failures.csv``, by request and error), and the OCPP round trips per second
over ``--machine-duration`` seconds that end 5 s before the run does (``timeline.csv``, every
round trip by the second).

``--check`` exits 1 unless every row booted all its charge points with no failure, and each row
carried at least 0.9x its share of messages per second: N processes at least 0.9 N times what
one did.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.latency import CpuRecorder
from bench.measure import log
from swarm.csms import CsmsProcess

SCALING_BAR = 0.9
"""Messages per second of N processes, over N times one process's."""

TAIL = 5
"""Seconds at the end of a run left out of its window: the stop."""


@dataclass
class Row:
    processes: int
    charge_points: int
    booted: int
    failures: int
    messages_per_s: float
    last_boot_s: float
    """Seconds from the run's first second to the last with a BootNotification."""
    window_s: int
    csms_cpu: float
    """The CSMS's CPU time in the window over the window, its processes together."""
    failed: dict[str, int]
    """Failures by request and error, as Locust counted them."""


def run(processes: int, options: argparse.Namespace, url: str, recorder: CpuRecorder) -> Row:
    """One headless Locust run of ``processes`` processes; its figures from its run folder."""
    charge_points = processes * options.machine_per_process
    spawn_s = math.ceil(charge_points / options.machine_spawn_rate)
    run_time = spawn_s + options.machine_warmup + options.machine_duration + TAIL
    with tempfile.TemporaryDirectory(prefix="bench-machine-") as folder:
        command = [
            sys.executable, "-m", "locust", "-f", "locustfile.py", "--headless",
            "--users", str(charge_points), "--spawn-rate", str(options.machine_spawn_rate),
            "--run-time", f"{run_time}s", "--host", url, "--only-summary",
            "--heartbeat-interval", str(options.machine_interval), "--authorize-interval", "0",
            "--source-addresses", "127.0.0.1,127.0.0.2", "--serial-prefix", f"M{processes}-",
            "--results-dir", folder,
        ]  # fmt: skip
        if processes > 1:
            command += ["--processes", str(processes)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=run_time + 180, check=False
        )
        runs = sorted(Path(folder).glob("*/summary.json"))
        if not runs:
            raise SystemExit(f"locust exited {done.returncode} with no run folder:\n"
                             f"{done.stderr[-3000:]}")  # fmt: skip
        summary = json.loads(runs[-1].read_text())
        with open(runs[-1].parent / "timeline.csv", newline="") as timeline:
            seconds = list(csv.DictReader(timeline))
        with open(runs[-1].parent / "locust_failures.csv", newline="") as failures:
            failed = {
                f"{row['Method']} {row['Name']}: {row['Error']}": int(row["Occurrences"])
                for row in csv.DictReader(failures)
            }
    first = min(int(row["second"]) for row in seconds)
    end = max(int(row["second"]) for row in seconds) - TAIL
    start = end - options.machine_duration
    carried = sum(
        int(row["requests"])
        for row in seconds
        if row["type"].startswith("OCPP") and start < int(row["second"]) <= end
    )
    boots = [int(row["second"]) for row in seconds if row["name"] == "BootNotification"]
    return Row(
        processes=processes,
        charge_points=charge_points,
        booted=summary["fleet"]["peak"]["accepted"],
        failures=sum(failed.values()),
        messages_per_s=carried / options.machine_duration,
        last_boot_s=max(boots, default=first) - first,
        window_s=options.machine_duration,
        csms_cpu=recorder.between(float(start), float(end)) / options.machine_duration,
        failed=failed,
    )


def arguments(parser: argparse.ArgumentParser) -> None:
    """The options of a whole machine's rows (``bench.capacity`` takes them too)."""
    parser.add_argument("--machine-per-process", type=int, default=15_000, help="charge points")
    parser.add_argument(
        "--machine-processes",
        default="1,2",
        help="Locust processes of each row, comma-separated; none: no rows",
    )
    parser.add_argument("--machine-interval", type=float, default=60.0)
    parser.add_argument("--machine-warmup", type=int, default=20)
    parser.add_argument("--machine-duration", type=int, default=60)
    parser.add_argument("--machine-spawn-rate", type=float, default=500.0)


def measure(options: argparse.Namespace) -> list[Row]:
    """Every row, against one CSMS over as many processes as the largest row has."""
    counts = [
        int(count)
        for count in options.machine_processes.split(",")
        if count.strip() and count.strip().lower() != "none"
    ]
    rows: list[Row] = []
    if not counts:
        return rows
    with CsmsProcess.start(["--workers", str(max(counts))], timeout=60) as csms:
        recorder = CpuRecorder(csms.pid, children=True)
        try:
            for processes in counts:
                n = processes * options.machine_per_process
                log(f"machine: {n:,} charge points in {processes} process(es)")
                rows.append(run(processes, options, csms.url, recorder))
        finally:
            recorder.stop()
    return rows


def report(rows: list[Row], options: argparse.Namespace) -> bool:
    """Print the rows and the bars; return whether every bar holds."""
    print(
        f"\na whole machine: {options.machine_per_process:,} charge points per Locust process,"
        f" one Heartbeat each per {options.machine_interval:g} s,"
        f" {options.machine_duration} s measured\n"
    )
    print(
        f"{'processes':>9} {'charge points':>13} {'booted':>7} {'last boot':>9} {'fails':>6}"
        f" {'msgs/s':>7} {'x one':>6} {'CSMS CPU':>9}"
    )
    one = next((row for row in rows if row.processes == 1), None)
    passed = True
    for row in rows:
        scale = row.messages_per_s / one.messages_per_s if one else float("nan")
        held = row.booted == row.charge_points and row.failures == 0
        scaled = one is None or scale >= SCALING_BAR * row.processes
        passed = passed and held and scaled
        print(
            f"{row.processes:>9} {row.charge_points:>13,} {row.booted:>7,}"
            f" {row.last_boot_s:>8.0f}s {row.failures:>6} {row.messages_per_s:>7.0f}"
            f" {scale:>5.2f}x {row.csms_cpu:>8.0%}  {'ok' if held and scaled else 'MISSED'}"
        )
    for row in rows:
        if row.failed:
            print(f"failures of {row.processes} process(es):")
            for what, count in sorted(row.failed.items(), key=lambda item: -item[1]):
                print(f"  {count:>6}  {what}")
    print(
        f"bars: every charge point booted, no failure; N processes carry >= {SCALING_BAR:g} N"
        " times one's messages per second"
    )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    arguments(parser)
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    options = parser.parse_args()
    passed = report(measure(options), options)
    return 0 if passed or not options.check else 1


if __name__ == "__main__":
    sys.exit(main())
