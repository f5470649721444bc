"""The scenarios through the ``locust`` CLI, headless against the embedded CSMS, and what their
run folders hold: summary.json, fleet.csv, timeline.csv, the pictures. Thresholds, every
file of a run folder and runs over several processes: tests/test_run_folder.py.

Importing locust monkey-patches a process with gevent, so every run is a subprocess. They are
short (5 to 10 s of load, 20 to 50 charge points) and start together at the first test that
needs one (a module-scoped fixture), a few at a time: the file takes about as long as its
longest runs, not their sum. Each run has a timeout, runs in its own process group, and is
checked to leave no process behind (the embedded CSMS and ``--processes`` workers included).
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from swarm.report import plots
from tests.scripted import free_port

ROOT = Path(__file__).resolve().parent.parent
LOCUST = str(Path(sys.executable).parent / "locust")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PARALLEL = 4
"""Runs at once: they mostly wait on their -t; more would fight over 2 cores at startup."""
RUNS_LOCK = Path(tempfile.gettempdir()) / f"ocpp-swarm-scenario-runs-{os.getuid()}.lock"
"""Held by the module whose runs run: the modules that run scenarios take turns."""

# The first test waits for every run; the runs take about 40 s together.
pytestmark = pytest.mark.timeout(180)


@dataclass
class Spec:
    locustfile: str
    args: str
    """Locust's and the scenario's options, split at spaces."""
    timeout: float


STORM_PORT = free_port()

SPECS: dict[str, Spec] = {
    # Longest first, so that the short ones fill the gaps.
    "firmware_rollout": Spec(
        "scenarios/firmware_rollout.py",
        "-u 30 -r 30 -t 10s --rollout-at 2 --rollout-share 0.5 --update-step 1",
        45,
    ),
    "charging_day": Spec(
        "scenarios/charging_day.py",
        (
            "-u 30 -r 30 -t 8s --day-length 8 --session-interval 2 --session-duration 3"
            " --meter-interval 1"
        ),
        45,
    ),
    "firmware_rollout_201": Spec(
        "scenarios/firmware_rollout.py",
        (
            "-u 20 -r 20 -t 10s --rollout-at 2 --rollout-share 0.5 --update-step 1"
            " --ocpp-version 2.0.1"
        ),
        45,
    ),
    # 20 stations capped at 2 kW each, 3 s to 6 s: the fleet drops under 40 kW and recovers.
    "load_balancing": Spec(
        "scenarios/load_balancing.py",
        "-u 20 -r 20 -t 9s --session-interval 1 --cap-at 3 --cap-watts 2000 --cap-for 3",
        45,
    ),
    "certificate_renewal": Spec(
        "scenarios/certificate_renewal.py",
        "-u 20 -r 20 -t 6s --renewal-at 2 --renewal-share 1 --ocpp-version 1.6,2.0.1",
        45,
    ),
    "mixed_fleet": Spec(
        "scenarios/mixed_fleet.py",
        "-u 30 -r 30 -t 8s --session-interval 2 --session-duration 3 --meter-interval 1",
        45,
    ),
    "charging_day_201": Spec(
        "scenarios/charging_day.py",
        (
            "-u 20 -r 20 -t 6s --day-length 6 --session-interval 2 --session-duration 3"
            " --meter-interval 1 --ocpp-version 2.0.1"
        ),
        45,
    ),
    "reconnect_storm": Spec("scenarios/reconnect_storm.py", "-u 30 -r 30 -t 8s --storm-at 3", 45),
    # Over two workers: the master has each drop its share (a message of the swarm's own).
    "reconnect_storm_workers": Spec(
        "scenarios/reconnect_storm.py",
        f"--processes 2 --master-bind-port {STORM_PORT} --master-port {STORM_PORT}"
        " -u 30 -r 30 -t 8s --storm-at 3",
        50,
    ),
    "reconnect_storm_csms": Spec(
        "scenarios/reconnect_storm.py",
        "-u 30 -r 30 -t 8s --storm-at 3 --storm-by csms --ocpp-version 1.6,2.0.1",
        45,
    ),
    "ramp": Spec("scenarios/ramp.py", "-u 30 -t 6s --ocpp-version 2.0.1", 40),
    "steady": Spec(
        "scenarios/steady.py",
        "-u 30 -r 30 -t 5s --authorize-interval 1 --heartbeat-interval 1",
        40,
    ),
}


@dataclass
class Run:
    name: str
    command: list[str]
    results_dir: Path
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    timed_out: bool = False
    leftovers: list[str] = field(default_factory=list)

    @property
    def folders(self) -> list[Path]:
        if not self.results_dir.is_dir():
            return []
        return sorted(p for p in self.results_dir.iterdir() if p.is_dir())

    @property
    def folder(self) -> Path:
        folders = self.folders
        assert len(folders) == 1, f"{self.name}: run folders {folders}\n{self.tail()}"
        return folders[0]

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.folder / "summary.json").read_text())

    def tail(self) -> str:
        return f"exit code {self.returncode}; stderr:\n{self.stderr[-4000:]}"

    def finished(self, returncode: int) -> None:
        """Check that it ended by itself, with ``returncode``, leaving no process behind."""
        assert not self.timed_out, f"{self.name} still ran after its timeout\n{self.tail()}"
        assert self.leftovers == [], f"{self.name} left processes behind: {self.leftovers}"
        assert self.returncode == returncode, self.tail()


RUN_MARK = "OCPP_SWARM_TEST_RUN"
"""An environment variable each run's processes inherit: it finds them all, the embedded CSMS
included, which runs in a session of its own."""


def _group(pgid: int, mark: str) -> list[psutil.Process]:
    """The live (not zombie) processes of a run: its process group and its marked processes."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if os.getpgid(process.pid) == pgid or process.environ().get(RUN_MARK) == mark:
                members.append(process)
    return members


def _execute(name: str, spec: Spec, results_dir: Path) -> Run:
    command = [
        LOCUST,
        "-f",
        spec.locustfile,
        "--headless",
        "--only-summary",
        "--results-dir",
        str(results_dir),
        *spec.args.split(),
    ]
    run = Run(name, command, results_dir)
    mark = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env[RUN_MARK] = mark
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: the CSMS and workers are found, and killed
    )
    try:
        stdout, stderr = process.communicate(timeout=spec.timeout)
    except subprocess.TimeoutExpired:
        run.timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=10)
    run.seconds = time.monotonic() - started
    run.returncode = process.returncode
    run.stdout = stdout.decode(errors="replace")
    run.stderr = stderr.decode(errors="replace")
    # The embedded CSMS exits when its stdin (a pipe from the swarm) closes: give it a moment.
    deadline = time.monotonic() + 5
    while (members := _group(process.pid, mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    for member in members:
        with contextlib.suppress(psutil.Error):
            run.leftovers.append(f"{member.pid}: {' '.join(member.cmdline())}")
            member.kill()
    return run


def run_all(specs: dict[str, Spec], root: Path) -> dict[str, Run]:
    """Each spec's run, ``PARALLEL`` at a time, in a folder of ``root`` named after it; one
    module's runs at a time, whichever pytest-xdist worker holds it (:data:`RUNS_LOCK`)."""
    with RUNS_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        pool = ThreadPoolExecutor(PARALLEL)
        try:
            futures = {
                name: pool.submit(_execute, name, spec, root / name) for name, spec in specs.items()
            }
            return {name: future.result() for name, future in futures.items()}
        finally:  # a run that failed: those not started yet are not started
            pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_all(SPECS, tmp_path_factory.mktemp("scenarios"))


# Reading a run's figures.


def requests(summary: dict[str, Any], request_type: str, name: str) -> int:
    """Requests of one type and name in summary.json (0 if none)."""
    for row in summary["requests"]:
        if row["type"] == request_type and row["name"] == name:
            return row["requests"]
    return 0


def failures(summary: dict[str, Any], request_type: str, name: str) -> int:
    for row in summary["requests"]:
        if row["type"] == request_type and row["name"] == name:
            return row["failures"]
    return 0


def aggregated(summary: dict[str, Any]) -> dict[str, Any]:
    rows = [row for row in summary["requests"] if row["name"] == "Aggregated"]
    assert len(rows) == 1, summary["requests"]
    assert rows[0]["type"] == ""
    return rows[0]


def clean(run: Run) -> dict[str, Any]:
    """A run that ended by itself with no failure at all; its summary."""
    run.finished(0)
    summary = run.summary
    assert aggregated(summary)["failures"] == 0, summary["requests"]
    assert summary["fail_ratio"] == 0
    assert "Traceback" not in run.stderr, run.stderr[-4000:]
    return summary


def fleet_rows(folder: Path) -> list[dict[str, int]]:
    with (folder / "fleet.csv").open(newline="") as file:
        return [
            {key: int(value) for key, value in row.items() if key != "timestamp"}
            for row in csv.DictReader(file)
        ]


def timeline_requests(folder: Path, request_type: str, name: str) -> int:
    """The requests of one action in timeline.csv, every second's added up."""
    with (folder / "timeline.csv").open(newline="") as file:
        return sum(
            int(row["requests"])
            for row in csv.DictReader(file)
            if (row["type"], row["name"]) == (request_type, name)
        )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is no PNG: {data[:8]!r}"
    # The first chunk: length (13), "IHDR", then width and height, big-endian.
    length, kind, width, height = struct.unpack(">I4sII", data[8:24])
    assert (length, kind) == (13, b"IHDR"), (length, kind)
    return width, height


# 1. Every scenario runs cleanly, and shows what it is about.


def test_steady(runs: dict[str, Run]) -> None:
    summary = clean(runs["steady"])
    assert requests(summary, "OCPP", "BootNotification") == 30
    assert requests(summary, "OCPP", "Heartbeat") > 0
    assert requests(summary, "OCPP", "Authorize") > 0
    assert summary["fleet"]["peak"]["accepted"] == 30
    # The default fleet is all OCPP 1.6, and the summary says so.
    assert summary["options"]["ocpp_version"] == "1.6"
    assert summary["fleet"]["final"]["versions"] == {"1.6": 30, "2.0.1": 0}
    # The timeline saw every round trip Locust counted, second by second.
    for name in ("BootNotification", "Heartbeat", "Authorize"):
        assert timeline_requests(runs["steady"].folder, "OCPP", name) == requests(
            summary, "OCPP", name
        ), name


def test_charging_day(runs: dict[str, Run]) -> None:
    summary = clean(runs["charging_day"])
    for action in ("StartTransaction", "MeterValues", "StopTransaction"):
        assert requests(summary, "OCPP", action) > 0, (action, summary["requests"])
    assert summary["fleet"]["peak"]["charging"] > 0
    assert summary["fleet"]["peak"]["accepted"] == 30


def test_mixed_fleet(runs: dict[str, Run]) -> None:
    summary = clean(runs["mixed_fleet"])
    # Each version's rows are its own: 1.6's under OCPP, 2.0.1's under OCPP201.
    for request_type, action in [
        ("OCPP", "BootNotification"),
        ("OCPP", "StartTransaction"),
        ("OCPP", "MeterValues"),
        ("OCPP201", "BootNotification"),
        ("OCPP201", "TransactionEvent"),
        ("OCPP201", "StatusNotification"),
    ]:
        assert requests(summary, request_type, action) > 0, (request_type, action)
    assert requests(summary, "OCPP201", "StartTransaction") == 0
    versions = summary["fleet"]["final"]["versions"]
    assert sum(versions.values()) == 30 and versions["1.6"] > versions["2.0.1"] > 0, versions


def test_charging_day_with_2_0_1_stations(runs: dict[str, Run]) -> None:
    summary = clean(runs["charging_day_201"])
    assert requests(summary, "OCPP201", "TransactionEvent") > 0
    assert not [row for row in summary["requests"] if row["type"] == "OCPP"]
    assert summary["fleet"]["peak"]["charging"] > 0


def test_firmware_rollout(runs: dict[str, Run]) -> None:
    summary = clean(runs["firmware_rollout"])
    # Half of 30 charge points get UpdateFirmware, and each reboots once it is installed.
    assert requests(summary, "CSMS", "UpdateFirmware") == 15
    # Downloading, Downloaded, Installing, Installed: 4 steps of 1 s from about 2 s in.
    assert requests(summary, "OCPP", "FirmwareStatusNotification") == 4 * 15
    assert requests(summary, "OCPP", "BootNotification") == 30 + 15
    assert summary["fleet"]["final"]["csms_calls"].get("UpdateFirmware") == 15


def test_firmware_rollout_to_2_0_1_stations(runs: dict[str, Run]) -> None:
    summary = clean(runs["firmware_rollout_201"])
    # Half of 20 stations get UpdateFirmware; each reboots with reason FirmwareUpdate.
    assert requests(summary, "CSMS201", "UpdateFirmware") == 10
    # Downloading, Downloaded, Installing, InstallRebooting, then Installed after the reboot.
    assert requests(summary, "OCPP201", "FirmwareStatusNotification") == 5 * 10
    assert requests(summary, "OCPP201", "BootNotification") == 20 + 10
    assert requests(summary, "CSMS", "UpdateFirmware") == 0


def assert_back_after_the_storm(folder: Path) -> None:
    """fleet.csv, while the 30 users ran: all booted, then some not, then all again."""
    accepted = [row["accepted"] for row in fleet_rows(folder) if row["users"] == 30]
    booted = accepted.index(30) if 30 in accepted else len(accepted)
    storm = booted + next((i for i, n in enumerate(accepted[booted:]) if n < 30), 0)
    assert booted < storm, accepted
    assert 30 in accepted[storm:], accepted


def test_certificate_renewal_of_a_mixed_fleet(runs: dict[str, Run]) -> None:
    summary = clean(runs["certificate_renewal"])
    versions = summary["fleet"]["final"]["versions"]
    assert versions["1.6"] + versions["2.0.1"] == 20 and versions["2.0.1"] > 0, versions
    # Each charge point got the root, asked for a new certificate, and took the chain signed.
    for kind, csms_kind, version in (("OCPP", "CSMS", "1.6"), ("OCPP201", "CSMS201", "2.0.1")):
        count = versions[version]
        assert requests(summary, csms_kind, "InstallCertificate") == count
        assert requests(summary, kind, "SignCertificate") == count
        assert requests(summary, csms_kind, "CertificateSigned") == count
    assert requests(summary, "CSMS", "ExtendedTriggerMessage") == versions["1.6"]
    assert requests(summary, "CSMS201", "TriggerMessage") == versions["2.0.1"]


def test_load_balancing_caps_the_fleets_power_and_lifts_it(runs: dict[str, Run]) -> None:
    run = runs["load_balancing"]
    clean(run)
    caps = plots.read_caps(run.folder / plots.CAPS_CSV)
    (capped, lifted), (cap, _) = caps["t"], caps["watts"]
    assert cap == 20 * 2000
    fleet = plots.read_fleet(run.folder / plots.FLEET_CSV)
    power = list(zip(fleet["t"], fleet["power_w"], strict=True))
    assert max(watts for t, watts in power if t <= capped) > cap, power
    under = [watts for t, watts in power if capped + 1 <= t < lifted - 0.5]
    assert under and max(under) <= cap, power
    assert max(watts for t, watts in power if t >= lifted + 1) > cap, power
    assert png_size(run.folder / "fleet.png") == plots.FLEET_SIZE


def test_reconnect_storm_by_the_swarm(runs: dict[str, Run]) -> None:
    summary = clean(runs["reconnect_storm"])
    assert requests(summary, "WebSocket", "dropped") == 30
    assert failures(summary, "WebSocket", "dropped") == 0
    assert requests(summary, "OCPP", "BootNotification") == 60
    assert_back_after_the_storm(runs["reconnect_storm"].folder)
    assert summary["fleet"]["final"]["states"]["accepted"] == 30  # all back


def test_reconnect_storm_by_the_swarm_over_workers(runs: dict[str, Run]) -> None:
    summary = clean(runs["reconnect_storm_workers"])
    assert requests(summary, "WebSocket", "dropped") == 30
    assert requests(summary, "OCPP", "BootNotification") == 60
    assert summary["fleet"]["final"]["states"]["accepted"] == 30  # all back


def test_reconnect_storm_by_the_csms(runs: dict[str, Run]) -> None:
    run = runs["reconnect_storm_csms"]
    run.finished(1)  # Locust's exit code for a run with failures: here they are the point
    summary = run.summary
    assert failures(summary, "WebSocket", "connection lost") == 30
    assert aggregated(summary)["failures"] == 30  # and no other
    # A mixed fleet: 1.6 charge points boot again, 2.0.1 stations come back without (B04).
    versions = summary["fleet"]["final"]["versions"]
    assert versions["1.6"] + versions["2.0.1"] == 30 and versions["2.0.1"] > 0, versions
    assert requests(summary, "OCPP", "BootNotification") == 2 * versions["1.6"]
    assert requests(summary, "OCPP201", "BootNotification") == versions["2.0.1"]
    assert_back_after_the_storm(run.folder)
    assert summary["fleet"]["final"]["states"]["accepted"] == 30
    assert "Traceback" not in run.stderr, run.stderr[-4000:]


def test_ramp(runs: dict[str, Run]) -> None:
    run = runs["ramp"]
    summary = clean(run)
    users = [row["users"] for row in fleet_rows(run.folder)]
    while users and users[-1] == 0:  # the rows written once the users stopped
        users.pop()
    assert len(users) >= 5, users
    assert 20 <= max(users) <= 30, users
    assert max(users[:2]) < min(users[-2:]), users  # it grows over the run
    assert users == sorted(users), users
    boots = requests(summary, "OCPP201", "BootNotification")  # a fleet of 2.0.1 stations
    assert max(users) <= boots <= 30, (boots, users)


# 2. Pictures.


def test_pictures_have_their_exact_size(runs: dict[str, Run]) -> None:
    folder = runs["firmware_rollout"].folder
    summary = runs["firmware_rollout"].summary
    panels = [
        row
        for row in summary["requests"]
        if row["type"] in ("OCPP", "CSMS") and row["name"] != "Aggregated"
    ]
    assert any(row["type"] == "CSMS" for row in panels), panels
    assert png_size(folder / "fleet.png") == plots.FLEET_SIZE
    assert png_size(folder / "latency.png") == plots.latency_size(len(panels))
    assert plots.latency_size(len(panels))[1] > plots.latency_size(1)[1]


def test_report_redraws_the_pictures(runs: dict[str, Run], tmp_path: Path) -> None:
    original = runs["firmware_rollout"].folder
    folder = tmp_path / original.name
    shutil.copytree(original, folder)
    pictures = [folder / "latency.png", folder / "fleet.png"]
    for picture in pictures:
        picture.unlink()
    done = subprocess.run(
        [sys.executable, "-m", "swarm.report", str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == sorted(map(str, pictures)), done.stdout
    for picture in pictures:
        assert png_size(picture) == png_size(original / picture.name)
