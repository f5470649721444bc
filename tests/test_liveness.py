"""A session against a CSMS that stops listening, answers late or speaks outside OCPP's words:
pings, dead connections, late answers and the closed vocabulary of what is reported."""

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol import ocppj
from swarm.protocol.rpc import CallRejected, CallTimeout
from swarm.protocol.samples import CSMS, NOT_AN_OCPP_CODE, UNKNOWN_ACTION
from swarm.station.config import ChargePointConfig
from tests.scripted import BOOT_ACCEPTED, answer, answer_everything, run, scripted_csms, until
from tests.test_rpc import session_to

TIME = {"currentTime": "2026-01-01T00:00:00Z"}


async def half_open(ws, script):
    """Answer one CALL, then stop reading and writing for 2 s but keep the socket open."""
    frame = await script.receive(ws)
    await ws.send(answer(frame, TIME))
    ws.transport.pause_reading()
    await asyncio.sleep(2)
    ws.transport.resume_reading()  # and see that the charge point has gone
    await ws.wait_closed()


def test_a_half_open_connection_is_dropped_within_the_ping_interval_plus_the_timeout():
    async def main():
        samples = []
        async with scripted_csms(half_open) as (url, _):
            session = await session_to(url, samples, ping_interval=0.2, call_timeout=0.3)
            await session.call("Heartbeat", {})
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ConnectionClosed):
                await session.sleep(5)
            elapsed = loop.time() - started
        assert session.dead == "no pong in time"
        assert 0.45 <= elapsed < 1.5, elapsed

    run(main())


def test_pongs_keep_a_connection_and_a_new_interval_takes_effect_at_once():
    pings = 0

    async def counting(ws, script):
        nonlocal pings
        real = ws.process_event

        def process_event(event):
            nonlocal pings
            pings += event.opcode.name == "PING"
            real(event)

        ws.process_event = process_event
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(counting) as (url, _):
            session = await session_to(url, samples, ping_interval=0.1, call_timeout=0.5)
            await asyncio.sleep(0.55)
            assert 3 <= pings <= 6, pings
            session.ping_interval = 0  # off, at once
            before = pings
            await asyncio.sleep(0.4)
            assert pings - before <= 1  # one may have been on its way
            assert not session.closed and session.dead is None
            session.ping_interval = 0.05
            before = pings
            await asyncio.sleep(0.4)
            assert pings - before >= 4
            assert await session.call("Heartbeat", {}) == TIME
            await session.close()

    run(main())


def test_calltimeouts_in_a_row_make_a_connection_dead_and_an_answer_breaks_the_row():
    async def every_other(ws, script):
        count = 0
        while True:
            frame = await script.receive(ws)
            count += 1
            if count in (2, 4, 5):  # answer the 2nd, then none from the 5th on
                continue
            await ws.send(answer(frame, TIME))

    async def main():
        samples = []
        async with scripted_csms(every_other) as (url, _):
            session = await session_to(url, samples, call_timeout=0.2, dead_after=2)
            await session.call("Heartbeat", {})  # 1
            with pytest.raises(CallTimeout):
                await session.call("Heartbeat", {})  # 2: one in a row
            await session.call("Heartbeat", {})  # 3: the row is broken
            with pytest.raises(CallTimeout):
                await session.call("Heartbeat", {})  # 4
            assert session.dead is None
            with pytest.raises(CallTimeout):
                await session.call("Heartbeat", {})  # 5: two in a row
            assert session.dead == "2 CallTimeouts in a row"
            with pytest.raises(ConnectionClosed):
                await session.sleep(2)

    run(main())


def test_a_late_answer_goes_to_its_call_late_handler_and_fails_nothing_else():
    async def late(ws, script):
        first = await script.receive(ws)
        second = await script.receive(ws)  # sent after the first timed out
        await ws.send(answer(first, {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}))
        await ws.send(answer(second, TIME))
        await ws.wait_closed()

    async def main():
        samples, late_payloads = [], []
        async with scripted_csms(late) as (url, _):
            session = await session_to(url, samples, call_timeout=0.2)
            with pytest.raises(CallTimeout):
                await session.call(
                    "StartTransaction",
                    {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "x"},
                    late=late_payloads.append,
                )
            assert await session.call("Heartbeat", {}) == TIME
            await session.close()
        assert late_payloads == [{"transactionId": 7, "idTagInfo": {"status": "Accepted"}}]
        assert [s.error for s in samples[1:]] == ["CallTimeout", None]  # no stray reported

    run(main())


@pytest.mark.parametrize("code", ["ErrX1", "E" * 50_000, "", "internalerror"])
def test_a_callerror_code_of_no_ocpp_version_is_reported_under_one_fixed_text(code):
    async def inventive(ws, script):
        frame = await script.receive(ws)
        await ws.send(json.dumps([4, frame[1], code, "x" * 1000, {}]))
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(inventive) as (url, _):
            session = await session_to(url, samples)
            with pytest.raises(CallRejected) as info:
                await session.call("Heartbeat", {})
            await session.close()
        assert info.value.code == code  # as sent, for whoever handles the refusal
        assert samples[-1].error == f"CALLERROR {NOT_AN_OCPP_CODE}"

    run(main())


def test_calls_of_unknown_actions_share_one_row_and_known_ones_keep_theirs():
    async def commanding(ws, script):
        for n, action in enumerate(["Rest" + "x" * 10_000, "Zz1", "Reset", "Heartbeat"]):
            await ws.send(json.dumps([2, str(n), action, {}]))
        for _ in range(4):
            await script.receive(ws)
        await ws.wait_closed()

    def handler(action, payload):
        raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, "no")

    async def main():
        samples = []
        async with scripted_csms(commanding) as (url, script):
            session = await session_to(url, samples, handler=handler)
            await script.wait_for(lambda: len(script.frames) == 4)
            await session.close()
        names = sorted(s.name for s in samples if s.request_type == CSMS)
        # Heartbeat is an action of 1.6 (the charge point's): its own row, refused as it is.
        assert names == sorted([UNKNOWN_ACTION, UNKNOWN_ACTION, "Reset", "Heartbeat"])

    run(main())


def test_a_call_nested_too_deeply_is_refused_to_its_own_id():
    deep = '[2,"deep-1","DataTransfer",{"vendorId":"v","data":' + "[" * 100_000

    async def sender(ws, script):
        await ws.send(deep + "]" * 100_000 + "}]")
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(sender) as (url, script):
            session = await session_to(url, samples)
            await script.wait_for(lambda: any(f[0] == 4 for f in script.frames))
            assert await session.call("Heartbeat", {}) == TIME
            await session.close()
        refusal = next(f for f in script.frames if f[0] == 4)
        assert refusal[1:3] == ["deep-1", "FormationViolation"]

    run(main())


def test_change_configuration_of_websocket_ping_interval_takes_effect_at_once():
    pings: list[float] = []

    async def configuring(ws, script):
        loop = asyncio.get_running_loop()
        real = ws.process_event

        def process_event(event):
            if event.opcode.name == "PING":
                pings.append(loop.time())
            real(event)

        ws.process_event = process_event
        frame = await script.receive(ws)  # BootNotification
        await ws.send(answer(frame, BOOT_ACCEPTED))
        change = {"key": "WebSocketPingInterval", "value": "1"}
        await ws.send(json.dumps([2, "c1", "ChangeConfiguration", change]))
        await answer_everything(ws, script)

    async def main():
        config = ChargePointConfig(authorize_interval=0, heartbeat_interval=30, ping_interval=0)
        async with scripted_csms(configuring) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda sample: None)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(pings) >= 2, timeout=5)
                answers = [f for f in script.frames if f[0] == 3 and f[1] == "c1"]
                assert answers[0][2] == {"status": "Accepted"}
                assert cp.configuration.value("WebSocketPingInterval") == "1"
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        assert 0.8 <= pings[1] - pings[0] < 1.5

    run(main())
