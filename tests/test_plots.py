"""A run folder's pictures (swarm.report.plots), and python -m swarm.report that redraws them."""

from __future__ import annotations

import csv
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from swarm.report import plots

ROOT = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%"]
STATS_HEADER = [
    "Timestamp",
    "User Count",
    "Type",
    "Name",
    "Requests/s",
    "Failures/s",
    *PERCENTILES,
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
]
FLEET_HEADER = (
    "timestamp,users,connecting,booting,pending,rejected,accepted,boot failed,offline,charging"
)
START = 1795502529
SECONDS = 40
ENTRIES = [
    ("CSMS", "RemoteStartTransaction"),  # out of order on purpose: OCPP panels come first
    ("OCPP", "BootNotification"),
    ("OCPP", "Heartbeat"),
    ("OCPP", "StatusNotification"),
    ("WebSocket", "connect"),
    ("", "Aggregated"),
]
ENTRIES_201 = [
    ("CSMS201", "Reset"),  # out of order too: OCPP 1.6's panels, then 2.0.1's
    ("OCPP201", "Heartbeat"),
    ("OCPP201", "BootNotification"),
]


def size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG file, from its IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def write_stats(path: Path, entries: list[tuple[str, str]] = ENTRIES) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(STATS_HEADER)
        for second in range(SECONDS):
            for kind, name in entries:
                if second < 3 or (name == "RemoteStartTransaction" and second < 20):
                    cells = ["N/A"] * len(PERCENTILES)  # no request yet
                else:
                    base = 5 + second % 7 + 10 * entries.index((kind, name))
                    cells = [str(base + i * 3) for i in range(len(PERCENTILES))]
                totals = [second * 10, 0, 5, 5.5, 1, 40, 0]
                writer.writerow([START + second, 100, kind, name, "10.0", "0.0", *cells, *totals])
        writer.writerow([START + SECONDS, 100, "OCPP", "Heartbeat", "oops"])  # wrong column count
        bad = [START + SECONDS, 100, "OCPP", "Heartbeat", "1", "0", *["x"] * len(PERCENTILES)]
        writer.writerow(bad + [0] * 7)  # not numbers


def write_fleet(path: Path) -> None:
    lines = [FLEET_HEADER]
    for second in range(SECONDS):
        users = min(100, second * 5)
        accepted = max(0, users - 15)
        counts = [users, 5, 5, 2, 1, accepted, 1, 1, accepted // 2]
        lines.append(f"{START + second + 0.3:.1f}," + ",".join(map(str, counts)))
    lines.append("not a number,1,2,3,4,5,6,7,8,9")
    lines.append("1795502600.0,1,2")  # cut short
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run_dir = tmp_path / "steady-20261124-101500"
    run_dir.mkdir()
    write_stats(run_dir / plots.STATS_HISTORY_CSV)
    write_fleet(run_dir / plots.FLEET_CSV)
    return run_dir


def test_latency_size() -> None:
    assert plots.latency_size(0) == (1200, 380)
    assert plots.latency_size(1) == (1200, 380)
    assert plots.latency_size(4) == (1200, 640)
    assert plots.latency_size(5) == (1200, 900)


def test_read_latency(run_dir: Path) -> None:
    latency = plots.read_latency(run_dir / plots.STATS_HISTORY_CSV)
    assert list(latency) == [
        ("OCPP", "BootNotification"),
        ("OCPP", "Heartbeat"),
        ("OCPP", "StatusNotification"),
        ("CSMS", "RemoteStartTransaction"),
    ]
    heartbeat = latency["OCPP", "Heartbeat"]
    assert len(heartbeat["t"]) == SECONDS  # the malformed rows are skipped
    assert heartbeat["p50"][2] != heartbeat["p50"][2]  # N/A reads as NaN
    assert heartbeat["p99"][3] == 5 + 3 + 20 + 7 * 3


def test_a_mixed_fleet_has_panels_of_both_versions(run_dir: Path) -> None:
    write_stats(run_dir / plots.STATS_HISTORY_CSV, ENTRIES_201 + ENTRIES)
    latency = plots.read_latency(run_dir / plots.STATS_HISTORY_CSV)
    assert list(latency) == [
        ("OCPP", "BootNotification"),
        ("OCPP", "Heartbeat"),
        ("OCPP", "StatusNotification"),
        ("CSMS", "RemoteStartTransaction"),
        ("OCPP201", "BootNotification"),
        ("OCPP201", "Heartbeat"),
        ("CSMS201", "Reset"),
    ]
    assert latency["OCPP201", "Heartbeat"]["p50"][3] == 5 + 3 + 10
    latency_png, _ = plots.render(run_dir)
    assert size(latency_png) == plots.latency_size(7)


def test_read_fleet(run_dir: Path) -> None:
    fleet = plots.read_fleet(run_dir / plots.FLEET_CSV)
    assert len(fleet["t"]) == SECONDS
    assert fleet["t"][0] == START + 0.3
    assert fleet["connected"][-1] == 5 + 2 + 1 + 85 + 1


def test_render(run_dir: Path) -> None:
    paths = plots.render(run_dir)
    assert paths == [run_dir / "latency.png", run_dir / "fleet.png"]
    assert size(paths[0]) == plots.latency_size(4)
    assert size(paths[1]) == plots.FLEET_SIZE


@pytest.mark.parametrize("header_only", [True, False])
def test_render_without_data(tmp_path: Path, header_only: bool) -> None:
    if header_only:
        (tmp_path / plots.STATS_HISTORY_CSV).write_text(",".join(STATS_HEADER) + "\n")
        (tmp_path / plots.FLEET_CSV).write_text(FLEET_HEADER + "\n")
    latency, fleet = plots.render(tmp_path)
    assert size(latency) == plots.latency_size(0)
    assert size(fleet) == plots.FLEET_SIZE


def test_render_fleet_without_stats(run_dir: Path) -> None:
    (run_dir / plots.STATS_HISTORY_CSV).unlink()
    latency, fleet = plots.render(run_dir)
    assert size(latency) == plots.latency_size(0)
    assert size(fleet) == plots.FLEET_SIZE


def report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "swarm.report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report(run_dir: Path) -> None:
    result = report(str(run_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        str(run_dir / "latency.png"),
        str(run_dir / "fleet.png"),
    ]
    assert size(run_dir / "latency.png") == plots.latency_size(4)


def test_report_missing_folder(run_dir: Path) -> None:
    result = report(str(run_dir), str(run_dir / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"python -m swarm.report: error: no such folder: {run_dir / 'missing'}"
    ]
    assert not (run_dir / "latency.png").exists()  # checked before drawing anything


def test_the_fleet_picture_names_states_as_the_reports_do() -> None:
    """Its legend says accepted, as fleet.csv, the summary and the Charge points tab do."""
    labels = [label for label, _, _ in plots.FLEET_STACK]
    assert "accepted" in labels and "booted" not in labels, labels


def write_timeline(path: Path) -> None:
    """Ten seconds of a run: Heartbeats at 0.25 ms, three of them failing in the sixth second;
    and WebSocket connects, which are no action's latency."""
    from swarm.report.timeline import TIMELINE_COLUMNS

    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(TIMELINE_COLUMNS)
        for second in range(10):
            failed = 3 if second == 5 else 0
            t = 1_800_000_000 + second
            writer.writerow([t, "OCPP", "Heartbeat", 40, failed, 0.25, 0.4, 0.5, 0.6])
            writer.writerow([t, "WebSocket", "connect", 1, 0, 20, 20, 20, 20])
        writer.writerow(["half a row"])


def test_the_timeline_gives_sub_millisecond_latency_and_the_failures(tmp_path: Path) -> None:
    write_timeline(tmp_path / "timeline.csv")
    latency, failures = plots.read_timeline(tmp_path / "timeline.csv")
    assert list(latency) == [("OCPP", "Heartbeat")]
    assert latency[("OCPP", "Heartbeat")]["p50"] == [0.25] * 10  # not rounded to 0
    assert failures == {("OCPP", "Heartbeat"): {"t": [1_800_000_005.0], "failures": [3]}}
    write_fleet(tmp_path / "fleet.csv")
    paths = plots.render(tmp_path)
    # Drawn from the timeline (Locust's history is not there): one panel, Heartbeat's.
    assert size(paths[0]) == plots.latency_size(1)
    assert size(paths[1]) == plots.FLEET_SIZE


def test_seconds_without_requests_leave_a_gap_in_the_timeline(tmp_path: Path) -> None:
    from swarm.report.timeline import TIMELINE_COLUMNS

    with (tmp_path / "timeline.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(TIMELINE_COLUMNS)
        for second in (0, 1, 5):
            writer.writerow([second, "OCPP", "BootNotification", 1, 0, 2.0, 2.0, 2.0, 2.0])
    latency, _ = plots.read_timeline(tmp_path / "timeline.csv")
    series = latency[("OCPP", "BootNotification")]
    assert series["t"] == [0, 1, 2, 5]
    assert series["p50"][:2] == [2.0, 2.0] and math.isnan(series["p50"][2])
