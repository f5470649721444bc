"""The embedded CSMS over several processes (``python -m swarm.csms --workers N``): the front,
its workers on one port, the control API of them all, and the Locust option that asks for it.

Each worker's own control API (on loopback, unannounced) is found through its listening
sockets, to check what each one holds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psutil
import pytest
from cryptography import x509
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from swarm.csms import CsmsProcess, main
from swarm.locust.options import add_arguments, embedded_csms_workers
from swarm.protocol import ocppj
from swarm.station import identity
from tests.fleet import FakeChargePoint, accept, eventually, running
from tests.scripted import run
from tests.test_control import http
from tests.test_locust import locust_run

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT")

START_TIMEOUT = 30.0  # two interpreters starting at once on a busy machine
EXIT_TIMEOUT = 10.0  # a worker closes its connections and exits within CLOSE_TIMEOUT + 1 s
BOOT = {"chargePointVendor": "ocpp-swarm", "chargePointModel": "Test"}
RESET = {"action": "Reset", "payload": {"type": "Soft"}}


def start(*args: str) -> CsmsProcess:
    return CsmsProcess.start(["--workers", "2", "--control-port", "0", *args], START_TIMEOUT)


@pytest.fixture(scope="module")
def front() -> Iterator[CsmsProcess]:
    with start() as child:
        yield child


def workers(child: CsmsProcess) -> list[psutil.Process]:
    return psutil.Process(child.pid).children()


def worker_controls(child: CsmsProcess) -> list[str]:
    """Each worker's control API: its listening socket other than the CSMS's port."""
    port = int(child.url.rpartition(":")[2])
    urls = []
    for worker in workers(child):
        listening = [
            c.laddr
            for c in worker.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN and c.laddr.port != port
        ]
        assert len(listening) == 1, listening
        urls.append(f"http://{listening[0].ip}:{listening[0].port}")
    return urls


async def get(url: str) -> Any:
    code, body, _ = await http("GET", url)
    assert code == 200, body
    return body


async def post(url: str, body: Any) -> Any:
    code, answer, _ = await http("POST", url, body)
    assert code == 200, answer
    return answer


@contextlib.asynccontextmanager
async def booted(
    url: str, ids: list[str], password: str | None = None
) -> AsyncIterator[list[FakeChargePoint]]:
    """Connect every id at once, each sending a BootNotification; yield them, answering the
    CSMS's calls with Accepted."""
    async with contextlib.AsyncExitStack() as stack:
        connecting = asyncio.Semaphore(50)

        async def boot(charge_point_id: str) -> FakeChargePoint:
            async with connecting:
                ws = await stack.enter_async_context(
                    connect(
                        f"{url}/ocpp/{charge_point_id}",
                        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                        additional_headers=credentials(charge_point_id, password),
                        open_timeout=10,
                    )
                )
                await ws.send(ocppj.call_frame("boot", "BootNotification", BOOT))
                async with asyncio.timeout(10):
                    assert json.loads(await ws.recv())[2]["status"] == "Accepted"
                return FakeChargePoint(charge_point_id, ws, accept)

        fakes = await asyncio.gather(*map(boot, ids))
        async with running(fakes):
            yield fakes


def credentials(charge_point_id: str, password: str | None) -> dict[str, str]:
    if password is None:
        return {}
    token = base64.b64encode(f"{charge_point_id}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# The fleet of two workers, commanded through the front.


def test_connections_land_on_both_workers_and_the_front_commands_them_all(
    front: CsmsProcess,
) -> None:
    ids = [f"CP-{i:03d}" for i in range(200)]
    control = front.control_url
    own = worker_controls(front)

    async def body() -> None:
        async with booted(front.url, ids) as fakes:
            parts = [await get(f"{url}/stats") for url in own]
            # Each worker booted some of them (2**-199 that one booted all); the front sums.
            assert all(part["BootNotification"] > 0 for part in parts), parts
            assert sum(part["BootNotification"] for part in parts) == 200
            stats = await get(f"{control}/stats")
            assert (stats["BootNotification"], stats["connections.current"]) == (200, 200)
            listed = await get(f"{control}/charge-points")
            assert listed == {"connected": ids, "count": 200, "truncated": False}

            # A share of 1 reaches every charge point, whichever worker holds it.
            result = await post(f"{control}/calls", RESET)
            assert result == {
                "action": "Reset",
                "targeted": 200,
                "answered": 200,
                "callerrors": 0,
                "timed_out": 0,
                "disconnected": 0,
                "statuses": {"Accepted": 200},
                "errors": {},
                "seconds": result["seconds"],
            }
            assert [len(fake.calls) for fake in fakes] == [1] * 200
            # Named ids: each answers once, an unknown one counts once as disconnected.
            named = await post(
                f"{control}/calls", {**RESET, "charge_points": ["CP-000", "CP-199", "CP-X"]}
            )
            assert (named["targeted"], named["answered"], named["disconnected"]) == (3, 2, 1)
            campaign = await post(
                f"{control}/campaigns/install-root", {"charge_points": ["CP-007", "CP-X"]}
            )
            assert campaign["1.6"]["answered"] == 1
            assert campaign["2.0.1"]["targeted"] == 0
            assert campaign["not_connected"] == 1
            # The rate is the fleet's: 40 calls at 40 a second take about a second.
            paced = await post(f"{control}/calls", {**RESET, "share": 0.2, "rate": 40})
            assert paced["answered"] == 40
            assert 0.6 <= paced["seconds"] < 5, paced
            assert (await post(f"{control}/frames", {"kind": "unknown-id"})) == {"sent": 200}

    run(body(), timeout=60)


def test_faults_set_through_the_front_hold_at_every_worker(front: CsmsProcess) -> None:
    ids = [f"FAULT-{i:02d}" for i in range(40)]
    control = front.control_url
    own = worker_controls(front)
    fault = {"callerror": "InternalError", "actions": ["Heartbeat"]}

    async def body() -> None:
        async with booted(front.url, ids) as fakes:
            shown = await post(f"{control}/faults", fault)
            assert shown == await get(f"{control}/faults") != {}
            assert [await get(f"{url}/faults") for url in own] == [shown, shown]
            for fake in fakes:
                await fake.ws.send(ocppj.call_frame("beat", "Heartbeat", {}))
            parts: list[Any] = []

            async def counted() -> bool:
                parts[:] = [await get(f"{url}/stats") for url in own]
                return sum(part.get("faults.callerror", 0) for part in parts) == 40

            async with asyncio.timeout(10):
                while not await counted():
                    await asyncio.sleep(0.05)
            assert all(part["faults.callerror"] > 0 for part in parts), parts
            code, cleared, _ = await http("DELETE", f"{control}/faults")
            assert (code, cleared) == (200, {})
            assert [await get(f"{url}/faults") for url in own] == [{}, {}]

    run(body(), timeout=60)


def test_the_front_refuses_bad_requests_as_one_csms_does(front: CsmsProcess) -> None:
    control = front.control_url

    async def body() -> None:
        with CsmsProcess.start(["--control-port", "0"]) as alone:
            for method, path, request in [
                ("POST", "/calls", {"action": "Nope"}),
                ("POST", "/calls", {**RESET, "share": 0.5, "charge_points": []}),
                ("POST", "/campaigns/nope", {}),
                ("POST", "/restart", {}),
                ("POST", "/faults", {"delay": -1}),
                ("POST", "/frames", {"kind": "odd"}),
                ("GET", "/nope", None),
                ("DELETE", "/stats", None),
            ]:
                fleet_answer = await http(method, f"{control}{path}", request)
                one_answer = await http(method, f"{alone.control_url}{path}", request)
                assert fleet_answer[:2] == one_answer[:2]
                assert 400 <= fleet_answer[0] < 500

    run(body(), timeout=30)


def test_one_certificate_authority_for_all(front: CsmsProcess) -> None:
    async def body() -> None:
        answers = [await get(f"{url}/ca") for url in [front.control_url, *worker_controls(front)]]
        assert answers[0] == answers[1] == answers[2]
        assert "BEGIN CERTIFICATE" in answers[0]["certificate"]
        assert answers[0]["certificate"] != answers[0]["manufacturer"]

    run(body())
    # Their keys reached them through a private directory, gone once they listen.
    for worker in workers(front):
        given = [arg.partition("=")[2] for arg in worker.cmdline() if "--ca-key=" in arg]
        assert len(given) == 1 and not os.path.exists(os.path.dirname(given[0]))
        assert not any("PRIVATE KEY" in arg for arg in worker.cmdline())


def test_certificates_signed_at_either_worker_chain_to_the_one_root(front: CsmsProcess) -> None:
    ids = [f"SIGN-{i:02d}" for i in range(20)]

    async def body() -> None:
        root = x509.load_pem_x509_certificate(
            (await get(f"{front.control_url}/ca"))["certificate"].encode()
        )
        async with booted(front.url, ids) as fakes:
            for fake in fakes:
                _, csr = identity.request("ocpp-swarm", fake.id)
                await fake.ws.send(ocppj.call_frame("sign", "SignCertificate", {"csr": csr}))
            await eventually(lambda: all(fake.calls for fake in fakes), timeout=10)
            for fake in fakes:
                [[_, _, action, payload]] = fake.calls
                assert action == "CertificateSigned"
                certificate = x509.load_pem_x509_certificate(payload["certificateChain"].encode())
                certificate.verify_directly_issued_by(root)
            parts = [await get(f"{url}/stats") for url in worker_controls(front)]
            # 2**-19 that one worker signed all.
            assert all(part.get("SignCertificate", 0) > 0 for part in parts), parts

    run(body(), timeout=30)


def test_restart_closes_every_connection_and_listens_again(front: CsmsProcess) -> None:
    ids = [f"RESTART-{i:02d}" for i in range(40)]
    control = front.control_url

    async def body() -> None:
        async with booted(front.url, ids):
            restarts = [
                asyncio.create_task(http("POST", f"{control}/restart", {"down": 0.5}))
                for _ in range(2)
            ]
            answers = sorted([await task for task in restarts], key=lambda answer: answer[0])
            assert [code for code, _, _ in answers] == [200, 409]
            assert answers[0][1] == {"closed": 40, "down": 0.5}
            assert answers[1][1] == {"error": "the CSMS is restarting already"}
        stats = [await get(f"{url}/stats") for url in worker_controls(front)]
        assert [part["restarts"] for part in stats] == [1, 1]
        async with booted(front.url, ["AFTER-1", "AFTER-2"]):
            assert (await get(f"{control}/charge-points"))["count"] >= 2

    run(body(), timeout=30)


# Passwords, and the processes.


def test_a_password_learned_at_one_worker_is_taken_at_the_other() -> None:
    with start("--password", "secret-{id}") as child:
        control = child.control_url
        own = worker_controls(child)

        async def body() -> None:
            async with booted(child.url, ["CP-PW"], "secret-CP-PW"):
                holders = [(await get(f"{url}/charge-points"))["count"] for url in own]
                other = own[holders.index(0)]
                change = {"key": "AuthorizationKey", "value": "0123456789abcdef0123"}
                payload = {"action": "ChangeConfiguration", "payload": change}
                result = await post(f"{control}/calls", {**payload, "charge_points": ["CP-PW"]})
                assert result["statuses"] == {"Accepted": 1}
                # Each connection lands on either worker: 2**-20 that none reaches the other.
                for _ in range(20):
                    async with booted(child.url, ["CP-PW"], change["value"]):
                        pass
                assert (await get(f"{other}/stats"))["connections.total"] >= 1
                for _ in range(4):  # the old password is refused wherever it lands
                    with pytest.raises(InvalidStatus, match="401"):
                        async with booted(child.url, ["CP-PW"], "secret-CP-PW"):
                            pass

        run(body(), timeout=30)


def test_stop_leaves_no_process() -> None:
    child = start()
    pids = [child.pid, *(worker.pid for worker in workers(child))]
    assert len(pids) == 3
    assert child.stop() == 0
    assert not any(psutil.pid_exists(pid) for pid in pids)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_workers_die_with_the_front() -> None:
    child = start()
    try:
        own = workers(child)
        os.kill(child.pid, signal.SIGKILL)
        _, alive = psutil.wait_procs(own, timeout=EXIT_TIMEOUT)
        assert alive == []
    finally:
        child.stop()


def test_a_worker_that_exits_stops_the_front_which_says_so() -> None:
    command = [sys.executable, "-m", "swarm.csms", "--port", "0", "--workers", "2"]
    with subprocess.Popen(
        [*command, "--exit-with-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith(b"listening on ws://")
            own = psutil.Process(process.pid).children()
            own[0].kill()
            assert process.wait(EXIT_TIMEOUT) == 1
            _, alive = psutil.wait_procs(own, timeout=EXIT_TIMEOUT)
            assert alive == []
            assert process.stderr is not None
            assert f"worker {own[0].pid} exited with code -9" in process.stderr.read().decode()
        finally:
            if process.poll() is None:
                process.kill()


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_workers_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--workers", value])
    assert info.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_workers_need_so_reuseport(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(SystemExit):
        main(["--workers", "2"])
    assert "--workers over 1 needs SO_REUSEPORT" in capsys.readouterr().err


# The Locust option.


def test_csms_workers_defaults_to_one_per_locust_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert embedded_csms_workers(parser.parse_args([])) == 1
    assert embedded_csms_workers(parser.parse_args(["--csms-workers", "3"])) == 3
    for processes, expected in [(None, 1), (4, 4), (-1, os.cpu_count())]:
        options = argparse.Namespace(csms_workers=0, processes=processes)
        assert embedded_csms_workers(options) == expected
    for bad in ("0", "-2", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--csms-workers", bad])
        assert "--csms-workers" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_csms_workers_reaches_the_embedded_csms() -> None:
    users = 20
    proc, result = locust_run(
        "--users", users, "--spawn-rate", users, "--csms-workers", 2, seconds=3.0
    )
    assert result["stats"]["WebSocket connect"]["requests"] == users, proc.stderr[-3000:]
    assert result["errors"] == [], result["errors"]
    commands = [cmd for _, cmd in proc.descendants.values() if "swarm.csms" in cmd]
    assert len(commands) == 3, commands
    assert sum("--workers 2" in cmd for cmd in commands) == 1
    assert sum(" --worker " in cmd for cmd in commands) == 2
