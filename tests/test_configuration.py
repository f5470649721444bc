"""swarm.ocpp16.configuration: 1.6 configuration keys, GetConfiguration and ChangeConfiguration."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from ocpp.v16.enums import ConfigurationKey

from swarm.ocpp16.configuration import STANDARD_KEYS, Configuration, KeySpec
from swarm.ocpp16.dialect import OCPP16

NAMES = [spec.name for spec in STANDARD_KEYS]
READONLY = [spec.name for spec in STANDARD_KEYS if spec.readonly]
ELEVEN_MEASURANDS = [
    f"{measurand}.{phase}"
    for measurand in ("Voltage", "Current.Import")
    for phase in ("L1", "L2", "L3", "N")
] + ["Frequency", "Temperature", "SoC"]


def get(config: Configuration, payload: dict[str, Any]) -> dict[str, Any]:
    OCPP16.schemas.validate("GetConfiguration", payload)
    answer = config.get_configuration(payload)
    OCPP16.schemas.validate("GetConfiguration", answer, response=True)
    return answer


def change(config: Configuration, key: str, value: str) -> tuple[str, str | None]:
    payload = {"key": key, "value": value}
    OCPP16.schemas.validate("ChangeConfiguration", payload)
    answer, changed = config.change_configuration(payload)
    OCPP16.schemas.validate("ChangeConfiguration", answer, response=True)
    return answer["status"], changed


def test_every_key_is_an_ocpp_16_key() -> None:
    assert set(NAMES) <= {key.value for key in ConfigurationKey}
    assert len(set(NAMES)) == len(NAMES)


def test_the_briefed_keys_are_there() -> None:
    assert {
        "AllowOfflineTxForUnknownId",
        "AuthorizationCacheEnabled",
        "AuthorizeRemoteTxRequests",
        "ClockAlignedDataInterval",
        "ConnectionTimeOut",
        "ConnectorPhaseRotation",
        "GetConfigurationMaxKeys",
        "HeartbeatInterval",
        "LocalAuthorizeOffline",
        "LocalPreAuthorize",
        "MeterValuesAlignedData",
        "MeterValuesSampledData",
        "MeterValueSampleInterval",
        "NumberOfConnectors",
        "ResetRetries",
        "StopTransactionOnEVSideDisconnect",
        "StopTransactionOnInvalidId",
        "StopTxnAlignedData",
        "StopTxnSampledData",
        "SupportedFeatureProfiles",
        "TransactionMessageAttempts",
        "TransactionMessageRetryInterval",
        "UnlockConnectorOnEVSideDisconnect",
        "WebSocketPingInterval",
        "LocalAuthListEnabled",
        "LocalAuthListMaxLength",
        "SendLocalListMaxLength",
        "ChargeProfileMaxStackLevel",
        "ChargingScheduleAllowedChargingRateUnit",
        "ChargingScheduleMaxPeriods",
        "MaxChargingProfilesInstalled",
        "ReserveConnectorZeroSupported",
    } <= set(NAMES)


def test_defaults_are_valid_and_normalized() -> None:
    config = Configuration({spec.name: spec.default for spec in STANDARD_KEYS})
    assert all(config.value(spec.name) == spec.default for spec in STANDARD_KEYS)
    assert config._values == {}  # nothing differs from the defaults: nothing is stored


def test_typed_reads() -> None:
    config = Configuration()
    assert config.value("MeterValueSampleInterval") == "60"
    assert config.int_value("MeterValueSampleInterval") == 60
    assert config.int_value("ClockAlignedDataInterval") == 0
    assert config.bool_value("AuthorizeRemoteTxRequests") is True
    assert config.bool_value("AllowOfflineTxForUnknownId") is False
    assert config.value("heartbeatinterval") == config.value("HeartbeatInterval")
    assert config.value("MeterValuesSampledData") == (
        "Energy.Active.Import.Register,Power.Active.Import"
    )
    with pytest.raises(KeyError):
        config.value("NoSuchKey")


def test_construction_sets_the_charge_points_own_values() -> None:
    config = Configuration(
        {"MeterValueSampleInterval": "15", "numberofconnectors": "4"},
        heartbeat_interval=120,
    )
    assert config.int_value("HeartbeatInterval") == 120
    assert config.int_value("NumberOfConnectors") == 4
    assert config.int_value("MeterValueSampleInterval") == 15
    # Keywords win over the overrides; lists are checked against the connectors given.
    config = Configuration(
        {"NumberOfConnectors": "1", "ConnectorPhaseRotation": "0.RST,2.RTS"},
        number_of_connectors=2,
    )
    assert config.int_value("NumberOfConnectors") == 2
    assert config.value("ConnectorPhaseRotation") == "0.RST,2.RTS"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"NoSuchKey": "1"}, KeyError),
        ({"HeartbeatInterval": "soon"}, ValueError),
        ({"NumberOfConnectors": "0"}, ValueError),
        ({"ConnectorPhaseRotation": "2.RST"}, ValueError),  # one connector only
    ],
)
def test_construction_rejects_bad_overrides(
    overrides: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        Configuration(overrides)


def test_set_from_the_charge_points_side() -> None:
    config = Configuration()
    calls: list[tuple[str, str]] = []
    config.on_change("HeartbeatInterval", lambda *change: calls.append(change))
    config.set("HeartbeatInterval", 45)
    config.set("NumberOfConnectors", 3)  # readonly keys too
    config.set("LocalAuthListEnabled", True)
    assert config.int_value("HeartbeatInterval") == 45
    assert config.int_value("NumberOfConnectors") == 3
    assert config.value("LocalAuthListEnabled") == "true"
    assert calls == []
    with pytest.raises(ValueError):
        config.set("HeartbeatInterval", True)
    with pytest.raises(KeyError):
        config.set("NoSuchKey", 1)


def test_get_configuration_without_keys_lists_all() -> None:
    config = Configuration(heartbeat_interval=30)
    for payload in ({}, {"key": []}):
        answer = get(config, payload)
        assert set(answer) == {"configurationKey"}
        entries = answer["configurationKey"]
        assert [entry["key"] for entry in entries] == NAMES
        by_name = {entry["key"]: entry for entry in entries}
        assert by_name["HeartbeatInterval"] == {
            "key": "HeartbeatInterval",
            "readonly": False,
            "value": "30",
        }
        assert by_name["NumberOfConnectors"]["readonly"] is True
        assert [name for name, entry in by_name.items() if entry["readonly"]] == READONLY


def test_get_configuration_with_known_and_unknown_keys() -> None:
    config = Configuration()
    answer = get(config, {"key": ["HeartbeatInterval", "Nope", "numberofconnectors"]})
    assert answer == {
        "configurationKey": [
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
            {"key": "NumberOfConnectors", "readonly": True, "value": "1"},
        ],
        "unknownKey": ["Nope"],
    }
    assert get(config, {"key": ["Nope", "Neither"]}) == {"unknownKey": ["Nope", "Neither"]}
    assert get(config, {"key": ["ResetRetries"]}) == {
        "configurationKey": [{"key": "ResetRetries", "readonly": False, "value": "3"}]
    }


def test_get_configuration_answers_at_most_max_keys_keys() -> None:
    config = Configuration({"GetConfigurationMaxKeys": "2"})
    answer = get(
        config,
        {"key": ["HeartbeatInterval", "HEARTBEATINTERVAL", "Nope", "ResetRetries", "Other"]},
    )
    # Repeats do not count; keys past the limit are in neither list.
    assert answer == {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
        "unknownKey": ["Nope"],
    }
    assert len(get(config, {})["configurationKey"]) == len(NAMES)  # all: no limit


def test_change_configuration_accepted() -> None:
    config = Configuration()
    calls: list[tuple[str, str]] = []
    config.on_change("HeartbeatInterval", lambda *change: calls.append(change))
    config.on_change("ResetRetries", lambda *change: calls.append(("other", "observer")))
    assert change(config, "HeartbeatInterval", "90") == ("Accepted", "HeartbeatInterval")
    assert config.value("HeartbeatInterval") == "90"
    assert calls == [("HeartbeatInterval", "90")]
    assert get(config, {"key": ["HeartbeatInterval"]})["configurationKey"][0]["value"] == "90"


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("heartbeatINTERVAL", " 0042 ", "42"),
        ("ClockAlignedDataInterval", "0", "0"),
        ("AuthorizeRemoteTxRequests", "FALSE", "false"),
        ("LocalPreAuthorize", "True", "true"),
        (
            "MeterValuesSampledData",
            "Voltage.L1, Current.Import ,Voltage.L1",
            "Voltage.L1,Current.Import",
        ),
        ("MeterValuesAlignedData", "", ""),
        ("StopTxnSampledData", "Energy.Active.Import.Register", "Energy.Active.Import.Register"),
        ("ConnectorPhaseRotation", "0.RST, 1.Unknown", "0.RST,1.Unknown"),
        ("WebSocketPingInterval", "30", "30"),
    ],
)
def test_change_configuration_normalizes(key: str, value: str, stored: str) -> None:
    config = Configuration()
    status, changed = change(config, key, value)
    assert status == "Accepted"
    assert changed is not None and changed.lower() == key.lower()
    assert config.value(key) == stored


@pytest.mark.parametrize("key", READONLY)
def test_change_configuration_rejects_readonly_keys(key: str) -> None:
    config = Configuration()
    assert change(config, key, config.value(key)) == ("Rejected", None)


def test_change_configuration_of_an_unknown_key_is_not_supported() -> None:
    assert change(Configuration(), "BlinkRepeat", "3") == ("NotSupported", None)
    assert change(Configuration(), "Nope", "1") == ("NotSupported", None)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("HeartbeatInterval", "soon"),
        ("HeartbeatInterval", "0"),  # at least 1
        ("MeterValueSampleInterval", "-1"),
        ("MeterValueSampleInterval", "1.5"),
        ("MeterValueSampleInterval", "+5"),
        ("MeterValueSampleInterval", "1_000"),
        ("MeterValueSampleInterval", "٣"),  # a digit, but not an ASCII one
        ("MeterValueSampleInterval", "2147483648"),  # more than 32 bits
        ("MeterValueSampleInterval", ""),
        ("LocalPreAuthorize", "yes"),
        ("LocalPreAuthorize", "1"),
        ("LocalPreAuthorize", ""),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Warp.Drive"),
        ("MeterValuesSampledData", "Voltage.L4"),
        ("MeterValuesSampledData", "voltage"),  # members are case-sensitive
        ("MeterValuesSampledData", "Voltage,,Frequency"),
        ("MeterValuesSampledData", ",".join(ELEVEN_MEASURANDS)),  # at most 10
        ("ConnectorPhaseRotation", "1.XYZ"),
        ("ConnectorPhaseRotation", "2.RST"),  # one connector
        ("ConnectorPhaseRotation", "1.RST,1.RTS"),
        ("ConnectorPhaseRotation", "RST"),
    ],
)
def test_change_configuration_rejects_bad_values(key: str, value: str) -> None:
    config = Configuration()
    before = config.value(key)
    assert change(config, key, value) == ("Rejected", None)
    assert config.value(key) == before


def test_csl_limit_follows_its_max_length_key() -> None:
    config = Configuration({"MeterValuesSampledDataMaxLength": "1"})
    assert change(config, "MeterValuesSampledData", "Voltage,Frequency") == ("Rejected", None)
    assert change(config, "MeterValuesSampledData", "Voltage") == (
        "Accepted",
        "MeterValuesSampledData",
    )
    by_name = {e["key"]: e.get("value") for e in get(config, {})["configurationKey"]}
    assert by_name["MeterValuesSampledDataMaxLength"] == "1"
    assert by_name["StopTxnSampledDataMaxLength"] == "10"


class VendorConfiguration(Configuration):
    keys: ClassVar[tuple[KeySpec, ...]] = (
        *STANDARD_KEYS,
        KeySpec("VendorDisplayText", "str", False, "Hello"),
        KeySpec("VendorBackendUrl", "str", False, "ws://localhost", reboot_required=True),
    )


def test_reboot_required_keys_are_stored_and_not_observed() -> None:
    config = VendorConfiguration()
    calls: list[tuple[str, str]] = []
    config.on_change("VendorBackendUrl", lambda *change: calls.append(change))
    assert change(config, "VendorBackendUrl", "wss://csms") == (
        "RebootRequired",
        "VendorBackendUrl",
    )
    assert config.value("VendorBackendUrl") == "wss://csms"
    assert calls == []


def test_str_keys_take_any_value_as_given() -> None:
    config = VendorConfiguration()
    assert change(config, "vendordisplaytext", " Hi, there ") == ("Accepted", "VendorDisplayText")
    assert config.value("VendorDisplayText") == " Hi, there "
    assert get(config, {"key": ["VendorDisplayText"]})["configurationKey"][0]["value"] == (
        " Hi, there "
    )
    assert len(get(config, {})["configurationKey"]) == len(NAMES) + 2
    with pytest.raises(KeyError):
        Configuration().value("VendorDisplayText")  # the subclass's keys are its own


def test_keys_are_defined_once() -> None:
    with pytest.raises(ValueError, match="twice"):

        class Twice(Configuration):
            keys: ClassVar[tuple[KeySpec, ...]] = (
                *STANDARD_KEYS,
                KeySpec("heartbeatinterval", "int", False, "1"),
            )


def test_configurations_are_independent() -> None:
    one, two = Configuration(), Configuration()
    calls: list[tuple[str, str]] = []
    one.on_change("HeartbeatInterval", lambda *change: calls.append(change))
    assert change(two, "HeartbeatInterval", "10")[0] == "Accepted"
    assert one.value("HeartbeatInterval") == "300"
    assert two.value("HeartbeatInterval") == "10"
    assert calls == []
    one.set("NumberOfConnectors", 2)
    assert two.int_value("NumberOfConnectors") == 1


def test_only_values_other_than_the_defaults_are_stored() -> None:
    config = Configuration()
    assert not hasattr(config, "__dict__")
    change(config, "HeartbeatInterval", "10")
    assert config._values == {"HeartbeatInterval": "10"}
    change(config, "HeartbeatInterval", "300")  # the default again
    assert config._values == {}


def test_accepted_again_is_observed_again() -> None:
    config = Configuration()
    calls: list[tuple[str, str]] = []
    config.on_change("HeartbeatInterval", lambda *change: calls.append(change))
    change(config, "HeartbeatInterval", "300")
    change(config, "HeartbeatInterval", "300")
    assert calls == [("HeartbeatInterval", "300")] * 2
    with pytest.raises(KeyError):
        config.on_change("NoSuchKey", lambda *change: None)
