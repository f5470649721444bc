"""A run that ends well whatever happens: Ctrl-C and SIGTERM mid-run, a worker that dies.

Each run is the real ``locust`` CLI in a subprocess of its own session (importing locust here
would monkey-patch this process), bounded by a timeout that kills its group, and checked to
leave no process behind. CSMSs that a test inspects run in this process, on a thread.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.scripted import Script, answer_everything, call_in, in_thread, scripted_csms
from tests.test_locust import LOCUST, Child, child, finished

RUN_FOLDER = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_exceptions.csv",
    "report.html",
    "fleet.csv",
    "summary.json",
    "latency.png",
    "fleet.png",
)


def run_folder(results_dir: Path) -> Path:
    """The one run folder under ``results_dir``, checked to hold every file."""
    folders = [path for path in results_dir.iterdir() if path.is_dir()]
    assert len(folders) == 1, folders
    folder = folders[0]
    present = sorted(path.name for path in folder.iterdir())
    for name in RUN_FOLDER:
        assert (folder / name).is_file() and (folder / name).stat().st_size > 0, (name, present)
    assert "<html" in (folder / "report.html").read_text().lower()
    return folder


def requests(summary: dict[str, Any], request_type: str, name: str) -> tuple[int, int]:
    """Requests and failures of one type and name in summary.json."""
    for row in summary["requests"]:
        if row["type"] == request_type and row["name"] == name:
            return row["requests"], row["failures"]
    return 0, 0


def wait_until(proc: Child, predicate: Any, seconds: float, what: str) -> None:
    """Poll ``predicate()`` while ``proc`` runs; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.running(), f"locust exited early:\n{proc.read()[1][-3000:]}"
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {seconds} s:\n{proc.read()[1][-3000:]}")
        time.sleep(0.1)


CONTROL_URL = re.compile(r"control API: (http://[\d.]+:\d+)")


def csms_stats(proc: Child) -> dict[str, int]:
    """The embedded CSMS's counters (its control API's ``GET /stats``); none before it runs."""
    match = CONTROL_URL.search(proc.read()[1])
    if match is None:
        return {}
    try:
        with urllib.request.urlopen(f"{match[1]}/stats", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def signal_mid_run(proc: Child, signum: signal.Signals, *, group: bool = False) -> None:
    """Send ``signum`` to the run's process, or to its whole group as a terminal's Ctrl-C does."""
    # Python raises KeyboardInterrupt wherever the main thread is: give the startup a moment to
    # settle, as a person pressing Ctrl-C would (see tests/test_webui.py).
    time.sleep(0.3)
    if group:
        os.killpg(proc.process.pid, signum)
    else:
        proc.process.send_signal(signum)


# 1. Ctrl-C (SIGINT) and SIGTERM mid-run, against a CSMS that records how connections close.

USERS = 10


async def closed(script: Script, connections: int) -> list[int | None]:
    await script.wait_for(lambda: len(script.close_codes) >= connections, timeout=5)
    return list(script.close_codes)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_closes_every_connection_and_writes_the_run_folder(
    signum: signal.Signals, tmp_path: Path
) -> None:
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), loop):
        command = [
            LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
            "-u", str(USERS), "-r", str(USERS), "-t", "60s", "--host", url,
            "--heartbeat-interval", "0.5", "--results-dir", str(tmp_path),
        ]  # fmt: skip
        with child(command) as proc:
            # Booted, and heartbeating for a while: Locust has stats to write.
            wait_until(
                proc,
                lambda: len(call_in(loop, lambda: script.calls("Heartbeat"))) >= 3 * USERS,
                seconds=20,
                what="heartbeating",
            )
            before = len(call_in(loop, lambda: script.calls("Heartbeat")))
            signal_mid_run(proc, signum)
            finished(proc, timeout=time.monotonic() - proc.started + 20)
        close_codes = asyncio.run_coroutine_threadsafe(closed(script, USERS), loop).result(10)
        sent = len(call_in(loop, lambda: script.calls("Heartbeat")))

    stderr = proc.stderr
    assert proc.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    # Every charge point closed its WebSocket with a normal closure, none was just dropped.
    assert close_codes == [1000] * USERS, close_codes
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    assert summary["seconds"] < 30, summary["seconds"]  # it ended on the signal, not at -t
    assert requests(summary, "OCPP", "BootNotification") == (USERS, 0)
    # The requests counted so far: all those the CSMS answered before the signal, at least.
    heartbeats, failures = requests(summary, "OCPP", "Heartbeat")
    assert before <= heartbeats <= sent, (before, heartbeats, sent)
    assert failures == 0
    assert summary["fail_ratio"] == 0, summary["requests"]
    assert summary["fleet"]["peak"]["accepted"] == USERS


# 2. Ctrl-C in a terminal signals the whole process group: the embedded CSMS must outlast the
#    swarm, or it closes the connections first and every charge point counts a lost one.


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_group_ends_a_run_on_the_embedded_csms_cleanly(
    signum: signal.Signals, tmp_path: Path
) -> None:
    command = [
        LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
        "-u", str(USERS), "-r", str(USERS), "-t", "60s",
        "--heartbeat-interval", "0.5", "--results-dir", str(tmp_path),
    ]  # fmt: skip
    with child(command) as proc:
        # Booted, and heartbeating for a while, as the embedded CSMS's control API tells.
        wait_until(proc, lambda: csms_stats(proc).get("Heartbeat", 0) >= 3 * USERS, 20, "busy")
        signal_mid_run(proc, signum, group=True)
        finished(proc, timeout=time.monotonic() - proc.started + 20)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert any("swarm.csms" in cmd for _, cmd in proc.descendants.values()), proc.descendants
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    assert requests(summary, "OCPP", "BootNotification") == (USERS, 0)
    assert requests(summary, "WebSocket", "connection lost") == (0, 0), summary["requests"]
    assert summary["fail_ratio"] == 0, summary["requests"]
