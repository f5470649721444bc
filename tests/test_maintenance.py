"""Firmware updates, diagnostics, reservations, the local list and charging profiles.

Every answer and notification is checked against the ocpp package's OCPP 1.6 schemas.
"""

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from swarm.ocpp16.dialect import OCPP16
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import run, until
from tests.test_commands import booted, command

FAST = ChargePointConfig(authorize_interval=0, connectors=2, update_step=0.1, reconnect_min=0.1)
PAST = "2020-01-01T00:00:00Z"


def statuses(script, action):
    frames = script.calls(action)
    for frame in frames:
        OCPP16.schemas.validate(action, frame[3])
    return [frame[3]["status"] for frame in frames]


def test_firmware_update_reports_each_step_then_reboots_with_the_new_version():
    async def main():
        async with booted(FAST) as (cp, script, samples):
            answer = await command(
                script,
                "UpdateFirmware",
                {"location": "ftp://fw/vc-2.1.0.bin", "retrieveDate": PAST},
            )
            await until(lambda: len(script.calls("BootNotification")) == 2)
            await until(lambda: cp.state is State.ACCEPTED)
            boot = script.calls("BootNotification")[-1][3]
        return answer, statuses(script, "FirmwareStatusNotification"), boot, samples

    answer, steps, boot, samples = run(main())
    assert answer == {}
    assert steps == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert boot["firmwareVersion"] == "vc-2.1.0"
    assert not [s for s in samples if s.error]


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        (4, ["Downloading", "DownloadFailed"]),  # seeds whose second draw is below 0.5 or not
        (0, ["Downloading", "Downloaded", "Installing", "InstallationFailed"]),
    ],
)
def test_a_failing_firmware_update_stops_at_its_failure_and_does_not_reboot(seed, expected):
    config = ChargePointConfig(
        authorize_interval=0, update_step=0.05, update_failures=1.0, connectors=1
    )

    async def main():
        async with booted(config) as (cp, script, _):
            cp._rng = random.Random(seed)
            await command(
                script, "UpdateFirmware", {"location": "ftp://fw/x.bin", "retrieveDate": PAST}
            )
            await until(
                lambda: statuses(script, "FirmwareStatusNotification")[-1:] == expected[-1:]
            )
            await asyncio.sleep(0.3)
            return statuses(script, "FirmwareStatusNotification"), len(
                script.calls("BootNotification")
            )

    steps, boots = run(main())
    assert steps == expected
    assert boots == 1


def test_firmware_update_waits_for_its_retrieve_date():
    async def main():
        async with booted(FAST) as (_, script, _samples):
            soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat(timespec="seconds")
            await command(
                script, "UpdateFirmware", {"location": "ftp://fw/y.bin", "retrieveDate": soon}
            )
            await asyncio.sleep(0.3)
            early = statuses(script, "FirmwareStatusNotification")
            await until(lambda: statuses(script, "FirmwareStatusNotification"))
        return early

    assert run(main()) == []


def test_diagnostics_upload_and_its_status_on_trigger():
    async def main():
        async with booted(FAST) as (_, script, _samples):
            answer = await command(script, "GetDiagnostics", {"location": "ftp://diag/"})
            await until(lambda: len(script.calls("DiagnosticsStatusNotification")) == 2)
            await command(
                script, "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}, "t"
            )
            await until(lambda: len(script.calls("DiagnosticsStatusNotification")) == 3)
        return answer, statuses(script, "DiagnosticsStatusNotification")

    answer, steps = run(main())
    assert answer == {"fileName": "CP-1-diagnostics.log"}
    assert steps == ["Uploading", "Uploaded", "Idle"]


def test_reservations():
    async def main():
        async with booted(FAST) as (cp, script, _):
            reserve = {"connectorId": 1, "expiryDate": "2099-01-01T00:00:00Z", "idTag": "R1"}
            first = await command(script, "ReserveNow", {**reserve, "reservationId": 7}, "a")
            await until(lambda: cp.connectors[1].status == "Reserved")
            taken = await command(script, "ReserveNow", {**reserve, "reservationId": 8}, "b")
            zero = await command(
                script, "ReserveNow", {**reserve, "connectorId": 0, "reservationId": 9}, "c"
            )
            other_tag = await command(
                script, "RemoteStartTransaction", {"connectorId": 1, "idTag": "OTHER"}, "d"
            )
            cancel = await command(script, "CancelReservation", {"reservationId": 7}, "e")
            await until(lambda: cp.connectors[1].status == "Available")
            unknown = await command(script, "CancelReservation", {"reservationId": 7}, "f")
            past = {**reserve, "reservationId": 10, "expiryDate": "2020-01-01T00:00:00Z"}
            expired = await command(script, "ReserveNow", past, "g")
            soon = (datetime.now(UTC) + timedelta(seconds=0.5)).isoformat()
            brief = await command(script, "ReserveNow", {**past, "expiryDate": soon}, "h")
            await until(lambda: cp.connectors[1].status == "Reserved")
            await until(lambda: script.calls("StatusNotification")[-1][3]["status"] == "Available")
        return first, taken, zero, other_tag, cancel, unknown, (expired, brief), script

    first, taken, zero, other_tag, cancel, unknown, expired, script = run(main())
    assert (first, taken, zero) == (
        {"status": "Accepted"},
        {"status": "Occupied"},
        {"status": "Rejected"},
    )
    assert other_tag == {"status": "Rejected"}  # reserved for R1
    assert (cancel, unknown) == ({"status": "Accepted"}, {"status": "Rejected"})
    assert expired == ({"status": "Rejected"}, {"status": "Accepted"})  # past; then brief
    reported = [(f[3]["connectorId"], f[3]["status"]) for f in script.calls("StatusNotification")]
    assert (1, "Reserved") in reported
    assert reported[-1] == (1, "Available")


def test_local_list_full_and_differential():
    async def main():
        async with booted(FAST) as (cp, script, _):
            empty = await command(script, "GetLocalListVersion", {}, "a")
            full = {
                "listVersion": 3,
                "updateType": "Full",
                "localAuthorizationList": [
                    {"idTag": "A", "idTagInfo": {"status": "Accepted"}},
                    {"idTag": "B", "idTagInfo": {"status": "Blocked"}},
                ],
            }
            sent = await command(script, "SendLocalList", full, "b")
            diff = {
                "listVersion": 4,
                "updateType": "Differential",
                "localAuthorizationList": [
                    {"idTag": "B"},
                    {"idTag": "C", "idTagInfo": {"status": "Accepted"}},
                ],
            }
            changed = await command(script, "SendLocalList", diff, "c")
            version = await command(script, "GetLocalListVersion", {}, "d")
        return empty, sent, changed, version, cp.local_list

    empty, sent, changed, version, local_list = run(main())
    assert empty == {"listVersion": 0}
    assert sent == changed == {"status": "Accepted"}
    assert version == {"listVersion": 4}
    assert sorted(local_list) == ["A", "C"]


PROFILE = {
    "chargingProfileId": 1,
    "stackLevel": 0,
    "chargingProfilePurpose": "TxDefaultProfile",
    "chargingProfileKind": "Absolute",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "duration": 3600,
        "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 16.0},
            {"startPeriod": 1800, "limit": 21.4},
        ],
    },
}


def test_charging_profiles_are_stored_reported_and_cleared():
    async def main():
        async with booted(FAST) as (_, script, _samples):
            set_ = await command(
                script, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": PROFILE}, "a"
            )
            tx = {**PROFILE, "chargingProfileId": 2, "chargingProfilePurpose": "TxProfile"}
            no_tx = await command(
                script, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": tx}, "b"
            )
            schedule = await command(
                script, "GetCompositeSchedule", {"connectorId": 1, "duration": 4000}, "c"
            )
            cleared = await command(script, "ClearChargingProfile", {"id": 1}, "d")
            again = await command(script, "ClearChargingProfile", {"id": 1}, "e")
            none = await command(
                script, "GetCompositeSchedule", {"connectorId": 1, "duration": 600}, "f"
            )
        return set_, no_tx, schedule, cleared, again, none

    set_, no_tx, schedule, cleared, again, none = run(main())
    assert set_ == {"status": "Accepted"}
    assert no_tx == {"status": "Rejected"}  # a TxProfile needs a transaction
    assert schedule["status"] == "Accepted"
    assert schedule["chargingSchedule"]["duration"] == 4000
    # Without startSchedule, the profile runs from the start of charging: here, from now.
    # Past its 3600 s, the connector's own maximum (32 A) holds.
    assert schedule["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 1800, "limit": 21.4, "numberPhases": 3},
        {"startPeriod": 3600, "limit": 32.0, "numberPhases": 3},
    ]
    assert (cleared, again) == ({"status": "Accepted"}, {"status": "Unknown"})
    assert none["status"] == "Accepted"  # no profile: the connector's own maximum
    assert none["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 3}
    ]
