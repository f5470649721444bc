"""swarm.protocol.schemas: OCPP 1.6 schema validation and its OCPP-J error codes."""

from __future__ import annotations

import pytest

from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj


def error_of(action: str, payload: dict, *, response: bool = False) -> ocppj.FrameError:
    with pytest.raises(ocppj.FrameError) as info:
        OCPP16.schemas.validate(action, payload, response=response)
    return info.value


def test_valid_request_and_response_pass() -> None:
    OCPP16.schemas.validate("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    OCPP16.schemas.validate("Heartbeat", {})
    OCPP16.schemas.validate("Heartbeat", {"currentTime": "2024-01-01T00:00:00Z"}, response=True)
    OCPP16.schemas.validate("SignCertificate", {"status": "Accepted"}, response=True)  # uses a $ref


def test_request_and_response_schemas_differ() -> None:
    error = error_of("Heartbeat", {"currentTime": "2024-01-01T00:00:00Z"})
    assert error.code == ocppj.FORMATION_VIOLATION
    error = error_of("Heartbeat", {}, response=True)
    assert error.code == ocppj.OCCURENCE_CONSTRAINT_VIOLATION


@pytest.mark.parametrize(
    ("action", "payload", "code", "where"),
    [
        ("Authorize", {}, ocppj.OCCURENCE_CONSTRAINT_VIOLATION, "idTag"),
        ("Authorize", {"idTag": 7}, ocppj.TYPE_CONSTRAINT_VIOLATION, "idTag"),
        ("Authorize", {"idTag": "x" * 21}, ocppj.TYPE_CONSTRAINT_VIOLATION, "idTag"),
        ("Heartbeat", {"extra": 1}, ocppj.FORMATION_VIOLATION, "extra"),
        (
            "LogStatusNotification",
            {"status": "Bored"},
            ocppj.PROPERTY_CONSTRAINT_VIOLATION,
            "status",
        ),
        (
            "MeterValues",
            {"connectorId": 1, "meterValue": [{"timestamp": "t", "sampledValue": [{"value": 1}]}]},
            ocppj.TYPE_CONSTRAINT_VIOLATION,
            "meterValue[0].sampledValue[0].value",
        ),
        (
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Sleeping"},
            ocppj.PROPERTY_CONSTRAINT_VIOLATION,
            "status",
        ),
    ],
)
def test_violations_map_to_ocpp_16j_codes(
    action: str, payload: dict, code: str, where: str
) -> None:
    error = error_of(action, payload)
    assert error.code == code
    assert where in error.description
    assert error.unique_id is None


def test_description_does_not_dump_the_payload() -> None:
    error = error_of("DataTransfer", {"vendorId": {"secret": "s" * 500}})
    assert error.code == ocppj.TYPE_CONSTRAINT_VIOLATION
    assert "secret" not in error.description
    assert len(error.description) < 100


@pytest.mark.parametrize("action", ["NoSuchAction", "../../v201/schemas/HeartbeatRequest", ""])
def test_unknown_action_is_not_implemented(action: str) -> None:
    assert error_of(action, {}).code == ocppj.NOT_IMPLEMENTED


def test_multiple_of_tenths_is_checked_in_decimal() -> None:
    # 21.4 / 0.1 is not an integer in binary floating point; the schema still allows 21.4.
    profile = {
        "chargingProfileId": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": {
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 21.4}],
        },
    }
    OCPP16.schemas.validate("RemoteStartTransaction", {"idTag": "T", "chargingProfile": profile})
    profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] = 21.45
    error = error_of("RemoteStartTransaction", {"idTag": "T", "chargingProfile": profile})
    assert error.code == ocppj.PROPERTY_CONSTRAINT_VIOLATION
    assert "multipleOf" in error.description
