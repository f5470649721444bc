"""1.6's security extension for firmware, logs and events (swarm.ocpp16.maintenance, on
swarm.station.maintenance) against a scripted 1.6 CSMS that checks every frame both ways against
the ocpp package's 1.6 schemas: SignedUpdateFirmware (L01) with its requestId, reboot and new
firmwareVersion, an untrusted signer, AcceptedCanceled and Rejected, failures by share; GetLog
(N01); what ExtendedTriggerMessage reports; how the plain UpdateFirmware and GetDiagnostics share
the slots; the security events (A04) of boots, reboots and firmware, queued offline and sent once
booted, and none at SecurityProfile 0. Then the whole flow against the embedded CSMS.

Certificates are made here by ``trustme``.
"""

import asyncio
import json
import random
from dataclasses import replace

import pytest
import trustme

from swarm.csms import Csms, CsmsConfig
from swarm.ocpp16.charge_point import ChargePoint
from swarm.ocpp16.dialect import OCPP16
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import answer, run, scripted_csms, until
from tests.test_certificates import pem
from tests.test_maintenance201 import at

NOW = "2026-01-01T00:00:00Z"
FAST = ChargePointConfig(
    authorize_interval=0, connectors=1, update_step=0.05, reconnect_min=0.1, reconnect_max=0.1
)
MANUFACTURER = trustme.CA()
SIGNER = MANUFACTURER.issue_cert("firmware-signer.example").cert_chain_pems[0].bytes().decode()
LOCATION = "ftp://fw.example/cp-2.1.0.bin"


class Csms16:
    """A 1.6 CSMS that checks every frame it gets against the 1.6 schemas (a violation fails the
    test): each CALL, its own answer, each command it sends and the charge point's answer. It
    sends ``commands`` (action, payload) once the first boot is accepted, and those
    ``react(csms, action, payload)`` returns after each CALL it answered; it closes the
    connection instead of answering a CALL for which ``hang_up(csms, action, payload)`` holds.
    It records every CALL, and the answers to its commands by their ids, c0, c1, ..."""

    def __init__(self, commands=(), react=lambda csms, a, p: (), hang_up=lambda csms, a, p: False):
        self.commands = list(commands)
        self.react = react
        self.hang_up = hang_up
        self.calls: list[list] = []
        self.results: dict[str, dict] = {}
        self.errors: dict[str, list] = {}
        self.sent: dict[str, str] = {}

    def actions(self, action):
        return [f[3] for f in self.calls if f[2] == action]

    async def handler(self, ws, script):
        while True:
            frame = await script.receive(ws)
            if frame[0] == 3:
                OCPP16.schemas.validate(self.sent[frame[1]], frame[2], response=True)
                self.results[frame[1]] = frame[2]
                continue
            if frame[0] == 4:
                self.errors[frame[1]] = frame
                continue
            action, payload = frame[2], frame[3]
            OCPP16.schemas.validate(action, payload)
            self.calls.append(frame)
            booted = any(f[2] == "BootNotification" for f in self.calls[:-1])
            assert booted or action == "BootNotification", f"{action} before a boot"
            if self.hang_up(self, action, payload):
                await ws.close()
                return
            reply = self.reply(action)
            OCPP16.schemas.validate(action, reply, response=True)
            await ws.send(answer(frame, reply))
            commands = list(self.react(self, action, payload))
            if action == "BootNotification":
                commands, self.commands = self.commands + commands, []
            for command, body in commands:
                OCPP16.schemas.validate(command, body)
                unique_id = f"c{len(self.sent)}"
                self.sent[unique_id] = command
                await ws.send(json.dumps([2, unique_id, command, body]))

    def reply(self, action):
        if action == "BootNotification":
            return {"status": "Accepted", "currentTime": NOW, "interval": 60}
        if action == "Heartbeat":
            return {"currentTime": NOW}
        if action == "Authorize":
            return {"idTagInfo": {"status": "Accepted"}}
        return {}


def install_root(kind="ManufacturerRootCertificate", ca=MANUFACTURER) -> tuple[str, dict]:
    return "InstallCertificate", {"certificateType": kind, "certificate": pem(ca)}


def signed_update(request_id, retrieve=-60.0, signer=SIGNER, **firmware) -> tuple[str, dict]:
    image = {
        "location": LOCATION,
        "retrieveDateTime": at(retrieve),
        "signingCertificate": signer,
        "signature": "c2lnbmF0dXJl",
        **firmware,
    }
    return "SignedUpdateFirmware", {"requestId": request_id, "firmware": image}


def get_log(request_id, kind="DiagnosticsLog") -> tuple[str, dict]:
    log = {"remoteLocation": "ftp://logs.example/"}
    return "GetLog", {"logType": kind, "requestId": request_id, "log": log}


def extended_trigger(message) -> tuple[str, dict]:
    return "ExtendedTriggerMessage", {"requestedMessage": message}


def statuses(csms, action="SignedFirmwareStatusNotification") -> list[tuple]:
    return [(p["status"], p.get("requestId")) for p in csms.actions(action)]


def first(csms, action, payload, status) -> bool:
    """Whether ``payload`` is the first ``action`` with ``status`` (and its requestId)."""
    if action not in ("SignedFirmwareStatusNotification", "LogStatusNotification"):
        return False
    status_of = (payload["status"], payload.get("requestId"))
    return payload["status"] == status and statuses(csms, action).count(status_of) == 1


def calls(csms, *actions) -> list[tuple]:
    """The CALLs of ``actions`` in order, each as (action, its status or type)."""
    return [(f[2], f[3].get("status") or f[3].get("type")) for f in csms.calls if f[2] in actions]


def events(csms) -> list[str]:
    return [e["type"] for e in csms.actions("SecurityEventNotification")]


async def station(csms, config=FAST, until_done=lambda cp: False, profile=1, rng=None, linger=0.0):
    """Run one charge point at SecurityProfile ``profile`` against ``csms`` until
    ``until_done(charge point)``, and ``linger`` seconds more; the charge point."""
    async with scripted_csms(csms.handler) as (url, _):
        cp = ChargePoint("CP-1", url + "/CP-1", config, lambda sample: None, rng=rng)
        cp.configuration.set("SecurityProfile", profile)
        task = asyncio.create_task(cp.run())
        try:
            await until(lambda: until_done(cp), timeout=8.0)
            await asyncio.sleep(linger)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert csms.errors == {}
    return cp


def test_a_signed_update_reboots_into_the_new_version_and_reports_installed_after():
    def then(csms, action, payload):
        if first(csms, action, payload, "Installing"):
            yield extended_trigger("FirmwareStatusNotification")  # the last status sent
        if first(csms, action, payload, "Installed"):
            yield extended_trigger("FirmwareStatusNotification")  # Idle (L01.FR.28)

    csms = Csms16(commands=[install_root(), signed_update(7)], react=then)
    cp = run(station(csms, until_done=lambda cp: ("Idle", None) in statuses(csms)))
    assert [csms.results[c] for c in ("c0", "c1", "c2", "c3")] == [{"status": "Accepted"}] * 4
    assert statuses(csms) == [
        ("Downloading", 7),
        ("Downloaded", 7),
        ("SignatureVerified", 7),
        ("Installing", 7),
        ("Installing", 7),  # triggered
        ("InstallRebooting", 7),
        ("Installed", 7),
        ("Idle", None),  # triggered
    ]
    assert csms.actions("FirmwareStatusNotification") == []  # the plain update's message
    boots = csms.actions("BootNotification")
    assert [b["firmwareVersion"] for b in boots] == [FAST.firmware_version, "cp-2.1.0"]
    assert cp.firmware_version == "cp-2.1.0"
    # Installed once the new firmware runs, after the second boot; then the reboot's events.
    assert calls(csms, "BootNotification", "SecurityEventNotification")[:2] == [
        ("BootNotification", None),
        ("SecurityEventNotification", "StartupOfTheDevice"),
    ]
    rebooted = [f[2] for f in csms.calls].index("BootNotification", 1)
    installed = [f[3] for f in csms.calls].index({"status": "Installed", "requestId": 7})
    assert installed > rebooted
    assert calls(csms, "SignedFirmwareStatusNotification", "SecurityEventNotification")[-5:] == [
        ("SignedFirmwareStatusNotification", "Installed"),
        ("SecurityEventNotification", "ResetOrReboot"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
        ("SecurityEventNotification", "FirmwareUpdated"),
        ("SignedFirmwareStatusNotification", "Idle"),
    ]


def test_a_firmware_signed_by_no_installed_manufacturer_is_refused_and_reported():
    """L01.FR.02, .24: InvalidCertificate, and a security event with the reason in techInfo;
    a Central System root is not a manufacturer's."""
    commands = [
        signed_update(1),  # c0: no root at all
        install_root("CentralSystemRootCertificate"),  # c1
        signed_update(2),  # c2
        signed_update(3, signer=pem(trustme.CA())),  # c3: a root of its own, not installed
    ]
    csms = Csms16(commands=commands)
    cp = run(station(csms, until_done=lambda cp: len(events(csms)) == 4, linger=0.2))
    assert [csms.results[c]["status"] for c in ("c0", "c1", "c2", "c3")] == [
        "InvalidCertificate",
        "Accepted",
        "InvalidCertificate",
        "InvalidCertificate",
    ]
    assert events(csms) == ["StartupOfTheDevice", *["InvalidFirmwareSigningCertificate"] * 3]
    assert all(e["techInfo"] for e in csms.actions("SecurityEventNotification")[1:])
    assert statuses(csms) == []  # no update started
    assert cp._firmware is None and cp._security_events == ()


def test_a_new_update_cancels_a_scheduled_one_and_is_refused_while_installing():
    def then(csms, action, payload):
        if payload == {"status": "DownloadScheduled", "requestId": 1}:
            yield signed_update(2, installDateTime=at(0.4))
        elif action == "SignedFirmwareStatusNotification" and payload["status"] == "Installing":
            yield signed_update(3)

    csms = Csms16(commands=[install_root(), signed_update(1, retrieve=3600)], react=then)
    run(station(csms, until_done=lambda cp: ("Installed", 2) in statuses(csms)))
    assert csms.results["c1"] == {"status": "Accepted"}
    assert csms.results["c2"] == {"status": "AcceptedCanceled"}  # L01.FR.26
    assert csms.results["c3"] == {"status": "Rejected"}  # L01.FR.27: no reason in 1.6
    assert statuses(csms) == [
        ("DownloadScheduled", 1),  # until retrieveDateTime
        ("Downloading", 2),
        ("Downloaded", 2),
        ("SignatureVerified", 2),
        ("InstallScheduled", 2),  # until installDateTime
        ("Installing", 2),
        ("InstallRebooting", 2),
        ("Installed", 2),
    ]


class Draws(random.Random):
    """A generator whose every draw is ``value``: with update_failures 1, an update fails, in
    its download below 0.5, in its install above."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("draw", "sequence"),
    [
        (0.25, [("Downloading", 3), ("DownloadFailed", 3)]),
        (
            0.75,
            [
                ("Downloading", 3),
                ("Downloaded", 3),
                ("SignatureVerified", 3),
                ("Installing", 3),
                ("InstallationFailed", 3),
            ],
        ),
    ],
    ids=["DownloadFailed", "InstallationFailed"],
)
def test_failed_updates_end_in_their_failure_status_without_a_reboot(draw, sequence):
    last = sequence[-1][0]

    def then(csms, action, payload):
        if first(csms, action, payload, last):
            yield extended_trigger("FirmwareStatusNotification")  # L01.FR.29: the last one

    csms = Csms16(commands=[install_root(), signed_update(3)], react=then)
    config = replace(FAST, update_failures=1.0)
    done = lambda cp: len(statuses(csms)) > len(sequence)  # noqa: E731
    cp = run(station(csms, config, done, rng=Draws(draw), linger=0.2))
    assert statuses(csms) == [*sequence, sequence[-1]]
    assert len(csms.actions("BootNotification")) == 1
    assert cp.firmware_version == FAST.firmware_version
    assert events(csms) == ["StartupOfTheDevice"]  # no FirmwareUpdated


def test_get_log_uploads_and_the_triggers_report_it():
    config = replace(FAST, update_step=0.3)

    def then(csms, action, payload):
        if first(csms, action, payload, "Uploading") or first(csms, action, payload, "Uploaded"):
            yield extended_trigger("LogStatusNotification")

    commands = [extended_trigger("FirmwareStatusNotification"), get_log(9, "SecurityLog")]
    csms = Csms16(commands=commands, react=then)
    done = lambda cp: ("Idle", None) in statuses(csms, "LogStatusNotification")  # noqa: E731
    run(station(csms, config, done))
    assert csms.results["c0"] == {"status": "Accepted"}
    assert csms.results["c1"] == {"status": "Accepted", "filename": "CP-1-SecurityLog.log"}
    assert statuses(csms) == [("Idle", None)]  # no signed update: Idle, without a requestId
    assert statuses(csms, "LogStatusNotification") == [
        ("Uploading", 9),
        ("Uploading", 9),  # triggered
        ("Uploaded", 9),
        ("Idle", None),  # triggered
    ]


def test_a_failing_upload_and_a_new_get_log_that_cancels_one_in_progress():
    config = replace(FAST, update_step=0.3, update_failures=1.0)

    def then(csms, action, payload):
        if payload == {"status": "Uploading", "requestId": 1}:
            yield get_log(2)

    csms = Csms16(commands=[get_log(1)], react=then)
    done = lambda cp: ("UploadFailure", 2) in statuses(csms, "LogStatusNotification")  # noqa: E731
    run(station(csms, config, done, linger=0.4))
    assert csms.results["c1"]["status"] == "AcceptedCanceled"  # N01.FR.11
    # 1.6's LogStatusNotification has no AcceptedCanceled: the cancelled upload just stops.
    assert statuses(csms, "LogStatusNotification") == [
        ("Uploading", 1),
        ("Uploading", 2),
        ("UploadFailure", 2),
    ]


def answers_to(csms, action) -> list[dict]:
    """The charge point's answers to the CSMS's ``action`` commands, in the order sent."""
    return [csms.results[c] for c, sent in csms.sent.items() if sent == action]


def test_plain_and_signed_requests_share_one_update_and_one_upload_at_a_time():
    plain = {"location": "ftp://fw.example/plain.bin", "retrieveDate": at(3600)}
    diagnostics = ("GetDiagnostics", {"location": "ftp://diag.example/"})

    def then(csms, action, payload):
        if payload == {"status": "Uploading"}:  # GetDiagnostics' upload
            yield get_log(5)  # cancels it
        if first(csms, action, payload, "Downloading"):
            yield "UpdateFirmware", plain  # ignored while the signed update runs
        if first(csms, action, payload, "Uploading"):
            yield diagnostics  # no file while GetLog's upload runs
        if first(csms, action, payload, "Uploaded"):
            yield "TriggerMessage", {"requestedMessage": "DiagnosticsStatusNotification"}
        if first(csms, action, payload, "Downloaded"):
            yield "TriggerMessage", {"requestedMessage": "FirmwareStatusNotification"}

    commands = [
        install_root(),
        ("UpdateFirmware", plain),  # waits for its retrieveDate
        signed_update(4),  # replaces it
        diagnostics,
    ]
    csms = Csms16(commands=commands, react=then)
    done = lambda cp: ("Installed", 4) in statuses(csms) and len(csms.results) == 9  # noqa: E731
    run(station(csms, replace(FAST, update_step=0.2), done, linger=0.3))
    assert answers_to(csms, "UpdateFirmware") == [{}, {}]
    assert answers_to(csms, "SignedUpdateFirmware") == [{"status": "AcceptedCanceled"}]
    assert answers_to(csms, "GetDiagnostics") == [{"fileName": "CP-1-diagnostics.log"}, {}]
    assert answers_to(csms, "GetLog") == [
        {"status": "AcceptedCanceled", "filename": "CP-1-DiagnosticsLog.log"}
    ]
    assert [s for s, _ in statuses(csms)] == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "InstallRebooting",
        "Installed",
    ]
    assert [s for s, _ in statuses(csms, "LogStatusNotification")] == ["Uploading", "Uploaded"]
    # The plain ones report nothing once replaced, and TriggerMessage says Idle for them.
    assert [p["status"] for p in csms.actions("FirmwareStatusNotification")] == ["Idle"]
    assert [p["status"] for p in csms.actions("DiagnosticsStatusNotification")] == [
        "Uploading",
        "Idle",
    ]


def test_reboots_report_their_events_once_booted_again():
    """A plain update's install and a Reset are reboots: ResetOrReboot, StartupOfTheDevice (and
    FirmwareUpdated) once booted again."""
    plain = {"location": "ftp://fw.example/plain-2.bin", "retrieveDate": at(-60)}

    def then(csms, action, payload):
        if action == "SecurityEventNotification" and payload["type"] == "FirmwareUpdated":
            yield "Reset", {"type": "Soft"}

    csms = Csms16(commands=[("UpdateFirmware", plain)], react=then)
    run(station(csms, until_done=lambda cp: len(events(csms)) == 6, linger=0.2))
    assert calls(csms, "BootNotification", "SecurityEventNotification") == [
        ("BootNotification", None),
        ("SecurityEventNotification", "StartupOfTheDevice"),
        ("BootNotification", None),  # the new firmware
        ("SecurityEventNotification", "ResetOrReboot"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
        ("SecurityEventNotification", "FirmwareUpdated"),
        ("BootNotification", None),  # after the Reset
        ("SecurityEventNotification", "ResetOrReboot"),
        ("SecurityEventNotification", "StartupOfTheDevice"),
    ]
    reset = csms.actions("SecurityEventNotification")[-2]
    assert reset["timestamp"].endswith("Z")


def test_events_wait_offline_and_one_a_lost_connection_cut_short_is_sent_again():
    cut = []

    def hang_up(csms, action, payload):
        if action == "SecurityEventNotification" and payload["type"] == "MemoryExhaustion":
            cut.append(payload)
            return len(cut) == 1
        return False

    csms = Csms16(hang_up=hang_up)
    config = replace(FAST, reconnect_min=0.3, reconnect_max=0.3)

    async def main():
        async with scripted_csms(csms.handler) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, lambda sample: None)
            cp.configuration.set("SecurityProfile", 1)
            cp._security_event("MemoryExhaustion", "x" * 300)  # before it has connected
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cut)
                await until(lambda: cp.state is not State.ACCEPTED)
                cp._security_event("SettingSystemTime")  # offline
                await until(lambda: len(events(csms)) == 4)
                await asyncio.sleep(0.2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return cp, len(script.connections)

    cp, connections = run(main())
    assert connections == 2
    assert events(csms) == [
        "StartupOfTheDevice",
        "MemoryExhaustion",  # cut short by the lost connection
        "MemoryExhaustion",  # again, once booted again; no startup for a reconnect
        "SettingSystemTime",
    ]
    sent = csms.actions("SecurityEventNotification")
    assert sent[1] == sent[2] and len(sent[1]["techInfo"]) == 255  # the same event
    assert cp._security_events == ()


def test_a_booted_charge_point_sends_an_event_at_once():
    csms = Csms16()

    async def main():
        async with scripted_csms(csms.handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, lambda sample: None)
            cp.configuration.set("SecurityProfile", 1)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: events(csms) == ["StartupOfTheDevice"])
                cp._security_event("ReconfigurationOfSecurityParameters")
                await until(lambda: len(events(csms)) == 2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(main())
    assert events(csms)[1] == "ReconfigurationOfSecurityParameters"
    assert "techInfo" not in csms.actions("SecurityEventNotification")[1]
    assert len(csms.actions("BootNotification")) == 1


def test_at_security_profile_0_no_event_is_queued_or_sent():
    def then(csms, action, payload):
        if len(csms.actions("BootNotification")) == 2 and action == "BootNotification":
            yield signed_update(1)  # c1: untrusted

    csms = Csms16(commands=[("Reset", {"type": "Hard"})], react=then)

    async def main():
        async with scripted_csms(csms.handler) as (url, _):
            cp = ChargePoint("CP-1", url + "/CP-1", FAST, lambda sample: None)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: "c1" in csms.results)
                cp._security_event("SettingSystemTime")
                queued = cp._security_events
                await asyncio.sleep(0.3)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return cp, queued

    cp, queued = run(main())
    assert cp.configuration.int_value("SecurityProfile") == 0
    assert csms.results["c1"] == {"status": "InvalidCertificate"}
    assert len(csms.actions("BootNotification")) == 2
    assert csms.actions("SecurityEventNotification") == []
    assert queued == () and cp._security_events == ()


# Against the embedded CSMS, which answers every message of the extension.


def test_the_embedded_csms_answers_a_signed_update_a_log_upload_and_the_events():
    async def main():
        async with Csms(CsmsConfig(port=0, validate=True)) as csms:
            cp = ChargePoint("CP-1", f"{csms.url}/CP-1", FAST, lambda sample: None)
            cp.configuration.set("SecurityProfile", 1)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED)
                answers = [(await csms.call("CP-1", *get_log(12))).payload]
                await until(lambda: csms.stats["LogStatusNotification"] == 2)
                for command in (install_root(), signed_update(11)):
                    answers.append((await csms.call("CP-1", *command)).payload)
                await until(lambda: csms.stats["SignedFirmwareStatusNotification"] == 6)
                await until(lambda: csms.stats["SecurityEventNotification"] == 4)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return answers, csms.stats

    answers, stats = run(main())
    assert [a["status"] for a in answers] == ["Accepted"] * 3
    assert stats["BootNotification"] == 2  # the new firmware's
    assert stats["sent.callerror"] == 0  # every CALL valid, every action answered
