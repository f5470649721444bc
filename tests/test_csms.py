"""swarm.csms: the embedded OCPP 1.6J CSMS, in process and as a child process."""

from __future__ import annotations

import asyncio
import itertools
import json
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import ocpp
import psutil
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from swarm.csms import Csms, CsmsConfig, CsmsProcess, NotConnectedError, main
from swarm.ocpp16.dialect import CSMS_ACTIONS, OCPP16
from swarm.protocol import ocppj
from tests.fleet import fleet, never, refuse, status
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


# The CSMS's own calls.

RESET = {"type": "Soft"}


def test_csms_call_returns_the_charge_points_answer() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            answer = await csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT)
            assert isinstance(answer, ocppj.CallResult)
            assert answer.payload == {"status": "Accepted"}
            assert cp.calls == [[ocppj.CALL, answer.unique_id, "Reset", RESET]]
            assert (csms.stats["sent.Reset"], csms.stats["answered.Reset"]) == (1, 1)
            assert csms.stats["received.callresult"] == 1

    run(body())


def test_csms_call_returns_a_callerror() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"], refuse):
            answer = await csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT)
            assert isinstance(answer, ocppj.CallError)
            assert (answer.code, answer.description) == (ocppj.NOT_SUPPORTED, "not here")
            assert csms.stats["callerror.ClearCache"] == 1
            assert csms.stats["answered.ClearCache"] == 0

    run(body())


def test_csms_call_times_out_and_a_late_answer_is_not_taken_for_the_next() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            cp.reply = status("Late", delay=0.4)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await csms.call("CP-1", "Reset", RESET, timeout=0.2)
            assert time.monotonic() - started < 0.35
            assert csms.stats["timeout.Reset"] == 1
            # The first answer ("Late") arrives while the second call waits for its own.
            cp.reply = status("OnTime", delay=0.4)
            answer = await csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT)
            assert answer.payload == {"status": "OnTime"}
            assert csms.stats["received.callresult"] == 2
            assert csms.stats["answered.Reset"] == 1

    run(body())


def test_csms_call_to_a_charge_point_not_connected_raises() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]):
            with pytest.raises(NotConnectedError, match="CP-2"):
                await csms.call("CP-2", "Reset", RESET)
            assert csms.stats["disconnected.Reset"] == 1
            assert csms.stats["sent.Reset"] == 0

    run(body())


@pytest.mark.parametrize(
    ("action", "payload", "timeout", "match"),
    [
        ("Reset", {"type": "Sideways"}, 1.0, r"invalid Reset payload: type: not one of Hard, Soft"),
        ("Reset", {}, 1.0, "invalid Reset payload: .*'type' is a required property"),
        ("Reset", {"type": "Soft", "extra": 1}, 1.0, "invalid Reset payload"),
        ("Reset", ["Soft"], 1.0, "must be an object"),
        ("Heartbeat", {}, 1.0, "'Heartbeat' is not an OCPP 1.6 call a CSMS sends"),
        ("Frobnicate", {}, 1.0, "'Frobnicate' is not"),
        ("Reset", RESET, 0, "timeout must be positive"),
        ("Reset", RESET, float("inf"), "timeout must be positive and finite"),
    ],
)
def test_csms_call_refuses_a_bad_call_before_sending_anything(
    action: str, payload: Any, timeout: float, match: str
) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            with pytest.raises(ValueError, match=match):
                await csms.call("CP-1", action, payload, timeout=timeout)
            await csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT)
            assert [frame[2] for frame in cp.calls] == ["ClearCache"]
            counted = {key for key in csms.stats if "." in key and "connections" not in key}
            assert counted == {"sent.ClearCache", "answered.ClearCache", "received.callresult"}

    run(body())


def test_one_csms_call_in_flight_per_charge_point() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            cp.reply = status("Accepted", delay=0.2)
            first, second = await asyncio.gather(
                csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT),
                csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT),
            )
            events = [(kind, uid) for kind, uid, _ in cp.events]
            a, b = first.unique_id, second.unique_id
            assert a != b
            assert events == [("call", a), ("answer", a), ("call", b), ("answer", b)]
            assert csms.stats["sent.Reset"] == csms.stats["sent.ClearCache"] == 1

    run(body())


def test_calls_to_different_charge_points_run_concurrently() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(5)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids, status("Ok", 0.3)):
            started = time.monotonic()
            answers = await asyncio.gather(*(csms.call(i, "ClearCache", {}) for i in ids))
            assert time.monotonic() - started < 1.0
            assert [a.payload for a in answers] == [{"status": "Ok"}] * 5

    run(body())


def test_a_closing_connection_fails_the_pending_call_at_once() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"], never) as [cp]:
            pending = asyncio.create_task(csms.call("CP-1", "Reset", RESET, timeout=30))
            await eventually(lambda: bool(cp.calls))
            started = time.monotonic()
            await cp.ws.close()
            with pytest.raises(NotConnectedError, match="closed its connection"):
                await pending
            assert time.monotonic() - started < 1.0
            assert csms.stats["disconnected.Reset"] == 1
            with pytest.raises(NotConnectedError):
                await csms.call("CP-1", "Reset", RESET)

    run(body())


def test_campaign_targets_a_random_share_of_the_connected_charge_points() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            result = await csms.campaign("Reset", RESET, share=0.5, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (5, 5)
            assert result.statuses == {"Accepted": 5}
            assert sum(len(fake.calls) for fake in fakes) == 5
            assert all(len(fake.calls) <= 1 for fake in fakes)
            # At least one when any is connected.
            result = await csms.campaign("Reset", RESET, share=0.01, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (1, 1)
            result = await csms.campaign("Reset", RESET, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (10, 10)
            assert csms.stats["sent.Reset"] == 16

    run(body())


def test_campaign_counts_every_kind_of_outcome() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            for fake in fakes[6:8]:
                fake.reply = status("Rejected")
            fakes[8].reply = refuse
            fakes[9].reply = never
            started = time.monotonic()
            result = await csms.campaign(
                "ChangeAvailability",
                {"connectorId": 0, "type": "Inoperative"},
                charge_point_ids=[*ids, "CP-gone", "CP-0"],  # a duplicate is called once
                timeout=0.5,
            )
            assert 0.5 <= time.monotonic() - started < 1.5
            assert result.as_dict() == {
                "action": "ChangeAvailability",
                "targeted": 11,
                "answered": 8,
                "callerrors": 1,
                "timed_out": 1,
                "disconnected": 1,
                "statuses": {"Accepted": 6, "Rejected": 2},
                "errors": {"NotSupported": 1},
                "seconds": pytest.approx(0.5, abs=0.3),
            }
            counts = {
                outcome: csms.stats[f"{outcome}.ChangeAvailability"]
                for outcome in ("sent", "answered", "callerror", "timeout", "disconnected")
            }
            assert counts == {
                "sent": 10,
                "answered": 8,
                "callerror": 1,
                "timeout": 1,
                "disconnected": 1,
            }

    run(body())


def test_campaign_at_a_rate_spreads_its_calls_evenly() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            started = time.monotonic()
            result = await csms.campaign("ClearCache", {}, rate=20, timeout=TIMEOUT)
            elapsed = time.monotonic() - started
            assert 0.45 <= elapsed <= 1.5
            assert (result.targeted, result.answered) == (10, 10)
            arrivals = sorted(fake.events[0][2] for fake in fakes)
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            assert min(gaps) > 0.02, gaps
            assert 0.4 <= arrivals[-1] - arrivals[0] <= 1.0

    run(body())


def test_campaign_ends_when_the_csms_stops() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(5)]
        csms = Csms(CsmsConfig(port=0))
        await csms.start()
        try:
            async with fleet(csms.url, ids) as fakes:
                campaign = asyncio.create_task(csms.campaign("ClearCache", {}, rate=1))
                await eventually(lambda: any(fake.calls for fake in fakes))
                await csms.stop()
                result = await asyncio.wait_for(campaign, 1.0)
                assert result.targeted == 5
                assert result.answered + result.disconnected == 5
                assert result.disconnected >= 3
        finally:
            await csms.stop()

    run(body())


def test_campaign_without_charge_points_targets_none() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            result = await csms.campaign("Reset", RESET)
            assert result.as_dict()["targeted"] == 0
            result = await csms.campaign("Reset", RESET, charge_point_ids=["CP-1"], rate=1)
            assert (result.targeted, result.disconnected) == (1, 1)

    run(body())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"share": 0}, "share must be a number in"),
        ({"share": 1.5}, "share must be a number in"),
        ({"share": float("nan")}, "share must be a number in"),
        ({"share": True}, "share must be a number in"),
        ({"rate": 0}, "rate must be positive"),
        ({"rate": -5}, "rate must be positive"),
        ({"timeout": "30"}, "timeout must be a number"),
        ({"share": 0.5, "charge_point_ids": ["CP-1"]}, "not both"),
        ({"charge_point_ids": "CP-1"}, "a list of ids"),
    ],
)
def test_campaign_refuses_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            with pytest.raises(ValueError, match=match):
                await csms.campaign("Reset", RESET, **kwargs)
            with pytest.raises(ValueError, match="invalid Reset payload"):
                await csms.campaign("Reset", {"type": "Now"})
            assert cp.calls == []

    run(body())


# Handshake and connections.


@pytest.mark.parametrize("subprotocols", [None, ["ocpp2.1"]])
def test_a_client_without_ocpp16_is_refused(subprotocols: list[str] | None) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            with pytest.raises(InvalidHandshake) as info:
                async with connect(f"{csms.url}/ocpp/CP-1", subprotocols=subprotocols):
                    pass
            assert isinstance(info.value, InvalidStatus)
            assert info.value.response.status_code == 400
            assert csms.stats["connections.total"] == 0

    run(body())


def test_the_negotiated_subprotocol_is_ocpp16() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            url = f"{csms.url}/CP-1"
            async with connect(url, subprotocols=["ocpp2.0.1", "ocpp1.6"]) as ws:
                assert ws.subprotocol == "ocpp1.6"

    run(body())


@pytest.mark.parametrize("path", ["/", "/ocpp/", "/ocpp/?a=b"])
def test_an_empty_charge_point_id_is_refused(path: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            with pytest.raises(InvalidStatus) as info:
                async with connect(csms.url + path, subprotocols=["ocpp1.6"]):
                    pass
            assert info.value.response.status_code == 404

    run(body())


def test_connections_are_registered_by_charge_point_id() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            async with connect(f"{csms.url}/a/b/CP%201?x=1", subprotocols=["ocpp1.6"]) as ws:
                await call(ws, "Heartbeat", {})
                assert set(csms.connections) == {"CP 1"}
                first = csms.connections["CP 1"]
                # A reconnect with the same id replaces the entry; the old one leaving keeps it.
                async with connect(f"{csms.url}/CP%201", subprotocols=["ocpp1.6"]) as again:
                    await call(again, "Heartbeat", {})
                    assert csms.connections["CP 1"] is not first
                    assert csms.stats["connections.current"] == 2
                    await ws.close()
                    await eventually(lambda: csms.stats["connections.current"] == 1)
                    assert "CP 1" in csms.connections
            await eventually(lambda: not csms.connections)
            assert csms.stats["connections.current"] == 0
            assert csms.stats["connections.total"] == 2

    run(body())


def test_stop_closes_connections_with_going_away() -> None:
    async def body() -> None:
        csms = Csms(CsmsConfig(port=0))
        await csms.start()
        async with charge_point(csms.url) as ws:
            await call(ws, "Heartbeat", {})
            async with asyncio.timeout(TIMEOUT):
                await csms.stop()
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1001
        await csms.stop()  # idempotent

    run(body())


# Configuration and command line.


@pytest.mark.parametrize(
    "kwargs",
    [
        {"port": -1},
        {"port": 65536},
        {"heartbeat_interval": -1},
        {"boot_retry_interval": -5},
        {"boot": "maybe"},
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CsmsConfig(**kwargs)


def test_config_takes_any_iterable_of_rejected_tags() -> None:
    config = CsmsConfig(reject_id_tags=["A", "B"])  # type: ignore[arg-type]
    assert config.reject_id_tags == frozenset({"A", "B"})
    hash(config)
    with pytest.raises(ValueError, match="reject_id_tags"):
        CsmsConfig(reject_id_tags="ABC")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "argv",
    [
        ["--port", "-5"],
        ["--port", "70000"],
        ["--port", "x"],
        ["--heartbeat-interval", "-1"],
        ["--boot", "maybe"],
        ["--boot-retry-interval", "soon"],
        ["--unknown"],
    ],
)
def test_cli_rejects_bad_flags(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code != 0
    assert "error" in capsys.readouterr().err


def test_csms_process_serves_and_stops() -> None:
    with CsmsProcess.start(["--boot", "pending", "--reject-id-tag", "BAD"]) as child:
        assert child.url.startswith("ws://127.0.0.1:")
        assert child.control_url is None
        assert psutil.pid_exists(child.pid)

        async def body() -> None:
            async with charge_point(child.url) as ws:
                reply = await call(ws, "BootNotification", EXAMPLES["BootNotification"])
                assert reply["status"] == "Pending"
                assert await call(ws, "Authorize", {"idTag": "BAD"}, "2") == {
                    "idTagInfo": {"status": "Invalid"}
                }

        run(body())
        assert child.stop() == 0
    assert child.process.poll() is not None


def test_csms_process_reports_a_failed_start_and_leaves_no_process() -> None:
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(RuntimeError, match="invalid choice"):
        CsmsProcess.start(["--boot", "maybe"])
    assert {p.pid for p in psutil.Process().children()} <= before


def test_csms_process_start_times_out_and_leaves_no_process() -> None:
    before = {p.pid for p in psutil.Process().children()}
    with pytest.raises(RuntimeError, match="timed out"):
        CsmsProcess.start([], timeout=0.001)
    assert {p.pid for p in psutil.Process().children()} <= before


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_csms_process_stops_cleanly_on_a_signal(signum: int) -> None:
    child = CsmsProcess.start([])
    try:
        child.process.send_signal(signum)
        assert child.process.wait(TIMEOUT) == 0
    finally:
        child.stop()


def test_csms_process_works_under_gevent_monkey_patching() -> None:
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "from swarm.csms import CsmsProcess\n"
        "child = CsmsProcess.start(['--no-validate'])\n"
        "print(child.url.startswith('ws://'), child.stop())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.split() == ["True", "0"]
