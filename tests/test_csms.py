"""swarm.csms: the embedded OCPP 1.6J CSMS, in process and as a child process."""

from __future__ import annotations

import asyncio
import json
import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import ocpp
import pytest
from websockets.asyncio.client import ClientConnection, connect

from swarm.csms import Csms, CsmsConfig
from swarm.ocpp16.dialect import CSMS_ACTIONS, OCPP16
from swarm.protocol import ocppj
from tests.scripted import run

TIMEOUT = 5.0
NOW = "2024-05-01T12:00:00Z"

# A valid request for every charge-point-initiated action (1.6 and its security extension).
EXAMPLES: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": "TAG-1"},
    "BootNotification": {"chargePointVendor": "Swarm", "chargePointModel": "Virtual"},
    "DataTransfer": {"vendorId": "swarm", "messageId": "ping", "data": "{}"},
    "DiagnosticsStatusNotification": {"status": "Idle"},
    "FirmwareStatusNotification": {"status": "Idle"},
    "Heartbeat": {},
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [
            {
                "timestamp": NOW,
                "sampledValue": [
                    {"value": "1234", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
                ],
            }
        ],
    },
    "StartTransaction": {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": NOW},
    "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
    "StopTransaction": {"meterStop": 10, "timestamp": NOW, "transactionId": 1, "idTag": "TAG-1"},
    "SecurityEventNotification": {"type": "StartupOfTheDevice", "timestamp": NOW},
    "SignCertificate": {"csr": "-----BEGIN CERTIFICATE REQUEST-----"},
    "LogStatusNotification": {"status": "Idle", "requestId": 1},
    "SignedFirmwareStatusNotification": {"status": "Idle", "requestId": 1},
}


@asynccontextmanager
async def charge_point(url: str, cp_id: str = "CP-1") -> AsyncIterator[ClientConnection]:
    async with connect(f"{url}/ocpp/{cp_id}", subprotocols=["ocpp1.6"], open_timeout=TIMEOUT) as ws:
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


async def eventually(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(0.01)


# Boot policies.


def test_boot_accept_sends_the_heartbeat_interval() -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, heartbeat_interval=42)
        async with Csms(config) as csms, charge_point(csms.url) as ws:
            for uid in ("1", "2"):
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"], uid)
                assert reply["status"] == "Accepted"
                assert reply["interval"] == 42
                assert reply["currentTime"].endswith("Z")

    run(body())


@pytest.mark.parametrize(("policy", "first"), [("pending", "Pending"), ("reject", "Rejected")])
def test_boot_policy_applies_to_the_first_boot_of_each_charge_point(
    policy: str, first: str
) -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, boot=policy, heartbeat_interval=60, boot_retry_interval=7)
        async with Csms(config) as csms:
            async with charge_point(csms.url, "CP-1") as ws:
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
                assert (reply["status"], reply["interval"]) == (first, 7)
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"], "2")
                assert (reply["status"], reply["interval"]) == ("Accepted", 60)
            async with charge_point(csms.url, "CP-2") as ws:
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
                assert reply["status"] == first
            # It is remembered across reconnects.
            async with charge_point(csms.url, "CP-1") as ws:
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
                assert reply["status"] == "Accepted"

    run(body())


# Handlers.


def test_heartbeat_returns_the_current_utc_time() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            reply = await call(ws, "Heartbeat", {})
            assert set(reply) == {"currentTime"}
            assert reply["currentTime"].endswith("Z")
            sent = datetime.fromisoformat(reply["currentTime"].replace("Z", "+00:00"))
            assert abs((datetime.now(UTC) - sent).total_seconds()) < 5

    run(body())


def test_authorize_rejects_configured_id_tags() -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, reject_id_tags=frozenset({"BAD"}))
        async with Csms(config) as csms, charge_point(csms.url) as ws:
            reply = await call(ws, "Authorize", {"idTag": "GOOD"})
            assert reply == {"idTagInfo": {"status": "Accepted"}}
            reply = await call(ws, "Authorize", {"idTag": "BAD"})
            assert reply == {"idTagInfo": {"status": "Invalid"}}
            start = {**EXAMPLES["StartTransaction"], "idTag": "BAD"}
            reply = await call(ws, "StartTransaction", start)
            assert reply["idTagInfo"] == {"status": "Invalid"}
            assert isinstance(reply["transactionId"], int)

    run(body())


def test_transaction_ids_are_unique_and_increasing_across_charge_points() -> None:
    async def body() -> None:
        async with (
            Csms(CsmsConfig(port=0)) as csms,
            charge_point(csms.url, "CP-1") as a,
            charge_point(csms.url, "CP-2") as b,
        ):
            ids = []
            for i, ws in enumerate([a, b, a, b, b]):
                reply = await call(ws, "StartTransaction", EXAMPLES["StartTransaction"], str(i))
                assert reply["idTagInfo"] == {"status": "Accepted"}
                ids.append(reply["transactionId"])
            assert ids == sorted(set(ids))
            assert len(ids) == 5

    run(body())


def test_stop_transaction_answers_id_tag_info_only_for_an_id_tag() -> None:
    async def body() -> None:
        config = CsmsConfig(port=0, reject_id_tags=frozenset({"BAD"}))
        async with Csms(config) as csms, charge_point(csms.url) as ws:
            started = await call(ws, "StartTransaction", EXAMPLES["StartTransaction"])
            stop = {"meterStop": 5, "timestamp": NOW, "transactionId": started["transactionId"]}
            assert await call(ws, "StopTransaction", stop) == {}
            reply = await call(ws, "StopTransaction", {**stop, "idTag": "TAG-1"})
            assert reply == {"idTagInfo": {"status": "Accepted"}}
            reply = await call(ws, "StopTransaction", {**stop, "idTag": "BAD"})
            assert reply == {"idTagInfo": {"status": "Invalid"}}

    run(body())


def test_examples_cover_every_charge_point_initiated_action_the_ocpp_package_knows() -> None:
    schema_dir = pathlib.Path(ocpp.__file__).parent / "v16" / "schemas"
    requests = {p.stem for p in schema_dir.glob("*.json") if not p.stem.endswith("Response")}
    assert requests - CSMS_ACTIONS - {"DataTransfer"} == set(EXAMPLES) - {"DataTransfer"}
    assert not CSMS_ACTIONS - requests  # no typo in the CSMS-initiated list


def test_every_response_validates_against_the_16_response_schema() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0, boot="pending")) as csms, charge_point(csms.url) as ws:
            for i, (action, payload) in enumerate(EXAMPLES.items()):
                OCPP16.schemas.validate(action, payload)  # the example itself is valid
                reply = await call(ws, action, payload, f"uid-{i}")
                assert isinstance(reply, dict), reply
                OCPP16.schemas.validate(action, reply, response=True)
            # The other branches: an Accepted boot, a stop without idTag, a rejected tag.
            reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
            OCPP16.schemas.validate("BootNotification", reply, response=True)
            stop = {k: v for k, v in EXAMPLES["StopTransaction"].items() if k != "idTag"}
            OCPP16.schemas.validate(
                "StopTransaction", await call(ws, "StopTransaction", stop), response=True
            )
            assert csms.stats["Heartbeat"] == 1
            assert csms.stats["BootNotification"] == 2

    run(body())


# Errors.


@pytest.mark.parametrize(
    ("action", "payload", "code"),
    [
        ("Authorize", {}, ocppj.OCCURENCE_CONSTRAINT_VIOLATION),
        (
            "StartTransaction",
            {**EXAMPLES["StartTransaction"], "connectorId": "1"},
            "TypeConstraintViolation",
        ),
        ("Authorize", {"idTag": "x" * 21}, ocppj.TYPE_CONSTRAINT_VIOLATION),
        ("Heartbeat", {"extra": True}, ocppj.FORMATION_VIOLATION),
        (
            "StatusNotification",
            {**EXAMPLES["StatusNotification"], "status": "Sleeping"},
            ocppj.PROPERTY_CONSTRAINT_VIOLATION,
        ),
    ],
)
def test_invalid_payload_gets_the_mapped_code_and_the_calls_id(
    action: str, payload: dict[str, Any], code: str
) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            reply = await call(ws, action, payload, "abc-123")
            assert reply[0] == ocppj.CALLERROR
            assert reply[2] == code
            assert reply[3]  # a description
            assert reply[4] == {}
            # The connection stays usable.
            assert "currentTime" in await call(ws, "Heartbeat", {}, "next")

    run(body())


def test_validation_can_be_switched_off() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0, validate=False)) as csms, charge_point(csms.url) as ws:
            assert "currentTime" in await call(ws, "Heartbeat", {"extra": True})
            # A payload the handler cannot use is an InternalError, not a dropped connection.
            reply = await call(ws, "Authorize", {"idTag": ["not", "hashable"]}, "2")
            assert reply[:3] == [ocppj.CALLERROR, "2", ocppj.INTERNAL_ERROR]
            assert "currentTime" in await call(ws, "Heartbeat", {}, "3")

    run(body())


@pytest.mark.parametrize(
    ("frame", "uid", "code"),
    [
        ("[2, 'not json'", "-1", ocppj.FORMATION_VIOLATION),
        ('{"not": "an array"}', "-1", ocppj.FORMATION_VIOLATION),
        ('[2, "u1", "Heartbeat"]', "u1", ocppj.FORMATION_VIOLATION),
        ('[2, "u3", "Frobnicate", {}]', "u3", ocppj.NOT_IMPLEMENTED),
        ('[2, "u4", "RemoteStartTransaction", {"idTag": "T"}]', "u4", ocppj.NOT_SUPPORTED),
        ('[2, "u5", "GetConfiguration", {}]', "u5", ocppj.NOT_SUPPORTED),
        (b"\x02binary", "-1", ocppj.FORMATION_VIOLATION),
        ("[" * 100_000 + "]" * 100_000, "-1", ocppj.FORMATION_VIOLATION),  # nested too deeply
    ],
)
def test_bad_frames_get_a_callerror(frame: str | bytes, uid: str, code: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            reply = await exchange(ws, frame)
            assert reply[:3] == [ocppj.CALLERROR, uid, code]
            assert "currentTime" in await call(ws, "Heartbeat", {}, "next")

    run(body())


def test_malformed_answers_and_unknown_message_types_are_counted_not_answered() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            await ws.send('[7, "u2", "Heartbeat", {}]')  # OCPP-J 1.6, 4.1.3: ignored
            await ws.send('[3, "u3"]')  # an answer without a payload
            assert "currentTime" in await call(ws, "Heartbeat", {}, "hb")
            assert csms.stats["received.ignored"] == 2
            assert csms.stats["sent.callerror"] == 0

    run(body())


def test_answers_from_the_charge_point_are_counted_not_answered() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, charge_point(csms.url) as ws:
            await ws.send(ocppj.result_frame("x1", {}))
            await ws.send(ocppj.error_frame("x2", ocppj.GENERIC_ERROR))
            # The next reply is the Heartbeat's: nothing answered the two frames above.
            assert "currentTime" in await call(ws, "Heartbeat", {}, "hb")
            assert csms.stats["received.callresult"] == 1
            assert csms.stats["received.callerror"] == 1

    run(body())
