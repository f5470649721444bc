"""A run that ends well whatever happens: Ctrl-C and SIGTERM mid-run (to the process, to its
group, to a master), a worker that dies, a master that dies.

Each run is the real ``locust`` CLI in a subprocess of its own session (importing locust here
would monkey-patch this process), bounded by a timeout that kills its group, and checked to
leave no process behind. CSMSs that a test inspects run in this process, on a thread.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest

from swarm.report.fleet import REPORT_KEY, FleetStatus
from tests.scripted import Script, answer_everything, call_in, free_port, in_thread, scripted_csms
from tests.test_locust import LOCUST, Child, child, finished
from tests.unpatched import unpatched

with unpatched():
    from locust.runners import STATE_MISSING, STATE_RUNNING, WorkerNode

    from swarm.locust.workers import Workers

RUN_FOLDER = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_exceptions.csv",
    "report.html",
    "fleet.csv",
    "timeline.csv",
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


def csms_get(proc: Child, path: str) -> dict[str, Any]:
    """A GET of the embedded CSMS's control API (``/stats``, ...); empty before it answers."""
    match = CONTROL_URL.search(proc.read()[1])
    if match is None:
        return {}
    try:
        with urllib.request.urlopen(f"{match[1]}{path}", timeout=2) as response:
            return json.loads(response.read())
    except OSError:
        return {}


def steady_run(results: Path, *extra: str) -> list[str]:
    """``locust`` running scenarios/steady.py headless: USERS charge points, a beat every
    0.5 s, for up to a minute, the run's folder under ``results``."""
    return [
        LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
        "-u", str(USERS), "-r", str(USERS), "-t", "60s",
        "--heartbeat-interval", "0.5", "--results-dir", str(results), *extra,
    ]  # fmt: skip


def heartbeating(proc: Child, loop: Any, script: Script, beats: int) -> None:
    """Wait until an in-thread scripted CSMS has had ``beats`` Heartbeats from the run."""
    wait_until(
        proc,
        lambda: len(call_in(loop, lambda: script.calls("Heartbeat"))) >= beats,
        seconds=20,
        what="heartbeating",
    )


def signal_mid_run(proc: Child, signum: signal.Signals, *, group: bool = False) -> None:
    """Send ``signum`` to the run's process, or to its whole group as a terminal's Ctrl-C does."""
    # Python raises KeyboardInterrupt wherever the main thread is: give the startup a moment to
    # settle, as a person pressing Ctrl-C would (see tests/test_webui.py).
    time.sleep(0.3)
    if group:
        os.killpg(proc.process.pid, signum)
    else:
        proc.process.send_signal(signum)


# 0. The master's record of its workers, with a stand-in for Locust's MasterRunner.


class Runner:
    def __init__(self, *ids: str) -> None:
        self.clients = {id: WorkerNode(id, state=STATE_RUNNING) for id in ids}

    def get_worker_index(self, client_id: str) -> int:
        return sorted(self.clients).index(client_id)


def report(accepted: int, users: int) -> dict[str, Any]:
    """A worker's stats report, as far as the swarm reads it."""
    fleet = FleetStatus(states={**FleetStatus().states, "accepted": accepted, "offline": 1})
    return {REPORT_KEY: fleet.as_dict(), "user_count": users, "user_classes_count": {}}


def test_a_missing_worker_is_recorded_once_and_leaves_the_fleet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner("w-a", "w-b")
    workers = Workers(runner)  # type: ignore[arg-type]
    workers.take("w-a", report(accepted=4, users=5))
    workers.take("w-b", report(accepted=6, users=7))
    workers.check()
    assert workers.lost == []
    assert workers.fleet().states["accepted"] == 10

    # Locust marks it missing and forgets its users; its last report still says what it held.
    runner.clients["w-b"].state = STATE_MISSING
    runner.clients["w-b"].user_classes_count = {}
    with caplog.at_level("ERROR", logger="swarm.locust.user"):
        workers.check()
        workers.check()
    assert workers.lost == [
        {
            "id": "w-b",
            "index": 1,
            "charge_points": 7,
            "users": 7,
            "lost_at": workers.lost[0]["lost_at"],
            "back_at": None,
        }
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "ocpp-swarm: lost worker w-b (index 1): no heartbeat; it held 7 charge points"
        " (7 users) at its last report; 1 worker left"
    ]
    assert workers.fleet().states["accepted"] == 4
    assert workers.fleet().states["offline"] == 1

    # Heartbeats again: back in the fleet; the loss stays on record.
    runner.clients["w-b"].state = STATE_RUNNING
    workers.check()
    assert len(workers.lost) == 1 and workers.lost[0]["back_at"] is not None
    assert workers.fleet().states["accepted"] == 10
    # A worker that stopped (Locust forgets it) is no loss, and no longer counted.
    del runner.clients["w-a"]
    workers.check()
    assert len(workers.lost) == 1
    assert workers.fleet().states["accepted"] == 6


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
        command = steady_run(tmp_path, "--host", url)
        with child(command) as proc:
            # Booted, and heartbeating for a while: Locust has stats to write.
            heartbeating(proc, loop, script, 3 * USERS)
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
    command = steady_run(tmp_path)
    with child(command) as proc:
        # Booted, and heartbeating for a while, as the embedded CSMS's control API tells.
        wait_until(
            proc, lambda: csms_get(proc, "/stats").get("Heartbeat", 0) >= 3 * USERS, 20, "busy"
        )
        signal_mid_run(proc, signum, group=True)
        finished(proc, timeout=time.monotonic() - proc.started + 20)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert any("swarm.csms" in cmd for _, cmd in proc.descendants.values()), proc.descendants
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    assert requests(summary, "OCPP", "BootNotification") == (USERS, 0)
    assert requests(summary, "WebSocket", "connection lost") == (0, 0), summary["requests"]
    assert summary["fail_ratio"] == 0, summary["requests"]


# 2b. Ctrl-C twice (impatient users, CI runners that forward it), or SIGTERM then SIGINT: the
#     run still ends with its whole folder and no traceback; a third Ctrl-C aborts, and says so.

CLOSING = "ocpp-swarm: closing the charge points and writing the run's folder"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "first", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT-SIGINT", "SIGTERM-SIGINT"]
)
def test_a_second_signal_while_the_run_ends_still_writes_its_whole_folder(
    first: signal.Signals, tmp_path: Path
) -> None:
    command = steady_run(tmp_path)
    with child(command) as proc:
        wait_until(
            proc, lambda: csms_get(proc, "/stats").get("Heartbeat", 0) >= 2 * USERS, 20, "busy"
        )
        signal_mid_run(proc, first)
        wait_until(proc, lambda: CLOSING in proc.read()[1], 10, "ending")
        proc.process.send_signal(signal.SIGINT)
        finished(proc, timeout=time.monotonic() - proc.started + 20)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    assert requests(summary, "OCPP", "BootNotification") == (USERS, 0)
    # Its final states are the fleet's as the signal came, not after its connections closed.
    assert summary["fleet"]["final"]["states"]["accepted"] == USERS, summary["fleet"]


@pytest.mark.timeout(60)
def test_a_third_ctrl_c_aborts_and_says_the_folder_is_incomplete(tmp_path: Path) -> None:
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), loop):
        command = steady_run(tmp_path, "--host", url)
        with child(command) as proc:
            heartbeating(proc, loop, script, 2 * USERS)
            # A CSMS that hangs: the charge points' closing handshakes wait for it.
            loop.call_soon_threadsafe(time.sleep, 8)
            signal_mid_run(proc, signal.SIGINT)
            wait_until(proc, lambda: CLOSING in proc.read()[1], 10, "ending")
            for _ in range(2):
                time.sleep(0.5)  # two presses, not one the kernel merges
                proc.process.send_signal(signal.SIGINT)
            finished(proc, timeout=time.monotonic() - proc.started + 10)

    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "Ctrl-C once more aborts, leaving the folder incomplete" in proc.stderr
    assert re.search(r"ocpp-swarm: aborted; the run's folder \S+/ is incomplete", proc.stderr)


# 3. A worker that dies mid-run: the master says which, the run goes on with the other one.


def workers_of(proc: Child) -> list[psutil.Process]:
    """The ``--processes`` workers of a master: its children that run Locust, not the CSMS."""
    master = psutil.Process(proc.process.pid)
    return [
        worker
        for worker in master.children()
        if "locust" in " ".join(worker.cmdline()) and "swarm.csms" not in worker.cmdline()
    ]


@pytest.mark.timeout(60)
def test_a_worker_killed_mid_run_is_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    users = 20
    command = [
        LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
        "--processes", "2",
        # Its own master port: another Locust master on this machine would take its workers.
        "--master-bind-port", str(port := free_port()), "--master-port", str(port),
        "-u", str(users), "-r", str(users), "-t", "25s",
        "--heartbeat-interval", "1", "--results-dir", str(tmp_path),
    ]  # fmt: skip
    with child(command) as proc:
        wait_until(
            proc,
            lambda: csms_get(proc, "/charge-points").get("count") == users,
            seconds=20,
            what="all connected",
        )
        # The workers report their fleets every 3 s: let each report its charge points booted.
        time.sleep(3.5)
        workers = workers_of(proc)
        assert len(workers) == 2, [w.cmdline() for w in workers]
        workers[0].kill()
        killed_at = time.monotonic() - proc.started
        finished(proc, timeout=50)

    stderr = proc.stderr
    assert "Traceback" not in stderr, stderr[-3000:]
    # The run went on to its -t, past the kill and Locust's heartbeat timeout.
    assert proc.elapsed >= 25, (proc.elapsed, killed_at)
    assert killed_at + 5 < 25, killed_at  # the kill, then Locust's heartbeat timeout, mid-run
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    lost = summary["workers_lost"]
    assert len(lost) == 1, lost
    assert lost[0]["charge_points"] == lost[0]["users"] == users // 2, lost
    assert lost[0]["index"] in (0, 1) and lost[0]["back_at"] is None, lost
    # One clear line on the master names it, with its charge points.
    lines = [line for line in stderr.splitlines() if "ocpp-swarm: lost worker" in line]
    assert len(lines) == 1, stderr[-3000:]
    assert f"lost worker {lost[0]['id']} (index {lost[0]['index']})" in lines[0], lines
    assert f"it held {users // 2} charge points ({users // 2} users)" in lines[0], lines
    assert "1 worker left" in lines[0], lines
    # The stats the dead worker reported stay: every charge point's boot is counted.
    assert requests(summary, "OCPP", "BootNotification") == (users, 0)
    # The fleet no longer counts it: half the fleet once it was lost, to the end.
    assert summary["fleet"]["peak"]["accepted"] == users
    assert summary["fleet"]["final"]["states"]["accepted"] == users // 2, summary["fleet"]
    with (run_folder(tmp_path) / "fleet.csv").open(newline="") as file:
        accepted = [int(row["accepted"]) for row in csv.DictReader(file) if row["users"] != "0"]
    after = accepted[accepted.index(users) :]
    assert users // 2 in after and after[after.index(users // 2) :].count(users) == 0, accepted
    # The surviving worker went on heartbeating: its rows of half the fleet run to the end.
    assert after[-3:] == [users // 2] * 3, accepted


@pytest.mark.timeout(60)
def test_workers_whose_master_is_killed_quit_and_close_their_connections() -> None:
    users = 10
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), loop):
        command = [
            LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
            "--processes", "2",
            "--master-bind-port", str(port := free_port()), "--master-port", str(port),
            "-u", str(users), "-r", str(users), "-t", "60s", "--host", url,
            "--heartbeat-interval", "1", "--results-dir", "",
        ]  # fmt: skip
        with child(command) as proc:
            wait_until(
                proc,
                lambda: len(call_in(loop, lambda: script.calls("BootNotification"))) >= users,
                seconds=20,
                what="booted",
            )
            workers = workers_of(proc)
            assert len(workers) == 2, [w.cmdline() for w in workers]
            proc.process.kill()  # the master only: SIGKILL
            killed = time.monotonic()
            _, alive = psutil.wait_procs(workers, timeout=15)
            quit_in = time.monotonic() - killed
            for worker in alive:
                worker.kill()
            stderr = proc.read()[1]
        close_codes = asyncio.run_coroutine_threadsafe(closed(script, users), loop).result(10)

    # Within a few seconds, not at Locust's 60 s master heartbeat timeout.
    assert alive == [] and quit_in < 10, (alive, quit_in, stderr[-3000:])
    assert close_codes == [1000] * users, close_codes
    lines = [line for line in stderr.splitlines() if "the process that started" in line]
    assert len(lines) == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.timeout(60)
def test_sigterm_to_a_master_stops_its_workers_and_writes_the_run_folder(tmp_path: Path) -> None:
    users = 10
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), loop):
        command = [
            LOCUST, "-f", "scenarios/steady.py", "--headless", "--only-summary",
            "--processes", "2",
            "--master-bind-port", str(port := free_port()), "--master-port", str(port),
            "-u", str(users), "-r", str(users), "-t", "60s", "--host", url,
            "--heartbeat-interval", "0.5", "--results-dir", str(tmp_path),
        ]  # fmt: skip
        with child(command) as proc:
            heartbeating(proc, loop, script, 4 * users)
            before = len(call_in(loop, lambda: script.calls("Heartbeat")))
            signal_mid_run(proc, signal.SIGTERM)  # the master only, as `docker stop` would
            finished(proc, timeout=time.monotonic() - proc.started + 20)
        close_codes = asyncio.run_coroutine_threadsafe(closed(script, users), loop).result(10)
        sent = len(call_in(loop, lambda: script.calls("Heartbeat")))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    # The master told its workers to quit: they closed every connection normally.
    assert close_codes == [1000] * users, close_codes
    summary = json.loads((run_folder(tmp_path) / "summary.json").read_text())
    assert summary["workers_lost"] == []
    assert requests(summary, "OCPP", "BootNotification") == (users, 0)
    # The workers' last stats came in before the folder was written (they report every 3 s
    # otherwise): every Heartbeat answered before the signal is counted.
    heartbeats, failures = requests(summary, "OCPP", "Heartbeat")
    assert before <= heartbeats <= sent, (before, heartbeats, sent)
    # One shutdown's output: Locust shuts down twice on a master's SIGTERM, the second waits.
    assert proc.stderr.count("results in") == 1, proc.stderr[-3000:]
    assert failures == 0
