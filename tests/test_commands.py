"""CSMS-initiated commands: the charge point's answers, and what they set off.

Every answer is checked against the ocpp package's OCPP 1.6 response schema.
"""

import asyncio
import contextlib
import json

import pytest

from swarm.csms import Csms, CsmsConfig
from swarm.ocpp16.charge_point import ChargePoint
from swarm.ocpp16.dialect import OCPP16
from swarm.protocol.samples import CSMS
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import recording_csms, run, scripted_csms, until

CONFIG = ChargePointConfig(authorize_interval=0, connectors=2, reconnect_min=0.1)


@contextlib.asynccontextmanager
async def booted(config=CONFIG):
    """A charge point booted against a scripted CSMS that answers everything, sessions too
    (interval 60)."""
    samples = []
    async with scripted_csms(recording_csms()) as (url, script):
        cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append)
        task = asyncio.create_task(cp.run())
        await until(lambda: len(script.calls("StatusNotification")) == config.connectors + 1)
        try:
            yield cp, script, samples
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def command(script, action, payload, unique_id="c1"):
    """Send a CALL to the newest connection; return the answer's payload (or the CALLERROR)."""
    await script.connections[-1].send(json.dumps([2, unique_id, action, payload]))
    answers = lambda: [f for f in script.frames if f[0] in (3, 4) and f[1] == unique_id]  # noqa: E731
    await until(lambda: answers())
    frame = answers()[0]
    if frame[0] == 3:
        OCPP16.schemas.validate(action, frame[2], response=True)
        return frame[2]
    return frame


def test_statuses_of_every_connector_follow_the_boot():
    async def main():
        async with booted() as (_, script, _samples):
            statuses = [f[3] for f in script.calls("StatusNotification")]
        for payload in statuses:
            OCPP16.schemas.validate("StatusNotification", payload)
        assert [(s["connectorId"], s["status"]) for s in statuses] == [
            (0, "Available"),
            (1, "Available"),
            (2, "Available"),
        ]
        assert [f[2] for f in script.calls()][:1] == ["BootNotification"]

    run(main())


def test_get_configuration_reports_known_and_unknown_keys():
    async def main():
        async with booted() as (_, script, samples):
            everything = await command(script, "GetConfiguration", {}, "all")
            some = await command(
                script, "GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}, "some"
            )
        keys = {entry["key"]: entry for entry in everything["configurationKey"]}
        assert keys["NumberOfConnectors"] == {
            "key": "NumberOfConnectors",
            "readonly": True,
            "value": "2",
        }
        assert keys["HeartbeatInterval"]["value"] == "60"  # from the boot answer
        assert some["unknownKey"] == ["Nope"]
        assert [entry["key"] for entry in some["configurationKey"]] == ["HeartbeatInterval"]
        assert any(
            s.request_type == CSMS and s.name == "GetConfiguration" and not s.error for s in samples
        )

    run(main())


def test_a_changed_heartbeat_interval_takes_effect_at_once():
    async def main():
        async with booted() as (cp, script, _):
            answer = await command(
                script, "ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"}
            )
            await asyncio.sleep(2.5)
            heartbeats = len(script.calls("Heartbeat"))
            readonly = await command(
                script, "ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"}, "ro"
            )
        assert answer == {"status": "Accepted"}
        assert cp.heartbeat_interval == 1
        assert 2 <= heartbeats <= 3  # the CSMS said 60 at boot: none would have come
        assert readonly == {"status": "Rejected"}

    run(main())


@pytest.mark.parametrize(
    ("message", "sent"),
    [
        ("Heartbeat", ["Heartbeat"]),
        ("StatusNotification", ["StatusNotification"] * 3),
        ("MeterValues", ["MeterValues"] * 3),  # the main meter too: connector 0 (5.17)
        ("FirmwareStatusNotification", ["FirmwareStatusNotification"]),
        ("DiagnosticsStatusNotification", ["DiagnosticsStatusNotification"]),
        ("BootNotification", ["BootNotification"]),
    ],
)
def test_trigger_message_answers_first_then_sends(message, sent):
    async def main():
        async with booted() as (_, script, _samples):
            before = len(script.frames)
            answer = await command(script, "TriggerMessage", {"requestedMessage": message})
            await until(lambda: len(script.calls()) - before >= len(sent))
            after = script.frames[before:]
        assert answer == {"status": "Accepted"}
        assert after[0][:2] == [3, "c1"]  # the answer comes before what it triggers
        # The station's own Heartbeat may fall due meanwhile (its first beat is at a random
        # phase of the interval): it is no part of what the trigger sends.
        calls = [f for f in after if f[0] == 2 and (f[2] != "Heartbeat" or message == "Heartbeat")]
        names = [f[2] for f in calls]
        if message == "Heartbeat":  # the triggered one, and maybe a beat that fell due
            assert names in (sent, sent * 2), names
        else:
            assert names == sent
        for frame in calls:
            OCPP16.schemas.validate(frame[2], frame[3])

    run(main())


def test_trigger_message_for_a_connector_that_does_not_exist_is_rejected():
    async def main():
        async with booted() as (_, script, _samples):
            answer = await command(
                script,
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "connectorId": 7},
            )
        assert answer == {"status": "Rejected"}

    run(main())


def test_trigger_message_meter_values_for_connector_0_reads_the_main_meter():
    """Connector 0 is the charge point's main meter: the sum of its connectors' registers."""

    async def main():
        async with booted() as (cp, script, _samples):
            cp.connectors[1].energy_wh, cp.connectors[2].energy_wh = 1500.4, 250.0
            answer = await command(
                script, "TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 0}
            )
            await until(lambda: script.calls("MeterValues"))
            payload = script.calls("MeterValues")[0][3]
        assert answer == {"status": "Accepted"}
        OCPP16.schemas.validate("MeterValues", payload)
        assert payload["connectorId"] == 0 and "transactionId" not in payload
        [value] = payload["meterValue"][0]["sampledValue"]  # no session: energy, no power
        assert (value["measurand"], value["value"]) == ("Energy.Active.Import.Register", "1750")

    run(main())


def test_change_availability_undone_before_its_status_goes_reports_both_changes():
    """Inoperative then Operative, both answered before the charge point's loop runs: each
    change is reported as it was, Unavailable then Available."""

    async def main():
        async with booted() as (cp, script, _samples):
            before = len(script.calls("StatusNotification"))
            for kind in ("Inoperative", "Operative"):  # no await between: one loop step
                cp.handle_call("ChangeAvailability", {"connectorId": 1, "type": kind})
            await until(lambda: len(script.calls("StatusNotification")) == before + 2)
            await asyncio.sleep(0.2)  # and no third
            sent = [f[3] for f in script.calls("StatusNotification")[before:]]
        assert [(s["connectorId"], s["status"]) for s in sent] == [
            (1, "Unavailable"),
            (1, "Available"),
        ]
        assert cp.connectors[1].status == "Available"

    run(main())


def test_reset_reboots_and_boots_again_without_a_failure():
    async def main():
        async with booted() as (cp, script, samples):
            answer = await command(script, "Reset", {"type": "Soft"})
            await until(lambda: len(script.calls("BootNotification")) == 2)
            await until(lambda: cp.state is State.ACCEPTED)
        assert answer == {"status": "Accepted"}
        assert script.close_codes[0] == 1000
        assert not [s for s in samples if s.error], [s for s in samples if s.error]

    run(main())


def test_change_availability_reports_the_new_status():
    async def main():
        async with booted() as (cp, script, _):
            before = len(script.calls("StatusNotification"))
            answer = await command(
                script, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}
            )
            await until(lambda: len(script.calls("StatusNotification")) == before + 1)
            status = script.calls("StatusNotification")[-1][3]
            unknown = await command(
                script, "ChangeAvailability", {"connectorId": 5, "type": "Operative"}, "c2"
            )
        assert answer == {"status": "Accepted"}
        assert (status["connectorId"], status["status"]) == (1, "Unavailable")
        assert [c.status for c in cp.connectors] == ["Available", "Unavailable", "Available"]
        assert unknown == {"status": "Rejected"}

    run(main())


@pytest.mark.parametrize(
    ("action", "payload", "expected"),
    [
        ("UnlockConnector", {"connectorId": 1}, {"status": "Unlocked"}),
        ("UnlockConnector", {"connectorId": 9}, {"status": "NotSupported"}),
        ("ClearCache", {}, {"status": "Accepted"}),
        ("DataTransfer", {"vendorId": "acme"}, {"status": "UnknownVendorId"}),
    ],
)
def test_simple_commands(action, payload, expected):
    async def main():
        async with booted() as (_, script, _samples):
            return await command(script, action, payload)

    assert run(main()) == expected


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("TriggerMessage", {"requestedMessage": "Coffee"}, "PropertyConstraintViolation"),
        ("Reset", {}, "OccurenceConstraintViolation"),
        (
            "ChangeAvailability",
            {"connectorId": "1", "type": "Operative"},
            "TypeConstraintViolation",
        ),
        (
            "GetLog",
            {"log": {"remoteLocation": "ftp://x/"}, "logType": "SecurityLog", "requestId": "1"},
            "TypeConstraintViolation",
        ),
        ("MakeCoffee", {}, "NotImplemented"),
    ],
)
def test_bad_or_unsupported_commands_get_the_right_callerror(action, payload, code):
    async def main():
        async with booted() as (cp, script, _samples):
            frame = await command(script, action, payload)
            assert cp.state is State.ACCEPTED
        return frame

    frame = run(main())
    assert frame[:3] == [4, "c1", code]


def test_the_embedded_csms_commands_a_fleet_of_charge_points():
    async def main():
        async with Csms(CsmsConfig(port=0)) as csms:
            fleet = [
                ChargePoint(f"CP-{n}", f"{csms.url}/CP-{n}", CONFIG, lambda s: None)
                for n in range(4)
            ]
            tasks = [asyncio.create_task(cp.run()) for cp in fleet]
            await until(lambda: all(cp.state is State.ACCEPTED for cp in fleet))
            await until(lambda: csms.stats["StatusNotification"] == 4 * 3)
            beats = csms.stats["Heartbeat"]
            trigger = await csms.campaign(
                "TriggerMessage", {"requestedMessage": "Heartbeat"}, share=0.5
            )
            await until(lambda: csms.stats["Heartbeat"] == beats + 2)
            reset = await csms.campaign("Reset", {"type": "Soft"}, rate=20)
            await until(lambda: csms.stats["BootNotification"] == 8)
            await until(lambda: all(cp.state is State.ACCEPTED for cp in fleet))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return trigger, reset

    trigger, reset = run(main())
    assert (trigger.targeted, trigger.answered, trigger.statuses["Accepted"]) == (2, 2, 2)
    assert (reset.targeted, reset.answered, reset.statuses["Accepted"]) == (4, 4, 4)


def test_change_availability_while_charging_is_scheduled_and_carried_out():
    async def main():
        async with booted() as (cp, script, _):
            await command(script, "RemoteStartTransaction", {"connectorId": 1, "idTag": "T"}, "s")
            await until(lambda: cp.connectors[1].status == "Charging")
            answer = await command(
                script, "ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}, "a"
            )
            transaction = next(iter(cp.transactions.values())).id
            await command(script, "RemoteStopTransaction", {"transactionId": transaction}, "x")
            await until(lambda: script.calls("StopTransaction"))
            await until(
                lambda: script.calls("StatusNotification")[-1][3]["status"] == "Unavailable"
            )
        return answer, [c.status for c in cp.connectors]

    answer, statuses = run(main())
    assert answer == {"status": "Scheduled"}
    assert statuses[1] == "Unavailable"


def test_an_empty_schedule_during_a_session_changes_nothing():
    async def main():
        async with booted() as (cp, script, samples):
            await command(script, "RemoteStartTransaction", {"connectorId": 1, "idTag": "T"}, "s")
            await until(lambda: cp.connectors[1].status == "Charging")
            profile = {
                "chargingProfileId": 9,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": []},
            }
            answer = await command(
                script, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": profile}, "p"
            )
            await asyncio.sleep(0.2)
            status = cp.connectors[1].status
        return answer, status, samples

    answer, status, samples = run(main())
    assert answer == {"status": "Rejected"}  # a schedule has one period or more (7.13)
    assert status == "Charging"
    assert not [s for s in samples if s.error]


def test_no_second_start_while_a_stop_is_being_reported():
    async def main():
        async with booted() as (cp, script, _):
            await command(script, "RemoteStartTransaction", {"connectorId": 1, "idTag": "T"}, "s1")
            await until(lambda: cp.connectors[1].status == "Charging")
            transaction = next(iter(cp.transactions.values())).id
            await command(script, "RemoteStopTransaction", {"transactionId": transaction}, "x")
            # While the stop is being reported, the connector is not free.
            again = await command(
                script, "RemoteStartTransaction", {"connectorId": 1, "idTag": "T"}, "s2"
            )
            await until(lambda: script.calls("StopTransaction"))
            await until(lambda: cp.connectors[1].status in ("Available", "Preparing", "Charging"))
            await asyncio.sleep(0.3)
        return again, script

    again, script = run(main())
    starts, stops = len(script.calls("StartTransaction")), len(script.calls("StopTransaction"))
    # The second request is either refused, or starts a session only after the first stopped.
    assert starts - stops <= 1
    if again == {"status": "Accepted"}:
        actions = [f[2] for f in script.calls() if f[2] in ("StartTransaction", "StopTransaction")]
        assert actions[:3] == ["StartTransaction", "StopTransaction", "StartTransaction"]


def test_no_status_is_sent_while_pending_unless_triggered():
    async def main():
        async with scripted_csms(recording_csms(pending_boots=1)) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", CONFIG, lambda s: None)
            task = asyncio.create_task(cp.run())
            await until(lambda: cp.state is State.PENDING)
            change = {"connectorId": 1, "type": "Inoperative"}
            await script.connections[-1].send(json.dumps([2, "a", "ChangeAvailability", change]))
            await until(lambda: len(script.calls("StatusNotification")) == 3)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return [f[2] for f in script.calls()], [
            f[3]["status"] for f in script.calls("StatusNotification")
        ]

    actions, statuses = run(main())
    assert actions[:2] == ["BootNotification", "BootNotification"]
    assert statuses == ["Available", "Unavailable", "Available"]
