"""swarm.csms.control: the embedded CSMS's HTTP control API, in process and from the CLI."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psutil
import pytest

from swarm.csms import Csms, CsmsConfig, CsmsProcess, control
from tests.fleet import eventually, fleet, refuse, status
from tests.scripted import run

TIMEOUT = 5.0
RESET = {"action": "Reset", "payload": {"type": "Soft"}}


@asynccontextmanager
async def served() -> AsyncIterator[tuple[Csms, str]]:
    """A CSMS and its control API on free loopback ports: the CSMS and the API's base URL."""
    async with Csms(CsmsConfig(port=0)) as csms:
        server = await control.serve_control(csms, "127.0.0.1", 0)
        try:
            yield csms, control.url(server)
        finally:
            server.close()


async def http(
    method: str,
    url: str,
    body: Any = None,
    *,
    data: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any, dict[str, str]]:
    """One request with urllib in a thread: the status, the decoded JSON body and the headers."""
    if body is not None:
        data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)

    def send() -> tuple[int, Any, dict[str, str]]:
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return response.status, json.load(response), dict(response.headers)
        except urllib.error.HTTPError as err:
            with err:
                return err.code, json.load(err), dict(err.headers)

    return await asyncio.to_thread(send)


async def raw(base_url: str, request: bytes) -> bytes:
    """Send ``request`` as it is on a fresh connection; return everything read until EOF."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            return await reader.read()
    finally:
        writer.close()


# Routes.


def test_get_charge_points_lists_the_connected_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-3", "CP-1", "CP-2"]):
            code, answer, headers = await http("GET", f"{url}/charge-points")
            assert code == 200
            assert answer == {"connected": ["CP-1", "CP-2", "CP-3"], "count": 3, "truncated": False}
            assert headers["Content-Type"] == "application/json"
            assert headers["Connection"] == "close"
            monkeypatch.setattr(control, "LIST_LIMIT", 2)
            _, answer, _ = await http("GET", f"{url}/charge-points?ignored=1")
            assert answer == {"connected": ["CP-1", "CP-2"], "count": 3, "truncated": True}

    run(body())


def test_get_stats_returns_the_counters() -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1", "CP-2"]):
            code, answer, _ = await http("GET", f"{url}/stats")
            assert code == 200
            assert answer == {
                "Heartbeat": 2,
                "connections.current": 2,
                "connections.total": 2,
            }

    run(body())


def test_post_calls_sends_to_a_share_of_the_fleet() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(4)]
        async with served() as (csms, url), fleet(csms.url, ids) as fakes:
            code, answer, _ = await http("POST", f"{url}/calls", {**RESET, "share": 0.5})
            assert code == 200
            assert answer == {
                "action": "Reset",
                "targeted": 2,
                "answered": 2,
                "callerrors": 0,
                "timed_out": 0,
                "disconnected": 0,
                "statuses": {"Accepted": 2},
                "errors": {},
                "seconds": pytest.approx(0.0, abs=0.5),
            }
            assert sum(len(fake.calls) for fake in fakes) == 2
            assert csms.stats["sent.Reset"] == 2

    run(body())


def test_post_calls_sends_to_named_charge_points_at_a_rate() -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1", "CP-2", "CP-3"]) as fakes:
            fakes[0].reply = status("Rejected")
            fakes[1].reply = refuse
            call = {
                "action": "ClearCache",
                "charge_points": ["CP-1", "CP-2", "CP-9"],
                "rate": 50,
                "timeout": 2,
            }
            code, answer, _ = await http("POST", f"{url}/calls", call)
            assert code == 200
            counts = {k: answer[k] for k in ("targeted", "answered", "callerrors", "disconnected")}
            assert counts == {"targeted": 3, "answered": 1, "callerrors": 1, "disconnected": 1}
            assert answer["statuses"] == {"Rejected": 1}
            assert answer["errors"] == {"NotSupported": 1}
            assert answer["seconds"] >= 0.04  # three calls at 50 a second
            assert fakes[2].calls == []

    run(body())


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ([], "the body must be a JSON object"),
        ({**RESET, "chargePoints": ["CP-1"]}, "unknown keys: chargePoints"),
        ({"payload": {}}, "action must be a string"),
        ({"action": "Frobnicate"}, "'Frobnicate' is not an OCPP 1.6 call a CSMS sends"),
        ({"action": "Heartbeat"}, "'Heartbeat' is not an OCPP 1.6 call a CSMS sends"),
        ({"action": "Reset"}, "invalid Reset payload: payload: 'type' is a required property"),
        ({"action": "Reset", "payload": {"type": "Sideways"}}, "not one of Hard, Soft"),
        ({**RESET, "payload": ["Soft"]}, "payload must be a JSON object"),
        ({**RESET, "share": 0}, "share must be a number in (0, 1]"),
        ({**RESET, "share": 1.5}, "share must be a number in (0, 1]"),
        ({**RESET, "share": "half"}, "share must be a number"),
        ({**RESET, "share": 0.5, "charge_points": ["CP-1"]}, "share or charge_points, not both"),
        ({**RESET, "charge_points": "CP-1"}, "charge_points must be a list"),
        ({**RESET, "charge_points": [1]}, "charge_points must be a list"),
        ({**RESET, "rate": 0}, "rate must be positive"),
        ({**RESET, "rate": True}, "rate must be a number"),
        ({**RESET, "timeout": -1}, "timeout must be positive"),
        ({**RESET, "timeout": None}, "timeout must be a number"),
    ],
)
def test_post_calls_refuses_a_bad_call_with_400(call: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1"]) as [cp]:
            code, answer, _ = await http("POST", f"{url}/calls", call)
            assert code == 400
            assert list(answer) == ["error"]
            assert error in answer["error"]
            assert cp.calls == []

    run(body())


@pytest.mark.parametrize(
    ("data", "content_type", "code", "error"),
    [
        (b'{"action": ', "application/json", 400, "malformed JSON"),
        (b"\xff\xfe\xfa", "application/json", 400, "malformed JSON"),
        (b"", "application/json", 400, "malformed JSON"),
        (b'{"action": "ClearCache", "share": NaN}', "application/json", 400, "share"),
        (json.dumps(RESET).encode(), "text/plain", 415, "application/json"),
        (json.dumps(RESET).encode(), "application/json; charset=utf-8", 200, None),
    ],
)
def test_post_calls_takes_json_only(
    data: bytes, content_type: str, code: int, error: str | None
) -> None:
    async def body() -> None:
        async with served() as (_, url):
            got, answer, _ = await http(
                "POST", f"{url}/calls", data=data, content_type=content_type
            )
            assert got == code
            if error is None:
                assert answer["targeted"] == 0
            else:
                assert error in answer["error"]

    run(body())


@pytest.mark.parametrize(
    ("method", "path", "code", "allow"),
    [
        ("GET", "/", 404, None),
        ("GET", "/calls/", 404, None),
        ("POST", "/nothing", 404, None),
        ("GET", "/calls", 405, "POST"),
        ("PUT", "/calls", 405, "POST"),
        ("POST", "/stats", 405, "GET"),
        ("DELETE", "/charge-points", 405, "GET"),
        ("PUT", "/faults", 405, "GET, POST, DELETE"),
        ("GET", "/restart", 405, "POST"),
        ("POST", "/campaigns", 404, None),
        ("GET", "/campaigns/install-root", 405, "POST"),
        ("DELETE", "/campaigns/nothing", 405, "POST"),
    ],
)
def test_unknown_paths_and_wrong_methods(
    method: str, path: str, code: int, allow: str | None
) -> None:
    async def body() -> None:
        async with served() as (_, url):
            data = b"{}" if method in ("POST", "PUT") else None
            got, answer, headers = await http(method, url + path, data=data)
            assert got == code
            assert answer["error"]
            assert headers.get("Allow") == allow

    run(body())


# The HTTP layer, byte by byte.


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"GET /stats\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /stats SPDY/3\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"GET /stats HTTP/1.1\r\nno colon\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (b"POST /calls HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (
            b"POST /calls HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n",
            b"HTTP/1.1 413 Request Entity Too Large",
        ),
        (
            b"POST /calls HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            b"HTTP/1.1 411 Length Required",
        ),
        (b"GET /stats HTTP/1.0\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK"),
    ],
)
def test_malformed_requests_get_an_error(request_bytes: bytes, status_line: bytes) -> None:
    async def body() -> None:
        async with served() as (_, url):
            response = await raw(url, request_bytes)
            head, _, data = response.partition(b"\r\n\r\n")
            assert head.split(b"\r\n")[0] == status_line
            json.loads(data)

    run(body())


def test_an_oversized_request_head_gets_431(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "MAX_HEAD", 1024)

    async def body() -> None:
        async with served() as (_, url):
            response = await raw(url, b"GET /stats HTTP/1.1\r\nX: " + b"a" * 2000 + b"\r\n\r\n")
            assert response.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")

    run(body())


def test_a_stalled_request_gets_408(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "READ_TIMEOUT", 0.2)

    async def body() -> None:
        async with served() as (_, url):
            loop = asyncio.get_running_loop()
            started = loop.time()
            response = await raw(url, b"POST /calls HTTP/1.1\r\nContent-Length: 10\r\n\r\n{")
            assert response.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert loop.time() - started < 1.0

    run(body())


def test_expect_100_continue_is_answered_before_the_body() -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1"]):
            data = json.dumps(RESET).encode()
            host, port = url.removeprefix("http://").split(":")
            reader, writer = await asyncio.open_connection(host, int(port))
            try:
                writer.write(
                    b"POST /calls HTTP/1.1\r\nContent-Type: application/json\r\n"
                    b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(data)
                )
                async with asyncio.timeout(TIMEOUT):
                    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
                    writer.write(data)
                    response = await reader.read()
            finally:
                writer.close()
            head, _, data = response.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert json.loads(data)["answered"] == 1

    run(body())


def test_url_brackets_an_ipv6_address() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            try:
                server = await control.serve_control(csms, "::1", 0)
            except OSError:
                pytest.skip("no IPv6 loopback")
            try:
                assert control.url(server).startswith("http://[::1]:")
                code, _, _ = await http("GET", control.url(server) + "/stats")
                assert code == 200
            finally:
                server.close()

    run(body())


# The command line.


def test_the_cli_serves_the_control_api_and_stops() -> None:
    with CsmsProcess.start(["--control-port", "0"]) as child:
        assert child.control_url is not None
        assert child.control_url.startswith("http://127.0.0.1:")

        async def body() -> None:
            url = child.control_url
            async with fleet(child.url, ["CP-1", "CP-2"]) as fakes:
                fakes[1].reply = status("Rejected")
                code, answer, _ = await http("POST", f"{url}/calls", RESET)
                assert code == 200
                assert (answer["targeted"], answer["answered"]) == (2, 2)
                assert answer["statuses"] == {"Accepted": 1, "Rejected": 1}
                assert [len(fake.calls) for fake in fakes] == [1, 1]
                _, stats, _ = await http("GET", f"{url}/stats")
                assert (stats["sent.Reset"], stats["answered.Reset"]) == (2, 2)
                _, listed, _ = await http("GET", f"{url}/charge-points")
                assert listed == {"connected": ["CP-1", "CP-2"], "count": 2, "truncated": False}

        run(body())
        assert child.stop() == 0
    assert child.process.poll() is not None
    assert not psutil.pid_exists(child.pid)


def test_the_cli_refuses_a_bad_control_port() -> None:
    with pytest.raises(RuntimeError, match="--control-port: not a TCP port"):
        CsmsProcess.start(["--control-port", "70000"])


def test_the_cli_reports_a_control_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = {p.pid for p in psutil.Process().children()}
        with pytest.raises(RuntimeError, match=r"(?is)exited with code 1.*address already in use"):
            CsmsProcess.start(["--control-port", str(port)])
        assert {p.pid for p in psutil.Process().children()} <= before


def test_post_disconnects_closes_a_share_of_the_connections_with_the_code() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(4)]
        async with served() as (csms, url), fleet(csms.url, ids) as fakes:
            code, answer, _ = await http("POST", f"{url}/disconnects", {"share": 0.5, "code": 1012})
            assert (code, answer) == (200, {"closed": 2})
            closed = [fake for fake in fakes if fake.ws.close_code is not None]
            assert [fake.ws.close_code for fake in closed] == [1012, 1012]
            assert csms.stats["connections.closed_by_csms"] == 2
            # Named ones: only those still connected are closed; an unknown id is no error.
            still_open = [f for f in fakes if f.id in ("CP-0", "CP-1") and f.ws.close_code is None]
            code, answer, _ = await http(
                "POST", f"{url}/disconnects", {"charge_points": ["CP-0", "CP-1", "nobody"]}
            )
            assert (code, answer) == (200, {"closed": len(still_open)})
            assert all(fake.ws.close_code == 1001 for fake in still_open)

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({"share": 0}, "share must be a number in (0, 1]"),
        ({"code": 1006}, "code must be a close code a server may send"),
        ({"code": "1001"}, "code must be a close code"),
        ({"share": 0.5, "charge_points": []}, "give share or charge_points, not both"),
        ({"action": "Reset"}, "unknown keys: action"),
    ],
)
def test_post_disconnects_refuses_bad_requests(request_body: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (_, url):
            code, answer, _ = await http("POST", f"{url}/disconnects", request_body)
            assert code == 400
            assert error in answer["error"]

    run(body())


# Faults on request.


def test_faults_are_set_shown_and_cleared() -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1"]):
            assert (await http("GET", f"{url}/faults"))[:2] == (200, {})
            plan = {
                "delay": 0.2,
                "callerror": "InternalError",
                "share": 0.5,
                "actions": ["Heartbeat"],
            }
            code, answer, _ = await http("POST", f"{url}/faults", plan)
            assert (code, answer) == (200, plan)
            assert csms.faults is not None and csms.faults.as_dict() == plan
            assert (await http("GET", f"{url}/faults"))[1] == plan
            # Each POST replaces the faults before it; defaults fill in the rest.
            code, answer, _ = await http("POST", f"{url}/faults", {"delay": 3})
            assert answer == {"delay": 3, "callerror": None, "share": 1.0, "actions": None}
            code, answer, _ = await http("DELETE", f"{url}/faults")
            assert (code, answer, csms.faults) == (200, {}, None)
            await http("POST", f"{url}/faults", {"callerror": "GenericError"})
            code, answer, _ = await http("POST", f"{url}/faults", {})
            assert (code, answer, csms.faults) == (200, {}, None)

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ([], "the body must be a JSON object"),
        ({"delay": 1, "code": 1001}, "unknown keys: code"),
        ({"delay": "1"}, "delay must be a number"),
        ({"delay": -1}, "delay must be 0 to 3600 seconds"),
        ({"callerror": 500}, "callerror must be an OCPP error code"),
        ({"callerror": "Teapot"}, "callerror must be an OCPP-J 1.6 error code"),
        ({"delay": 1, "share": 0}, "share must be a number in (0, 1]"),
        ({"delay": 1, "actions": "Heartbeat"}, "actions must be a list of action names"),
        ({"delay": 1, "actions": ["Reset"]}, "not an action a charge point sends: 'Reset'"),
        ({"share": 0.5}, "share and actions go with a delay or a callerror"),
    ],
)
def test_post_faults_refuses_bad_faults_and_keeps_those_in_force(
    request_body: Any, error: str
) -> None:
    async def body() -> None:
        async with served() as (csms, url):
            csms.set_faults(delay=1.0)
            before = csms.faults
            code, answer, _ = await http("POST", f"{url}/faults", request_body)
            assert code == 400
            assert error in answer["error"]
            assert csms.faults is before

    run(body())


def test_post_frames_sends_one_to_each_charge_point_targeted() -> None:
    async def body() -> None:
        ids = ["CP-1", "CP-2", "CP-3", "CP-4"]
        async with served() as (csms, url), fleet(csms.url, ids) as fakes:
            frames = {"kind": "invalid-payload", "share": 0.5}
            assert (await http("POST", f"{url}/frames", frames))[:2] == (200, {"sent": 2})
            frames = {"kind": "invalid-payload", "charge_points": ["CP-1", "nobody"]}
            assert (await http("POST", f"{url}/frames", frames))[:2] == (200, {"sent": 1})
            await eventually(lambda: sum(len(fake.calls) for fake in fakes) == 3)
            assert {call[2] for fake in fakes for call in fake.calls} == {"Reset"}
            assert fakes[0].calls  # CP-1, named
            _, stats, _ = await http("GET", f"{url}/stats")
            assert stats["faults.frames.invalid-payload"] == 3

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({}, "kind must be a string"),
        ({"kind": "nonsense"}, "kind must be one of malformed-json, unknown-type,"),
        ({"kind": "binary", "size": 5000}, "size is for frames of kind huge only"),
        ({"kind": "huge", "size": "big"}, "size must be a whole number of bytes"),
        ({"kind": "huge", "size": 1}, "size must be a whole number of bytes, 256 to"),
        ({"kind": "binary", "share": 2}, "share must be a number in (0, 1]"),
        ({"kind": "binary", "share": 1, "charge_points": []}, "not both"),
        ({"kind": "binary", "code": 1001}, "unknown keys: code"),
    ],
)
def test_post_frames_refuses_bad_requests(request_body: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1"]) as [cp]:
            code, answer, _ = await http("POST", f"{url}/frames", request_body)
            assert code == 400
            assert error in answer["error"]
            await asyncio.sleep(0.05)
            assert cp.calls == []

    run(body())


def test_post_restart_answers_once_the_csms_listens_again() -> None:
    async def body() -> None:
        async with served() as (csms, url), fleet(csms.url, ["CP-1", "CP-2"]) as fakes:
            loop = asyncio.get_running_loop()
            started = loop.time()
            restart = asyncio.create_task(
                http("POST", f"{url}/restart", {"down": 0.5, "code": 1001})
            )
            await eventually(lambda: csms.stats["restarts"] == 1)
            # While it is down the control API still answers; a second restart is refused.
            code, answer, _ = await http("POST", f"{url}/restart", {"down": 1})
            assert (code, answer) == (409, {"error": "the CSMS is restarting already"})
            assert (await restart)[:2] == (200, {"closed": 2, "down": 0.5})
            assert loop.time() - started >= 0.5
            assert [fake.ws.close_code for fake in fakes] == [1001, 1001]
            async with fleet(csms.url, ["CP-1"]):
                assert list(csms.connections) == ["CP-1"]

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({}, "down must be given"),
        ({"down": "2"}, "down must be a number"),
        ({"down": 7200}, "down must be 0 to 3600 seconds"),
        ({"down": 1, "code": 1005}, "code must be a close code a server may send"),
        ({"down": 1, "share": 0.5}, "unknown keys: share"),
    ],
)
def test_post_restart_refuses_bad_requests(request_body: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (csms, url):
            code, answer, _ = await http("POST", f"{url}/restart", request_body)
            assert code == 400
            assert error in answer["error"]
            assert csms.stats["restarts"] == 0

    run(body())
