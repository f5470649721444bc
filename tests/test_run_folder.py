"""Scenario runs' thresholds, every file of a run folder, and one folder over several processes."""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET

import pytest

from tests.scripted import free_port
from tests.test_scenarios import (
    Run,
    Spec,
    clean,
    fleet_rows,
    requests,
    run_all,
    timeline_requests,
)

# The first test waits for every run; the runs take about 40 s together.
pytestmark = pytest.mark.timeout(180)


MASTER_PORT = free_port()

SPECS: dict[str, Spec] = {
    # The master sums the workers' fleet reports, sent every 3 s: 6 s gives at least two.
    # Its own master port: another Locust master on this machine would take its workers.
    "distributed": Spec(
        "scenarios/steady.py",
        f"--processes 2 --master-bind-port {MASTER_PORT} --master-port {MASTER_PORT}"
        " -u 20 -r 20 -t 6s",
        50,
    ),
    "boot_storm": Spec(
        "scenarios/boot_storm.py",
        "-u 50 -t 5s --check-p95 BootNotification=5000 --check-booted 50",
        40,
    ),
    "thresholds_missed": Spec(
        "scenarios/boot_storm.py",
        ("-u 10 -t 3s --check-p95 BootNotification=5000 --check-p99 Reset=100 --check-booted 1000"),
        40,
    ),
    "bad_threshold": Spec(
        "scenarios/boot_storm.py", "-u 10 -t 3s --check-p95 BootNotification", 30
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_all(SPECS, tmp_path_factory.mktemp("run_folder"))


# 1. Thresholds.


def test_boot_storm_with_thresholds_that_pass(runs: dict[str, Run]) -> None:
    run = runs["boot_storm"]
    summary = clean(run)
    assert requests(summary, "OCPP", "BootNotification") == 50
    assert requests(summary, "WebSocket", "connect") == 50
    assert summary["fleet"]["peak"]["accepted"] == 50
    assert summary["passed"] is True
    assert [t["passed"] for t in summary["thresholds"]] == [True, True], summary["thresholds"]
    xml = ET.parse(run.folder / "thresholds.xml").getroot()
    assert xml.get("tests") == "2"
    assert xml.get("failures") == "0"
    assert xml.findall(".//failure") == []


def test_missed_thresholds_exit_3_and_say_which(runs: dict[str, Run]) -> None:
    run = runs["thresholds_missed"]
    run.finished(3)
    lines = [line for line in run.stderr.splitlines() if "threshold: " in line]
    assert len(lines) == 3, run.stderr[-4000:]
    verdicts = [line.split("threshold: ", 1)[1] for line in lines]
    assert re.fullmatch(r"PASS p95 of BootNotification: \d+ ms \(at most 5000 ms\)", verdicts[0])
    assert verdicts[1:] == [
        "FAIL p99 of Reset: no such requests (at most 100 ms)",
        "FAIL charge points booted: 10 (at least 1000)",
    ], lines
    summary = run.summary
    assert summary["passed"] is False
    assert [t["passed"] for t in summary["thresholds"]] == [True, False, False]
    xml = ET.parse(run.folder / "thresholds.xml").getroot()
    assert xml.get("tests") == "3"
    assert xml.get("failures") == "2"
    cases = {case.get("name"): case for case in xml.iter("testcase")}
    assert len(cases) == 3, list(cases)
    failed = {
        name: case.find("failure").get("message")
        for name, case in cases.items()
        if case.find("failure") is not None
    }
    assert failed == {
        "p99 of Reset at most 100 ms": "FAIL p99 of Reset: no such requests (at most 100 ms)",
        "at least 1000 charge points booted": "FAIL charge points booted: 10 (at least 1000)",
    }


def test_a_bad_threshold_is_refused_before_any_user_starts(runs: dict[str, Run]) -> None:
    run = runs["bad_threshold"]
    run.finished(2)
    assert [line for line in run.stderr.splitlines() if "--check-p95" in line], run.stderr
    assert "Ramping to" not in run.stderr and "spawned" not in run.stderr, run.stderr
    assert run.folders == []


# 2. The run folder.


def test_the_run_folder_holds_every_file(runs: dict[str, Run]) -> None:
    run = runs["boot_storm"]
    folder = run.folder
    assert re.fullmatch(r"boot_storm-\d{8}-\d{6}", folder.name), folder.name
    summary = run.summary
    assert summary["run"] == folder.name
    for name in (
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "report.html",
        "fleet.csv",
        "timeline.csv",
        "summary.json",
        "thresholds.xml",
        "latency.png",
        "fleet.png",
    ):
        assert (folder / name).is_file(), (name, sorted(p.name for p in folder.iterdir()))
    assert "<html" in (folder / "report.html").read_text().lower()

    with (folder / "locust_stats.csv").open(newline="") as file:
        stats = {
            (row["Type"], row["Name"]): (int(row["Request Count"]), int(row["Failure Count"]))
            for row in csv.DictReader(file)
        }
    expected = {
        (row["type"], row["name"]): (row["requests"], row["failures"])
        for row in summary["requests"]
    }
    assert stats == expected

    with (folder / "locust_stats_history.csv").open(newline="") as file:
        history = list(csv.DictReader(file))
    actions = {row["Name"] for row in history if row["Name"] != "Aggregated"}
    assert {"BootNotification", "StatusNotification", "connect"} <= actions, actions
    boots = [
        int(row["Total Request Count"]) for row in history if row["Name"] == "BootNotification"
    ]
    assert boots[-1] == 50, boots

    rows = fleet_rows(folder)
    assert len(rows) >= 4, rows
    assert max(row["accepted"] for row in rows) == 50


# 3. Distributed.


def test_processes_give_one_folder_with_the_whole_fleet(runs: dict[str, Run]) -> None:
    run = runs["distributed"]
    summary = clean(run)
    assert len(run.folders) == 1, run.folders  # the master's; workers write none
    assert run.folder.name.startswith("steady-")
    assert requests(summary, "OCPP", "BootNotification") == 20
    assert summary["fleet"]["peak"]["accepted"] == 20
    assert summary["fleet"]["final"]["versions"] == {"1.6": 20, "2.0.1": 0}  # summed
    assert any(row["accepted"] == 20 for row in fleet_rows(run.folder))
    # The workers' seconds, added together on the master: all but a worker's last second.
    heartbeats = requests(summary, "OCPP", "Heartbeat")
    assert timeline_requests(run.folder, "OCPP", "BootNotification") == 20
    assert 0.8 * heartbeats <= timeline_requests(run.folder, "OCPP", "Heartbeat") <= heartbeats
