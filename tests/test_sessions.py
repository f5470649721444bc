"""Charging sessions: arrival, Authorize, StartTransaction, MeterValues, StopTransaction.

Against the embedded CSMS (which validates every payload against the 1.6 schemas) and scripted
ones; the checks follow the state machine: no StopTransaction without a Start, energy never
goes back, nothing but Boot before Accepted, one CALL in flight.
"""

import asyncio
import json
import random
import time

import pytest

from swarm.csms import Csms, CsmsConfig
from swarm.ocpp16.charge_point import ChargePoint
from swarm.ocpp16.dialect import OCPP16
from swarm.protocol.samples import OCPP
from swarm.station.arrivals import _PEAK_TO_MEAN, DAY_PROFILE, arrival_share, hour_of_day
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Status
from swarm.station.state import State
from tests.scripted import recording_csms, run, scripted_csms, until

SESSIONS = ChargePointConfig(
    authorize_interval=0,
    connectors=2,
    session_interval=0.2,
    session_duration=0.6,
    meter_interval=0.1,
    charging_power=36000,  # 5 to 6 Wh a second (under 32 A): the register moves within a test
)


def test_sessions_against_the_embedded_csms():
    async def main():
        samples = []
        async with Csms(CsmsConfig(port=0)) as csms:
            cp = ChargePoint("CP-1", csms.url + "/CP-1", SESSIONS, samples.append)
            task = asyncio.create_task(cp.run())
            await until(lambda: csms.stats["StopTransaction"] >= 3, timeout=10)
            energy = [c.energy_wh for c in cp.connectors]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            stats = dict(csms.stats)
        return samples, stats, energy

    samples, stats, energy = run(main())
    assert not [s for s in samples if s.error], [s for s in samples if s.error][:3]
    assert stats["StartTransaction"] >= stats["StopTransaction"] >= 3
    assert stats["MeterValues"] >= 3
    assert stats.get("sent.callerror", 0) == 0  # every payload passed the CSMS's schemas
    assert sum(energy) > 0
    names = {s.name for s in samples if s.request_type == OCPP}
    assert {"Authorize", "StartTransaction", "MeterValues", "StopTransaction"} <= names


def test_a_session_keeps_the_state_machine_and_its_energy_only_grows():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", SESSIONS, lambda s: None)
            task = asyncio.create_task(cp.run())
            await until(lambda: len(script.calls("StopTransaction")) >= 3, timeout=10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script

    script = run(main())
    calls = script.calls()
    assert calls[0][2] == "BootNotification"
    open_by_connector = {}
    energy = {}
    for _, _, action, payload in calls:
        OCPP16.schemas.validate(action, payload)
        if action == "StartTransaction":
            connector = payload["connectorId"]
            assert connector not in open_by_connector, "a second Start on a busy connector"
            open_by_connector[connector] = payload["meterStart"]
            assert payload["meterStart"] >= energy.get(connector, 0)
            energy[connector] = payload["meterStart"]
        elif action == "MeterValues":
            connector = payload["connectorId"]
            value = int(payload["meterValue"][0]["sampledValue"][0]["value"])
            assert value >= energy.get(connector, 0), "energy went back"
            energy[connector] = value
            assert script.started[payload["transactionId"]] == connector
        elif action == "StopTransaction":
            connector = script.started[payload["transactionId"]]
            assert connector in open_by_connector, "a StopTransaction without a Start"
            assert payload["meterStop"] >= open_by_connector.pop(connector)
            energy[connector] = payload["meterStop"]
            assert payload["reason"] == "EVDisconnected"
    statuses = [p["status"] for _, _, a, p in calls if a == "StatusNotification"]
    assert {"Preparing", "Charging", "Finishing", "Available"} <= set(statuses)


@pytest.mark.parametrize("status", ["Invalid", "Blocked"])
def test_a_refused_id_tag_starts_no_transaction(status):
    async def main():
        async with scripted_csms(recording_csms(id_tag_status=status)) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", SESSIONS, lambda s: None)
            task = asyncio.create_task(cp.run())
            await until(lambda: len(script.calls("Authorize")) >= 3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script

    script = run(main())
    assert not script.calls("StartTransaction")
    assert not script.calls("StopTransaction")


def test_remote_start_and_stop():
    config = ChargePointConfig(authorize_interval=0, connectors=1, meter_interval=0.1)

    async def main():
        samples = []
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append)
            task = asyncio.create_task(cp.run())
            await until(lambda: cp.state is State.ACCEPTED and script.calls("StatusNotification"))
            ws = script.connections[-1]
            await ws.send(json.dumps([2, "s1", "RemoteStartTransaction", {"idTag": "REMOTE-1"}]))
            await until(lambda: script.calls("StartTransaction"))
            await ws.send(json.dumps([2, "s2", "RemoteStartTransaction", {"idTag": "REMOTE-2"}]))
            await until(lambda: len(script.calls("MeterValues")) >= 2)
            transaction = script.transactions[1]
            await ws.send(
                json.dumps([2, "s3", "RemoteStopTransaction", {"transactionId": transaction}])
            )
            await until(lambda: script.calls("StopTransaction"))
            await ws.send(json.dumps([2, "s4", "RemoteStopTransaction", {"transactionId": 999}]))
            await until(lambda: any(f[0] == 3 and f[1] == "s4" for f in script.frames))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script, samples

    script, samples = run(main())
    answers = {f[1]: f[2] for f in script.frames if f[0] == 3 and f[1].startswith("s")}
    assert answers == {
        "s1": {"status": "Accepted"},
        "s2": {"status": "Rejected"},  # the only connector is busy
        "s3": {"status": "Accepted"},
        "s4": {"status": "Rejected"},
    }
    for key, payload in answers.items():
        action = {"s1": "RemoteStartTransaction", "s2": "RemoteStartTransaction"}.get(
            key, "RemoteStopTransaction"
        )
        OCPP16.schemas.validate(action, payload, response=True)
    (start,) = [p for _, _, a, p in script.calls() if a == "StartTransaction"]
    assert start["idTag"] == "REMOTE-1"
    (stop,) = [p for _, _, a, p in script.calls() if a == "StopTransaction"]
    assert (stop["transactionId"], stop["reason"]) == (script.transactions[1], "Remote")
    assert not [s for s in samples if s.error]


def test_reset_stops_sessions_first():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            config = ChargePointConfig(
                authorize_interval=0, session_interval=0.05, session_duration=60, reconnect_min=0.1
            )
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None)
            task = asyncio.create_task(cp.run())
            await until(lambda: script.calls("StartTransaction"))
            await script.connections[-1].send(json.dumps([2, "r", "Reset", {"type": "Hard"}]))
            await until(lambda: len(script.calls("BootNotification")) == 2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script

    script = run(main())
    actions = [a for _, _, a, _ in script.calls()]
    stop = actions.index("StopTransaction")
    assert stop < actions.index("BootNotification", 1)
    assert script.calls("StopTransaction")[0][3]["reason"] == "HardReset"


def test_an_ev_that_is_full_is_suspended_and_draws_nothing():
    config = ChargePointConfig(
        authorize_interval=0,
        session_interval=0.05,
        session_duration=1.0,
        meter_interval=0.05,
        charging_power=36000,
        battery_kwh=(0.01, 0.01),  # 10 Wh: from 50 to 60 % in under 0.2 s
        arrival_soc=(50, 50),
        target_soc=(60, 60),
    )

    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None, rng=random.Random(3))
            task = asyncio.create_task(cp.run())
            await until(
                lambda: any(
                    p["status"] == "SuspendedEV"
                    for _, _, a, p in script.calls()
                    if a == "StatusNotification"
                ),
                timeout=10,
            )
            await until(lambda: script.calls("StopTransaction"), timeout=10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script

    script = run(main())
    suspended = False
    energy_when_suspended = None
    for _, _, action, payload in script.calls():
        if action == "StatusNotification" and payload["status"] == "SuspendedEV":
            suspended = True
        elif action == "MeterValues" and suspended:
            sampled = {v["measurand"]: v["value"] for v in payload["meterValue"][0]["sampledValue"]}
            assert sampled["Power.Active.Import"] == "0"
            energy = int(sampled["Energy.Active.Import.Register"])
            energy_when_suspended = energy_when_suspended or energy
            assert energy == energy_when_suspended, "a full EV draws no energy"
        elif action == "StopTransaction" and suspended:
            break
    assert suspended


def test_nothing_but_boot_before_accepted_even_with_sessions_due():
    config = ChargePointConfig(authorize_interval=0.05, session_interval=0.05, session_duration=5)

    async def main():
        async with scripted_csms(recording_csms(pending_boots=1)) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None)
            cp.data_transfer("acme", "early")  # a scenario asks before it even connects
            task = asyncio.create_task(cp.run())
            await until(
                lambda: script.calls("StartTransaction") and script.calls("DataTransfer"),
                timeout=10,
            )
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return [f[2] for f in script.calls()]

    actions = run(main())
    second_boot = actions.index("BootNotification", 1)
    assert actions[: second_boot + 1] == ["BootNotification", "BootNotification"]
    assert actions.count("DataTransfer") == 1


def test_a_fault_stops_the_session_and_the_connector_recovers(monkeypatch):
    monkeypatch.setattr("swarm.ocpp16.transactions.FAULT_RECOVERY", 0.2)
    config = ChargePointConfig(
        authorize_interval=0,
        session_interval=0.05,
        session_duration=1.0,
        meter_interval=0.1,
        faults=1.0,
    )

    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None)
            task = asyncio.create_task(cp.run())
            statuses = lambda: [p for _, _, a, p in script.calls() if a == "StatusNotification"]  # noqa: E731
            await until(lambda: any(p["status"] == "Faulted" for p in statuses()), timeout=10)
            await until(lambda: statuses()[-1]["status"] == "Available", timeout=10)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script, statuses()

    script, statuses = run(main())
    faulted = next(p for p in statuses if p["status"] == "Faulted")
    assert faulted["errorCode"] == "GroundFailure"
    assert script.calls("StopTransaction")[0][3]["reason"] == "Other"
    assert statuses[-1]["errorCode"] == "NoError"


def test_a_zero_limit_suspends_the_session_until_lifted():
    config = ChargePointConfig(authorize_interval=0, meter_interval=0.05, session_duration=60)
    profile = {
        "chargingProfileId": 5,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative",
        "chargingSchedule": {
            "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 0}],
        },
    }

    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None, rng=random.Random(1))
            task = asyncio.create_task(cp.run())
            await until(lambda: cp.state is State.ACCEPTED and script.calls("StatusNotification"))
            ws = script.connections[-1]
            await ws.send(json.dumps([2, "s", "RemoteStartTransaction", {"idTag": "T"}]))
            await until(lambda: cp.connectors[1].status == "Charging")
            limit = {"connectorId": 1, "csChargingProfiles": profile}
            await ws.send(json.dumps([2, "p0", "SetChargingProfile", limit]))
            await until(lambda: cp.connectors[1].status == "SuspendedEVSE")
            energy = cp.connectors[1].energy_wh
            await asyncio.sleep(0.3)
            suspended_energy = cp.connectors[1].energy_wh
            lifted = json.loads(json.dumps(limit))
            lifted["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0][
                "limit"
            ] = 11000  # watts: above the 6 A an EV needs, so it charges again
            await ws.send(json.dumps([2, "p1", "SetChargingProfile", lifted]))
            await until(lambda: cp.connectors[1].status == "Charging")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return energy, suspended_energy

    energy, suspended_energy = run(main())
    assert suspended_energy == energy  # nothing drawn while the EVSE holds it at 0


def test_a_new_connection_starts_clean_but_keeps_unavailability():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            config = ChargePointConfig(authorize_interval=0, connectors=3)
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda s: None)
            # Left over from a connection that was lost: a fault, a reservation, an unavailability.
            statuses = ["Faulted", "Reserved", "Unavailable"]
            for connector, status in zip(cp.connectors[1:], statuses, strict=True):
                connector.status = Status(status)
            cp.connectors[1].error = "GroundFailure"
            cp.connectors[2].reservation = (7, "R1")
            task = asyncio.create_task(cp.run())
            await until(lambda: len(script.calls("StatusNotification")) == 4)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return [(p["status"], p["errorCode"]) for _, _, _, p in script.calls("StatusNotification")]

    assert run(main()) == [
        ("Available", "NoError"),
        ("Available", "NoError"),
        ("Available", "NoError"),
        ("Unavailable", "NoError"),
    ]


def test_a_compressed_day_sets_the_hour_and_the_share_of_arrivals():
    day = ChargePointConfig(day_length=24.0, day_start=1000.0, day_hour=6.0)
    assert hour_of_day(day, 1000.0) == 6.0
    assert hour_of_day(day, 1020.5) == 2.5  # 6 h + 20.5 h, past midnight
    assert arrival_share(day, 1000.0 + 12) == 1.0  # 18 h: the evening peak
    assert arrival_share(day, 1000.0 + 21) == DAY_PROFILE[3] / max(DAY_PROFILE)
    assert arrival_share(ChargePointConfig(), 0.0) == 1.0  # no day: a flat rate
    # Thinning keeps the mean: candidates at the peak rate, times the day's mean share, is
    # one arrival per session_interval.
    shares = [arrival_share(day, 1000.0 - 6 + hour) for hour in range(24)]
    assert _PEAK_TO_MEAN * sum(shares) / 24 == pytest.approx(1.0)
    with pytest.raises(ValueError, match="day_hour"):
        ChargePointConfig(day_hour=24.0)


def test_arrivals_follow_the_day_against_the_embedded_csms():
    # A 12-second day starting at 2 h: the first 3 s (2 h to 8 h) are night, the third 3 s
    # (14 h to 20 h) hold the evening peak. Some 18 sessions a second then: few enough for a
    # station on a busy machine, whose CPU would cap the peak's count.
    async def main():
        async with Csms(CsmsConfig(port=0)) as csms:
            day = ChargePointConfig(
                authorize_interval=0,
                connectors=10,
                session_interval=0.08,
                session_duration=0.05,
                day_length=12.0,
                day_hour=2.0,
                day_start=time.time(),
            )
            cp = ChargePoint("CP-1", csms.url + "/CP-1", day, lambda s: None)
            task = asyncio.create_task(cp.run())
            counts = []
            for _ in range(3):
                before = csms.stats["StartTransaction"]
                await asyncio.sleep(3.0)
                counts.append(csms.stats["StartTransaction"] - before)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return counts

    night, _, evening = run(main())
    # Expected: 4.4 times as many (the profile's mean weights over those hours), some 12 and 54.
    assert evening > 2 * night, (night, evening)
