"""swarm.csms as a server: handshake, connections, configuration, command line, child process."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any

import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from swarm.csms import Csms, CsmsConfig, CsmsProcess, main
from tests.scripted import run
from tests.test_csms import EXAMPLES, TIMEOUT, call, charge_point, eventually

# Handshake and connections.


@pytest.mark.parametrize("subprotocols", [None, ["ocpp2.1"]])
def test_a_client_without_ocpp16_is_refused(subprotocols: list[str] | None) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            with pytest.raises(InvalidHandshake) as info:
                async with connect(f"{csms.url}/ocpp/CP-1", subprotocols=subprotocols):
                    pass
            assert isinstance(info.value, InvalidStatus)
            assert info.value.response.status_code == 400
            assert csms.stats["connections.total"] == 0

    run(body())


def test_the_negotiated_subprotocol_is_ocpp16() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            url = f"{csms.url}/CP-1"
            async with connect(url, subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
                assert ws.subprotocol == "ocpp1.6"

    run(body())


@pytest.mark.parametrize("path", ["/", "/ocpp/", "/ocpp/?a=b"])
def test_an_empty_charge_point_id_is_refused(path: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            with pytest.raises(InvalidStatus) as info:
                async with connect(csms.url + path, subprotocols=["ocpp1.6"]):
                    pass
            assert info.value.response.status_code == 404

    run(body())


def test_connections_are_registered_by_charge_point_id() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            async with connect(f"{csms.url}/a/b/CP%201?x=1", subprotocols=["ocpp1.6"]) as ws:
                await call(ws, "Heartbeat", {})
                assert set(csms.connections) == {"CP 1"}
                first = csms.connections["CP 1"]
                # A reconnect with the same id replaces the entry; the old one leaving keeps it.
                async with connect(f"{csms.url}/CP%201", subprotocols=["ocpp1.6"]) as again:
                    await call(again, "Heartbeat", {})
                    assert csms.connections["CP 1"] is not first
                    assert csms.stats["connections.current"] == 2
                    await ws.close()
                    await eventually(lambda: csms.stats["connections.current"] == 1)
                    assert "CP 1" in csms.connections
            await eventually(lambda: not csms.connections)
            assert csms.stats["connections.current"] == 0
            assert csms.stats["connections.total"] == 2

    run(body())


def test_stop_closes_connections_with_going_away() -> None:
    async def body() -> None:
        csms = Csms(CsmsConfig(port=0))
        await csms.start()
        async with charge_point(csms.url) as ws:
            await call(ws, "Heartbeat", {})
            async with asyncio.timeout(TIMEOUT):
                await csms.stop()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1001
        await csms.stop()  # idempotent

    run(body())


# Configuration and command line.


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": -1},
        {"port": 65536},
        {"heartbeat_interval": -1},
        {"boot_retry_interval": -5},
        {"boot": "maybe"},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CsmsConfig(**kwargs)


def test_config_takes_any_iterable_of_rejected_tags() -> None:
    config = CsmsConfig(reject_id_tags=["A", "B"])  # type: ignore[arg-type]
    assert config.reject_id_tags == frozenset({"A", "B"})
    hash(config)
    with pytest.raises(ValueError, match="reject_id_tags"):
        CsmsConfig(reject_id_tags="ABC")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "-5"],
        ["--port", "70000"],
        ["--port", "x"],
        ["--heartbeat-interval", "-1"],
        ["--boot", "maybe"],
        ["--boot-retry-interval", "soon"],
        ["--unknown"],
    ],
)
def test_cli_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code != 0
    assert "error" in capsys.readouterr().err


def test_csms_process_serves_and_stops() -> None:
    with CsmsProcess.start(["--boot", "pending", "--reject-id-tag", "BAD"]) as child:
        assert child.url.startswith("ws://127.0.0.1:")
        assert child.control_url is None
        assert psutil.pid_exists(child.pid)

        async def body() -> None:
            async with charge_point(child.url) as ws:
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
                assert reply["status"] == "Pending"
                assert await call(ws, "Authorize", {"idTag": "BAD"}, "2") == {
                    "idTagInfo": {"status": "Invalid"}
                }

        run(body())
        assert child.stop() == 0
    assert child.process.poll() is not None


def test_csms_process_reports_a_failed_start_and_leaves_no_process() -> None:
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(RuntimeError, match="invalid choice"):
        CsmsProcess.start(["--boot", "maybe"])
    assert {p.pid for p in psutil.Process().children()} <= before


def test_csms_process_start_times_out_and_leaves_no_process() -> None:
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(RuntimeError, match="timed out"):
        CsmsProcess.start([], timeout=0.001)
    assert {p.pid for p in psutil.Process().children()} <= before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_csms_process_stops_cleanly_on_a_signal(signum: int) -> None:
    child = CsmsProcess.start([])
    try:
        child.process.send_signal(signum)
        assert child.process.wait(TIMEOUT) == 0
    finally:
        child.stop()


def test_csms_process_works_under_gevent_monkey_patching() -> None:
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "from swarm.csms import CsmsProcess\n"
        "child = CsmsProcess.start(['--no-validate'])\n"
        "print(child.url.startswith('ws://'), child.stop())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["True", "0"]
