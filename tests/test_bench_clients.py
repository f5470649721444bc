"""The benchmark's baselines do the job they are measured for: each charge point boots, and
each Heartbeat's answer is parsed and matched to its CALL (a mismatch counts as a failure)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
