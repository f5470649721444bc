"""The benchmark's baselines do the job they are measured for: each charge point boots, and
each Heartbeat's answer is parsed and matched to its CALL (a mismatch counts as a failure)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.charging import BASELINE, baseline_tree
from swarm.csms import CsmsProcess
from tests.test_locust import ROOT


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", ["bench.lean_client", "bench.raw_client"])
def test_a_baseline_client_boots_its_charge_points_and_checks_every_answer(module: str) -> None:
    load = ["--charge-points", "20", "--interval", "0.2", "--spawn-rate", "200"]
    window = ["--warmup", "0.2", "--duration", "1"]
    with CsmsProcess.start([]) as csms:
        done = subprocess.run(
            [sys.executable, "-m", module, "--url", csms.url, *load, *window],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            timeout=45,
            check=True,
        )
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["charge_points"] == 20 and result["connect_failures"] == 0
    assert result["failures"] == 0 and result["messages"] >= 20 * 3
    assert 0 < result["median_ms"] < 1000


@pytest.mark.timeout(90)
def test_the_charging_client_measures_a_fleet_that_charges() -> None:
    load = ["--charge-points", "20", "--interval", "0.2", "--spawn-rate", "200"]
    window = ["--warmup", "0.2", "--duration", "1"]
    with CsmsProcess.start([]) as csms:
        done = subprocess.run(
            [sys.executable, "-m", "bench.charging_client", "--url", csms.url, *load, *window],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=75,
            check=True,
        )
    result = json.loads(done.stdout.splitlines()[-1])
    assert "20 booted, 20 charging" in done.stderr
    # Heartbeats and MeterValues, each every 0.2 s: twice the round trips of Heartbeats alone.
    assert result["charge_points"] == 20 and result["failures"] == 0
    assert result["messages"] >= 20 * 2 * 3


def test_the_charging_baseline_is_a_tree_of_its_revision_with_this_charging_client(
    tmp_path: Path,
) -> None:
    known = subprocess.run(["git", "cat-file", "-e", f"{BASELINE}^{{commit}}"], cwd=ROOT)
    if known.returncode != 0:
        pytest.skip(f"this clone lacks the baseline revision {BASELINE}")
    tree = baseline_tree(BASELINE, tmp_path)
    assert (tree / "swarm" / "station" / "sessions.py").exists()
    assert not (tree / "swarm" / "station" / "ev.py").exists()  # before the EVs
    client = (tree / "bench" / "charging_client.py").read_bytes()
    assert client == (Path(ROOT) / "bench" / "charging_client.py").read_bytes()
