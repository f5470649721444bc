"""2.0.1 maintenance (swarm.station.maintenance in 2.0.1 words) against the scripted 2.0.1 CSMS of
test_station201, which checks every frame both ways against the 2.0.1 schemas: firmware updates
(L01) with their requestId, reboot and new firmwareVersion, GetLog (N01), failures by share,
the statuses a TriggerMessage reports, and the security events (A04) of boots and reboots."""

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from swarm.ocpp201.charge_point import ChargePoint
from swarm.ocpp201.dialect import OCPP201
from swarm.station.state import State
from tests.scripted import run, scripted_csms, until
from tests.test_station201 import CONFIG, Csms201, check_transactions


class Station201(ChargePoint):
    """A 2.0.1 station that checks its answers to the CSMS's commands too."""

    __slots__ = ()

    def handle_call(self, action, payload):
        # Csms201 checks the CALLs both ways; this checks the answers to its commands: one that
        # breaks its schema goes back as a CALLERROR, which station() fails the test on.
        answer = super().handle_call(action, payload)
        OCPP201.schemas.validate(action, answer, response=True)
        return answer


FAST = replace(CONFIG, update_step=0.05)
LOCATION = "ftp://fw.example/cs-2.1.0.bin"


def at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def update(request_id: int, retrieve: float = -60.0, **firmware) -> tuple[str, dict]:
    image = {"location": LOCATION, "retrieveDateTime": at(retrieve), **firmware}
    return "UpdateFirmware", {"requestId": request_id, "firmware": image}


def get_log(request_id: int) -> tuple[str, dict]:
    log = {"remoteLocation": "ftp://logs.example/"}
    return "GetLog", {"logType": "DiagnosticsLog", "requestId": request_id, "log": log}


def trigger(message: str) -> tuple[str, dict]:
    return "TriggerMessage", {"requestedMessage": message}


def statuses(csms: Csms201, action: str = "FirmwareStatusNotification") -> list[tuple]:
    return [(p["status"], p.get("requestId")) for p in csms.actions(action)]


def first(csms: Csms201, action: str, payload: dict, status: str) -> bool:
    """Whether ``payload`` is the first ``action`` with ``status``: a trigger for it is asked
    once, not again for the triggered one."""
    if action != "FirmwareStatusNotification" and action != "LogStatusNotification":
        return False
    status_of = (payload["status"], payload.get("requestId"))
    return payload["status"] == status and statuses(csms, action).count(status_of) == 1


def calls(csms: Csms201, *actions: str) -> list[tuple]:
    """The CALLs of ``actions`` in order, each as (action, its status, reason or type)."""
    return [
        (f[2], f[3].get("status") or f[3].get("reason") or f[3].get("type"))
        for f in csms.calls
        if f[2] in actions
    ]


async def station(csms, config=FAST, until_done=lambda cp: False, timeout=8.0, rng=None):
    """Run one Station201 against ``csms`` until ``until_done(station)``; the station."""
    async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, _):
        cp = Station201("CS-1", url + "/CS-1", config, lambda sample: None, rng=rng)
        task = asyncio.create_task(cp.run())
        try:
            await until(lambda: until_done(cp), timeout=timeout)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert csms.errors == {}
    return cp


def test_a_firmware_update_reboots_into_the_new_version_and_reports_installed_after():
    def then(csms, action, payload):
        if first(csms, action, payload, "Installing"):
            yield trigger("FirmwareStatusNotification")  # mid-update: the last status sent
        if first(csms, action, payload, "Installed"):
            yield trigger("FirmwareStatusNotification")  # after Installed: Idle (L01.FR.25)

    csms = Csms201(commands=[update(7)], react=then)

    cp = run(station(csms, until_done=lambda cp: ("Idle", None) in statuses(csms)))
    assert csms.results["c0"] == {"status": "Accepted"}
    assert statuses(csms) == [
        ("Downloading", 7),
        ("Downloaded", 7),
        ("Installing", 7),
        ("Installing", 7),  # triggered
        ("InstallRebooting", 7),
        ("Installed", 7),
        ("Idle", None),  # triggered
    ]
    boots = csms.actions("BootNotification")
    assert [b["reason"] for b in boots] == ["PowerUp", "FirmwareUpdate"]
    assert boots[0]["chargingStation"]["firmwareVersion"] == CONFIG.firmware_version
    assert boots[1]["chargingStation"]["firmwareVersion"] == "cs-2.1.0"
    assert cp.firmware_version == "cs-2.1.0"
    # Installed and the security events come once the new firmware runs: after the second boot.
    assert calls(csms, "BootNotification", "SecurityEventNotification")[:2] == [
        ("BootNotification", "PowerUp"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
    ]
    rebooted = [f[2] for f in csms.calls].index("BootNotification", 1)
    assert calls(csms, "FirmwareStatusNotification", "SecurityEventNotification")[-5:] == [
        ("FirmwareStatusNotification", "Installed"),
        ("SecurityEventNotification", "ResetOrReboot"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
        ("SecurityEventNotification", "FirmwareUpdated"),
        ("FirmwareStatusNotification", "Idle"),
    ]
    installed = [f[3] for f in csms.calls].index({"status": "Installed", "requestId": 7})
    assert installed > rebooted


def failing_rng(kind: str) -> random.Random:
    """A generator under which a failing update (update_failures=1) ends in ``kind``."""
    for seed in range(100):
        rng = random.Random(seed)
        rng.random()  # the outcome's draw
        if (rng.random() < 0.5) == (kind == "DownloadFailed"):
            return random.Random(seed)
    raise AssertionError(kind)


FAILURES = {
    "DownloadFailed": [("Downloading", 3), ("DownloadFailed", 3)],
    "InstallationFailed": [
        ("Downloading", 3),
        ("Downloaded", 3),
        ("Installing", 3),
        ("InstallationFailed", 3),
    ],
}


@pytest.mark.parametrize("kind", FAILURES)
def test_failed_updates_end_in_their_failure_status_without_a_reboot(kind):
    def then(csms, action, payload):
        if first(csms, action, payload, kind):
            yield trigger("FirmwareStatusNotification")

    sequence = FAILURES[kind]
    csms = Csms201(commands=[update(3)], react=then)
    config = replace(FAST, update_failures=1.0)
    rng = failing_rng(kind)
    cp = run(station(csms, config, lambda cp: len(statuses(csms)) > len(sequence), rng=rng))
    # L01.FR.26: a trigger repeats the last status sent, with its requestId.
    assert statuses(csms) == [*sequence, sequence[-1]]
    assert len(csms.actions("BootNotification")) == 1
    assert cp.firmware_version == CONFIG.firmware_version


def test_a_new_update_cancels_a_scheduled_one_and_is_refused_while_installing():
    def then(csms, action, payload):
        if action != "FirmwareStatusNotification":
            return
        if payload == {"status": "DownloadScheduled", "requestId": 1}:
            yield update(2, signature="c2lnbmF0dXJl", installDateTime=at(0.3))
        elif payload["status"] == "Installing":
            yield update(3)

    csms = Csms201(commands=[update(1, retrieve=3600)], react=then)
    run(station(csms, until_done=lambda cp: ("Installed", 2) in statuses(csms)))
    assert csms.results["c0"] == {"status": "Accepted"}
    assert csms.results["c1"] == {"status": "AcceptedCanceled"}  # L01.FR.24
    assert csms.results["c2"]["status"] == "Rejected"  # L01.FR.27
    assert statuses(csms) == [
        ("DownloadScheduled", 1),
        ("Downloading", 2),
        ("Downloaded", 2),
        ("SignatureVerified", 2),  # a signature is taken as valid, unchecked
        ("InstallScheduled", 2),  # until installDateTime
        ("Installing", 2),
        ("InstallRebooting", 2),
        ("Installed", 2),
    ]


def test_the_install_waits_for_the_last_transaction_to_end():
    def then(csms, action, payload):
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            yield update(5)
        if payload == {"status": "InstallScheduled", "requestId": 5}:
            started = csms.actions("TransactionEvent")[0]
            yield (
                "RequestStopTransaction",
                {"transactionId": started["transactionInfo"]["transactionId"]},
            )

    start = {"idToken": {"idToken": "T1", "type": "Local"}, "remoteStartId": 1, "evseId": 1}
    csms = Csms201(commands=[("RequestStartTransaction", start)], react=then)
    run(station(csms, until_done=lambda cp: ("Installed", 5) in statuses(csms)))
    assert [s for s, _ in statuses(csms)] == [
        "Downloading",
        "Downloaded",
        "InstallScheduled",  # L01.FR.06: a transaction runs
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    (transaction,) = check_transactions(csms.actions("TransactionEvent")).values()
    assert transaction[-1]["transactionInfo"]["stoppedReason"] == "Remote"  # ended, not rebooted
    ended = [i for i, f in enumerate(csms.calls) if f[2] == "TransactionEvent"][-1]
    installing = [
        f[3]["status"] for f in csms.calls[ended:] if f[2] == "FirmwareStatusNotification"
    ]
    assert installing[0] == "Installing"


def test_get_log_uploads_and_a_trigger_reports_the_upload_in_progress():
    config = replace(CONFIG, update_step=0.3)

    def then(csms, action, payload):
        if first(csms, action, payload, "Uploading") or first(csms, action, payload, "Uploaded"):
            yield trigger("LogStatusNotification")

    csms = Csms201(commands=[get_log(9)], react=then)
    run(
        station(
            csms,
            config,
            until_done=lambda cp: ("Idle", None) in statuses(csms, "LogStatusNotification"),
        )
    )
    assert csms.results["c0"] == {"status": "Accepted", "filename": "CS-1-DiagnosticsLog.log"}
    assert statuses(csms, "LogStatusNotification") == [
        ("Uploading", 9),
        ("Uploading", 9),  # triggered
        ("Uploaded", 9),
        ("Idle", None),  # triggered
    ]


def test_a_failing_upload_and_a_new_get_log_that_cancels_one_in_progress():
    config = replace(CONFIG, update_step=0.3, update_failures=1.0)

    def then(csms, action, payload):
        if payload == {"status": "Uploading", "requestId": 1}:
            yield get_log(2)

    csms = Csms201(commands=[get_log(1)], react=then)
    run(
        station(
            csms,
            config,
            until_done=lambda cp: ("UploadFailure", 2) in statuses(csms, "LogStatusNotification"),
        )
    )
    assert csms.results["c1"]["status"] == "AcceptedCanceled"  # N01.FR.12
    assert statuses(csms, "LogStatusNotification") == [
        ("Uploading", 1),
        ("AcceptedCanceled", 1),
        ("Uploading", 2),
        ("UploadFailure", 2),
    ]


def test_security_events_follow_a_power_up_and_a_reset_but_not_a_reconnect():
    dropped = []

    def then(csms, action, payload):
        # The first Heartbeat on the connection after the drop, which comes back without a boot.
        if action == "Heartbeat" and dropped == [True]:
            dropped.append("reset")
            yield "Reset", {"type": "Immediate"}

    csms = Csms201(react=then)

    async def main():
        async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, script):
            cp = Station201("CS-1", url + "/CS-1", FAST, lambda sample: None)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(csms.actions("SecurityEventNotification")) == 1)
                cp.drop()  # a lost connection: no boot, no startup
                dropped.append(True)
                await until(lambda: len(csms.actions("SecurityEventNotification")) == 3)
                await asyncio.sleep(0.3)  # nothing more comes
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return len(script.connections)

    assert run(main()) == 3  # the first, the one after the drop, the one after the Reset
    assert csms.errors == {}
    assert calls(csms, "BootNotification", "SecurityEventNotification") == [
        ("BootNotification", "PowerUp"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
        ("BootNotification", "RemoteReset"),
        ("SecurityEventNotification", "ResetOrReboot"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
    ]
    events = csms.actions("SecurityEventNotification")
    assert all(e["timestamp"].endswith("Z") for e in events)
    # After the boot's statuses, as the station says what it is before what it went through.
    event = [f[2] for f in csms.calls].index("SecurityEventNotification")
    assert "StatusNotification" in [f[2] for f in csms.calls[:event]]


def test_events_raised_offline_are_sent_when_the_station_is_back_without_a_boot():
    """B04 and A04.FR.02: the queue is sent on the return, after the changed statuses."""
    csms = Csms201()

    async def main():
        async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, script):
            cp = Station201("CS-1", url + "/CS-1", FAST, lambda sample: None)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(csms.actions("SecurityEventNotification")) == 1)
                cp.drop()
                await until(lambda: cp.state is not State.ACCEPTED)
                cp._security_event("SettingSystemTime", "set by hand")
                await until(lambda: len(csms.actions("SecurityEventNotification")) == 2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return len(script.connections)

    assert run(main()) == 2
    assert csms.errors == {}
    assert len(csms.actions("BootNotification")) == 1  # back without a boot
    event = csms.actions("SecurityEventNotification")[1]
    assert (event["type"], event["techInfo"]) == ("SettingSystemTime", "set by hand")
