"""The swarm inside Locust: as a library (tests/locust_run.py) and through the ``locust`` CLI.

Importing locust monkey-patches a process with gevent, and the other tests run plain asyncio in
this process, so every Locust run here is a subprocess. CSMSs that a test must inspect (the
embedded one, a scripted one) run in this process instead, in their own asyncio loop on a
background thread. Every child is bounded by a timeout and, once it exits, every process it
started is checked to be gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest

from swarm.csms import CONNECTIONS_TOTAL, Csms, CsmsConfig
from tests.scripted import (
    Script,
    answer_everything,
    call_in,
    free_port,
    in_thread,
    scripted_csms,
)

ROOT = Path(__file__).resolve().parent.parent
LOCUST = str(Path(sys.executable).parent / "locust")
LOCUST_RUN = [sys.executable, "-m", "tests.locust_run"]
UVLOOP_MISSING = "uvloop is not installed"


# Children: bounded, watched, and checked to leave nothing behind.


class Child:
    """A subprocess in its own session, output in files, descendants recorded while it runs."""

    def __init__(self, command: list[str], *, env: dict[str, str] | None = None) -> None:
        self.command = command
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._err = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        base = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**base, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,  # so a timeout can kill the whole group
        )
        self.started = time.monotonic()
        # pid -> (create time, command line) of every descendant seen while it ran
        self.descendants: dict[int, tuple[float, str]] = {}
        self.returncode: int | None = None
        self.elapsed = 0.0
        self.stdout = ""
        self.stderr = ""

    def running(self) -> bool:
        """Record its descendants; whether it still runs."""
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    # Read again each time: a child seen between its fork and its exec still
                    # shows its parent's command line; one that has exited (a zombie) none,
                    # and the one read before is kept.
                    cmdline = " ".join(child.cmdline())
                    if cmdline or child.pid not in self.descendants:
                        self.descendants[child.pid] = (child.create_time(), cmdline)
        return self.process.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait for it to exit by itself; on timeout kill its group and fail the test."""
        deadline = self.started + timeout
        while self.running():
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(
                    f"{self.command} still ran after {timeout} s; stderr:\n{self.read()[1][-3000:]}"
                )
            time.sleep(0.05)
        self.elapsed = time.monotonic() - self.started
        self.returncode = self.process.returncode
        self.stdout, self.stderr = self.read()
        return self.returncode

    def read(self) -> tuple[str, str]:
        texts = []
        for file in (self._out, self._err):
            file.seek(0)
            texts.append(file.read().decode(errors="replace"))
        return texts[0], texts[1]

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(5)

    def leftovers(self) -> list[str]:
        """Descendants seen while it ran that are still alive (zombies count as gone)."""
        alive = []
        for pid, (created, cmdline) in self.descendants.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                process = psutil.Process(pid)
                if process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{pid}: {cmdline}")
        return alive

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self._out.close()
        self._err.close()


@contextlib.contextmanager
def child(command: list[str], *, env: dict[str, str] | None = None) -> Iterator[Child]:
    proc = Child(command, env=env)
    try:
        yield proc
    finally:
        proc.close()


LEFTOVER_GRACE = 5.0
"""Seconds a descendant may take to exit after ``proc`` did: a worker of ``--processes`` quits
once it sees its parent gone (about half a second here)."""


def finished(proc: Child, timeout: float) -> Child:
    """Wait for ``proc``; check it left no process behind."""
    proc.wait(timeout)
    deadline = time.monotonic() + LEFTOVER_GRACE
    while proc.leftovers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.leftovers() == [], f"processes left behind by {proc.command}"
    return proc


def locust_run(
    *args: str | float, seconds: float, env: dict[str, str] | None = None
) -> tuple[Child, dict[str, Any]]:
    """Run tests/locust_run.py to the end; return the child and its JSON line."""
    command = [*LOCUST_RUN, "--seconds", str(seconds), *map(str, args)]
    with child(command, env=env) as proc:
        # Its own watchdog ends it at seconds + 25 s.
        finished(proc, timeout=seconds + 30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{proc.stderr[-3000:]}"
    return proc, json.loads(lines[-1])


def steady_run(
    users: int, seconds: float, interval: float, env: dict[str, str] | None = None
) -> tuple[Child, dict[str, Any]]:
    """All users started at once; Heartbeat and Authorize every ``interval``; no --host."""
    return locust_run(
        "--users",
        users,
        "--spawn-rate",
        users,
        "--heartbeat-interval",
        interval,
        "--authorize-interval",
        interval,
        seconds=seconds,
        env=env,
    )


def heartbeat_bounds(users: int, seconds: float, interval: float) -> tuple[float, float]:
    """Bounds on the Heartbeats a fleet sends in a run of ``seconds`` (spawned at once).

    Every charge point boots within about 1 s of the start, beats first at a random phase in
    [0, interval) and then every ``interval``: in the run it sends about
    ``(seconds - 1) / interval`` to ``seconds / interval + 1`` beats. The lower bound takes 3/4
    of the least, for a slow, shared machine; the upper adds one beat each for the moments
    between the end of the run and the engine's stop.
    """
    low = 0.75 * users * (seconds - 1) / interval
    high = users * (seconds / interval + 2)
    return low, high


def assert_clean_run(result: dict[str, Any], users: int, seconds: float, interval: float) -> None:
    """Every charge point connected and booted once, heartbeated and authorized, no error."""
    assert result["errors"] == [], result["errors"]
    stats = result["stats"]
    assert stats["OCPP BootNotification"]["requests"] == users
    assert stats["WebSocket connect"]["requests"] == users
    for entry in stats.values():
        assert entry["failures"] == 0, stats
    low, high = heartbeat_bounds(users, seconds, interval)
    assert low <= stats["OCPP Heartbeat"]["requests"] <= high, (low, high, stats)
    assert stats["OCPP Authorize"]["requests"] > 0
    # One for the charge point (connector 0) and one for its connector, after the boot.
    assert stats["OCPP StatusNotification"]["requests"] == 2 * users
    assert set(stats) == {
        "OCPP BootNotification",
        "OCPP StatusNotification",
        "OCPP Heartbeat",
        "OCPP Authorize",
        "WebSocket connect",
    }
    assert result["states"]["accepted"] == users, result["states"]
    assert sum(result["states"].values()) == users, result["states"]
    assert result["versions"] == {"1.6": users}, result["versions"]
    assert re.fullmatch(r"ws://127\.0\.0\.1:\d+", result["host"]), result["host"]


# a. The library run against the embedded CSMS.


@pytest.mark.timeout(60)
def test_library_run_against_the_embedded_csms() -> None:
    users, seconds, interval = 50, 6.0, 0.5
    # 50 users at 50/s spawn in under 1 s; each beats every 0.5 s for ~5-6 s:
    # 50 * 5 / 0.5 = 500 to 50 * (6 / 0.5 + 1) = 650 Heartbeats; accepted: 375 (3/4 of 500)
    # to 700 (650 + one more beat each around the stop), see heartbeat_bounds.
    proc, result = steady_run(users, seconds, interval)
    assert_clean_run(result, users, seconds, interval)
    # The embedded CSMS was this run's child, and is gone with it.
    csms_pid = result["csms_pid"]
    assert csms_pid is not None
    assert csms_pid in proc.descendants, proc.descendants
    assert "swarm.csms" in proc.descendants[csms_pid][1]
    csms_children = [pid for pid, (_, cmd) in proc.descendants.items() if "swarm.csms" in cmd]
    assert csms_children == [csms_pid]
    assert proc.leftovers() == []
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("with_task", [False, True], ids=["hold only", "a task of its own"])
def test_a_user_runs_a_greenlet_only_for_tasks_of_its_own(with_task: bool) -> None:
    # A user whose only task is hold runs none: Locust counts it all the same, and a ramp-down
    # stops its charge point as it stops a user with a greenlet.
    flags = ["--with-task"] if with_task else []
    proc, result = locust_run("--users", 6, "--spawn-rate", 100, "--down-to", 2, *flags, seconds=3)
    assert result["states"]["accepted"] == 6, result["states"]
    assert result["users"] == {
        "users": 6,
        "running greenlets": 6 if with_task else 0,
        "users after": 2,
        "charge points after": 2,
    }
    assert result["errors"] == [], result["errors"]
    if with_task:
        assert result["stats"]["OCPP DataTransfer"]["requests"] >= 6
    assert "Traceback" not in proc.stderr, proc.stderr


# b. Charge point ids are unique across the worker processes of one master.


@pytest.mark.timeout(60)
def test_ids_are_unique_across_two_worker_processes() -> None:
    users = 40
    with in_thread(lambda: Csms(CsmsConfig(port=0))) as (csms, loop):
        command = [
            LOCUST,
            "-f",
            "locustfile.py",
            "--headless",
            "--processes",
            "2",
            # Its own master port: another Locust master on this machine would take its workers.
            "--master-bind-port",
            str(master_port := free_port()),
            "--master-port",
            str(master_port),
            "--results-dir",
            "",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            "6s",
            "--host",
            csms.url,
            "--heartbeat-interval",
            "1",
            "--only-summary",
        ]
        with child(command) as proc:
            ids: list[str] = []
            deadline = time.monotonic() + 15
            while proc.running() and time.monotonic() < deadline and len(ids) < users:
                time.sleep(0.1)
                ids = call_in(loop, lambda: sorted(csms.connections))
            finished(proc, timeout=30)
        stats = call_in(loop, lambda: dict(csms.stats))

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(ids) == users, ids
    assert len(set(ids)) == users
    assert all(re.fullmatch(r"CP-[01]-\d{6}", i) for i in ids), ids
    by_worker = {p: sorted(int(i[-6:]) for i in ids if i.startswith(p)) for p in ("CP-0-", "CP-1-")}
    assert by_worker["CP-0-"] and by_worker["CP-1-"], by_worker
    # Each worker numbers its own charge points 1, 2, 3, ...
    for numbers in by_worker.values():
        assert numbers == list(range(1, len(numbers) + 1)), by_worker
    # Each id connected and booted once: nothing collided or reconnected.
    assert stats[CONNECTIONS_TOTAL] == users
    assert stats["BootNotification"] == users
    # The master's summary merges both workers' stats.
    output = proc.stdout + proc.stderr
    boot = re.search(r"^OCPP\s+BootNotification\s+(\d+)\s+(\d+)\(", output, re.MULTILINE)
    assert boot, output[-3000:]
    assert (int(boot[1]), int(boot[2])) == (users, 0)


# c. The fallback event loop, where uvloop is missing (as on Windows).


@pytest.mark.timeout(60)
def test_library_run_without_uvloop() -> None:
    users, seconds, interval = 20, 4.0, 0.5
    # 20 * 3 / 0.5 = 120 to 20 * (4 / 0.5 + 1) = 180 Heartbeats; accepted: 90 to 200.
    proc, result = steady_run(users, seconds, interval, env={"OCPP_SWARM_NO_UVLOOP": "1"})
    assert_clean_run(result, users, seconds, interval)
    assert proc.stderr.count(UVLOOP_MISSING) == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


# d. Bad input is refused with one clear line.


@pytest.mark.timeout(60)
def test_bad_input_is_refused_with_one_clear_line() -> None:
    base = [LOCUST, "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s", "--results-dir", ""]
    with (
        child([*base, "--host", "http://localhost:1"]) as bad_host,
        child([*base, "--heartbeat-interval", "-1"]) as bad_interval,
        child([*base, "-u", "3", "-r", "3", "--id-tags", "@/nonexistent"]) as bad_tags,
    ):
        for proc in (bad_host, bad_interval, bad_tags):
            finished(proc, timeout=25)

    # Refused at startup, before any CSMS or user starts.
    assert bad_host.returncode == 2, bad_host.stderr
    lines = [line for line in bad_host.stderr.splitlines() if "ocpp-swarm:" in line]
    assert len(lines) == 1, bad_host.stderr
    assert "ocpp-swarm: --host must be a ws:// or wss:// URL" in lines[0]
    assert "Traceback" not in bad_host.stderr
    assert bad_host.descendants == {}, "no embedded CSMS for a bad --host"

    assert bad_interval.returncode == 2, bad_interval.stderr
    assert "error: argument --heartbeat-interval:" in bad_interval.stderr
    assert "seconds must be a finite number, 0 or more" in bad_interval.stderr
    assert "Traceback" not in bad_interval.stderr

    assert bad_tags.returncode == 2, bad_tags.stderr
    lines = [line for line in bad_tags.stderr.splitlines() if "ocpp-swarm:" in line]
    assert lines == [lines[0]] and "--id-tags: cannot read /nonexistent" in lines[0], lines
    assert "Traceback" not in bad_tags.stderr


# e. A CSMS that answers every Heartbeat with a CALLERROR.


async def all_closed(script: Script, connections: int) -> list[int | None]:
    await script.wait_for(lambda: len(script.close_codes) >= connections, timeout=5)
    return list(script.close_codes)


@contextlib.asynccontextmanager
async def failing_csms() -> AsyncIterator[tuple[str, Script]]:
    async with scripted_csms(partial(answer_everything, fail={"Heartbeat"})) as served:
        yield served


@pytest.mark.timeout(60)
def test_callerrors_are_locust_failures() -> None:
    users, seconds = 10, 4.0
    with in_thread(failing_csms) as ((url, script), loop):
        _, result = locust_run(
            "--host",
            url,
            "--users",
            users,
            "--spawn-rate",
            users,
            "--heartbeat-interval",
            0.3,
            seconds=seconds,
        )
        heartbeats_sent = len(script.calls("Heartbeat"))
        close_codes = asyncio.run_coroutine_threadsafe(all_closed(script, users), loop).result(10)

    stats = result["stats"]
    assert result["host"] == url
    assert result["csms_pid"] is None
    assert stats["OCPP BootNotification"]["failures"] == 0
    assert stats["OCPP BootNotification"]["requests"] == users
    heartbeat = stats["OCPP Heartbeat"]
    assert heartbeat["failures"] > 0
    assert heartbeat["failures"] == heartbeat["requests"] <= heartbeats_sent
    errors = [(e["method"], e["name"], e["error"]) for e in result["errors"]]
    assert ("OCPP", "Heartbeat", "CALLERROR InternalError") in errors, errors
    assert all(name == "Heartbeat" for _, name, _ in errors), errors
    # A CALLERROR is an answer: the connections stay up and the charge points booted.
    assert result["states"]["accepted"] == users, result["states"]
    assert stats["WebSocket connect"]["requests"] == users
    # At quit every charge point closed its WebSocket with a normal closure.
    assert close_codes == [1000] * users, close_codes


# f. Charging sessions under Locust, against the embedded CSMS (it validates every payload).


@pytest.mark.timeout(60)
def test_charging_sessions_under_locust() -> None:
    users = 20
    _, result = locust_run(
        "--users",
        users,
        "--spawn-rate",
        users,
        "--connectors",
        2,
        "--session-interval",
        0.5,
        "--session-duration",
        1,
        "--meter-interval",
        0.2,
        "--authorize-interval",
        0,
        seconds=5.0,
    )
    stats = result["stats"]
    assert result["errors"] == [], result["errors"]
    for action in ("Authorize", "StartTransaction", "MeterValues", "StopTransaction"):
        assert stats[f"OCPP {action}"]["requests"] > users, (action, stats)
    # Every session that stopped had started; some may still be running at the end.
    assert stats["OCPP StartTransaction"]["requests"] >= stats["OCPP StopTransaction"]["requests"]


# e. Connections spread over several source addresses.


@pytest.mark.timeout(60)
def test_charge_points_connect_from_the_source_addresses_in_turn() -> None:
    users = 12
    with in_thread(lambda: Csms(CsmsConfig(port=0))) as (csms, loop):
        command = [
            LOCUST, "-f", "locustfile.py", "--headless", "--only-summary", "--results-dir", "",
            "-u", str(users), "-r", str(users), "-t", "4s", "--host", csms.url,
            "--source-addresses", "127.0.0.1,127.0.0.2,127.0.0.3",
        ]  # fmt: skip
        with child(command) as proc:
            sources: dict[str, str] = {}
            deadline = time.monotonic() + 15
            while proc.running() and time.monotonic() < deadline and len(sources) < users:
                time.sleep(0.1)
                sources = call_in(
                    loop,
                    lambda: {
                        cp: connection.websocket.remote_address[0]
                        for cp, connection in csms.connections.items()
                    },
                )
            finished(proc, timeout=30)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert Counter(sources.values()) == {"127.0.0.1": 4, "127.0.0.2": 4, "127.0.0.3": 4}, sources
    assert "room for" in proc.stderr and "x 3 source addresses" in proc.stderr, proc.stderr[-2000:]
