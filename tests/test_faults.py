"""swarm.csms.faults and the embedded CSMS's faults on request, plain asyncio with bare clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from swarm.csms import Csms, CsmsConfig, faults
from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj
from tests.fleet import fleet
from tests.scripted import run, until
from tests.test_csms import call, charge_point, exchange

TIMEOUT = 5.0


async def receive(ws: Any) -> Any:
    async with asyncio.timeout(TIMEOUT):
        return await ws.recv()


# AnswerFaults: what a plan may hold.


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "set a delay, a callerror or both"),
        ({"delay": -1}, "delay must be 0 to 3600 seconds"),
        ({"delay": float("inf")}, "delay must be 0 to 3600 seconds"),
        ({"delay": True}, "delay must be a number"),
        ({"callerror": "Oops"}, "callerror must be an OCPP-J 1.6 error code"),
        ({"delay": 1, "share": 0}, r"share must be a number in \(0, 1\]"),
        ({"delay": 1, "share": 1.01}, r"share must be a number in \(0, 1\]"),
        ({"delay": 1, "actions": "Heartbeat"}, "actions must be a list"),
        ({"delay": 1, "actions": [""]}, "actions must be a list"),
        ({"delay": 1, "actions": []}, "at least one action"),
    ],
)
def test_answer_faults_refuse_bad_values(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        faults.AnswerFaults(**kwargs)


def test_answer_faults_hit_their_actions_and_a_share_of_them() -> None:
    plan = faults.AnswerFaults(callerror=ocppj.INTERNAL_ERROR, actions=["Heartbeat"])
    assert plan.actions == frozenset({"Heartbeat"})
    assert plan.hits("Heartbeat")
    assert not plan.hits("Authorize")
    half = faults.AnswerFaults(delay=1.0, share=0.5)
    hits = sum(half.hits("Heartbeat") for _ in range(2000))
    assert 850 <= hits <= 1150, hits  # 1000 expected, sd 22
    assert half.as_dict() == {"delay": 1.0, "callerror": None, "share": 0.5, "actions": None}


@pytest.mark.parametrize("kind", faults.FRAME_KINDS)
def test_stray_frames_are_what_their_kind_says(kind: str) -> None:
    frame = faults.stray_frame(kind, "fault-1")
    if kind == "binary":
        assert isinstance(frame, bytes)
        assert json.loads(frame) == [2, "fault-1", "ClearCache", {}]
        return
    assert isinstance(frame, str)
    if kind == "malformed-json":
        with pytest.raises(ValueError):
            json.loads(frame)
        return
    parsed = json.loads(frame)
    assert parsed[1] == "fault-1"
    if kind == "unknown-type":
        assert parsed[0] == 7
    elif kind == "unknown-id":
        assert parsed == [3, "fault-1", {}]
    elif kind == "invalid-payload":
        assert parsed[0::2] == [2, "Reset"]
        with pytest.raises(ocppj.FrameError) as info:
            OCPP16.schemas.validate("Reset", parsed[3])
        assert info.value.code == ocppj.PROPERTY_CONSTRAINT_VIOLATION
    else:
        assert kind == "huge"
        assert len(frame.encode()) == faults.HUGE_SIZE
        assert parsed[2] == "DataTransfer"
    assert len(faults.stray_frame("huge", "fault-2", 5000).encode()) == 5000


@pytest.mark.parametrize(
    ("kind", "size", "match"),
    [
        ("garbage", None, "kind must be one of malformed-json, "),
        ("binary", 5000, "size is for frames of kind huge only"),
        ("huge", 10, "size must be a whole number of bytes"),
        ("huge", 1.5, "size must be a whole number of bytes"),
    ],
)
def test_stray_frames_refuse_bad_arguments(kind: str, size: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        faults.stray_frame(kind, "fault-1", size)


# The CSMS's answering faults.


def test_no_faults_by_default_and_clearing_leaves_none() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            assert csms.faults is None  # the hot path's only check
            assert csms.set_faults(delay=1.0) is not None
            assert csms.set_faults() is None
            assert csms.faults is None
            csms.set_faults(callerror=ocppj.GENERIC_ERROR)
            csms.clear_faults()
            assert csms.faults is None

    run(body())


def test_set_faults_refuses_unknown_actions_and_keeps_the_faults_in_force() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            plan = csms.set_faults(delay=1.0)
            with pytest.raises(ValueError, match="not an action a charge point sends: 'Reset'"):
                csms.set_faults(delay=1.0, actions=["Heartbeat", "Reset"])
            with pytest.raises(ValueError, match="share and actions go with a delay"):
                csms.set_faults(share=0.5)
            assert csms.faults is plan

    run(body())


def test_delayed_answers_arrive_late_and_hold_no_other_answer_up() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            csms.set_faults(delay=1.0, actions=["Heartbeat"])
            loop = asyncio.get_running_loop()
            started = loop.time()
            await ws.send(ocppj.call_frame("hb", "Heartbeat", {}))
            # Sent after the Heartbeat, answered before it: the connection went on reading.
            reply = await call(ws, "Authorize", {"idTag": "T"}, "auth")
            assert reply == {"idTagInfo": {"status": "Accepted"}}
            assert loop.time() - started < 1.0
            late = json.loads(await receive(ws))
            assert late[:2] == [ocppj.CALLRESULT, "hb"] and "currentTime" in late[2]
            assert loop.time() - started >= 1.0
            assert csms.stats["faults.delayed"] == 1
            assert csms.stats["Heartbeat"] == 1  # received and answered, late

    run(body())


def test_callerror_faults_answer_with_their_code_late_if_delayed() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            csms.set_faults(callerror=ocppj.INTERNAL_ERROR)
            reply = await call(ws, "Heartbeat", {}, "1")
            assert reply == [4, "1", "InternalError", faults.FAULT_DESCRIPTION, {}]
            csms.set_faults(callerror=ocppj.SECURITY_ERROR, delay=0.3, actions=["Authorize"])
            loop = asyncio.get_running_loop()
            started = loop.time()
            reply = await call(ws, "Authorize", {"idTag": "T"}, "2")
            assert reply[:3] == [4, "2", "SecurityError"]
            assert loop.time() - started >= 0.3
            assert "currentTime" in await call(ws, "Heartbeat", {}, "3")  # not of its actions
            csms.clear_faults()
            assert await call(ws, "Authorize", {"idTag": "T"}, "4") == {
                "idTagInfo": {"status": "Accepted"}
            }
            assert csms.stats["faults.callerror"] == 2
            assert csms.stats["sent.callerror"] == 2

    run(body())


def test_a_share_of_the_answers_is_faulty() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            csms.set_faults(callerror=ocppj.GENERIC_ERROR, share=0.5)
            frames = [ocppj.call_frame(str(n), "Heartbeat", {}) for n in range(200)]
            kinds = [(await exchange(ws, frame))[0] for frame in frames]
            errors = sum(kind == ocppj.CALLERROR for kind in kinds)
            assert 60 <= errors <= 140, errors  # 100 expected, sd 7
            assert csms.stats["faults.callerror"] == errors

    run(body())


def test_delayed_answers_die_with_their_connection() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            csms.set_faults(delay=30)
            async with charge_point(csms.url) as ws:
                await ws.send(ocppj.call_frame("hb", "Heartbeat", {}))
                await until(lambda: csms.stats["faults.delayed"] == 1)
                (connection,) = csms.connections.values()
                (task,) = connection.delayed
            await until(lambda: task.done())
            assert task.cancelled()
            assert not connection.delayed

    run(body())


# Stray frames.


def test_frames_go_to_the_charge_points_targeted() -> None:
    async def body() -> None:
        ids = ["CP-1", "CP-2", "CP-3", "CP-4"]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            assert await csms.send_frames("unknown-id", charge_point_ids=["CP-2", "gone"]) == 1
            assert await csms.send_frames("invalid-payload", share=0.5) == 2
            await until(lambda: sum(len(fake.calls) for fake in fakes) == 2)
            assert all(len(fake.calls) <= 1 for fake in fakes)
            assert {fake.calls[0][2] for fake in fakes if fake.calls} == {"Reset"}
            # Each frame has a unique id of its own, which no charge point's CALL has.
            uids = [fake.calls[0][1] for fake in fakes if fake.calls]
            assert len(set(uids)) == 2 and all(uid.startswith("fault-") for uid in uids)
            assert csms.stats["faults.frames.unknown-id"] == 1
            assert csms.stats["faults.frames.invalid-payload"] == 2
            with pytest.raises(ValueError, match="kind must be one of"):
                await csms.send_frames("nonsense")
            with pytest.raises(ValueError, match="share must be"):
                await csms.send_frames("binary", share=0)

    run(body())


@pytest.mark.parametrize("kind", ["malformed-json", "unknown-type", "unknown-id", "binary"])
def test_a_stray_frame_arrives_as_its_kind_says(kind: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            await call(ws, "Heartbeat", {}, "registered")
            assert await csms.send_frames(kind) == 1
            frame = await receive(ws)
            expected = faults.stray_frame(kind, "fault-1")
            assert frame == expected

    run(body())


def test_a_huge_frame_makes_a_client_close_with_1009_and_its_callerror_counts() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            async with charge_point(csms.url, "CP-1") as ws:
                await call(ws, "Heartbeat", {}, "registered")
                assert await csms.send_frames("huge") == 1
                with pytest.raises(ConnectionClosedError) as info:
                    await receive(ws)
                assert info.value.sent is not None and info.value.sent.code == 1009
            # A client with room for it gets a DataTransfer CALL.
            url = f"{csms.url}/ocpp/CP-2"
            async with connect(url, subprotocols=["ocpp1.6"], max_size=4 << 20) as ws:
                await call(ws, "Heartbeat", {}, "registered")
                assert await csms.send_frames("huge", charge_point_ids=["CP-2"]) == 1
                frame = json.loads(await receive(ws))
                assert frame[2] == "DataTransfer"
                await ws.send(ocppj.error_frame(frame[1], ocppj.NOT_SUPPORTED))
                await until(lambda: csms.stats["received.callerror"] == 1)
            assert csms.stats["received.callerror.NotSupported"] == 1

    run(body())


# Restarts.


def test_restart_closes_with_1012_refuses_while_down_and_listens_again_on_the_port() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            url = csms.url
            async with charge_point(url, "CP-1") as one, charge_point(url, "CP-2") as two:
                await call(one, "Heartbeat", {}, "a")
                await call(two, "Heartbeat", {}, "b")
                loop = asyncio.get_running_loop()
                started = loop.time()
                restart = asyncio.create_task(csms.restart(down=2.0))
                for ws in (one, two):
                    with pytest.raises(ConnectionClosed):
                        await receive(ws)
                    assert ws.close_code == 1012
                with pytest.raises(OSError):
                    async with charge_point(url, "CP-3"):
                        pass
                with pytest.raises(RuntimeError, match="not started"):
                    _ = csms.url  # while down
                assert await restart == 2
                assert loop.time() - started >= 2.0
            assert csms.url == url
            async with charge_point(url, "CP-1") as again:
                assert "currentTime" in await call(again, "Heartbeat", {}, "c")
            assert csms.stats["restarts"] == 1
            assert csms.stats["connections.closed_by_csms"] == 2
            assert csms.stats["connections.total"] == 3

    run(body())


def test_restart_refuses_bad_arguments_and_a_second_restart() -> None:
    async def body() -> None:
        csms = Csms(CsmsConfig(port=0))
        with pytest.raises(RuntimeError, match="not listening"):
            await csms.restart(down=1)
        async with csms:
            for kwargs, match in [
                ({"down": -1}, "down must be 0 to 3600 seconds"),
                ({"down": "1"}, "down must be a number"),
                ({"down": 1, "code": 1006}, "code must be a close code a server may send"),
            ]:
                with pytest.raises(ValueError, match=match):
                    await csms.restart(**kwargs)
            first = asyncio.create_task(csms.restart(down=0.2, code=1001))
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError, match="restarting already"):
                await csms.restart(down=0.2)
            assert await first == 0

    run(body())


def test_stopping_while_down_keeps_the_csms_stopped() -> None:
    async def body() -> None:
        csms = Csms(CsmsConfig(port=0))
        await csms.start()
        url = csms.url
        restart = asyncio.create_task(csms.restart(down=30))
        await until(lambda: csms.stats["restarts"] == 1)
        async with asyncio.timeout(TIMEOUT):
            await csms.stop()
            assert await restart == 0
        with pytest.raises(OSError):
            async with connect(f"{url}/CP-1", subprotocols=["ocpp1.6"], open_timeout=1):
                pass

    run(body())
