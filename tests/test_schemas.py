"""swarm.protocol.schemas: OCPP 1.6 schema validation and its OCPP-J error codes."""

from __future__ import annotations

import json

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


# The compiled check lets only the valid through sooner: it must never pass what jsonschema
# refuses. Held to jsonschema's verdict on every schema of both versions, both directions,
# for a payload made from the schema and for each way of breaking each of its properties.


def example(schema: dict, root: dict) -> object:
    """A payload that fits ``schema``: required properties only, the first of each choice."""
    if "$ref" in schema:
        return example(root["definitions"][schema["$ref"].rpartition("/")[2]], root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {key: example(properties[key], root) for key in schema.get("required", [])}
    if kind == "array":
        return [example(schema["items"], root)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return "x" * max(1, schema.get("minLength", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.5 if schema.get("minimum", 0) <= 1.5 else schema["minimum"]
    assert kind == "boolean", schema
    return True


def breakages(schema: dict, root: dict, payload: object) -> list[object]:
    """Payloads that differ from ``payload`` in one place: a wrong type, a value out of its
    bounds or enum, a property missing or added, every optional property present."""
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rpartition("/")[2]]
    found: list[object] = [None, "x", 7, 1.5, True, [], {}, -1, 10**12, "x" * 2000, 1.0]
    if isinstance(payload, dict):
        properties = schema.get("properties", {})
        found.append({**payload, "unknown": 1})
        full = {**payload, **{k: example(v, root) for k, v in properties.items()}}
        found.append(full)
        for key, value in full.items():
            found.append({k: v for k, v in full.items() if k != key})
            found += [{**full, key: broken} for broken in breakages(properties[key], root, value)]
    elif isinstance(payload, list) and payload:
        found += [[broken] for broken in breakages(schema["items"], root, payload[0])]
        found.append(payload * (schema.get("maxItems", 1) + 1))
    return found


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_compiled_check_never_passes_what_jsonschema_refuses(version: str) -> None:
    from ocpp.messages import get_validator

    from swarm.ocpp201.dialect import OCPP201
    from swarm.protocol.schemas import compile_schema

    schemas = OCPP16.schemas if version == "1.6" else OCPP201.schemas
    checked = refused = 0
    for action in sorted(schemas.actions):
        for message_type in (ocppj.CALL, ocppj.CALLRESULT):
            if (message_type, action) in schemas.decimal:
                continue  # checked by jsonschema alone, in Decimal
            try:
                validator = get_validator(message_type, action, version)
            except OSError:  # a request with no response schema, or the other way round
                continue
            compiled = compile_schema(validator.schema)
            payload = example(validator.schema, validator.schema)
            for candidate in [payload, *breakages(validator.schema, validator.schema, payload)]:
                try:
                    compiled(candidate)
                    passed = True
                except Exception:
                    passed = False
                expected = validator.is_valid(candidate)
                assert passed == expected, (version, action, message_type, candidate)
                checked += 1
                refused += not expected
    assert refused > checked // 4  # the breakages break


def test_a_check_never_changes_the_payload() -> None:
    # fastjsonschema fills in a schema's defaults unless told not to: 2.0.1's VariableAttribute
    # has "persistent" and "constant", default false.
    from swarm.ocpp201.dialect import OCPP201

    payload = {
        "requestId": 1,
        "seqNo": 0,
        "generatedAt": "2026-12-02T00:00:00Z",
        "reportData": [
            {
                "component": {"name": "EVSE"},
                "variable": {"name": "Power"},
                "variableAttribute": [{"type": "Actual", "value": "0"}],
            }
        ],
    }
    before = json.dumps(payload)
    for _ in range(2):  # the first check loads the schema, the second runs it compiled
        OCPP201.schemas.validate("NotifyReport", payload)
    assert json.dumps(payload) == before
