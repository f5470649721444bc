"""swarm.ocpp201.device_model: variables, GetVariables and SetVariables (its reports:
tests/test_device_model_reports.py)."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.v201 import enums

from swarm.ocpp201.device_model import Changed, DeviceModel
from swarm.ocpp201.dialect import OCPP201
from swarm.ocpp201.variables import STANDARD_VARIABLES, VariableSpec

NOW = "2024-05-01T12:00:00Z"


def item(component: str, variable: str, **extra: Any) -> dict[str, Any]:
    """A GetVariableData, SetVariableData or ComponentVariable: ``component`` may be
    ``Name[instance]``, ``variable`` likewise; ``evse``, ``connector`` and the rest as given."""
    name, _, instance = component.partition("[")
    place = {"id": extra.pop("evse")} if "evse" in extra else None
    if place is not None and "connector" in extra:
        place["connectorId"] = extra.pop("connector")
    data: dict[str, Any] = {"component": {"name": name}}
    if instance:
        data["component"]["instance"] = instance.rstrip("]")
    if place is not None:
        data["component"]["evse"] = place
    if variable:
        name, _, instance = variable.partition("[")
        data["variable"] = {
            "name": name,
            **({"instance": instance.rstrip("]")} if instance else {}),
        }
    return {**data, **extra}


def get(model: DeviceModel, *items: dict[str, Any]) -> list[dict[str, Any]]:
    payload = {"getVariableData": list(items)}
    OCPP201.schemas.validate("GetVariables", payload)
    answer = model.get_variables(payload)
    OCPP201.schemas.validate("GetVariables", answer, response=True)
    return answer["getVariableResult"]


def set_(model: DeviceModel, *items: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Changed]]:
    payload = {"setVariableData": list(items)}
    OCPP201.schemas.validate("SetVariables", payload)
    answer, changed = model.set_variables(payload)
    OCPP201.schemas.validate("SetVariables", answer, response=True)
    return answer["setVariableResult"], changed


# The variables: names, requirements, defaults.

# Each component's standardized variable names, as the ocpp package lists them.
KNOWN = {
    "OCPPCommCtrlr": enums.OCPPCommCtrlrVariableName,
    "TxCtrlr": enums.TxCtrlrVariableName,
    "SampledDataCtrlr": enums.SampledDataCtrlrVariableName,
    "AlignedDataCtrlr": enums.AlignedDataCtrlrVariableName,
    "AuthCtrlr": enums.AuthCtrlrVariableName,
    "AuthCacheCtrlr": enums.AuthCacheCtrlrVariableName,
    "LocalAuthListCtrlr": enums.LocalAuthListCtrlrVariableName,
    "ReservationCtrlr": enums.ReservationCtrlrVariableName,
    "SmartChargingCtrlr": enums.SmartChargingCtrlrVariableName,
    "ClockCtrlr": enums.ClockCtrlrVariableName,
    "SecurityCtrlr": enums.SecurityCtrlrVariableName,
    "DeviceDataCtrlr": enums.DeviceDataCtrlrVariableName,
    "ChargingStation": enums.ChargingStationVariableName,
    "EVSE": enums.EVSEVariableName,
    "Connector": enums.ConnectorVariableName,
}

# The variables the briefed controllers require (part 2 appendix 2 and part 4 chapter 8, with
# HeartbeatInterval besides), and those of ChargingStation, EVSE and Connector (appendix 3).
REQUIRED = {
    "OCPPCommCtrlr.FileTransferProtocols",
    "OCPPCommCtrlr.HeartbeatInterval",
    "OCPPCommCtrlr.MessageTimeout[Default]",
    "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
    "OCPPCommCtrlr.MessageAttemptInterval[TransactionEvent]",
    "OCPPCommCtrlr.NetworkConfigurationPriority",
    "OCPPCommCtrlr.NetworkProfileConnectionAttempts",
    "OCPPCommCtrlr.OfflineThreshold",
    "OCPPCommCtrlr.ResetRetries",
    "OCPPCommCtrlr.RetryBackOffRandomRange",
    "OCPPCommCtrlr.RetryBackOffRepeatTimes",
    "OCPPCommCtrlr.RetryBackOffWaitMinimum",
    "OCPPCommCtrlr.UnlockOnEVSideDisconnect",
    "OCPPCommCtrlr.WebSocketPingInterval",
    "TxCtrlr.EVConnectionTimeOut",
    "TxCtrlr.StopTxOnEVSideDisconnect",
    "TxCtrlr.StopTxOnInvalidId",
    "TxCtrlr.TxStartPoint",
    "TxCtrlr.TxStopPoint",
    "SampledDataCtrlr.TxEndedMeasurands",
    "SampledDataCtrlr.TxEndedInterval",
    "SampledDataCtrlr.TxStartedMeasurands",
    "SampledDataCtrlr.TxUpdatedMeasurands",
    "SampledDataCtrlr.TxUpdatedInterval",
    "AlignedDataCtrlr.Measurands",
    "AlignedDataCtrlr.Interval",
    "AlignedDataCtrlr.TxEndedMeasurands",
    "AlignedDataCtrlr.TxEndedInterval",
    "AuthCtrlr.AuthorizeRemoteStart",
    "AuthCtrlr.LocalAuthorizeOffline",
    "AuthCtrlr.LocalPreAuthorize",
    "ClockCtrlr.DateTime",
    "ClockCtrlr.TimeSource",
    "SecurityCtrlr.OrganizationName",
    "SecurityCtrlr.CertificateEntries",
    "SecurityCtrlr.SecurityProfile",
    "DeviceDataCtrlr.ItemsPerMessage[GetReport]",
    "DeviceDataCtrlr.ItemsPerMessage[GetVariables]",
    "DeviceDataCtrlr.ItemsPerMessage[SetVariables]",
    "DeviceDataCtrlr.BytesPerMessage[GetReport]",
    "DeviceDataCtrlr.BytesPerMessage[GetVariables]",
    "DeviceDataCtrlr.BytesPerMessage[SetVariables]",
    "ChargingStation.AvailabilityState",
    "ChargingStation.Available",
    "ChargingStation.SupplyPhases",
    "ChargingStation.Model",
    "ChargingStation.VendorName",
    "EVSE.AvailabilityState",
    "EVSE.Available",
    "EVSE.Power",
    "EVSE.SupplyPhases",
    "Connector.AvailabilityState",
    "Connector.Available",
    "Connector.ConnectorType",
    "Connector.SupplyPhases",
}
NAMES = [spec.name for spec in STANDARD_VARIABLES]


def test_every_variable_is_a_standard_one_defined_once() -> None:
    assert len(set(NAMES)) == len(NAMES)
    for spec in STANDARD_VARIABLES:
        assert spec.variable in {name.value for name in KNOWN[spec.component]}, spec.name
    instances = {
        i.value
        for i in (
            *enums.OCPPCommCtrlrInstanceName,
            *enums.DeviceDataCtrlrInstanceName,
            *enums.SmartChargingCtrlrInstanceName,
        )
    }
    assert {spec.variable_instance for spec in STANDARD_VARIABLES} == {None} | instances
    assert {spec.scope for spec in STANDARD_VARIABLES if spec.component == "EVSE"} == {"evse"}
    assert {spec.scope for spec in STANDARD_VARIABLES if spec.component == "Connector"} == {
        "connector"
    }


def test_the_required_variables_are_there_with_defaults() -> None:
    assert set(NAMES) >= REQUIRED
    model = DeviceModel(1)
    for spec in STANDARD_VARIABLES:
        where = {"evse": 1} if spec.scope != "station" else {}
        where |= {"connector": 1} if spec.scope == "connector" else {}
        value = model.value(
            spec.component, spec.variable, variable_instance=spec.variable_instance, **where
        )
        assert value == spec.default or spec.name == "ClockCtrlr.DateTime"


def test_the_briefed_defaults() -> None:
    model = DeviceModel(1)
    comm = "OCPPCommCtrlr"
    assert model.int_value(comm, "HeartbeatInterval") == 300
    assert model.int_value(comm, "WebSocketPingInterval") == 60
    assert model.int_value(comm, "MessageAttempts", variable_instance="TransactionEvent") == 3
    assert (
        model.int_value(comm, "MessageAttemptInterval", variable_instance="TransactionEvent") == 60
    )
    assert model.value("TxCtrlr", "TxStartPoint") == "PowerPathClosed"
    assert model.value("TxCtrlr", "TxStopPoint") == "EVConnected,Authorized"
    assert model.value("SampledDataCtrlr", "TxUpdatedMeasurands") == (
        "Energy.Active.Import.Register,Power.Active.Import"
    )
    assert model.int_value("SampledDataCtrlr", "TxUpdatedInterval") == 60
    assert (
        model.int_value("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport") == 50
    )
    assert (
        model.int_value("DeviceDataCtrlr", "BytesPerMessage", variable_instance="GetVariables")
        == 65536
    )
    assert model.bool_value("AuthCtrlr", "AuthorizeRemoteStart") is True
    assert model.bool_value("AuthCtrlr", "OfflineTxForUnknownIdEnabled") is False
    assert model.value("EVSE", "Power", evse=1, attribute="MaxSet") == "22080"
    assert model.value("Connector", "ConnectorType", evse=1, connector=1) == "sType2"


def test_defaults_are_valid_and_normalized() -> None:
    overrides = {spec.name: spec.default for spec in STANDARD_VARIABLES if spec.default}
    model = DeviceModel(3, overrides)
    assert model._values is None  # nothing differs from the defaults: nothing is stored


def test_a_fresh_model_holds_no_values_of_its_own() -> None:
    model = DeviceModel(4)
    assert not hasattr(model, "__dict__")
    assert model._values is None
    model.set("OCPPCommCtrlr", "HeartbeatInterval", 45)
    assert model._values == {
        (STANDARD_VARIABLES.index(spec("HeartbeatInterval")), 0, 0, "Actual"): "45"
    }
    model.set("OCPPCommCtrlr", "HeartbeatInterval", "300")  # the default again
    assert model._values is None


def spec(variable: str) -> VariableSpec:
    return next(spec for spec in STANDARD_VARIABLES if spec.name.endswith(f".{variable}"))


def test_typed_reads_and_case() -> None:
    model = DeviceModel(1)
    assert model.value("ocppcommctrlr", "HEARTBEATINTERVAL") == "300"
    assert (
        model.int_value("OCPPCommCtrlr", "messageattempts", variable_instance="transactionevent")
        == 3
    )
    assert model.bool_value("OCPPCommCtrlr", "UnlockOnEVSideDisconnect") is True
    assert model.value("AlignedDataCtrlr", "TxEndedMeasurands") == ""


def test_the_clock_is_read_not_stored() -> None:
    class Frozen(DeviceModel):
        clock = staticmethod(lambda: NOW)

    assert Frozen(1).value("ClockCtrlr", "DateTime") == NOW
    assert DeviceModel(1).value("ClockCtrlr", "DateTime").endswith("Z")
    with pytest.raises(ValueError):
        DeviceModel(1).set("ClockCtrlr", "DateTime", NOW)


def test_overrides() -> None:
    model = DeviceModel(
        2,
        {
            "OCPPCommCtrlr.MessageAttempts[TransactionEvent]": 5,
            "chargingstation.model": "X1",
            "EVSE.Power": "11000.0",
            "AuthCtrlr.LocalPreAuthorize": True,
        },
    )
    assert (
        model.int_value("OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent")
        == 5
    )
    assert model.value("ChargingStation", "Model") == "X1"
    assert model.value("EVSE", "Power", evse=1) == model.value("EVSE", "Power", evse=2) == "11000"
    assert model.bool_value("AuthCtrlr", "LocalPreAuthorize") is True


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"OCPPCommCtrlr.NoSuchVariable": 1}, KeyError),
        ({"OCPPCommCtrlr.MessageAttempts": 1}, KeyError),  # it has an instance
        ({"HeartbeatInterval": 1}, KeyError),  # no component
        ({"OCPPCommCtrlr.HeartbeatInterval": "soon"}, ValueError),
        ({"OCPPCommCtrlr.HeartbeatInterval": 0}, ValueError),  # minLimit 1
        ({"ChargingStation.Model": "x" * 21}, ValueError),  # as long as BootNotification's
    ],
)
def test_bad_overrides(overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        DeviceModel(1, overrides)
    with pytest.raises(ValueError):
        DeviceModel(0)


def test_set_from_the_stations_side_and_its_scopes() -> None:
    model = DeviceModel(2)
    model.set("EVSE", "AvailabilityState", "Occupied", evse=2)  # ReadOnly ones too
    model.set("Connector", "AvailabilityState", "Faulted", evse=2, connector=1)
    model.set("ChargingStation", "Problem", True)
    assert model.value("EVSE", "AvailabilityState", evse=1) == "Available"
    assert model.value("EVSE", "AvailabilityState", evse=2) == "Occupied"
    assert model.value("Connector", "AvailabilityState", evse=1, connector=1) == "Available"
    assert model.value("Connector", "AvailabilityState", evse=2, connector=1) == "Faulted"
    assert model.bool_value("ChargingStation", "Problem") is True
    for where in (
        {},  # an EVSE's variable needs its EVSE
        {"evse": 3},
        {"evse": 0},
        {"evse": 1, "connector": 1},  # the EVSE component is not at a connector
    ):
        with pytest.raises(KeyError):
            model.value("EVSE", "AvailabilityState", **where)
    for where in ({"evse": 1}, {"evse": 1, "connector": 2}):
        with pytest.raises(KeyError):
            model.value("Connector", "AvailabilityState", **where)
    with pytest.raises(KeyError):
        model.value("OCPPCommCtrlr", "HeartbeatInterval", evse=1)
    with pytest.raises(KeyError):
        model.value("OCPPCommCtrlr", "HeartbeatInterval", attribute="Target")
    with pytest.raises(ValueError):
        model.set("EVSE", "AvailabilityState", "Broken", evse=1)


# GetVariables (B06).


def test_get_variables_statuses() -> None:
    model = DeviceModel(2)
    model.set("EVSE", "Power", 7400, evse=2)
    results = get(
        model,
        item("OCPPCommCtrlr", "HeartbeatInterval"),
        item("ocppcommctrlr", "heartbeatinterval", attributeType="Actual"),
        item("OCPPCommCtrlr", "MessageTimeout[Default]"),
        item("EVSE", "Power", evse=2),
        item("EVSE", "Power", evse=2, attributeType="MaxSet"),
        item("Connector", "ConnectorType", evse=1, connector=1),
        item("AlignedDataCtrlr", "TxEndedMeasurands"),  # no value: an empty string
        item("SecurityCtrlr", "BasicAuthPassword"),  # WriteOnly
        item("NoSuchCtrlr", "HeartbeatInterval"),
        item("OCPPCommCtrlr[Second]", "HeartbeatInterval"),  # no such instance
        item("OCPPCommCtrlr", "HeartbeatInterval", evse=1),  # not an EVSE's
        item("EVSE", "Power"),  # no EVSE
        item("EVSE", "Power", evse=3),
        item("Connector", "ConnectorType", evse=1),  # no connector
        item("Connector", "ConnectorType", evse=1, connector=2),
        item("OCPPCommCtrlr", "NoSuchVariable"),
        item("OCPPCommCtrlr", "MessageAttempts"),  # without its instance (B06.FR.15)
        item("OCPPCommCtrlr", "MessageAttempts[Default]"),
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Target"),
        item("EVSE", "Power", evse=1, attributeType="MinSet"),
    )
    assert [(r["attributeStatus"], r.get("attributeValue")) for r in results] == [
        ("Accepted", "300"),
        ("Accepted", "300"),
        ("Accepted", "30"),
        ("Accepted", "7400"),
        ("Accepted", "22080"),
        ("Accepted", "sType2"),
        ("Accepted", ""),
        ("Rejected", None),
        *[("UnknownComponent", None)] * 7,
        *[("UnknownVariable", None)] * 3,
        *[("NotSupportedAttributeType", None)] * 2,
    ]
    assert results[7]["attributeStatusInfo"] == {"reasonCode": "WriteOnly"}
    # Each result echoes its item, and says the attribute type (Actual if it had none).
    assert results[1]["component"] == {"name": "ocppcommctrlr"}
    assert results[3]["component"] == {"name": "EVSE", "evse": {"id": 2}}
    assert results[2]["variable"] == {"name": "MessageTimeout", "instance": "Default"}
    assert [r["attributeType"] for r in results[:5]] == ["Actual"] * 4 + ["MaxSet"]


# SetVariables (B05).


def test_set_variables_accepts_and_normalizes() -> None:
    model = DeviceModel(1)
    results, changed = set_(
        model,
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue=" 0120 "),
        item("OCPPCommCtrlr", "WebSocketPingInterval", attributeValue="0"),  # 0: no pings
        item("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", attributeValue="FALSE"),
        item("SampledDataCtrlr", "TxUpdatedMeasurands", attributeValue="SoC, Voltage,SoC"),
        item("AlignedDataCtrlr", "Measurands", attributeValue=""),  # a MemberList may be empty
        item("ClockCtrlr", "TimeSource", attributeValue="Heartbeat,RealTimeClock"),
        item("SecurityCtrlr", "OrganizationName", attributeValue=" Acme "),  # strings as given
        item("SecurityCtrlr", "BasicAuthPassword", attributeValue="s3cret-s3cret-s3cret"),
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="120", attributeType="Actual"),
    )
    assert [r["attributeStatus"] for r in results] == ["Accepted"] * 9
    assert all(r["attributeType"] == "Actual" for r in results)
    assert changed[:2] == [
        Changed("OCPPCommCtrlr", "HeartbeatInterval"),
        Changed("OCPPCommCtrlr", "WebSocketPingInterval"),
    ]
    assert len(changed) == 9  # one per item Accepted, even one already in force
    component, variable = changed[0]  # each a (component, variable) pair
    assert (component, variable) == ("OCPPCommCtrlr", "HeartbeatInterval")
    assert model.int_value("OCPPCommCtrlr", "HeartbeatInterval") == 120
    assert model.int_value("OCPPCommCtrlr", "WebSocketPingInterval") == 0
    assert model.bool_value("OCPPCommCtrlr", "UnlockOnEVSideDisconnect") is False
    assert model.value("SampledDataCtrlr", "TxUpdatedMeasurands") == "SoC,Voltage"
    assert model.value("AlignedDataCtrlr", "Measurands") == ""
    assert model.value("ClockCtrlr", "TimeSource") == "Heartbeat,RealTimeClock"
    assert model.value("SecurityCtrlr", "OrganizationName") == " Acme "
    assert model.value("SecurityCtrlr", "BasicAuthPassword") == "s3cret-s3cret-s3cret"
    # A WriteOnly value set is still not read out.
    assert (
        get(model, item("SecurityCtrlr", "BasicAuthPassword"))[0]["attributeStatus"] == "Rejected"
    )
    assert get(model, item("OCPPCommCtrlr", "HeartbeatInterval"))[0]["attributeValue"] == "120"


def test_set_variables_reboot_required() -> None:
    model = DeviceModel(1)
    results, changed = set_(
        model, item("OCPPCommCtrlr", "NetworkConfigurationPriority", attributeValue="1")
    )
    assert results[0]["attributeStatus"] == "RebootRequired"
    assert changed == []  # for the next boot to read, not to act on now


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("OCPPCommCtrlr.HeartbeatInterval", "soon", "InvalidValue"),
        ("OCPPCommCtrlr.HeartbeatInterval", "1_000", "InvalidValue"),
        ("OCPPCommCtrlr.HeartbeatInterval", "1e3", "InvalidValue"),
        ("OCPPCommCtrlr.HeartbeatInterval", "٣", "InvalidValue"),  # not an ASCII digit
        ("OCPPCommCtrlr.HeartbeatInterval", "0", "ValueOutOfRange"),  # minLimit 1
        ("OCPPCommCtrlr.HeartbeatInterval", "-5", "ValueOutOfRange"),
        ("OCPPCommCtrlr.HeartbeatInterval", str(2**31), "ValueOutOfRange"),  # 32-bit
        ("OCPPCommCtrlr.UnlockOnEVSideDisconnect", "yes", "InvalidValue"),
        (
            "SampledDataCtrlr.TxUpdatedMeasurands",
            "Energy.Active.Import.Register,Bogus",
            "InvalidValue",
        ),
        ("SampledDataCtrlr.TxUpdatedMeasurands", "SoC,,Voltage", "InvalidValue"),
        ("ClockCtrlr.TimeSource", "GPS", "InvalidValue"),  # not one it has
        ("ClockCtrlr.TimeSource", "", "InvalidValue"),  # an empty order
        ("SecurityCtrlr.BasicAuthPassword", "short", "ValueOutOfRange"),  # 16 to 40 characters
        ("SecurityCtrlr.BasicAuthPassword", "x" * 41, "ValueOutOfRange"),
        ("OCPPCommCtrlr.FileTransferProtocols", "FTP", "ReadOnly"),
        ("TxCtrlr.TxStartPoint", "DataSigned", "InvalidValue"),  # not one it has
        ("SecurityCtrlr.SecurityProfile", "2", "ReadOnly"),
        ("DeviceDataCtrlr.ItemsPerMessage[GetReport]", "10", "ReadOnly"),
    ],
)
def test_set_variables_rejects(variable: str, value: str, reason: str) -> None:
    model = DeviceModel(1)
    component, _, name = variable.partition(".")
    results, changed = set_(model, item(component, name, attributeValue=value))
    assert results[0]["attributeStatus"] == "Rejected"
    assert results[0]["attributeStatusInfo"] == {"reasonCode": reason}
    assert changed == []
    assert model._values is None  # nothing changed


def test_set_variables_unknowns_and_evse_scoping() -> None:
    model = DeviceModel(2)
    results, changed = set_(
        model,
        item("NoSuchCtrlr", "HeartbeatInterval", attributeValue="60"),
        item("EVSE", "AvailabilityState", attributeValue="Occupied"),  # no EVSE given
        item("Connector", "ConnectorType", evse=3, connector=1, attributeValue="cType2"),
        item("OCPPCommCtrlr", "NoSuchVariable", attributeValue="60"),
        item("OCPPCommCtrlr", "MessageAttempts", attributeValue="5"),  # without its instance
        item("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60", attributeType="MaxSet"),
        item("EVSE", "Power", evse=1, attributeValue="0", attributeType="MaxSet"),  # ReadOnly
        item("OCPPCommCtrlr", "MessageAttempts[TransactionEvent]", attributeValue="5"),
    )
    assert [r["attributeStatus"] for r in results] == [
        *["UnknownComponent"] * 3,
        *["UnknownVariable"] * 2,
        "NotSupportedAttributeType",
        "Rejected",
        "Accepted",
    ]
    assert results[5]["attributeType"] == "MaxSet"
    assert changed == [Changed("OCPPCommCtrlr", "MessageAttempts")]
    assert (
        model.int_value("OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent")
        == 5
    )
