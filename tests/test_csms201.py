"""swarm.csms speaking OCPP 2.0.1 beside 1.6 on one port: plain WebSocket clients negotiate
ocpp2.0.1, get every station-initiated action answered per the 2.0.1 response schemas, and
CALLERRORs spelled as 2.0.1 spells them; the CSMS's own calls go to the versions they fit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from swarm.csms import Csms, CsmsConfig
from swarm.csms.versions import Central
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201 import csms as ocpp201_csms
from swarm.ocpp201.dialect import CSMS_ACTIONS, OCPP201
from swarm.protocol import ocppj
from tests.scripted import run

TIMEOUT = 5.0
NOW = "2024-05-01T12:00:00Z"
TOKEN = {"idToken": "TAG-1", "type": "ISO14443"}
SCHEDULE = {
    "id": 1,
    "chargingRateUnit": "W",
    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000}],
}

# A valid request for every station-initiated action of OCPP 2.0.1.
EXAMPLES: dict[str, dict[str, Any]] = {
    "Authorize": {"idToken": TOKEN},
    "BootNotification": {
        "reason": "PowerUp",
        "chargingStation": {"model": "Virtual", "vendorName": "Swarm"},
    },
    "ClearedChargingLimit": {"chargingLimitSource": "EMS"},
    "DataTransfer": {"vendorId": "swarm", "messageId": "ping", "data": {"any": "json"}},
    "FirmwareStatusNotification": {"status": "Idle"},
    "Get15118EVCertificate": {
        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
        "action": "Install",
        "exiRequest": "AAAA",
    },
    "GetCertificateStatus": {
        "ocspRequestData": {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "ab",
            "issuerKeyHash": "cd",
            "serialNumber": "01",
            "responderURL": "http://ocsp.example",
        }
    },
    "Heartbeat": {},
    "LogStatusNotification": {"status": "Idle", "requestId": 1},
    "MeterValues": {
        "evseId": 1,
        "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": 1234.5}]}],
    },
    "NotifyChargingLimit": {"chargingLimit": {"chargingLimitSource": "SO"}},
    "NotifyCustomerInformation": {
        "data": "nothing",
        "seqNo": 0,
        "generatedAt": NOW,
        "requestId": 1,
    },
    "NotifyDisplayMessages": {"requestId": 1},
    "NotifyEVChargingNeeds": {
        "evseId": 1,
        "chargingNeeds": {"requestedEnergyTransfer": "AC_three_phase"},
    },
    "NotifyEVChargingSchedule": {"timeBase": NOW, "evseId": 1, "chargingSchedule": SCHEDULE},
    "NotifyEvent": {
        "generatedAt": NOW,
        "seqNo": 0,
        "eventData": [
            {
                "eventId": 1,
                "timestamp": NOW,
                "trigger": "Delta",
                "actualValue": "Occupied",
                "eventNotificationType": "HardWiredNotification",
                "component": {"name": "Connector"},
                "variable": {"name": "AvailabilityState"},
            }
        ],
    },
    "NotifyMonitoringReport": {"requestId": 1, "seqNo": 0, "generatedAt": NOW},
    "NotifyReport": {"requestId": 1, "seqNo": 0, "generatedAt": NOW},
    "PublishFirmwareStatusNotification": {"status": "Idle"},
    "ReportChargingProfiles": {
        "requestId": 1,
        "chargingLimitSource": "CSO",
        "evseId": 1,
        "chargingProfile": [
            {
                "id": 1,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": [SCHEDULE],
            }
        ],
    },
    "ReservationStatusUpdate": {"reservationId": 1, "reservationUpdateStatus": "Expired"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": NOW},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "StatusNotification": {
        "timestamp": NOW,
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    },
    "TransactionEvent": {
        "eventType": "Started",
        "timestamp": NOW,
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
        "idToken": TOKEN,
    },
}


@asynccontextmanager
async def station(
    url: str, station_id: str = "CS-1", subprotocol: str = "ocpp2.0.1"
) -> AsyncIterator[ClientConnection]:
    async with connect(
        f"{url}/ocpp/{station_id}", subprotocols=[subprotocol], open_timeout=TIMEOUT
    ) as ws:
        yield ws


async def exchange(ws: ClientConnection, frame: str | bytes) -> list[Any]:
    await ws.send(frame)
    async with asyncio.timeout(TIMEOUT):
        return json.loads(await ws.recv())


async def call(ws: ClientConnection, action: str, payload: dict[str, Any], uid: str = "1") -> Any:
    """Send a CALL; return the CALLRESULT payload, or the whole CALLERROR frame."""
    reply = await exchange(ws, ocppj.call_frame(uid, action, payload))
    assert reply[1] == uid
    return reply[2] if reply[0] == ocppj.CALLRESULT else reply


@asynccontextmanager
async def answering(ws: ClientConnection, calls: list[list[Any]]) -> AsyncIterator[None]:
    """While inside, answer each CALL the CSMS sends ``ws`` with status Accepted; record it."""

    async def serve() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for text in ws:
                frame = json.loads(text)
                calls.append(frame)
                await ws.send(ocppj.result_frame(frame[1], {"status": "Accepted"}))

    task = asyncio.get_running_loop().create_task(serve())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# The table and the handshake.


def test_examples_cover_every_station_initiated_action_and_the_csms_answers_them() -> None:
    station_actions = OCPP201.schemas.actions - CSMS_ACTIONS
    assert set(EXAMPLES) == station_actions
    assert not CSMS_ACTIONS - OCPP201.schemas.actions  # no typo in the CSMS-initiated list

    assert set(ocpp201_csms.answers(Central(CsmsConfig(port=0)))) == station_actions


def test_the_same_port_negotiates_ocpp201_and_ocpp16() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            async with (
                station(csms.url, "CS-1") as ws201,
                station(csms.url, "CP-1", "ocpp1.6") as ws16,
            ):
                assert (ws201.subprotocol, ws16.subprotocol) == ("ocpp2.0.1", "ocpp1.6")
                assert {id_: c.dialect for id_, c in csms.connections.items()} == {
                    "CS-1": OCPP201,
                    "CP-1": OCPP16,
                }
                # Each connection is answered in its own version.
                assert "idTokenInfo" in await call(ws201, "Authorize", EXAMPLES["Authorize"])
                assert "idTagInfo" in await call(ws16, "Authorize", {"idTag": "TAG-1"})
            # A client offering both gets the CSMS's first choice, 1.6.
            url = f"{csms.url}/CS-2"
            async with connect(
                url, subprotocols=["ocpp2.0.1", "ocpp1.6"], open_timeout=TIMEOUT
            ) as ws:
                assert ws.subprotocol == "ocpp1.6"
            assert csms.stats["connections.total"] == 3

    run(body())


# Answers.


def test_every_response_validates_against_the_201_response_schema() -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, boot="pending", reject_id_tags=frozenset({"BAD"}))
        async with Csms(config) as csms, station(csms.url) as ws:
            for i, (action, payload) in enumerate(EXAMPLES.items()):
                OCPP201.schemas.validate(action, payload)  # the example itself is valid
                reply = await call(ws, action, payload, f"uid-{i}")
                assert isinstance(reply, dict), reply
                OCPP201.schemas.validate(action, reply, response=True)
            # The other branches: an Accepted boot, an event without idToken, a rejected one.
            boot = await call(ws, "BootNotification", EXAMPLES["BootNotification"], "boot-2")
            OCPP201.schemas.validate("BootNotification", boot, response=True)
            event = {k: v for k, v in EXAMPLES["TransactionEvent"].items() if k != "idToken"}
            for uid, payload in [
                ("ev-1", event),
                ("ev-2", {**event, "idToken": {**TOKEN, "idToken": "BAD"}}),
            ]:
                reply = await call(ws, "TransactionEvent", payload, uid)
                OCPP201.schemas.validate("TransactionEvent", reply, response=True)
            assert csms.stats["BootNotification"] == 2
            assert csms.stats["TransactionEvent"] == 3
            assert csms.stats["sent.callerror"] == 0

    run(body())


def test_id_tokens_of_the_reject_list_are_invalid_whatever_their_case() -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, reject_id_tags=frozenset({"BAD"}))
        async with Csms(config) as csms, station(csms.url) as ws:
            reply = await call(ws, "Authorize", {"idToken": TOKEN})
            assert reply == {"idTokenInfo": {"status": "Accepted"}}
            for uid, value in enumerate(["BAD", "bad"]):
                token = {"idToken": value, "type": "Central"}
                reply = await call(ws, "Authorize", {"idToken": token}, f"a{uid}")
                assert reply == {"idTokenInfo": {"status": "Invalid"}}
                event = {**EXAMPLES["TransactionEvent"], "idToken": token}
                reply = await call(ws, "TransactionEvent", event, f"t{uid}")
                assert reply == {"idTokenInfo": {"status": "Invalid"}}
            event = {k: v for k, v in EXAMPLES["TransactionEvent"].items() if k != "idToken"}
            assert await call(ws, "TransactionEvent", {**event, "eventType": "Updated"}) == {}

    run(body())


def test_heartbeat_and_boot_accept_give_the_time_and_the_interval() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0, heartbeat_interval=42)) as csms, station(csms.url) as ws:
            reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
            assert (reply["status"], reply["interval"]) == ("Accepted", 42)
            assert reply["currentTime"].endswith("Z")
            reply = await call(ws, "Heartbeat", {}, "2")
            assert set(reply) == {"currentTime"}

    run(body())


@pytest.mark.parametrize(("policy", "first"), [("pending", "Pending"), ("reject", "Rejected")])
def test_boot_policy_applies_to_the_first_boot_of_each_station(policy: str, first: str) -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, boot=policy, heartbeat_interval=60, boot_retry_interval=7)
        boot = EXAMPLES["BootNotification"]
        async with Csms(config) as csms:
            async with station(csms.url, "CS-1") as ws:
                reply = await call(ws, "BootNotification", boot)
                assert (reply["status"], reply["interval"]) == (first, 7)
                reply = await call(ws, "BootNotification", boot, "2")
                assert (reply["status"], reply["interval"]) == ("Accepted", 60)
            async with station(csms.url, "CS-2") as ws:
                assert (await call(ws, "BootNotification", boot))["status"] == first
            # It is remembered across reconnects.
            async with station(csms.url, "CS-1") as ws:
                assert (await call(ws, "BootNotification", boot))["status"] == "Accepted"

    run(body())


# Errors, spelled as 2.0.1 spells them.


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("Heartbeat", {"extra": True}, "FormatViolation"),
        ("Authorize", {}, "OccurrenceConstraintViolation"),
        (
            "StatusNotification",
            {**EXAMPLES["StatusNotification"], "evseId": "1"},
            ocppj.TYPE_CONSTRAINT_VIOLATION,
        ),
        (
            "StatusNotification",
            {**EXAMPLES["StatusNotification"], "connectorStatus": "Sleeping"},
            ocppj.PROPERTY_CONSTRAINT_VIOLATION,
        ),
        ("GetVariables", {"getVariableData": []}, ocppj.NOT_SUPPORTED),  # a CSMS's to send
        ("StartTransaction", {}, ocppj.NOT_IMPLEMENTED),  # 1.6's, not 2.0.1's
    ],
)
def test_an_invalid_call_gets_a_callerror_of_the_201_spelling(
    action: str, payload: dict[str, Any], code: str
) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, station(csms.url) as ws:
            reply = await call(ws, action, payload, "abc-123")
            assert reply[:3] == [ocppj.CALLERROR, "abc-123", code]
            assert reply[3]  # a description
            assert "currentTime" in await call(ws, "Heartbeat", {}, "next")
            assert csms.stats["sent.callerror"] == 1

    run(body())


@pytest.mark.parametrize("frame", ["[2, 'not json'", '[2, "u1", "Heartbeat"]', b"\x02binary"])
def test_a_bad_frame_gets_a_format_violation_and_16_still_a_formation_violation(
    frame: str | bytes,
) -> None:
    async def body() -> None:
        async with (
            Csms(CsmsConfig(port=0)) as csms,
            station(csms.url, "CS-1") as ws201,
            station(csms.url, "CP-1", "ocpp1.6") as ws16,
        ):
            assert (await exchange(ws201, frame))[2] == "FormatViolation"
            assert (await exchange(ws16, frame))[2] == ocppj.FORMATION_VIOLATION

    run(body())


def test_callerrors_from_a_station_are_counted_by_their_201_code() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, station(csms.url) as ws:
            for uid, code in enumerate(["RpcFrameworkError", "FormationViolation"]):
                await ws.send(ocppj.error_frame(f"u{uid}", code, ""))
            assert "currentTime" in await call(ws, "Heartbeat", {})
            assert csms.stats["received.callerror.RpcFrameworkError"] == 1
            assert csms.stats["received.callerror.other"] == 1  # 1.6's spelling is not 2.0.1's

    run(body())


def test_validation_off_turns_a_payload_the_handler_cannot_use_into_an_internal_error() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0, validate=False)) as csms, station(csms.url) as ws:
            reply = await call(ws, "Authorize", {"idToken": "not an object"})
            assert reply[:3] == [ocppj.CALLERROR, "1", ocppj.INTERNAL_ERROR]
            assert "currentTime" in await call(ws, "Heartbeat", {"extra": True}, "2")

    run(body())


# Faults on request.


@pytest.mark.parametrize(
    ("callerror", "spelled_201", "spelled_16"),
    [
        (ocppj.FORMATION_VIOLATION, "FormatViolation", ocppj.FORMATION_VIOLATION),
        (
            "OccurrenceConstraintViolation",
            "OccurrenceConstraintViolation",
            "OccurenceConstraintViolation",
        ),
        (ocppj.INTERNAL_ERROR, ocppj.INTERNAL_ERROR, ocppj.INTERNAL_ERROR),
    ],
)
def test_callerror_faults_are_spelled_per_the_connections_version(
    callerror: str, spelled_201: str, spelled_16: str
) -> None:
    async def body() -> None:
        async with (
            Csms(CsmsConfig(port=0)) as csms,
            station(csms.url, "CS-1") as ws201,
            station(csms.url, "CP-1", "ocpp1.6") as ws16,
        ):
            plan = csms.set_faults(callerror=callerror, actions=["Heartbeat", "TransactionEvent"])
            assert plan is not None and plan.callerror in OCPP16.error_codes
            reply = await call(ws201, "TransactionEvent", EXAMPLES["TransactionEvent"])
            assert reply[2:4] == [spelled_201, "fault injected by the CSMS"]
            assert (await call(ws201, "Heartbeat", {}, "2"))[2] == spelled_201
            assert (await call(ws16, "Heartbeat", {}, "3"))[2] == spelled_16
            assert "idTokenInfo" in await call(ws201, "Authorize", EXAMPLES["Authorize"], "4")
            assert csms.stats["faults.callerror"] == 3

    run(body())


def test_a_2_0_1_only_error_code_is_refused_as_a_fault() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            with pytest.raises(ValueError, match=r"callerror must be an OCPP-J 1\.6 error code"):
                csms.set_faults(callerror="RpcFrameworkError")
            assert csms.faults is None

    run(body())


def test_delay_faults_hold_back_201_answers() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, station(csms.url) as ws:
            csms.set_faults(delay=0.3, actions=["NotifyEvent"])
            started = time.monotonic()
            assert await call(ws, "NotifyEvent", EXAMPLES["NotifyEvent"]) == {}
            assert time.monotonic() - started >= 0.3
            assert csms.stats["faults.delayed"] == 1
            csms.clear_faults()
            assert "currentTime" in await call(ws, "Heartbeat", {}, "2")

    run(body())


# The CSMS's own calls.


def test_calls_and_campaigns_go_to_the_versions_they_fit() -> None:
    async def body() -> None:
        calls201: list[list[Any]] = []
        calls16: list[list[Any]] = []
        async with (
            Csms(CsmsConfig(port=0)) as csms,
            station(csms.url, "CS-1") as ws201,
            station(csms.url, "CP-1", "ocpp1.6") as ws16,
            answering(ws201, calls201),
            answering(ws16, calls16),
        ):
            get = {
                "getVariableData": [
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "HeartbeatInterval"},
                    }
                ]
            }
            answer = await csms.call("CS-1", "Reset", {"type": "Immediate"}, timeout=TIMEOUT)
            assert answer.payload == {"status": "Accepted"}  # type: ignore[union-attr]
            with pytest.raises(ValueError, match="invalid Reset payload"):
                await csms.call("CS-1", "Reset", {"type": "Soft"})  # 1.6's Reset
            with pytest.raises(ValueError, match=r"'GetVariables' is not an OCPP 1\.6 call"):
                await csms.call("CP-1", "GetVariables", get)
            result = await csms.campaign("Reset", {"type": "Soft"}, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (1, 1)
            result = await csms.campaign("GetVariables", get, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (1, 1)
            result = await csms.campaign("ClearCache", {}, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (2, 2)
            with pytest.raises(ValueError, match="invalid GetVariables payload"):
                await csms.campaign("GetVariables", {})
            assert [frame[2] for frame in calls201] == ["Reset", "GetVariables", "ClearCache"]
            assert [frame[2] for frame in calls16] == ["Reset", "ClearCache"]
            assert calls16[0][3] == {"type": "Soft"}

    run(body())
