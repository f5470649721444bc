"""The RPC layer against a scripted CSMS, as plain asyncio: timing, correlation, faults."""

import asyncio
import errno
import json
import os

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode

from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj
from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, open_session
from swarm.protocol.samples import CSMS, OCPP, UNKNOWN_ACTION, WEBSOCKET
from tests.scripted import answer, answer_everything, scripted_csms


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, 20))


async def session_to(url, samples, **kwargs):
    kwargs.setdefault("call_timeout", 5.0)
    return await open_session(
        url + "/CP-1", samples.append, dialect=OCPP16, connect_timeout=5.0, **kwargs
    )


def test_round_trip_is_one_sample_timed_from_send_to_answer():
    async def slow(ws, script):
        frame = await script.receive(ws)
        await asyncio.sleep(0.2)
        await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(slow) as (url, script):
            session = await session_to(url, samples)
            payload = await session.call("Heartbeat", {})
            await session.close()
        assert payload == {"currentTime": "2026-01-01T00:00:00Z"}
        assert script.paths == ["/CP-1"]
        (connect, heartbeat) = samples
        assert (connect.request_type, connect.name, connect.error) == (WEBSOCKET, "connect", None)
        assert (heartbeat.request_type, heartbeat.name, heartbeat.error) == (
            OCPP,
            "Heartbeat",
            None,
        )
        assert 200 <= heartbeat.response_time < 1000

    run(main())


def test_callerror_is_a_failure_naming_its_code():
    async def rejecting(ws, script):
        frame = await script.receive(ws)
        await ws.send(ocppj.error_frame(frame[1], "SecurityError", "nope"))
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(rejecting) as (url, _):
            session = await session_to(url, samples)
            with pytest.raises(CallRejected) as info:
                await session.call("Authorize", {"idTag": "X"})
            await session.close()
        assert info.value.code == "SecurityError"
        assert samples[-1].name == "Authorize"
        assert samples[-1].error == "CALLERROR SecurityError"

    run(main())


@pytest.mark.parametrize("lost_id", ["", "-1", -1, None, "null"])
def test_callerror_without_a_readable_id_fails_no_call_and_is_a_stray(lost_id):
    async def confused(ws, script):
        frame = await script.receive(ws)
        await ws.send(json.dumps([4, lost_id, "FormationViolation", "cannot read that", {}]))
        await asyncio.sleep(0.05)
        await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(confused) as (url, _):
            session = await session_to(url, samples)
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        assert [(s.name, s.error) for s in samples[1:]] == [
            ("unexpected answer", "no CALL has its unique id"),
            ("Heartbeat", None),
        ]

    run(main())


def test_no_answer_is_a_timeout_failure():
    async def silent(ws, script):
        await script.receive(ws)
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(silent) as (url, _):
            session = await session_to(url, samples, call_timeout=0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(CallTimeout):
                await session.call("Heartbeat", {})
            assert 0.3 <= loop.time() - started < 2
            await session.close()
        assert samples[-1].name == "Heartbeat"
        assert samples[-1].error.startswith("CallTimeout")

    run(main())


def test_never_more_than_one_call_in_flight():
    in_flight_at_most = 0

    async def counting(ws, script):
        nonlocal in_flight_at_most
        while True:
            frame = await script.receive(ws)
            # A second CALL arriving before this one is answered would show here.
            try:
                extra = await asyncio.wait_for(ws.recv(), 0.05)
                in_flight_at_most = max(in_flight_at_most, 2)
                script.frames.append(json.loads(extra))
            except TimeoutError:
                in_flight_at_most = max(in_flight_at_most, 1)
            await ws.send(answer(frame, {}))

    async def main():
        samples = []
        async with scripted_csms(counting) as (url, script):
            session = await session_to(url, samples)
            await asyncio.gather(*(session.call("StatusNotification", {}) for _ in range(5)))
            await session.close()
        assert len(script.calls("StatusNotification")) == 5
        assert in_flight_at_most == 1
        assert [s.error for s in samples if s.request_type == OCPP] == [None] * 5

    run(main())


def test_calls_take_turns_in_order_and_cancelled_ones_give_theirs_up():
    async def held(ws, script):
        while True:
            await script.receive(ws)  # answered by hand below

    async def main():
        samples = []
        async with scripted_csms(held) as (url, script):
            session = await session_to(url, samples)
            calls = [asyncio.create_task(session.call(f"Action{n}", {})) for n in range(4)]
            await script.wait_for(lambda: len(script.frames) == 1)
            calls[2].cancel()  # while it waits for its turn
            await asyncio.sleep(0)
            session._on_message(b'[3,"1",{}]', Opcode.TEXT, 0.0)  # the first call's answer
            await asyncio.sleep(0)  # its call ends and hands the turn to the second...
            calls[1].cancel()  # ...which is cancelled before it runs: the fourth goes next
            await script.wait_for(lambda: len(script.frames) == 2)
            session._on_message(b'[3,"2",{}]', Opcode.TEXT, 0.0)
            results = await asyncio.gather(*calls, return_exceptions=True)
            await session.close()
        assert [f[2] for f in script.frames[:2]] == ["Action0", "Action3"]
        assert results[0] == {} and results[3] == {}
        assert isinstance(results[1], asyncio.CancelledError)
        assert isinstance(results[2], asyncio.CancelledError)

    run(main())


def test_the_timeout_counts_from_each_call_s_own_send():
    async def first_only(ws, script):
        frame = await script.receive(ws)
        await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        while True:
            await script.receive(ws)

    async def timed_out_after(url, first_timeout, then_timeout, pause):
        session = await session_to(url, [], call_timeout=first_timeout)
        loop = asyncio.get_running_loop()
        await session.call("Heartbeat", {})  # answered: its deadline is left behind
        await asyncio.sleep(pause)
        session.call_timeout = then_timeout
        started = loop.time()
        with pytest.raises(CallTimeout):
            await session.call("Heartbeat", {})
        elapsed = loop.time() - started
        await session.close()
        return elapsed

    async def main():
        async with scripted_csms(first_only) as (url, _):
            # The first call's deadline passes while the second is in flight.
            second = await timed_out_after(url, 0.3, 0.3, 0.2)
            # The second call's deadline comes before the first call's would have.
            third = await timed_out_after(url, 5.0, 0.1, 0.0)
        return second, third

    second, third = run(main())
    assert 0.29 <= second < 0.6, second
    assert 0.09 <= third < 0.25, third


def test_csms_calls_get_callerrors_until_handled():
    async def commanding(ws, script):
        await ws.send(json.dumps([2, "a", "Reset", {"type": "Soft"}]))
        await ws.send(json.dumps([2, "b", "NoSuchAction", {}]))
        await script.receive(ws)
        await script.receive(ws)
        await ws.wait_closed()

    def handler(action, payload):
        raise ocppj.FrameError(
            ocppj.NOT_SUPPORTED if action == "Reset" else ocppj.NOT_IMPLEMENTED, action
        )

    async def main():
        samples = []
        async with scripted_csms(commanding) as (url, script):
            session = await session_to(url, samples, handler=handler)
            await script.wait_for(lambda: len(script.frames) == 2)
            await session.close()
        assert sorted((f[1], f[2]) for f in script.frames) == [
            ("a", "NotSupported"),
            ("b", "NotImplemented"),
        ]
        # An action of no OCPP version's is reported under one fixed name, whatever it was.
        assert {(s.request_type, s.name) for s in samples if s.error} == {
            (CSMS, "Reset"),
            (CSMS, UNKNOWN_ACTION),
        }

    run(main())


def test_handled_csms_call_is_answered_and_counted():
    async def commanding(ws, script):
        await ws.send(json.dumps([2, "c1", "ClearCache", {}]))
        await script.receive(ws)
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(commanding) as (url, script):
            session = await session_to(
                url, samples, handler=lambda action, payload: {"status": "Accepted"}
            )
            await script.wait_for(lambda: len(script.frames) == 1)
            await session.close()
        assert script.frames == [[3, "c1", {"status": "Accepted"}]]
        assert any(
            s.request_type == CSMS and s.name == "ClearCache" and s.error is None for s in samples
        )

    run(main())


def test_malformed_and_stray_frames_are_counted_and_survived():
    async def garbage(ws, script):
        await ws.send("this is not json")
        await ws.send(json.dumps([3, "no-such-id", {}]))
        await ws.send(b"\x00\x01")
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(garbage) as (url, script):
            session = await session_to(url, samples)
            await script.wait_for(lambda: any(f[0] == 4 for f in script.frames))
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        assert next(f for f in script.frames if f[0] == 4)[1:3] == ["-1", "FormationViolation"]
        names = {s.name for s in samples if s.request_type == WEBSOCKET and s.error}
        assert names == {"invalid frame", "unexpected answer", "binary frame"}

    run(main())


@pytest.mark.parametrize(
    "stray",
    [
        '[3, "\u00b2", {}]',  # a digit to str.isdigit(), not to int()
        '[3, "' + "9" * 5000 + '", {}]',  # over int()'s 4,300 digits
        '[3, "01", {}]',  # "1" is ours, "01" is not
        '[4, "0", "GenericError", "", {}]',
    ],
)
def test_answers_with_ids_like_no_call_of_ours_are_strays(stray):
    async def odd_ids(ws, script):
        await ws.send(stray)  # before the session is attached: held, then handed over
        frame = await script.receive(ws)
        await ws.send(stray)  # while a CALL is in flight
        await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(odd_ids) as (url, _):
            session = await session_to(url, samples)
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        strays = [s for s in samples if s.name == "unexpected answer"]
        assert [s.error for s in strays] == ["no CALL has its unique id"] * 2

    run(main())


def test_json_nested_too_deeply_is_an_invalid_frame_and_survived():
    async def deep(ws, script):
        await ws.send("[" * 100_000 + "]" * 100_000)
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(deep) as (url, script):
            session = await session_to(url, samples)
            await script.wait_for(lambda: any(f[0] == 4 for f in script.frames))
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        assert next(f for f in script.frames if f[0] == 4)[1:3] == ["-1", "FormationViolation"]
        assert [s.error for s in samples if s.name == "invalid frame"] == [
            "FormationViolation: JSON nested too deeply"
        ]

    run(main())


def test_fragmented_message_is_assembled():
    async def fragmenting(ws, script):
        frame = await script.receive(ws)
        text = answer(frame, {"currentTime": "2026-01-01T00:00:00Z"})
        await ws.send([text[:5], text[5:12], text[12:]])
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(fragmenting) as (url, _):
            session = await session_to(url, samples)
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()

    run(main())


def test_lost_connection_fails_the_call_at_once():
    async def hanging_up(ws, script):
        await script.receive(ws)
        ws.transport.abort()

    async def main():
        samples = []
        async with scripted_csms(hanging_up) as (url, _):
            session = await session_to(url, samples, call_timeout=10)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ConnectionClosed):
                await session.call("Heartbeat", {})
            assert loop.time() - started < 2
            with pytest.raises(ConnectionClosed):
                await session.sleep(10)
        assert samples[-1].error.startswith("ConnectionClosed")

    run(main())


def test_csms_without_ocpp16_subprotocol_is_refused():
    async def main():
        samples = []
        async with scripted_csms(answer_everything, subprotocol=False) as (url, _):
            with pytest.raises(ConnectionRefusedError):
                await session_to(url, samples)
        assert samples[-1].name == "connect"
        assert "subprotocol" in samples[-1].error

    run(main())


def test_refused_connect_is_a_failure_with_a_fixed_text():
    async def main():
        samples = []
        with pytest.raises(OSError):
            await open_session(
                "ws://127.0.0.1:9/CP-1",
                samples.append,
                dialect=OCPP16,
                call_timeout=1,
                connect_timeout=2,
            )
        assert samples[0].name == "connect"
        # Without the address asyncio puts in it: one row in Locust for every refused connect.
        refused = errno.ECONNREFUSED
        assert (
            samples[0].error == f"ConnectionRefusedError: [Errno {refused}] {os.strerror(refused)}"
        )

    run(main())


def test_late_answer_to_a_timed_out_call_is_no_stray():
    async def late(ws, script):
        frame = await script.receive(ws)
        await asyncio.sleep(0.4)
        await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(late) as (url, _):
            session = await session_to(url, samples, call_timeout=0.2)
            with pytest.raises(CallTimeout):
                await session.call("Heartbeat", {})
            await asyncio.sleep(0.4)  # the late answer arrives meanwhile
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        assert [(s.name, s.error is None) for s in samples if s.request_type != WEBSOCKET] == [
            ("Heartbeat", False),
            ("Heartbeat", True),
        ]
        assert not [s for s in samples if s.name == "unexpected answer"]

    run(main())


def test_answer_read_as_its_call_is_cancelled_is_no_stray():
    # Cancelling a task cancels the future it awaits at once; the call's own cleanup runs a
    # step later. An answer read in between is still that call's answer.
    async def silent(ws, script):
        await script.receive(ws)
        await ws.wait_closed()

    async def main():
        samples = []
        async with scripted_csms(silent) as (url, script):
            session = await session_to(url, samples)
            call = asyncio.create_task(session.call("Heartbeat", {}))
            await script.wait_for(lambda: script.calls("Heartbeat"))
            call.cancel()
            session._on_message(b'[3,"1",{"currentTime":"2026-01-01T00:00:00Z"}]', Opcode.TEXT, 0.0)
            with pytest.raises(asyncio.CancelledError):
                await call
            await session.close()
        assert [s.name for s in samples] == ["connect"]

    run(main())


def test_malformed_answer_fails_its_call_at_once_and_gets_no_callerror():
    async def malformed(ws, script):
        frame = await script.receive(ws)
        await ws.send(json.dumps([3, frame[1], "not an object"]))
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(malformed) as (url, script):
            session = await session_to(url, samples, call_timeout=10)
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(InvalidAnswer):
                await session.call("Heartbeat", {})
            assert loop.time() - started < 2
            assert await session.call("Heartbeat", {}) == {"currentTime": "2026-01-01T00:00:00Z"}
            await session.close()
        assert [f[0] for f in script.frames] == [2, 2]  # no CALLERROR for a bad answer
        assert (
            samples[1].error
            == "invalid answer: FormationViolation: a CALLRESULT is [3, uniqueId, {payload}]"
        )
        assert samples[2].error is None

    run(main())
