"""Frame traces in the run's folder (swarm.locust.traces): the writer on its own, a run of two
worker processes against a CSMS that answers some Heartbeats with a CALLERROR, and the traced
charge points in the web UI's tab."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from swarm.csms import Csms, CsmsConfig
from swarm.locust.traces import TraceFolder, from_message, tab_rows, to_message
from swarm.protocol.trace import RECEIVED, SENT, TEXT_LIMIT, Trace, TracedFrame
from tests.scripted import call_in, free_port, in_thread
from tests.test_locust import LOCUST, child, finished

T0 = 1_796_200_000.0


def frame(number: int, at: float, direction: str, text: str, length: int = 0) -> TracedFrame:
    return TracedFrame(number, T0 + at, direction, text, length or len(text))


def index_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "index.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_writer_puts_failures_among_frames_in_time_and_each_frame_once(
    tmp_path: Path,
) -> None:
    folder = TraceFolder(tmp_path / "traces", limit=1)
    call = frame(1, 0.0, SENT, '[2,"1","Heartbeat",{}]')
    cut = frame(2, 0.5, RECEIVED, "x" * TEXT_LIMIT, length=9000)
    first = Trace("CP-1", [(T0 + 0.4, "OCPP Heartbeat: CallTimeout")], [call, cut])
    # Sent by a worker: the message's round trip keeps it whole.
    folder.take(from_message(json.loads(json.dumps(to_message([first])))))
    later = frame(3, 2.0, SENT, '[2,"2","Heartbeat",{}]')
    folder.take([Trace("CP-1", [(T0 + 2.5, "OCPP Heartbeat: CallTimeout")], [later])])
    folder.take([Trace("CP-2", [(T0 + 3.0, "OCPP Heartbeat: CallTimeout")], [])])  # past limit
    folder.close()

    assert folder.traced == {"CP-1": 2} and folder.refused == 1
    written = lines(tmp_path / "traces" / "CP-1.jsonl")
    assert [line.get("n", "failed") for line in written] == [1, "failed", 2, 3, "failed"]
    assert written[0] == {
        "at": "2026-12-02T08:26:40.000Z",
        "n": 1,
        "dir": "sent",
        "frame": '[2,"1","Heartbeat",{}]',
    }
    assert written[2]["length"] == 9000 and "length" not in written[3]
    assert written[1] == {"at": "2026-12-02T08:26:40.400Z", "failed": "OCPP Heartbeat: CallTimeout"}
    assert index_rows(tmp_path / "traces") == [
        {
            "charge_point": "CP-1",
            "time": "2026-12-02T08:26:40.400Z",
            "failure": written[1]["failed"],
        },
        {
            "charge_point": "CP-1",
            "time": "2026-12-02T08:26:42.500Z",
            "failure": written[1]["failed"],
        },
    ]
    assert not (tmp_path / "traces" / "CP-2.jsonl").exists()


def test_every_frame_mode_has_no_limit_and_a_name_is_made_safe_for_a_file(tmp_path: Path) -> None:
    folder = TraceFolder(tmp_path, limit=0, every_frame=True)
    folder.take([Trace("../CP/1", [], [frame(1, 0.0, SENT, "[]")]), Trace("CP-2", [], [])])
    folder.close()
    assert folder.traced == {"../CP/1": 0, "CP-2": 0}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["_._CP_1.jsonl", "index.csv"]


@pytest.mark.timeout(90)
def test_workers_traces_of_the_charge_points_that_failed_reach_the_masters_folder(
    tmp_path: Path,
) -> None:
    users = 20
    with in_thread(lambda: Csms(CsmsConfig(port=0))) as (csms, loop):
        faults = {"callerror": "InternalError", "share": 0.1, "actions": ["Heartbeat"]}
        call_in(loop, lambda: csms.set_faults(**faults))
        command = [
            LOCUST, "-f", "locustfile.py", "--headless", "--processes", "2",
            "--master-bind-port", str(port := free_port()), "--master-port", str(port),
            "--results-dir", str(tmp_path), "-u", str(users), "-r", str(users), "-t", "6s",
            "--host", csms.url, "--heartbeat-interval", "0.5", "--authorize-interval", "0",
            "--only-summary",
        ]  # fmt: skip
        with child(command) as proc:
            # No failure as the run stops: one whose charge point is closing then may be
            # counted in the stats yet have its trace handed in after the folder is written.
            # 100 Heartbeats (some 10 CALLERRORs) take 2.5 s of the 6 s run.
            deadline = time.monotonic() + 40
            while csms.stats["Heartbeat"] < 100 and time.monotonic() < deadline:
                time.sleep(0.05)
            call_in(loop, csms.clear_faults)
            finished(proc, timeout=60)
    assert proc.returncode == 1, proc.stderr[-3000:]  # failures: the CALLERRORs
    (run,) = tmp_path.iterdir()
    summary = json.loads((run / "summary.json").read_text())
    (heartbeats,) = [r for r in summary["requests"] if r["name"] == "Heartbeat"]
    assert heartbeats["failures"] > 0

    # Each failure has its row, and only the charge points that failed have a trace.
    rows = index_rows(run / "traces")
    assert len(rows) == heartbeats["failures"]
    assert {row["failure"] for row in rows} == {"OCPP Heartbeat: CALLERROR InternalError"}
    traced = {row["charge_point"] for row in rows}
    assert {path.stem for path in (run / "traces").glob("*.jsonl")} == traced
    assert set(summary["traced"]) == traced
    assert {cp[:5] for cp in traced} <= {"CP-0-", "CP-1-"}

    for cp in traced:
        written = lines(run / "traces" / f"{cp}.jsonl")
        frames = [line for line in written if "frame" in line]
        numbers = [line["n"] for line in frames]
        assert numbers == sorted(set(numbers)), cp  # in order, each once
        # The CALLERROR that failed, as it came, after the Heartbeat it answers.
        messages = [(line["dir"], json.loads(line["frame"])) for line in frames]
        errors = [m for d, m in messages if d == RECEIVED and m[0] == 4]
        assert errors and all(m[2] == "InternalError" for m in errors), cp
        sent = {m[1]: m[2] for d, m in messages if d == SENT and m[0] == 2}
        assert any(sent.get(m[1]) == "Heartbeat" for m in errors), cp
        assert sum("failed" in line for line in written) == sum(
            r["charge_point"] == cp for r in rows
        )


def test_the_charge_points_tab_s_rows_name_the_traced_charge_points() -> None:
    # Through tab_rows: swarm.locust.webui would load Locust, and gevent's patching, here.
    traced = {"CP-0-000003": 2, "CP-1-000001": 1}
    assert tab_rows(traced) == [
        {"what": "traced", "item": "CP-0-000003", "count": 2},
        {"what": "traced", "item": "CP-1-000001", "count": 1},
    ]
