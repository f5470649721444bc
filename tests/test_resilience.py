"""The swarm against a failing CSMS: each fault is counted, and every charge point carries on.

Charge points run as plain asyncio against the embedded CSMS, its faults set through the
Python API that its control API calls (or, for the payloads it does not send, against a
scripted CSMS). Each test checks the samples a fault made, that no charge point's task ended,
and that the fleet was back at work afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from swarm.csms import Csms, CsmsConfig, CsmsProcess, faults
from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol import ocppj
from swarm.protocol.samples import CSMS, OCPP, WEBSOCKET, Sample
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import BOOT_ACCEPTED, answer, run, scripted_csms, until
from tests.test_locust import LOCUST_RUN, Child, child, finished

CONFIG = ChargePointConfig(
    heartbeat_interval=0.2,
    authorize_interval=0,
    call_timeout=0.5,
    reconnect_min=0.1,
    reconnect_max=0.5,
    dead_after=0,  # each test counts its fault's samples; dead connections are test_liveness's
)
SIZE = 5


class Fleet:
    """Charge points running against one CSMS, and every sample they reported."""

    def __init__(self, url: str, size: int, config: ChargePointConfig) -> None:
        self.samples: list[Sample] = []
        self.by_charge_point: list[list[Sample]] = [[] for _ in range(size)]
        self.charge_points = [
            ChargePoint(f"CP-{n}", f"{url}/CP-{n}", config, self._sink(n)) for n in range(size)
        ]
        self.tasks = [asyncio.create_task(cp.run()) for cp in self.charge_points]

    def _sink(self, index: int) -> Any:
        own = self.by_charge_point[index]

        def sink(sample: Sample) -> None:
            self.samples.append(sample)
            own.append(sample)

        return sink

    def accepted(self) -> bool:
        return all(cp.state is State.ACCEPTED for cp in self.charge_points)

    def errors(self, request_type: str, name: str) -> list[str | None]:
        return [s.error for s in self.samples if (s.request_type, s.name) == (request_type, name)]

    def count(self, request_type: str, name: str, error: str | None = None) -> int:
        return self.errors(request_type, name).count(error)

    async def heartbeats_go_on(self) -> None:
        """Wait until every charge point, accepted, has had a Heartbeat answered from now on."""
        marks = [len(own) for own in self.by_charge_point]

        def each_beat() -> bool:
            return self.accepted() and all(
                any(s.name == "Heartbeat" and s.error is None for s in own[mark:])
                for own, mark in zip(self.by_charge_point, marks, strict=True)
            )

        await until(each_beat, 5)

    def check_alive(self) -> None:
        """No charge point's task ended: none crashed, none gave up."""
        ended = [task for task in self.tasks if task.done()]
        assert not ended, [task.exception() for task in ended]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 5)


@contextlib.asynccontextmanager
async def fleet_of(
    url: str, size: int = SIZE, config: ChargePointConfig = CONFIG
) -> AsyncIterator[Fleet]:
    """A fleet, booted: every charge point accepted before the test goes on."""
    fleet = Fleet(url, size, config)
    try:
        await until(fleet.accepted, 5)
        yield fleet
        fleet.check_alive()
    finally:
        await fleet.stop()


@contextlib.asynccontextmanager
async def csms_and_fleet(size: int = SIZE) -> AsyncIterator[tuple[Csms, Fleet]]:
    async with (
        Csms(CsmsConfig(port=0, heartbeat_interval=60)) as csms,
        fleet_of(csms.url, size) as fleet,
    ):
        yield csms, fleet


# Answers.


def test_late_answers_are_timeouts_and_are_ignored_when_they_arrive() -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            csms.set_faults(delay=0.8, actions=["Heartbeat"])
            await until(lambda: fleet.count(OCPP, "Heartbeat", "CallTimeout") >= 2 * SIZE, 5)
            csms.clear_faults()
            # Every answer held back is sent, on connections still open, and read as late.
            await until(lambda: not any(c.delayed for c in csms.connections.values()), 5)
            await fleet.heartbeats_go_on()
            timeouts = [
                s for s in fleet.samples if s.name == "Heartbeat" and s.error == "CallTimeout"
            ]
            assert {s.response_time for s in timeouts} == {500.0}  # the call timeout
            assert csms.stats["faults.delayed"] >= len(timeouts)
            assert fleet.errors(WEBSOCKET, "unexpected answer") == []
            assert fleet.errors(WEBSOCKET, "connection lost") == []
            assert fleet.count(WEBSOCKET, "connect") == SIZE  # nobody reconnected

    run(body())


def test_callerror_answers_are_failures_with_their_code() -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            csms.set_faults(callerror=ocppj.INTERNAL_ERROR, actions=["Heartbeat"])
            error = "CALLERROR InternalError"
            await until(lambda: fleet.count(OCPP, "Heartbeat", error) >= 2 * SIZE, 5)
            csms.clear_faults()
            await fleet.heartbeats_go_on()
            assert set(fleet.errors(OCPP, "Heartbeat")) == {None, error}
            assert fleet.count(OCPP, "Heartbeat", error) == csms.stats["faults.callerror"]
            assert fleet.errors(WEBSOCKET, "connection lost") == []

    run(body())


def test_a_share_of_callerrors_fails_about_that_share_of_the_calls() -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            csms.set_faults(callerror=ocppj.GENERIC_ERROR, share=0.5, actions=["Heartbeat"])
            await until(lambda: len(fleet.errors(OCPP, "Heartbeat")) >= 100, 10)
            csms.clear_faults()
            outcomes = fleet.errors(OCPP, "Heartbeat")[:100]
            assert set(outcomes) == {None, "CALLERROR GenericError"}
            assert 25 <= outcomes.count(None) <= 75  # 50 expected, sd 5

    run(body())


# Stray frames: counted by a fixed text, answered as OCPP-J 1.6 says, survived.

# kind -> (the sample it makes, the CALLERROR code the charge point answers with, if any).
STRAY = {
    # Syntactically incorrect (4.2.3): FormationViolation, to unique id "-1" (none readable).
    "malformed-json": ((WEBSOCKET, "invalid frame", "FormationViolation: not JSON"), "Formation"),
    # A MessageTypeId not in the list: the payload is ignored (4.1.3), so no CALLERROR.
    "unknown-type": ((WEBSOCKET, "invalid frame", "ProtocolError: unknown MessageTypeId"), None),
    "unknown-id": ((WEBSOCKET, "unexpected answer", "no CALL has its unique id"), None),
    # A value the schema does not allow (4.2.3): PropertyConstraintViolation.
    "invalid-payload": ((CSMS, "Reset", "CALLERROR PropertyConstraintViolation"), "Property"),
    "binary": ((WEBSOCKET, "binary frame", "binary frame (OCPP-J is text)"), None),
}
CODES = {
    "Formation": ocppj.FORMATION_VIOLATION,
    "Property": ocppj.PROPERTY_CONSTRAINT_VIOLATION,
}


@pytest.mark.parametrize("kind", sorted(STRAY))
def test_stray_frames_are_counted_answered_as_ocpp_j_says_and_survived(kind: str) -> None:
    (request_type, name, error), code = STRAY[kind]

    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            assert await csms.send_frames(kind) == SIZE
            await until(lambda: fleet.count(request_type, name, error) == SIZE, 5)
            if code is not None:
                key = f"received.callerror.{CODES[code]}"
                await until(lambda: csms.stats[key] == SIZE, 5)
            await fleet.heartbeats_go_on()
            # Nothing else: no CALLERROR for what must be ignored, no lost connection.
            assert csms.stats["received.callerror"] == (SIZE if code else 0)
            assert fleet.errors(WEBSOCKET, "connection lost") == []
            assert fleet.count(WEBSOCKET, "connect") == SIZE
            assert [s for s in fleet.samples if s.error and s.error != error] == []

    run(body())


def after_boot_send(text: str) -> Any:
    """A scripted CSMS that accepts the boot, sends ``text``, then answers every CALL."""

    async def commanding(ws: Any, script: Any) -> None:
        boot = await script.receive(ws)
        await ws.send(answer(boot, BOOT_ACCEPTED))
        await ws.send(text)
        while True:
            frame = await script.receive(ws)
            if frame[0] == ocppj.CALL:
                await ws.send(answer(frame, {}))

    return commanding


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, ocppj.OCCURENCE_CONSTRAINT_VIOLATION),
        ({"type": 5}, ocppj.TYPE_CONSTRAINT_VIOLATION),
        ({"type": "Sideways"}, ocppj.PROPERTY_CONSTRAINT_VIOLATION),
        ({"type": "Soft", "when": "now"}, ocppj.FORMATION_VIOLATION),
    ],
)
def test_an_invalid_payload_gets_the_code_its_schema_check_maps(
    payload: dict[str, Any], code: str
) -> None:
    commanding = after_boot_send(ocppj.call_frame("bad-1", "Reset", payload))

    async def body() -> None:
        async with scripted_csms(commanding) as (url, script), fleet_of(url, 1) as fleet:
            await script.wait_for(lambda: any(f[0] == ocppj.CALLERROR for f in script.frames))
            (reply,) = [f for f in script.frames if f[0] == ocppj.CALLERROR]
            assert reply[:3] == [ocppj.CALLERROR, "bad-1", code]
            assert fleet.errors(CSMS, "Reset") == [f"CALLERROR {code}"]
            assert fleet.charge_points[0].state is State.ACCEPTED  # no reset was done

    run(body())


def test_a_call_of_the_wrong_shape_gets_a_formation_violation_to_its_id() -> None:
    commanding = after_boot_send(json.dumps([2, "short-1", "Reset"]))

    async def body() -> None:
        async with scripted_csms(commanding) as (url, script), fleet_of(url, 1) as fleet:
            await script.wait_for(lambda: any(f[0] == ocppj.CALLERROR for f in script.frames))
            (reply,) = [f for f in script.frames if f[0] == ocppj.CALLERROR]
            assert reply[:3] == [ocppj.CALLERROR, "short-1", ocppj.FORMATION_VIOLATION]
            assert fleet.errors(WEBSOCKET, "invalid frame") == [
                "FormationViolation: a CALL has 4 elements"
            ]

    run(body())


# Lost connections: counted with their code, then a reconnect and a new boot.


def test_a_huge_frame_closes_the_connection_with_1009_and_the_charge_point_boots_again() -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            assert await csms.send_frames("huge") == SIZE
            lost = "ConnectionClosed: code 1009"
            await until(lambda: fleet.count(WEBSOCKET, "connection lost", lost) == SIZE, 5)
            await until(lambda: fleet.count(OCPP, "BootNotification") == 2 * SIZE, 5)
            await fleet.heartbeats_go_on()
            assert csms.stats["connections.total"] == 2 * SIZE
            assert {(s.request_type, s.error) for s in fleet.samples if s.error} <= {
                (WEBSOCKET, lost),
                (OCPP, lost),  # a Heartbeat in flight as the connection closed
            }, fleet.samples

    run(body())


@pytest.mark.parametrize(("code", "shown"), [(1002, "1002"), (1011, "1011"), (4000, "4xxx")])
def test_an_odd_close_code_is_a_lost_connection_with_that_code(code: int, shown: str) -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            assert await csms.disconnect(code=code) == SIZE
            lost = f"ConnectionClosed: code {shown}"  # a private code's number is the CSMS's
            await until(lambda: fleet.count(WEBSOCKET, "connection lost", lost) == SIZE, 5)
            await until(lambda: fleet.count(OCPP, "BootNotification") == 2 * SIZE, 5)
            await fleet.heartbeats_go_on()
            assert {(s.request_type, s.error) for s in fleet.samples if s.error} <= {
                (WEBSOCKET, lost),
                (OCPP, lost),
            }, fleet.samples

    run(body())


def test_after_a_restart_every_charge_point_is_back_within_the_backoff_bound() -> None:
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            loop = asyncio.get_running_loop()
            assert await csms.restart(down=1.0) == SIZE
            up = loop.time()
            # Reconnects back off from reconnect_min, doubling up to reconnect_max: once the
            # CSMS listens again, each charge point tries within reconnect_max, then boots.
            await until(lambda: fleet.count(OCPP, "BootNotification") == 2 * SIZE, 5)
            await until(fleet.accepted, 5)
            assert loop.time() - up <= CONFIG.reconnect_max + 1.0
            await fleet.heartbeats_go_on()
            lost = fleet.errors(WEBSOCKET, "connection lost")
            assert lost == ["ConnectionClosed: code 1012"] * SIZE
            refused = [e for e in fleet.errors(WEBSOCKET, "connect") if e is not None]
            assert refused, "no connect failed while the CSMS was down"
            assert fleet.count(WEBSOCKET, "connect") == 2 * SIZE  # one success each, twice
            assert csms.stats["restarts"] == 1

    run(body())


def test_the_fault_plan_leaves_a_clean_fleet_clean() -> None:
    # The control case: the same fleet with no fault set fails nothing.
    async def body() -> None:
        async with csms_and_fleet() as (csms, fleet):
            await fleet.heartbeats_go_on()
            await fleet.heartbeats_go_on()
            assert [s for s in fleet.samples if s.error] == []
            assert csms.faults is None
            assert not any(csms.stats[key] for key in csms.stats if key.startswith("faults."))

    run(body())


def test_a_stray_kind_list_covers_every_frame_kind_but_huge() -> None:
    assert set(STRAY) == set(faults.FRAME_KINDS) - {"huge"}


# The same faults in a Locust run: counted in its stats and error table, the fleet back at the end.


def control(base: str, method: str, path: str, body: Any = None) -> Any:
    """One request to the control API; its JSON answer (an error status fails the test)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def wait_until(predicate: Callable[[], bool], timeout: float, proc: Child) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.running(), f"the Locust run ended early:\n{proc.read()[1][-3000:]}"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_a_locust_run_counts_every_fault_injected_mid_run_and_ends_with_the_fleet_back() -> None:
    users, seconds = 10, 16.0
    with CsmsProcess.start(["--control-port", "0", "--heartbeat-interval", "60"]) as csms:
        base = csms.control_url
        assert base is not None
        command = [
            *LOCUST_RUN,
            "--seconds",
            str(seconds),
            "--host",
            csms.url,
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--heartbeat-interval",
            "0.3",
            "--authorize-interval",
            "0",
            "--call-timeout",
            "0.5",
            "--reconnect-min",
            "0.2",
            "--reconnect-max",
            "1.0",
            "--dead-after",  # the delayed answers would make dead connections: counted elsewhere
            "0",
        ]
        with child(command) as proc:

            def booted() -> bool:
                stats = control(base, "GET", "/stats")
                return (
                    stats.get("BootNotification", 0) >= users
                    and control(base, "GET", "/charge-points")["count"] == users
                )

            def fleet_back(boots: int) -> Callable[[], bool]:
                return lambda: control(base, "GET", "/stats").get("BootNotification", 0) >= boots

            wait_until(booted, 10, proc)
            boots = users
            # Every Heartbeat answered late, then half of them with a CALLERROR.
            control(base, "POST", "/faults", {"delay": 1.0, "actions": ["Heartbeat"]})
            time.sleep(1.5)
            control(
                base,
                "POST",
                "/faults",
                {"callerror": "InternalError", "share": 0.5, "actions": ["Heartbeat"]},
            )
            time.sleep(1.0)
            assert control(base, "DELETE", "/faults") == {}
            # One stray frame of each kind to every charge point.
            sent = {
                kind: control(base, "POST", "/frames", {"kind": kind})["sent"]
                for kind in sorted(STRAY)
            }
            assert set(sent.values()) == {users}, sent
            time.sleep(0.5)
            # Lost connections: a huge frame, an odd close code, a restart.
            huge = control(base, "POST", "/frames", {"kind": "huge", "share": 0.3})["sent"]
            boots += huge
            wait_until(fleet_back(boots), 5, proc)
            closed = control(base, "POST", "/disconnects", {"share": 0.5, "code": 4000})["closed"]
            boots += closed
            wait_until(fleet_back(boots), 5, proc)
            restarted = control(base, "POST", "/restart", {"down": 1.5})
            up = time.monotonic()
            assert restarted == {"closed": users, "down": 1.5}
            boots += users
            # Back within the backoff bound (reconnect_max 1 s), with a margin for the machine.
            wait_until(fleet_back(boots), 1.0 + 2.0, proc)
            back_after = time.monotonic() - up
            assert time.monotonic() - proc.started < seconds - 2, "no time left to see it work"
            csms_stats = control(base, "GET", "/stats")
            finished(proc, timeout=seconds + 30)

    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = {(e["method"], e["name"], e["error"]): e["occurrences"] for e in result["errors"]}
    stats = result["stats"]

    assert errors[("OCPP", "Heartbeat", "CallTimeout")] > 0
    assert errors[("OCPP", "Heartbeat", "CALLERROR InternalError")] > 0
    assert csms_stats["faults.delayed"] >= errors[("OCPP", "Heartbeat", "CallTimeout")]
    assert (
        csms_stats["faults.callerror"] == errors[("OCPP", "Heartbeat", "CALLERROR InternalError")]
    )
    for (method, name, error), kind in [
        (("WebSocket", "invalid frame", "FormationViolation: not JSON"), "malformed-json"),
        (("WebSocket", "invalid frame", "ProtocolError: unknown MessageTypeId"), "unknown-type"),
        (("WebSocket", "unexpected answer", "no CALL has its unique id"), "unknown-id"),
        (("CSMS", "Reset", "CALLERROR PropertyConstraintViolation"), "invalid-payload"),
        (("WebSocket", "binary frame", "binary frame (OCPP-J is text)"), "binary"),
    ]:
        assert errors.get((method, name, error)) == sent[kind], (kind, errors)
    assert csms_stats["received.callerror.FormationViolation"] == users
    assert csms_stats["received.callerror.PropertyConstraintViolation"] == users
    lost = {
        code: errors.get(("WebSocket", "connection lost", f"ConnectionClosed: code {code}"))
        for code in ("1009", "4xxx", "1012")
    }
    assert lost == {"1009": huge, "4xxx": closed, "1012": users}, lost
    assert any(method == "WebSocket" and name == "connect" for method, name, _ in errors), (
        "no connect failed while the CSMS was down"
    )
    assert not [key for key in errors if key[1] == "charge point error"], errors
    # The run went on measuring: most Heartbeats succeeded, and every charge point is back.
    heartbeat = stats["OCPP Heartbeat"]
    assert heartbeat["failures"] < heartbeat["requests"] / 2, heartbeat
    assert stats["OCPP BootNotification"]["requests"] == boots
    assert stats["OCPP BootNotification"]["failures"] == 0
    assert result["states"]["accepted"] == users, (result["states"], back_after)
    assert sum(result["states"].values()) == users, result["states"]
