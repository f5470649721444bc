"""Charging sessions across a lost connection: they go on offline, and their StartTransaction,
MeterValues and StopTransaction reach the CSMS after the reconnect, all of them and in order."""

import asyncio
import json
import random
import time
from dataclasses import replace

import pytest

from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol.samples import OCPP, OUTBOX
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Transaction
from swarm.station.meter import Reading
from swarm.station.outbox import LIMIT, Queued
from swarm.station.state import State
from tests.scripted import BOOT_ACCEPTED, answer, run, scripted_csms, until

OFFLINE = ChargePointConfig(
    authorize_interval=0,
    meter_interval=0.2,
    charging_power=36000,  # an EV of 18 to 36 kW, under the connector's 22 kW
    reconnect_min=1.5,
    reconnect_max=1.5,  # offline for exactly 1.5 s after a lost connection
    call_timeout=2,
)

OFFLINE_ARRIVALS = replace(
    OFFLINE, session_interval=0.2, session_duration=60, reconnect_min=2.0, reconnect_max=2.0
)
"""Sessions arrive every 0.2 s on average and outlast the test; 2 s offline per lost connection."""

TRANSACTION_MESSAGES = ("StartTransaction", "MeterValues", "StopTransaction")


def per_connection_csms(first, *, start_answer=None):
    """A CSMS whose first connection runs ``first(ws, frames)``; later ones answer every CALL,
    StartTransaction with ``start_answer(frame)`` (default: Accepted, transactionIds from 100).
    Yields the frames each connection received, one list per connection."""
    connections: list[list] = []
    transaction_ids = iter(range(100, 1000))

    def default_start(frame):
        return answer(
            frame, {"idTagInfo": {"status": "Accepted"}, "transactionId": next(transaction_ids)}
        )

    start_answer = start_answer or default_start

    async def handler(ws, script):
        frames: list = []
        connections.append(frames)
        if len(connections) == 1:
            await first(ws, frames, script)
            return
        while True:
            frame = await script.receive(ws)
            frames.append(frame)
            if frame[0] != 2:
                continue
            action = frame[2]
            if action == "BootNotification":
                await ws.send(answer(frame, BOOT_ACCEPTED))
            elif action == "StartTransaction":
                await ws.send(start_answer(frame))
            elif action == "Heartbeat":
                await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
            else:
                await ws.send(answer(frame, {}))

    return handler, connections


def sent_after_reconnect(connections, action):
    """Whether the second connection has received a CALL of ``action``."""
    return len(connections) == 2 and any(f[0] == 2 and f[2] == action for f in connections[1])


def transaction_messages(frames):
    return [(f[2], f[3]) for f in frames if f[0] == 2 and f[2] in TRANSACTION_MESSAGES]


def charge_then_lose_the_network(lost):
    """A first connection that boots, starts a session remotely (transactionId 7), answers
    every CALL, and loses the network, with no close handshake, at the first CALL ``lost``
    holds true of."""

    async def first(ws, frames, script):
        while True:
            frame = await script.receive(ws)
            frames.append(frame)
            if frame[0] != 2:
                continue
            if lost(frame):
                ws.transport.abort()
                return
            action = frame[2]
            if action == "BootNotification":
                await ws.send(answer(frame, BOOT_ACCEPTED))
                await ws.send(json.dumps([2, "r1", "RemoteStartTransaction", {"idTag": "T1"}]))
            elif action == "Authorize":
                await ws.send(answer(frame, {"idTagInfo": {"status": "Accepted"}}))
            elif action == "StartTransaction":
                await ws.send(
                    answer(frame, {"idTagInfo": {"status": "Accepted"}, "transactionId": 7})
                )
            else:
                await ws.send(answer(frame, {}))

    return first


def test_a_session_goes_on_offline_and_its_messages_follow_the_reconnect_in_order():
    started_at = {}

    def lost(frame):  # charge until the first MeterValues, then lose the network
        if frame[2] == "MeterValues":
            started_at["lost"] = time.monotonic()
            return True
        return False

    first = charge_then_lose_the_network(lost)
    handler, connections = per_connection_csms(first)
    config = replace(OFFLINE, session_duration=1.0)  # 0.5 to 1.5 s: it ends offline

    async def main():
        samples = []
        async with scripted_csms(handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append, rng=random.Random(3))
            task = asyncio.create_task(cp.run())
            await until(lambda: "lost" in started_at, timeout=5)
            await until(lambda: cp.state is State.OFFLINE, timeout=5)
            offline = {"transactions": dict(cp.transactions), "charging": cp.connectors[1].status}
            await until(lambda: sent_after_reconnect(connections, "StopTransaction"), timeout=10)
            await until(lambda: not cp.outbox, timeout=5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return samples, offline, cp

    samples, offline, cp = run(main())
    assert offline["transactions"] and offline["charging"] == "Charging"  # it charged offline
    sent = transaction_messages(connections[1])
    actions = [action for action, _ in sent]
    # Queued while offline: the meter values of the session, then its stop; nothing else.
    assert actions[-1] == "StopTransaction" and set(actions[:-1]) == {"MeterValues"}, actions
    assert len(actions) >= 3, actions  # 0.5 s or more offline at one reading every 0.2 s
    assert all(payload["transactionId"] == 7 for _, payload in sent)
    readings = [
        int(payload["meterValue"][0]["sampledValue"][0]["value"])
        for action, payload in sent
        if action == "MeterValues"
    ]
    stop = sent[-1][1]
    assert readings == sorted(readings) and stop["meterStop"] >= readings[-1] > 0
    assert stop["reason"] == "EVDisconnected"
    times = [m[1]["meterValue"][0]["timestamp"] for m in sent if m[0] == "MeterValues"]
    assert times == sorted(times)  # taken when they were read, not when they were sent
    # The boot comes first on the new connection, and every queued message is a success.
    assert connections[1][0][2] == "BootNotification"
    stops = [s for s in samples if s.request_type == OCPP and s.name == "StopTransaction"]
    assert len(stops) == 1 and stops[0].error is None
    assert not cp.transactions and cp.connectors[1].status == "Available"


def lose_the_network_after(seconds, *, id_tag_status="Invalid"):
    """A first connection that boots, answers Authorize with ``id_tag_status`` (no session
    starts online) and every other CALL, and loses the network after ``seconds``."""

    async def first(ws, frames, script):
        async def serve():
            while True:
                frame = await script.receive(ws)
                frames.append(frame)
                if frame[0] != 2:
                    continue
                if frame[2] == "BootNotification":
                    await ws.send(answer(frame, BOOT_ACCEPTED))
                elif frame[2] == "Authorize":
                    await ws.send(answer(frame, {"idTagInfo": {"status": id_tag_status}}))
                else:
                    await ws.send(answer(frame, {}))

        try:
            async with asyncio.timeout(seconds):
                await serve()
        except TimeoutError:
            ws.transport.abort()

    return first


def test_a_session_that_starts_offline_queues_its_start_and_takes_the_csms_transaction_id():
    handler, connections = per_connection_csms(lose_the_network_after(0.3))
    config = OFFLINE_ARRIVALS

    async def main():
        async with scripted_csms(handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None, rng=random.Random(5))
            cp.configuration.set("AllowOfflineTxForUnknownId", True)
            task = asyncio.create_task(cp.run())
            await until(lambda: cp.state is State.OFFLINE, timeout=5)
            await until(lambda: cp.transactions, timeout=5)  # an EV arrived while offline
            offline_id = cp.transactions[1].id
            await until(
                lambda: (
                    len(connections) == 2
                    and len(transaction_messages(connections[1])) >= 3
                    and not cp.outbox
                ),
                timeout=10,
            )
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return offline_id, cp

    offline_id, cp = run(main())
    assert offline_id is None  # no transactionId until the CSMS gives one
    online = transaction_messages(connections[0])
    assert not online  # Authorize was refused online: every session began offline
    sent = transaction_messages(connections[1])
    assert sent[0][0] == "StartTransaction"
    assert {action for action, _ in sent[1:]} == {"MeterValues"}
    assert all(payload["transactionId"] == 100 for _, payload in sent[1:])
    assert cp.transactions[1].id == 100


def test_a_queued_start_the_csms_refuses_ends_its_session_and_drops_its_messages():
    def refuse(frame):
        return json.dumps([4, frame[1], "InternalError", "no", {}])

    handler, connections = per_connection_csms(lose_the_network_after(0.3), start_answer=refuse)
    config = OFFLINE_ARRIVALS

    async def main():
        samples = []
        async with scripted_csms(handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append, rng=random.Random(5))
            cp.configuration.set("AllowOfflineTxForUnknownId", True)
            cp.configuration.set("TransactionMessageAttempts", 1)  # no retry: refused for good
            task = asyncio.create_task(cp.run())
            # A start and the meter values behind it wait for the connection.
            await until(lambda: cp.state is State.OFFLINE and len(cp.outbox) >= 2, timeout=5)
            queued = [message.action for message in cp.outbox]
            await until(lambda: sent_after_reconnect(connections, "StartTransaction"), timeout=10)
            await until(lambda: not cp.outbox, timeout=5)
            await asyncio.sleep(0.3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return samples, queued, connections[1]

    samples, queued, frames = run(main())
    # The start waited, was sent and refused; the meter values queued behind it had no
    # transaction to go to, and none was sent.
    assert queued[0] == "StartTransaction" and set(queued[1:]) == {"MeterValues"}, queued
    assert [action for action, _ in transaction_messages(frames)] == ["StartTransaction"]
    refused = [s for s in samples if s.name == "StartTransaction" and s.error]
    assert [s.error for s in refused] == [
        "CALLERROR InternalError",
        "dropped: the CSMS failed to process it",
    ]
    assert refused[1].request_type == OUTBOX
    statuses = [f[3]["status"] for f in frames if f[0] == 2 and f[2] == "StatusNotification"]
    assert "Available" in statuses  # the connector is free again, and says so


def test_past_the_limit_meter_values_are_dropped_but_never_a_start_or_a_stop():
    cp = ChargePoint("CP-1", "ws://x/CP-1", OFFLINE, lambda s: None)
    transaction = Transaction(None, 1, "T", 1000.0, 0.0)
    for _ in range(LIMIT + 10):
        cp.outbox.add(Queued("MeterValues", Reading(1, 0, None, "t"), transaction))
    cp.outbox.add(Queued("StopTransaction", {}, transaction))
    assert len(cp.outbox) == LIMIT + 1
    assert cp.outbox[-1].action == "StopTransaction"


@pytest.mark.parametrize("status", ["Charging", "Finishing"])
def test_a_connection_lost_on_a_status_of_the_session_does_not_stall_it(status):
    """The status is the one CALL of its step that fails: the session's state moves on all the
    same, and its stop reaches the CSMS after the reconnect."""

    first = charge_then_lose_the_network(
        lambda frame: frame[2] == "StatusNotification" and frame[3]["status"] == status
    )
    handler, connections = per_connection_csms(first)
    config = replace(OFFLINE, session_duration=1.0)  # it ends within the 1.5 s offline

    async def main():
        async with scripted_csms(handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None, rng=random.Random(3))
            task = asyncio.create_task(cp.run())
            await until(lambda: sent_after_reconnect(connections, "StopTransaction"), timeout=10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return cp

    cp = run(main())
    stops = [p for a, p in transaction_messages(connections[1]) if a == "StopTransaction"]
    assert [stop["transactionId"] for stop in stops] == [7]
    assert not cp.transactions and cp.connectors[1].status == "Available"
