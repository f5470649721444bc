"""swarm.ocpp201.device_model: variables, GetVariables, SetVariables, reports and their paging."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from ocpp.v201 import enums

from swarm.ocpp201.device_model import Changed, DeviceModel, notify_reports
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


def valid_report(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items``, each checked against NotifyReportRequest's schema."""
    for report in notify_reports(7, items, 1, NOW):
        OCPP201.schemas.validate("NotifyReport", report)
    return items


def custom(model: DeviceModel, **payload: Any) -> list[dict[str, Any]] | None:
    payload = {"requestId": 3, **payload}
    OCPP201.schemas.validate("GetReport", payload)
    items = model.report_for(payload)
    assert items is None or items  # never an empty list
    return None if items is None else valid_report(items)


def picked(model: DeviceModel, **payload: Any) -> list[tuple[Any, ...]]:
    """What a GetReport picks, as :func:`addressed` names them; [] for EmptyResultSet."""
    return addressed(custom(model, **payload) or [])


def addressed(items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each report item's component, evse, connector and variable, as ``Name[instance]``."""
    found = []
    for entry in items:
        component, variable = entry["component"], entry["variable"]
        place = component.get("evse", {})
        instance = f"[{variable['instance']}]" if "instance" in variable else ""
        found.append(
            (
                component["name"],
                place.get("id"),
                place.get("connectorId"),
                variable["name"] + instance,
            )
        )
    return found


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
STATION = [spec for spec in STANDARD_VARIABLES if spec.scope == "station"]
PER_EVSE = [spec for spec in STANDARD_VARIABLES if spec.scope != "station"]


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


# Reports (B07, B08) and their paging.


def test_full_inventory() -> None:
    model = DeviceModel(2)
    items = valid_report(model.report("FullInventory"))
    assert len(items) == len(STATION) + 2 * len(PER_EVSE)
    found = addressed(items)
    assert ("OCPPCommCtrlr", None, None, "MessageAttempts[TransactionEvent]") in found
    assert ("EVSE", 2, None, "Power") in found
    assert ("Connector", 2, 1, "ConnectorType") in found
    # The station's variables, then each EVSE's followed by its connector's.
    order = [
        ("EVSE", 1, None, "Power"),
        ("Connector", 1, 1, "ConnectorType"),
        ("EVSE", 2, None, "Power"),
    ]
    assert [found.index(entry) for entry in order] == sorted(found.index(entry) for entry in order)
    assert found.index(("ChargingStation", None, None, "Model")) < found.index(order[0])
    by_name = {(entry[0], entry[1], entry[3]): items[n] for n, entry in enumerate(found)}
    power = by_name[("EVSE", 1, "Power")]
    assert power["variableAttribute"] == [  # every attribute type it has (B07.FR.11)
        {"type": "Actual", "mutability": "ReadOnly", "value": "0"},
        {"type": "MaxSet", "mutability": "ReadOnly", "value": "22080"},
    ]
    assert power["variableCharacteristics"] == {
        "dataType": "decimal",
        "supportsMonitoring": False,
        "unit": "W",
        "minLimit": 0,
        "maxLimit": 22080,
    }
    heartbeat = by_name[("OCPPCommCtrlr", None, "HeartbeatInterval")]
    assert heartbeat["variableAttribute"] == [
        {"type": "Actual", "mutability": "ReadWrite", "persistent": True, "value": "300"}
    ]
    assert heartbeat["variableCharacteristics"]["unit"] == "s"
    password = by_name[("SecurityCtrlr", None, "BasicAuthPassword")]
    assert "value" not in password["variableAttribute"][0]  # WriteOnly
    protocols = by_name[("OCPPCommCtrlr", None, "FileTransferProtocols")]["variableCharacteristics"]
    assert protocols["valuesList"] == "FTP,FTPS,HTTP,HTTPS,SFTP"
    assert protocols["dataType"] == "MemberList"


def test_configuration_inventory_is_what_the_csms_may_set() -> None:
    items = valid_report(DeviceModel(2).report("ConfigurationInventory"))
    writable = [spec for spec in STANDARD_VARIABLES if spec.mutability != "ReadOnly"]
    assert len(items) == len(writable)  # none of an EVSE or connector is writable
    assert all(entry["variableAttribute"][0]["mutability"] != "ReadOnly" for entry in items)
    assert ("SecurityCtrlr", None, None, "BasicAuthPassword") in addressed(items)


def test_summary_inventory() -> None:
    model = DeviceModel(2)
    summary = addressed(valid_report(model.report("SummaryInventory")))
    assert summary == [
        ("ChargingStation", None, None, "AvailabilityState"),
        ("EVSE", 1, None, "AvailabilityState"),
        ("EVSE", 2, None, "AvailabilityState"),
    ]
    model.set("Connector", "AvailabilityState", "Faulted", evse=2, connector=1)
    model.set("Connector", "Problem", True, evse=2, connector=1)
    assert addressed(model.report("SummaryInventory"))[3:] == [
        ("Connector", 2, 1, "AvailabilityState"),  # unlike its EVSE's
        ("Connector", 2, 1, "Problem"),
    ]
    model.set("EVSE", "AvailabilityState", "Faulted", evse=2)
    assert ("Connector", 2, 1, "AvailabilityState") not in addressed(
        model.report("SummaryInventory")
    )


def test_notify_reports_pages_by_items_per_message() -> None:
    items = DeviceModel(5).report("FullInventory")
    assert len(items) > 100
    for per_message in (1, 7, 50, len(items), len(items) + 1):
        reports = notify_reports(42, items, per_message, NOW)
        for report in reports:
            OCPP201.schemas.validate("NotifyReport", report)
        assert [report["seqNo"] for report in reports] == list(range(len(reports)))
        assert [report["tbc"] for report in reports] == [True] * (len(reports) - 1) + [False]
        assert all(len(report["reportData"]) <= per_message for report in reports)
        assert [entry for report in reports for entry in report["reportData"]] == items
        assert {(report["requestId"], report["generatedAt"]) for report in reports} == {(42, NOW)}
        assert len(reports) == -(-len(items) // per_message)
    assert notify_reports(42, [], 50, NOW) == []
    with pytest.raises(ValueError):
        notify_reports(42, items, 0, NOW)


def test_get_report_by_component_variable() -> None:
    model = DeviceModel(2)
    ctrlr = custom(model, componentVariable=[item("OCPPCommCtrlr", "")])  # every variable of it
    assert len(ctrlr or []) == len([spec for spec in STATION if spec.component == "OCPPCommCtrlr"])
    # A variable without an instance: each instance of it (B08.FR.21).
    assert picked(model, componentVariable=[item("devicedatactrlr", "itemspermessage")]) == [
        ("DeviceDataCtrlr", None, None, f"ItemsPerMessage[{message}]")
        for message in ("GetReport", "GetVariables", "SetVariables")
    ]
    assert picked(
        model, componentVariable=[item("DeviceDataCtrlr", "ItemsPerMessage[GetReport]")]
    ) == [("DeviceDataCtrlr", None, None, "ItemsPerMessage[GetReport]")]
    # Without an EVSE, each EVSE's (B08.FR.23); with one, its own; a connector's likewise.
    assert picked(model, componentVariable=[item("EVSE", "Power")]) == [
        ("EVSE", 1, None, "Power"),
        ("EVSE", 2, None, "Power"),
    ]
    assert picked(model, componentVariable=[item("EVSE", "Power", evse=2)]) == [
        ("EVSE", 2, None, "Power")
    ]
    assert picked(model, componentVariable=[item("Connector", "ConnectorType", evse=2)]) == [
        ("Connector", 2, 1, "ConnectorType")  # each connector of EVSE 2 (B08.FR.22)
    ]
    several = custom(
        model,
        componentVariable=[
            item("ChargingStation", "Model"),
            item("Connector", "Available", evse=1, connector=1),
        ],
    )
    assert addressed(several or []) == [
        ("ChargingStation", None, None, "Model"),
        ("Connector", 1, 1, "Available"),
    ]
    # Nothing picked: EmptyResultSet.
    for nothing in (
        item("NoSuchCtrlr", ""),
        item("OCPPCommCtrlr", "NoSuchVariable"),
        item("OCPPCommCtrlr", "HeartbeatInterval", evse=1),
        item("EVSE", "Power", evse=3),
        item("OCPPCommCtrlr[Second]", "HeartbeatInterval"),
        item("OCPPCommCtrlr", "MessageAttempts[Default]"),
    ):
        assert custom(model, componentVariable=[nothing]) is None


def test_get_report_by_component_criteria() -> None:
    model = DeviceModel(2)
    everything = len(model.report("FullInventory"))
    # No component has Active: all meet it (B08.FR.07).
    assert len(custom(model, componentCriteria=["Active"]) or []) == everything
    # A block not implemented is neither Available nor Enabled; those implemented are both.
    implemented = {"LocalAuthListCtrlr", "ReservationCtrlr", "SmartChargingCtrlr"}
    for criterion in ("Available", "Enabled"):
        components = {entry[0] for entry in picked(model, componentCriteria=[criterion])}
        assert "AuthCacheCtrlr" not in components
        assert {"OCPPCommCtrlr", "ChargingStation", "EVSE", "Connector"} | implemented <= components
    assert custom(model, componentCriteria=["Problem"]) is None  # no component has one
    model.set("EVSE", "Problem", True, evse=2)
    problems = picked(model, componentCriteria=["Problem"])
    assert {entry[:3] for entry in problems} == {("EVSE", 2, None)}  # every variable of it
    assert len(problems) == len([spec for spec in PER_EVSE if spec.component == "EVSE"])
    # Criteria are or'ed (B08.FR.13), and with componentVariable both must pick (B08.FR.05).
    assert len(custom(model, componentCriteria=["Problem", "Active"]) or []) == everything
    assert picked(
        model, componentCriteria=["Problem"], componentVariable=[item("EVSE", "Power")]
    ) == [("EVSE", 2, None, "Power")]
    assert (
        custom(
            model, componentCriteria=["Available"], componentVariable=[item("AuthCacheCtrlr", "")]
        )
        is None
    )
    model.set("EVSE", "Available", False, evse=1)
    evses = {
        entry[1] for entry in picked(model, componentCriteria=["Available"]) if entry[0] == "EVSE"
    }
    assert evses == {2}


class TestSubclass:
    """A subclass may describe other variables, with component instances."""

    class Vendor(DeviceModel):
        specs: ClassVar[tuple[VariableSpec, ...]] = (
            *STANDARD_VARIABLES,
            VariableSpec(
                "FanCtrlr",
                "Speed",
                "integer",
                "ReadWrite",
                "1000",
                component_instance="Left",
                other_attributes=(("Target", ""), ("MaxSet", "5000")),
                unit="RPM",
                min_limit=0,
                max_limit=5000,
            ),
        )

    def test_instances_and_other_attributes(self) -> None:
        model = self.Vendor(1)
        results, changed = set_(
            model,
            item("FanCtrlr[Left]", "Speed", attributeValue="2000", attributeType="Target"),
            item("FanCtrlr[Left]", "Speed", attributeValue="6000"),
            item("FanCtrlr", "Speed", attributeValue="2000"),  # without its instance
        )
        assert [r["attributeStatus"] for r in results] == [
            "Accepted",
            "Rejected",
            "UnknownComponent",
        ]
        assert changed == [Changed("FanCtrlr", "Speed")]
        assert [
            r.get("attributeValue")
            for r in get(
                model,
                item("FanCtrlr[left]", "Speed"),
                item("FanCtrlr[Left]", "Speed", attributeType="Target"),
                item("FanCtrlr[Left]", "Speed", attributeType="MinSet"),
            )
        ] == ["1000", "2000", None]
        assert picked(model, componentVariable=[item("FanCtrlr", "")]) == [
            ("FanCtrlr", None, None, "Speed")
        ]
        [entry] = custom(model, componentVariable=[item("FanCtrlr", "")]) or []
        assert entry["component"] == {"name": "FanCtrlr", "instance": "Left"}
        assert [a["type"] for a in entry["variableAttribute"]] == ["Actual", "Target", "MaxSet"]

    def test_bad_specs_are_refused(self) -> None:
        with pytest.raises(ValueError):

            class Twice(DeviceModel):
                specs = (*STANDARD_VARIABLES, STANDARD_VARIABLES[0])

        with pytest.raises(ValueError):

            class Unnormalized(DeviceModel):
                specs = (VariableSpec("X", "Y", "integer", "ReadWrite", "007"),)
