"""The charge point's state machine, as plain asyncio against the embedded and scripted CSMSs."""

import asyncio
import itertools
import json
import random
import time
from types import MappingProxyType

import pytest

from swarm.csms import Csms, CsmsConfig
from swarm.eventloop import loop_factory
from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol.rpc import OcppSession
from swarm.protocol.samples import OCPP, WEBSOCKET
from swarm.station.config import ChargePointConfig
from swarm.station.schedule import next_beat
from swarm.station.state import State
from tests.scripted import BOOT_ACCEPTED, answer, answer_everything, run, scripted_csms, until

FAST = ChargePointConfig(
    authorize_interval=0, reconnect_min=0.05, reconnect_max=0.1, call_timeout=2
)


async def running(charge_point):
    task = asyncio.create_task(charge_point.run())
    return task


async def stop(task):
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 5)


def ok(samples, request_type=OCPP):
    return [s.name for s in samples if s.request_type == request_type and s.error is None]


def test_boot_then_heartbeats_at_the_csms_interval():
    async def main():
        samples = []
        async with Csms(CsmsConfig(port=0, heartbeat_interval=1)) as csms:
            cp = ChargePoint("CP-7", csms.url + "/CP-7", FAST, samples.append)
            task = await running(cp)
            await until(lambda: cp.state is State.ACCEPTED)
            await asyncio.sleep(2.5)
            assert cp.heartbeat_interval == 1
            await stop(task)
        assert ok(samples, WEBSOCKET) == ["connect"]
        assert ok(samples)[0] == "BootNotification"
        assert 2 <= ok(samples).count("Heartbeat") <= 3  # the first at a random phase
        assert not [s for s in samples if s.error]
        assert cp.state is State.STOPPED

    run(main())


def test_heartbeat_interval_override_and_authorize_from_the_pool():
    async def main():
        samples = []
        config = ChargePointConfig(
            heartbeat_interval=0.1, authorize_interval=0.05, id_tags=("A1", "B2")
        )
        async with scripted_csms(answer_everything) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append, rng=random.Random(1))
            task = await running(cp)
            await asyncio.sleep(1.0)
            await stop(task)
        heartbeats = len(script.calls("Heartbeat"))
        assert 7 <= heartbeats <= 11  # every 0.1 s for 1 s, though the CSMS said 60
        tags = {frame[3]["idTag"] for frame in script.calls("Authorize")}
        assert tags == {"A1", "B2"}
        boot = script.calls("BootNotification")[0][3]
        assert boot["chargePointSerialNumber"] == "CP-1"
        assert (boot["chargePointVendor"], boot["chargePointModel"]) == (
            "ocpp-swarm",
            "VirtualCharger",
        )

    run(main())


def test_pending_sends_nothing_but_answers_csms_calls_then_boots_again():
    async def pending_once(ws, script):
        frame = await script.receive(ws)
        await ws.send(
            answer(
                frame, {"status": "Pending", "currentTime": "2026-01-01T00:00:00Z", "interval": 1}
            )
        )
        await ws.send(json.dumps([2, "x", "GetConfiguration", {}]))
        reply = await script.receive(ws)  # the answer to our CALL comes before any new CALL
        assert reply[0] in (3, 4)
        await answer_everything(ws, script, dict(BOOT_ACCEPTED, interval=60))

    async def main():
        samples = []
        async with scripted_csms(pending_once) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, samples.append)
            task = await running(cp)
            await until(lambda: cp.state is State.PENDING)
            pending_at = asyncio.get_running_loop().time()
            await until(lambda: cp.state is State.ACCEPTED)
            waited = asyncio.get_running_loop().time() - pending_at
            await stop(task)
        assert 0.9 <= waited < 2
        kinds = [(f[0], f[2] if f[0] == 2 else f[1]) for f in script.frames]
        # Then the statuses of the charge point and its connector.
        assert kinds[:3] == [(2, "BootNotification"), (3, "x"), (2, "BootNotification")]

    run(main())


def test_rejected_stays_mute_until_the_interval_has_passed():
    async def reject_once(ws, script):
        frame = await script.receive(ws)
        await ws.send(
            answer(
                frame, {"status": "Rejected", "currentTime": "2026-01-01T00:00:00Z", "interval": 1}
            )
        )
        await ws.send(json.dumps([2, "x", "GetConfiguration", {}]))
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(reject_once) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, samples.append)
            task = await running(cp)
            await until(lambda: cp.state is State.REJECTED)
            rejected_at = asyncio.get_running_loop().time()
            await until(lambda: cp.state is State.ACCEPTED)
            waited = asyncio.get_running_loop().time() - rejected_at
            await stop(task)
        assert 0.9 <= waited < 2
        # Nothing between the two boots: not even an answer to the CSMS's call.
        assert [f[0] for f in script.frames[:2]] == [2, 2]
        assert [f[2] for f in script.frames[:2]] == ["BootNotification"] * 2

    run(main())


@pytest.mark.parametrize("policy", ["pending", "reject"])
def test_boot_policies_of_the_embedded_csms(policy):
    async def main():
        samples = []
        config = CsmsConfig(port=0, boot=policy, boot_retry_interval=1)
        async with Csms(config) as csms:
            cp = ChargePoint("CP-9", csms.url + "/CP-9", FAST, samples.append)
            task = await running(cp)
            seen = set()
            async with asyncio.timeout(5):
                while cp.state is not State.ACCEPTED:
                    seen.add(cp.state)
                    await asyncio.sleep(0.01)
            await stop(task)
        assert (State.PENDING if policy == "pending" else State.REJECTED) in seen
        assert ok(samples).count("BootNotification") == 2

    run(main())


def test_lost_connection_is_reported_and_followed_by_a_new_boot():
    connections = 0

    async def drop_first(ws, script):
        nonlocal connections
        connections += 1
        if connections == 1:
            frame = await script.receive(ws)
            await ws.send(answer(frame, BOOT_ACCEPTED))
            await ws.close(1011, "going away for a test")
            return
        await answer_everything(ws, script)

    async def main():
        samples = []
        async with scripted_csms(drop_first) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, samples.append)
            task = await running(cp)
            await until(lambda: len(script.calls("BootNotification")) == 2)
            await until(lambda: cp.state is State.ACCEPTED)
            await stop(task)
        lost = [s for s in samples if s.name == "connection lost"]
        assert len(lost) == 1 and "1011" in lost[0].error
        assert ok(samples, WEBSOCKET) == ["connect", "connect"]

    run(main())


def test_unreachable_csms_is_retried_with_backoff():
    async def main():
        samples = []
        cp = ChargePoint("CP-1", "ws://127.0.0.1:9/CP-1", FAST, samples.append)
        task = await running(cp)
        await until(lambda: len(samples) >= 3)
        await stop(task)
        assert all(s.name == "connect" and s.error for s in samples)

    run(main())


def test_stopping_closes_the_websocket_cleanly():
    async def main():
        async with scripted_csms(answer_everything) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, lambda sample: None)
            task = await running(cp)
            await until(lambda: cp.state is State.ACCEPTED)
            await stop(task)
            await until(lambda: script.close_codes)
        assert script.close_codes == [1000]

    run(main())


class WithoutGetLog(ChargePoint):
    """A charge point that does not handle GetLog, a command of its version."""

    __slots__ = ()
    handlers = MappingProxyType({k: v for k, v in ChargePoint.handlers.items() if k != "GetLog"})


def test_csms_calls_are_refused_with_the_right_code():
    async def commanding(ws, script):
        frame = await script.receive(ws)
        await ws.send(answer(frame, BOOT_ACCEPTED))
        log = {"log": {"remoteLocation": "ftp://logs.example/"}, "logType": "SecurityLog"}
        await ws.send(json.dumps([2, "r", "GetLog", {**log, "requestId": 1}]))
        await ws.send(json.dumps([2, "u", "Frobnicate", {}]))
        await answer_everything(ws, script)

    async def main():
        async with scripted_csms(commanding) as (url, script):
            cp = WithoutGetLog("CP-1", url + "/CP-1", FAST, lambda sample: None)
            task = await running(cp)
            await until(lambda: len([f for f in script.frames if f[0] == 4]) == 2)
            await stop(task)
        errors = {f[1]: f[2] for f in script.frames if f[0] == 4}
        assert errors == {"r": "NotSupported", "u": "NotImplemented"}

    run(main())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vendor", ""),
        ("model", "x" * 21),
        ("heartbeat_interval", -1),
        ("call_timeout", 0),
        ("id_tags", ("x" * 21,)),
    ],
)
def test_config_refuses_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        ChargePointConfig(**{field: value})


@pytest.mark.parametrize(
    ("previous", "now", "expected"),
    [
        (10.0, 10.0, 11.0),
        (10.0, 10.4, 11.0),
        (10.0, 11.0, 12.0),
        (10.0, 13.5, 14.0),
        (10.0, 9.99, 11.0),
    ],
)
def test_next_beat_keeps_the_schedule_and_skips_missed_beats(previous, now, expected):
    assert next_beat(previous, 1.0, now) == expected


def test_heartbeat_loop_sleeps_once_per_beat_on_a_coarse_clock(monkeypatch):
    # uvloop's clock ticks in milliseconds: a timer may fire just before a float deadline. A
    # loop that re-read the clock to decide what is due spun until the next tick.
    sleeps = 0
    real_sleep = OcppSession.sleep

    async def counting_sleep(self, delay):
        nonlocal sleeps
        sleeps += 1
        return await real_sleep(self, delay)

    monkeypatch.setattr(OcppSession, "sleep", counting_sleep)
    config = ChargePointConfig(heartbeat_interval=0.02, authorize_interval=0)

    async def main():
        async with scripted_csms(answer_everything) as (url, script):
            task = asyncio.create_task(
                ChargePoint("CP-1", url + "/CP-1", config, lambda s: None).run()
            )
            await asyncio.sleep(1.0)
            await stop(task)
        return len(script.calls("Heartbeat"))

    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        heartbeats = runner.run(main())
    assert heartbeats >= 30
    assert sleeps <= heartbeats + 2


@pytest.mark.parametrize("interval", [-5, 0, 10**400])
def test_a_boot_interval_that_cannot_be_used_falls_back(interval):
    async def odd_interval(ws, script):
        await answer_everything(ws, script, dict(BOOT_ACCEPTED, interval=interval))

    async def main():
        config = ChargePointConfig(authorize_interval=0, fallback_interval=0.1)
        async with scripted_csms(odd_interval) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda sample: None)
            task = await running(cp)
            await asyncio.sleep(0.5)
            await stop(task)
        assert cp.heartbeat_interval == 0.1
        assert 2 <= len(script.calls("Heartbeat")) <= 6

    run(main())


@pytest.mark.parametrize(
    "change",
    [
        {"interval": "10"},
        {"interval": None},
        {"interval": True},
        {"status": "accepted"},
        {"status": None},
    ],
)
def test_an_invalid_boot_answer_is_a_failure_and_the_boot_is_retried(change):
    async def invalid_boot(ws, script):
        boot = {k: v for k, v in dict(BOOT_ACCEPTED, **change).items() if v is not None}
        await answer_everything(ws, script, boot)

    async def main():
        samples = []
        config = ChargePointConfig(authorize_interval=0, fallback_interval=0.1)
        async with scripted_csms(invalid_boot) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append)
            task = await running(cp)
            await until(lambda: len(script.calls("BootNotification")) >= 3)
            state = cp.state
            await stop(task)
        assert state in (State.BOOT_FAILED, State.BOOTING)
        assert not script.calls("Heartbeat")
        boots = [s for s in samples if s.name == "BootNotification"]
        assert boots and all(s.error.startswith("invalid answer: ") for s in boots), boots

    run(main())


def test_backoff_spreads_from_the_first_retry_and_is_bounded():
    cp = ChargePoint(
        "CP-1", "ws://x/CP-1", ChargePointConfig(), lambda s: None, rng=random.Random(7)
    )
    first = [cp._backoff(1) for _ in range(200)]
    assert min(first) >= 1.0 and max(first) <= 2.0 and max(first) - min(first) > 0.5
    assert all(1.0 <= cp._backoff(n) <= 60.0 for n in (5, 50, 5000))


def test_backoff_grows_while_the_csms_drops_every_connection():
    async def drop(ws, script):
        await ws.close(1013, "try again later")

    async def main():
        config = ChargePointConfig(authorize_interval=0, reconnect_min=0.05, reconnect_max=10)
        async with scripted_csms(drop) as (url, _):
            connects = []

            def sink(sample):
                if sample.name == "connect":
                    connects.append(time.monotonic())

            cp = ChargePoint("CP-1", url + "/CP-1", config, sink)
            task = await running(cp)
            await until(lambda: len(connects) >= 6, timeout=15)
            await stop(task)
        return [b - a for a, b in itertools.pairwise(connects)]

    gaps = run(main())
    # Each gap is uniform in [0.05, 0.05 * 2**n]: the later ones may reach far beyond the first.
    assert max(gaps[3:]) > 0.1, gaps


def test_a_fleet_that_lost_its_connections_together_comes_back_spread_within_the_bound():
    config = ChargePointConfig(authorize_interval=0, reconnect_min=0.5, reconnect_max=10)

    async def main():
        lost: dict[str, float] = {}
        reconnects: dict[str, float] = {}
        async with Csms(CsmsConfig(port=0)) as csms:
            tasks = []
            for n in range(20):
                cp_id = f"CP-{n}"

                def sink(sample, cp_id=cp_id):
                    now = time.monotonic()
                    if sample.name == "connection lost":
                        lost[cp_id] = now
                    elif sample.name == "connect" and cp_id in lost:
                        # When this connect began: the end of the backoff.
                        reconnects[cp_id] = now - sample.response_time / 1000

                cp = ChargePoint(cp_id, f"{csms.url}/{cp_id}", config, sink)
                tasks.append(await running(cp))
            await until(lambda: csms.stats["BootNotification"] == 20, timeout=10)
            assert await csms.disconnect() == 20
            await until(lambda: csms.stats["BootNotification"] == 40, timeout=10)
            for task in tasks:
                await stop(task)
        return [reconnects[cp_id] - lost[cp_id] for cp_id in lost]

    backoffs = run(main())
    # The first retry after a lost booted connection: uniform in [min, 2 min].
    assert len(backoffs) == 20
    assert all(0.45 <= b <= 1.1 for b in backoffs), sorted(backoffs)
    assert max(backoffs) - min(backoffs) > 0.2, sorted(backoffs)  # not one wave
