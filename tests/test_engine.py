"""The engine: charge points in an event loop on its own thread, controlled from another."""

import asyncio
import time

import pytest

from swarm.engine import Engine
from swarm.eventloop import _asyncio_loop, loop_factory
from swarm.station.config import ChargePointConfig
from tests.scripted import (
    BOOT_ACCEPTED,
    answer,
    answer_everything,
    call_in,
    in_thread,
    recording_csms,
    scripted_csms,
)

CONFIG = ChargePointConfig(heartbeat_interval=0.05, authorize_interval=0)


def wait_until(predicate, timeout=5.0):
    """Poll ``predicate`` from this (plain) thread; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


LOOPS = {"default": loop_factory(), "asyncio": _asyncio_loop}  # default: uvloop where installed


async def until(predicate, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("loop", LOOPS)
def test_charge_points_run_report_and_close_cleanly(loop):
    engine = Engine(loop_factory=LOOPS[loop])
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), csms_loop):
        engine.start()
        for n in range(5):
            engine.start_charge_point(f"CP-{n}", f"{url}/CP-{n}", CONFIG)
        wait_until(lambda: engine.census()["accepted"] == 5)
        time.sleep(0.3)
        # As at the end of a Locust run: every user's on_stop is stopping its charge point
        # when the engine shuts down. Shutting down must wait for their close handshakes, not
        # cut them short with a second cancel and stop the loop under them.
        for n in range(5):
            engine.stop_charge_point(f"CP-{n}")
        assert engine.shutdown(5.0)
        wait_until(lambda: len(call_in(csms_loop, lambda: script.close_codes)) == 5)
        paths, close_codes = call_in(csms_loop, lambda: (sorted(script.paths), script.close_codes))
    assert paths == [f"/CP-{n}" for n in range(5)]
    assert close_codes == [1000] * 5
    samples = engine.drain()
    names = [s.name for s in samples if s.error is None]
    assert names.count("connect") == names.count("BootNotification") == 5
    assert names.count("Heartbeat") >= 5
    assert not [s for s in samples if s.error]
    assert engine.drain() == []
    assert len(engine) == 0


def test_calls_made_before_the_thread_runs_are_kept():
    engine = Engine()

    async def main():
        async with scripted_csms(answer_everything) as (url, script):
            engine.start_charge_point("CP-1", f"{url}/CP-1", CONFIG)
            engine.start()
            await until(lambda: script.calls("BootNotification"))
            await asyncio.to_thread(engine.shutdown, 5.0)

    asyncio.run(main())


def test_control_calls_after_shutdown_do_nothing():
    # Locust stops its users after the quitting event, in which the engine has shut down.
    engine = Engine()
    engine.start()
    assert engine.shutdown(5.0)
    engine.stop_charge_point("CP-1")
    engine.start_charge_point("CP-2", "ws://127.0.0.1:9/CP-2", CONFIG)
    engine.drop_connections(1.0)
    assert len(engine) == 0


def test_shutdown_of_an_engine_never_started_returns_at_once():
    started = time.monotonic()
    assert Engine().shutdown(timeout=5.0)
    assert time.monotonic() - started < 1


def test_shutdown_says_so_when_the_csms_does_not_complete_the_close():
    async def deaf(ws, script):
        frame = await script.receive(ws)
        await ws.send(answer(frame, BOOT_ACCEPTED))
        ws.transport.pause_reading()  # does not read the close frame, so does not answer it
        await asyncio.sleep(1.5)  # past the engine's deadline
        ws.transport.resume_reading()
        await ws.wait_closed()

    engine = Engine()
    with in_thread(lambda: scripted_csms(deaf)) as ((url, _), _):
        engine.start()
        engine.start_charge_point("CP-1", f"{url}/CP-1", CONFIG)
        wait_until(lambda: engine.census()["accepted"] == 1)
        assert engine.census()["accepted"] == 1
        assert engine.shutdown(timeout=0.5) is False


def test_a_scenario_has_a_charge_point_send_a_data_transfer():
    engine = Engine()
    with in_thread(lambda: scripted_csms(answer_everything)) as ((url, script), csms_loop):
        engine.start()
        engine.start_charge_point("CP-1", f"{url}/CP-1", CONFIG)
        wait_until(lambda: engine.census()["accepted"] == 1)
        engine.data_transfer("CP-1", "acme", "ping", "42")
        engine.data_transfer("CP-1", "x" * 300)  # too long a vendorId: refused, nothing sent
        calls = wait_until(lambda: call_in(csms_loop, lambda: script.calls("DataTransfer")))
        assert engine.shutdown(5.0)
    assert [c[3] for c in calls] == [{"vendorId": "acme", "messageId": "ping", "data": "42"}]
    assert any(s.name == "DataTransfer" and s.error is None for s in engine.drain())


def test_dropped_connections_come_back_and_the_census_counts_charging():
    config = ChargePointConfig(
        authorize_interval=0, session_interval=0.05, session_duration=30, reconnect_min=0.1
    )
    engine = Engine()
    samples = []

    def drops():
        samples.extend(engine.drain())
        return sum(sample.name == "dropped" for sample in samples)

    with in_thread(lambda: scripted_csms(recording_csms())) as ((url, script), csms_loop):
        engine.start()
        for n in range(4):
            engine.start_charge_point(f"CP-{n}", f"{url}/CP-{n}", config)
        wait_until(lambda: engine.census()["charging"] == 4)
        assert engine.census()["accepted"] == 4
        engine.drop_connections(0.5)
        wait_until(lambda: drops() == 2)
        wait_until(lambda: len(call_in(csms_loop, lambda: script.paths)) == 6)
        wait_until(lambda: engine.census()["accepted"] == 4)
        assert engine.shutdown(5.0)
    drops()
    assert [s.error for s in samples if s.name == "dropped"] == [None, None]
    assert not [s for s in samples if s.error], [s for s in samples if s.error][:3]
    with pytest.raises(ValueError, match="share"):
        engine.drop_connections(1.5)
