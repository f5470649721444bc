"""swarm.protocol.trace: the ring of a charge point's frames, what triggers a trace and what it
holds, as plain asyncio; and a charge point whose CSMS stops answering, traced end to end."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from swarm.engine import Engine
from swarm.protocol import trace as tracing
from swarm.protocol.samples import OCPP, WEBSOCKET, Sample
from swarm.protocol.trace import RECEIVED, SENT, TEXT_LIMIT, FrameTrace, Tracer
from swarm.station.config import ChargePointConfig
from tests.scripted import answer, in_thread, run, scripted_csms, until

HEARTBEAT = b'[2,"%d","Heartbeat",{}]'
FAILED = Sample(OCPP, "Heartbeat", 30000.0, "CallTimeout")


def beats(trace: FrameTrace, numbers: range) -> None:
    for n in numbers:
        trace.record(True, HEARTBEAT % n, time.perf_counter())


def test_the_ring_keeps_the_last_frames_numbered_and_timed() -> None:
    async def main() -> None:
        tracer = Tracer(frames=4)
        trace = tracer.trace("CP-1")
        assert trace is not None
        before = time.time()
        beats(trace, range(1, 11))
        trace.record(False, b'[3,"10",{"currentTime":"2026-12-02T00:00:00Z"}]', time.perf_counter())
        trace.failed(FAILED)
        beats(trace, range(11, 10 + tracing.AFTER))
        assert tracer.drain() == []  # the next frames are awaited
        beats(trace, range(10 + tracing.AFTER, 11 + tracing.AFTER))
        (handed,) = tracer.drain()
        assert handed.charge_point_id == "CP-1"
        assert [text for _, text in handed.failures] == ["OCPP Heartbeat: CallTimeout"]
        # The last 4 frames by then: those after the failure push the older ones out.
        last = 11 + tracing.AFTER
        assert [frame.number for frame in handed.frames] == list(range(last - 3, last + 1))
        assert [frame.text for frame in handed.frames] == [
            (HEARTBEAT % n).decode() for n in range(last - 4, last)
        ]
        assert all(frame.direction == SENT for frame in handed.frames)
        assert all(before <= frame.at <= time.time() for frame in handed.frames)

    run(main())


def test_a_long_frame_is_cut_with_its_length_kept_and_large_ones_leave_less_room() -> None:
    async def main() -> None:
        tracer = Tracer(frames=32)
        trace = tracer.trace("CP-1")
        assert trace is not None
        long = b'[3,"1",{"data":"' + b"x" * 2000 + b'"}]'
        for _ in range(10):
            trace.record(False, long, time.perf_counter())
        trace.failed(FAILED)
        trace._hand_in()
        (handed,) = tracer.drain()
        # 32 frames of 56 bytes of room: three of the long ones fit.
        assert 1 <= len(handed.frames) <= 32 * tracing.FRAME_BYTES // TEXT_LIMIT
        assert all(frame.direction == RECEIVED for frame in handed.frames)
        assert {frame.length for frame in handed.frames} == {len(long)}
        assert {len(frame.text) for frame in handed.frames} == {TEXT_LIMIT}
        assert handed.frames[-1].number == 10

    run(main())


def test_a_trace_is_handed_in_after_follow_seconds_when_no_frames_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracing, "FOLLOW", 0.05)

    async def main() -> None:
        tracer = Tracer()
        trace = tracer.trace("CP-1")
        assert trace is not None
        beats(trace, range(1, 3))
        trace.failed(FAILED)
        trace.failed(Sample(WEBSOCKET, "connection lost", 0.0, "ConnectionClosed: code 1006"))
        await until(lambda: tracer._out, timeout=2.0)
        (handed,) = tracer.drain()
        assert [text for _, text in handed.failures] == [
            "OCPP Heartbeat: CallTimeout",
            "WebSocket connection lost: ConnectionClosed: code 1006",
        ]
        assert [frame.number for frame in handed.frames] == [1, 2]
        # A second failure hands in only the frames since.
        beats(trace, range(3, 4))
        trace.failed(FAILED)
        await until(lambda: tracer._out, timeout=2.0)
        (again,) = tracer.drain()
        assert [frame.number for frame in again.frames] == [3]

    run(main())


def test_failed_connects_and_charge_points_past_the_limit_are_not_traced() -> None:
    async def main() -> None:
        tracer = Tracer(limit=2)
        traces = [tracer.trace(f"CP-{n}") for n in range(4)]
        for trace in traces:
            assert trace is not None
            beats(trace, range(1, 2))
            trace.failed(Sample(WEBSOCKET, "connect", 3.0, "ConnectionRefusedError"))
        assert tracer.traced == set()
        for trace in traces:
            assert trace is not None
            trace.failed(FAILED)
            beats(trace, range(2, 2 + tracing.AFTER))
        assert tracer.traced == {"CP-0", "CP-1"}
        assert [handed.charge_point_id for handed in tracer.drain()] == ["CP-0", "CP-1"]

    run(main())


def test_every_frame_mode_hands_in_each_frame_as_it_comes_and_failures_alone() -> None:
    async def main() -> None:
        tracer = Tracer(frames=0, limit=0, every_frame=True)
        traces = [tracer.trace(f"CP-{n}") for n in range(3)]
        for trace in traces:
            assert trace is not None
            beats(trace, range(1, 4))
        traces[0].failed(FAILED)  # type: ignore[union-attr]
        handed = tracer.drain()
        frames = [(h.charge_point_id, f.number) for h in handed for f in h.frames]
        assert frames == [(f"CP-{n}", k) for n in range(3) for k in range(1, 4)]
        assert handed[-1].frames == [] and handed[-1].failures[0][1].endswith("CallTimeout")
        assert tracer.traced == {"CP-0", "CP-1", "CP-2"}

    run(main())


def test_no_trace_when_frames_is_zero() -> None:
    assert Tracer(frames=0).trace("CP-1") is None
    with pytest.raises(ValueError, match="at least 0"):
        Tracer(frames=-1)


@pytest.mark.parametrize(
    ("frame", "kept"),
    [
        (
            [2, "7", "ChangeConfiguration", {"key": "authorizationKey", "value": "0011AABBCC"}],
            '[2,"7","ChangeConfiguration",{"withheld":"it may carry a secret"}]',
        ),
        (
            [
                2,
                "8",
                "SetVariables",
                {
                    "setVariableData": [
                        {
                            "attributeValue": "0011AABBCC",
                            "component": {"name": "SecurityCtrlr"},
                            "variable": {"name": "BasicAuthPassword"},
                        }
                    ]
                },
            ],
            '[2,"8","SetVariables",{"withheld":"it may carry a secret"}]',
        ),
        ('{"apnPassword": "0011AABBCC"', '{"withheld":"it may carry a secret"}'),
    ],
)
def test_a_frame_naming_a_secret_is_kept_without_its_payload(frame: Any, kept: str) -> None:
    async def main() -> None:
        tracer = Tracer()
        trace = tracer.trace("CP-1")
        assert trace is not None
        data = (frame if isinstance(frame, str) else json.dumps(frame)).encode()
        trace.record(False, data, time.perf_counter())
        trace.failed(FAILED)
        trace._hand_in()
        (handed,) = tracer.drain()
        assert [frame.text for frame in handed.frames] == [kept]
        assert "0011AABBCC" not in repr(handed)

    run(main())


def test_a_charge_point_whose_csms_stops_answering_hands_in_the_frames_of_its_timeout() -> None:
    # Boots, then its CSMS answers no Heartbeat: the trace holds the boot, the status, and the
    # Heartbeat that timed out, as they were on the wire both ways.
    async def mute_after_boot(ws: Any, script: Any) -> None:
        while True:
            frame = await script.receive(ws)
            if frame[2] == "BootNotification":
                accepted = {"currentTime": "2026-12-02T00:00:00Z", "interval": 1}
                await ws.send(answer(frame, {**accepted, "status": "Accepted"}))
            elif frame[2] == "StatusNotification":
                await ws.send(answer(frame, {}))

    config = ChargePointConfig(heartbeat_interval=0.2, authorize_interval=0, call_timeout=0.5)
    engine = Engine(tracer=Tracer(frames=32))
    with in_thread(lambda: scripted_csms(mute_after_boot)) as ((url, _), _):
        engine.start()
        try:
            engine.start_charge_point("TRACED-1", f"{url}/TRACED-1", config)
            deadline = time.monotonic() + 15
            traces = []
            while not traces and time.monotonic() < deadline:
                time.sleep(0.05)
                traces = engine.drain_traces()
        finally:
            assert engine.shutdown(timeout=5.0)
    assert traces, "no trace within 15 s"
    handed = traces[0]
    assert handed.charge_point_id == "TRACED-1"
    assert handed.failures[0][1] == "OCPP Heartbeat: CallTimeout"
    exchanged = [(frame.direction, json.loads(frame.text)) for frame in handed.frames]
    assert [(d, m[0], m[2] if m[0] == 2 else None) for d, m in exchanged[:4]] == [
        (SENT, 2, "BootNotification"),
        (RECEIVED, 3, None),
        (SENT, 2, "StatusNotification"),
        (RECEIVED, 3, None),
    ]
    assert (SENT, "Heartbeat") in [(d, m[2]) for d, m in exchanged if m[0] == 2]
    assert [frame.number for frame in handed.frames] == list(range(1, len(handed.frames) + 1))
