"""What a process loads: the import contracts (pyproject.toml, `lint-imports`) check import
statements; these check what a real process has in sys.modules, lazy imports included."""

from __future__ import annotations

import subprocess
import sys


def loaded(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return set(out.stdout.split())


def test_a_locust_process_starts_the_csms_without_loading_its_server():
    modules = loaded("import swarm.locust.user\nfrom swarm.csms import CsmsProcess")
    assert "swarm.locust.user" in modules and "swarm.csms.process" in modules
    assert "swarm.csms.server" not in modules
    assert "websockets.asyncio.server" not in modules


def test_reporting_loads_neither_locust_nor_websockets():
    modules = loaded("import swarm.report.cli, swarm.report.fleet, swarm.report.thresholds")
    assert "swarm.report.cli" in modules
    assert not {m.split(".")[0] for m in modules} & {"locust", "gevent", "websockets"}


def test_the_station_and_the_1_6_charge_point_load_no_locust():
    modules = loaded("import swarm.ocpp16.charge_point")
    assert not {m.split(".")[0] for m in modules} & {"locust", "gevent"}
