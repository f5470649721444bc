"""swarm.ocpp201.device_model: reports (B07, B08), their paging, and a subclass's variables."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from swarm.ocpp201.device_model import Changed, DeviceModel, notify_reports
from swarm.ocpp201.dialect import OCPP201
from swarm.ocpp201.variables import STANDARD_VARIABLES, VariableSpec
from tests.test_device_model import NOW, get, item, set_


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


STATION = [spec for spec in STANDARD_VARIABLES if spec.scope == "station"]
PER_EVSE = [spec for spec in STANDARD_VARIABLES if spec.scope != "station"]


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
