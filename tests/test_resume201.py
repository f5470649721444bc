"""A 2.0.1 station that lost its connection but did not reboot comes back without a boot
(B04): what changed offline is reported, nothing half done is left so, the backoff still grows
against a CSMS that drops it, and a reboot still boots."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from swarm.ocpp201.charge_point import ChargePoint
from swarm.station.connector import Status
from swarm.station.schedule import Key, Timer
from swarm.station.state import State
from tests.scripted import answer, run, scripted_csms, until
from tests.test_station201 import CONFIG, NOW, Csms201

BOOTED = {"status": "Accepted", "currentTime": NOW, "interval": 60}


def scripted(react):
    """A 2.0.1 CSMS that answers everything, logs ``(connection, action, evseId, status)`` of
    each CALL, and lets ``react(connection, frame, ws)`` act first (True: it answered)."""
    log: list[tuple] = []

    async def handler(ws, script):
        n = len(script.connections)
        while True:
            frame = await script.receive(ws)
            if frame[0] != 2:
                continue
            action, payload = frame[2], frame[3]
            log.append((n, action, payload.get("evseId"), payload.get("connectorStatus")))
            if await react(n, frame, ws):
                continue
            if action == "BootNotification":
                await ws.send(answer(frame, BOOTED))
            elif action == "Heartbeat":
                await ws.send(answer(frame, {"currentTime": NOW}))
            elif action == "Authorize":
                await ws.send(answer(frame, {"idTokenInfo": {"status": "Accepted"}}))
            else:
                await ws.send(answer(frame, {}))

    return handler, log


async def running(handler, until_done, config=CONFIG, before=lambda cp: None):
    async with scripted_csms(handler, protocol="ocpp2.0.1") as (url, script):
        cp = ChargePoint("CS-1", url + "/CS-1", config, lambda sample: None)
        before(cp)
        task = asyncio.create_task(cp.run())
        try:
            await until_done(cp, script)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return cp, script


@pytest.mark.parametrize(
    ("threshold", "reported"),
    [(60, [(2, "Faulted")]), (0, [(1, "Available"), (2, "Faulted")])],
    ids=["shorter-than-offline-threshold", "longer"],
)
def test_a_lost_connection_comes_back_without_a_boot(threshold, reported):
    """B04: no BootNotification after a mere reconnect; the statuses that changed offline, or
    all of them after more than OfflineThreshold seconds, are reported."""
    csms = Csms201()

    async def main():
        async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, script):
            cp = ChargePoint("CS-1", url + "/CS-1", CONFIG, lambda sample: None)
            cp.device_model.set("OCPPCommCtrlr", "OfflineThreshold", str(threshold))
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: csms.actions("Heartbeat"))
                cp.drop()
                await until(lambda: cp.state is State.OFFLINE)
                await cp._set_status(None, 2, Status.FAULTED)  # as a fault offline does
                await until(lambda: len(csms.actions("StatusNotification")) == 2 + len(reported))
                await until(lambda: len(csms.actions("Heartbeat")) >= 2)  # still beating
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return len(script.connections)

    assert run(main()) == 2
    assert len(csms.actions("BootNotification")) == 1
    after = csms.actions("StatusNotification")[2:]
    assert [(s["evseId"], s["connectorStatus"]) for s in after] == reported


def test_a_start_cut_short_by_the_lost_connection_leaves_its_evse_free():
    """The connection drops while the Authorize of a remote start is in flight: once back, the
    EVSE it took is Available again, and said so."""

    async def react(n, frame, ws):
        if frame[2] == "BootNotification":
            await ws.send(answer(frame, BOOTED))
            token = {"idToken": "T1", "type": "Local"}
            start = {"idToken": token, "remoteStartId": 3, "evseId": 1}
            await ws.send(json.dumps([2, "c0", "RequestStartTransaction", start]))
            return True
        if frame[2] == "Authorize" and n == 1:
            await ws.close()  # the network drops with the Authorize in flight
            return True
        return False

    handler, log = scripted(react)

    async def back(cp, script):
        await until(lambda: (2, "StatusNotification", 1, "Available") in log)

    cp, _ = run(running(handler, back))
    assert cp.connectors[1].status is Status.AVAILABLE and cp.connectors[1].transaction is None
    assert [entry[1] for entry in log].count("BootNotification") == 1


def test_status_changes_lost_again_while_coming_back_are_reported_at_the_next_return():
    async def react(n, frame, ws):
        if n == 2 and frame[2] == "StatusNotification":
            await ws.close()  # lost again as the station reports what changed
            return True
        return False

    handler, log = scripted(react)

    async def twice(cp, script):
        await until(lambda: any(entry[1] == "Heartbeat" for entry in log))
        cp.drop()
        await until(lambda: cp.state is State.OFFLINE)
        await cp._set_status(None, 2, Status.FAULTED)  # as a fault offline does
        await until(lambda: (3, "StatusNotification", 2, "Faulted") in log)

    run(running(handler, twice))
    assert [entry[1] for entry in log].count("BootNotification") == 1


def test_the_backoff_grows_against_a_csms_that_takes_the_connection_and_drops_it():
    async def react(n, frame, ws):
        if frame[2] == "Heartbeat" and n == 1:
            await ws.send(answer(frame, {"currentTime": NOW}))
            await ws.close()
            return True
        return False

    handler, _ = scripted(react)

    async def drop_at_once(ws, script):
        if len(script.connections) > 1:
            await ws.close()  # takes the WebSocket, answers nothing
            return
        await handler(ws, script)

    waits: list[float] = []
    config = replace(CONFIG, reconnect_min=0.05, reconnect_max=5.0)

    def watch(cp):
        cp._rng = Counting(waits)

    async def a_while(cp, script):
        await until(lambda: len(waits) >= 4, timeout=10)

    run(running(drop_at_once, a_while, config, watch))
    # The swarm's backoff draws each wait up to a ceiling that doubles with each failure in a
    # row: the ceilings seen grow, where a return counted as a success would keep them at 0.1.
    assert waits[:4] == [0.1, 0.2, 0.4, 0.8], waits


class Counting:
    """A random source that records the ceiling of each backoff drawn (the draws from
    ``reconnect_min`` up; a heartbeat's phase is drawn from 0) and returns its floor."""

    def __init__(self, ceilings: list[float]) -> None:
        self.ceilings = ceilings

    def uniform(self, low: float, high: float) -> float:
        if low > 0:
            self.ceilings.append(round(high, 3))
        return low

    def __getattr__(self, name):
        import random

        return getattr(random, name)


def test_an_evse_made_inoperative_while_it_reboots_stays_unavailable():
    cp = ChargePoint("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG, lambda sample: None)
    cp.state = State.ACCEPTED

    async def main():
        assert cp.handle_call("Reset", {"type": "Immediate", "evseId": 1}) == {"status": "Accepted"}
        await cp._jobs.pop(0)(None)  # the reset, as the station's loop runs it
        assert cp.connectors[1].status is Status.UNAVAILABLE
        payload = {"operationalStatus": "Inoperative", "evse": {"id": 1}}
        assert cp.handle_call("ChangeAvailability", payload) == {"status": "Scheduled"}
        await cp._on_rebooted(None, Key(Timer.REBOOTED, 1))
        assert cp.connectors[1].status is Status.UNAVAILABLE

    run(main())
