"""A station's OCPP 2.0.1 device model (part 1 chapter 4, part 2 block B), without I/O.

:data:`~swarm.ocpp201.variables.STANDARD_VARIABLES` describes the variables; a
:class:`DeviceModel` holds one station's
values and answers GetVariables (B06), SetVariables (B05), GetBaseReport (B07) and GetReport
(B08); :func:`notify_reports` pages a report into NotifyReport payloads. Values are strings, as
on the wire. Names and instances are case-insensitive (part 2, ComponentType): answers echo the
CSMS's spelling, reports the specification's. A fleet may hold 15,000 device models: each
stores only the values that differ from the defaults, in a dict made for the first of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from swarm.ocpp201.variables import (
    MAX_INT,
    MAX_VALUE_LENGTH,
    MIN_INT,
    STANDARD_VARIABLES,
    Attribute,
    Scope,
    VariableSpec,
)
from swarm.station.meter import timestamp


class Changed(NamedTuple):
    """A variable set Accepted, to act on: all such are station-wide, without an instance."""

    component: str
    variable: str


_INTEGER = re.compile(r"-?[0-9]+")  # ASCII digits: int() also takes "1_000" and others,
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")  # and Decimal() "1e3" and "NaN"
# An override's name: Component[instance].Variable[instance], the instances optional.
_NAME = re.compile(r"([^.\[\]]+)(?:\[([^\]]+)\])?\.([^.\[\]]+)(?:\[([^\]]+)\])?")

# A variable as named: component, its instance, evse id, connector id, variable, its instance.
Address = tuple[str, str | None, int | None, int | None, str, str | None]
# Where a value is: its spec's number, the evse and connector ids (0 for none), the attribute.
Slot = tuple[int, int, int, str]
LOCATED = 4096
"""Addresses whose slot a class keeps at most: those its stations' code names are far fewer."""


def _fold(*names: str | None) -> tuple[str, ...]:
    """Names as looked up: in lower case, "" for None."""
    return tuple((name or "").lower() for name in names)


def _normalize(spec: VariableSpec, text: str) -> str:
    """``text`` as stored for ``spec``'s variable; else ValueError with the reasonCode to answer:
    InvalidValue for a malformed value, ValueOutOfRange for one past a limit."""
    kind, allowed = spec.data_type, spec.values_list
    if len(text) > MAX_VALUE_LENGTH:
        raise ValueError("ValueOutOfRange")
    text = text if kind == "string" else text.strip()
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError("InvalidValue")
        return text.lower()
    if kind in ("integer", "decimal"):
        if not (_INTEGER if kind == "integer" else _DECIMAL).fullmatch(text):
            raise ValueError("InvalidValue")
        number = int(text) if kind == "integer" else Decimal(text)
        least = MIN_INT if spec.min_limit is None and kind == "integer" else spec.min_limit
        most = MAX_INT if spec.max_limit is None and kind == "integer" else spec.max_limit
        if (least is not None and number < least) or (most is not None and number > most):
            raise ValueError("ValueOutOfRange")
        if isinstance(number, int):
            return str(number)
        return "0" if number == 0 else format(number.normalize(), "f")  # 1.50 as 1.5, -0 as 0
    if kind == "dateTime":  # RFC 3339: a date, a time and an offset
        with suppress(ValueError):
            if "T" in text.upper() and datetime.fromisoformat(text).tzinfo is not None:
                return text
        raise ValueError("InvalidValue")
    if kind == "OptionList":
        if not text or (allowed is not None and text not in allowed):
            raise ValueError("InvalidValue")
        return text
    if kind != "string":  # SequenceList, MemberList: without blanks and repeats
        items = list(dict.fromkeys(item.strip() for item in text.split(","))) if text else []
        if "" in items or (allowed is not None and not set(items) <= set(allowed)):
            raise ValueError("InvalidValue")
        if kind == "SequenceList" and not items:  # an order of nothing orders nothing
            raise ValueError("InvalidValue")
        text = ",".join(items)
    most = MAX_VALUE_LENGTH if spec.max_limit is None else spec.max_limit
    if not (spec.min_limit or 0) <= len(text) <= most:
        raise ValueError("ValueOutOfRange")
    return text


class _Index:
    """Lookup tables over a :class:`DeviceModel` class's specs, made once (see the fields);
    ``located`` fills in as its stations look attributes up."""

    __slots__ = ("by_name", "clock", "components", "located", "scoped")

    def __init__(self, specs: tuple[VariableSpec, ...]) -> None:
        self.by_name: dict[tuple[str, ...], int] = {}  # spec numbers by folded names
        self.components: dict[tuple[str, ...], Scope] = {}  # by folded name and instance
        self.scoped: dict[Scope, list[int]] = {"station": [], "evse": [], "connector": []}
        for number, spec in enumerate(specs):
            key = _fold(spec.component, spec.component_instance, spec.variable)
            key += _fold(spec.variable_instance)
            if key in self.by_name:
                raise ValueError(f"variable {spec.name} is defined twice")
            if self.components.setdefault(key[:2], spec.scope) != spec.scope:
                raise ValueError(f"component {spec.component} is in two scopes")
            for attribute, default in (("Actual", spec.default), *spec.other_attributes):
                if default and _normalize(spec, default) != default:
                    raise ValueError(f"{spec.name}'s {attribute} default is not normalized")
            self.by_name[key] = number
            self.scoped[spec.scope].append(number)
        self.clock = self.by_name.get(("clockctrlr", "", "datetime", ""), -1)  # -1: none
        # Where the stations' own code finds an attribute (DeviceModel.value and .set): by its
        # address, its attribute and the station's EVSEs, found once for the whole fleet.
        self.located: dict[tuple[Address, str, int], Slot] = {}


class DeviceModel:
    """One station's device model: ``evses`` EVSEs (ids 1 to n), each with one connector.

    ``overrides`` set Actual values, ReadOnly ones too (they are what the station is), named as
    :attr:`VariableSpec.name` in any case (``OCPPCommCtrlr.MessageAttempts[TransactionEvent]``),
    an EVSE's or connector's for each: :class:`KeyError` for an unknown variable,
    :class:`ValueError` for a value it cannot take. ClockCtrlr.DateTime reads :attr:`clock`.
    A subclass may describe other variables by setting :attr:`specs`.
    """

    __slots__ = ("_evses", "_values")

    specs: ClassVar[tuple[VariableSpec, ...]] = STANDARD_VARIABLES
    """The variables, in the order reports list them (EVSEs' and connectors' after the rest)."""
    clock: ClassVar[Callable[[], str]] = staticmethod(timestamp)  # now, as OCPP writes a time
    _index: ClassVar[_Index] = _Index(STANDARD_VARIABLES)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._index = _Index(cls.specs)

    def __init__(self, evses: int, overrides: Mapping[str, Any] | None = None) -> None:
        if evses < 1:
            raise ValueError(f"a station has at least one EVSE, not {evses}")
        self._evses = evses
        self._values: dict[Slot, str] | None = None  # only values other than the defaults
        for name, value in (overrides or {}).items():
            match = _NAME.fullmatch(name)
            number = None if match is None else self._index.by_name.get(_fold(*match.groups()))
            if number is None:
                raise KeyError(f"no variable {name!r}")
            for place in self._places():
                if place[0] == number:
                    self._set((*place, "Actual"), value)

    def value(
        self,
        component: str,
        variable: str,
        *,
        evse: int | None = None,
        connector: int | None = None,
        component_instance: str | None = None,
        variable_instance: str | None = None,
        attribute: Attribute = "Actual",
    ) -> str:
        """An attribute's value, ``""`` if unset: ``evse`` for an EVSE's variable, ``evse`` and
        ``connector`` (1) for a connector's; :class:`KeyError` if there is no such attribute."""
        address = (component, component_instance, evse, connector, variable, variable_instance)
        return self._read(self._locate(address, attribute))

    def int_value(self, component: str, variable: str, **where: Any) -> int:
        """The value of an ``integer`` variable; ``where`` as :meth:`value` takes it."""
        return int(self.value(component, variable, **where))

    def bool_value(self, component: str, variable: str, **where: Any) -> bool:
        """The value of a ``boolean`` variable; ``where`` as :meth:`value` takes it."""
        return self.value(component, variable, **where) == "true"

    def set(
        self,
        component: str,
        variable: str,
        value: str | int | float | bool,
        *,
        evse: int | None = None,
        connector: int | None = None,
        component_instance: str | None = None,
        variable_instance: str | None = None,
        attribute: Attribute = "Actual",
    ) -> None:
        """Set an attribute from the station's side, ReadOnly ones too, no one told (an EVSE's
        AvailabilityState, the boot's interval): errors as :meth:`value`'s, and ValueError."""
        address = (component, component_instance, evse, connector, variable, variable_instance)
        self._set(self._locate(address, attribute), value)

    def get_variables(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The GetVariablesResponse payload for a GetVariablesRequest ``payload`` (B06).

        ``payload`` must be valid against its schema. A result per item, in order, echoing it
        with its attributeType (Actual if none): Accepted with the value; else UnknownComponent,
        UnknownVariable, NotSupportedAttributeType, Rejected (reasonCode WriteOnly). Items past
        ItemsPerMessage[GetVariables] are answered too: refusing them (B06.FR.16) is up to you.
        """
        results: list[dict[str, Any]] = []
        for data in payload["getVariableData"]:
            status, slot, result = self._answer(data)
            if slot is not None and self.specs[slot[0]].mutability == "WriteOnly":
                status, result["attributeStatusInfo"] = "Rejected", {"reasonCode": "WriteOnly"}
            elif slot is not None:
                result["attributeValue"] = self._read(slot)
            results.append({"attributeStatus": status, **result})
        return {"getVariableResult": results}

    def set_variables(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], list[Changed]]:
        """The SetVariablesResponse payload for a SetVariablesRequest ``payload`` (B05), and
        the variables it set Accepted, in order, for the station to act on.

        ``payload`` must be valid against its schema. Each item in turn: UnknownComponent,
        UnknownVariable, NotSupportedAttributeType; Rejected, reasonCode ReadOnly, InvalidValue
        or ValueOutOfRange; else stored normalized (``007`` as ``7``, ``TRUE`` as ``true``) and
        RebootRequired (for the next boot) or Accepted, listed even if it was in force.
        """
        results: list[dict[str, Any]] = []
        changed: list[Changed] = []
        for data in payload["setVariableData"]:
            status, slot, result = self._answer(data)
            if slot is not None:
                spec = self.specs[slot[0]]
                try:
                    if spec.mutability == "ReadOnly":
                        raise ValueError("ReadOnly")
                    self._store(slot, _normalize(spec, data["attributeValue"]))
                except ValueError as refused:
                    status, result["attributeStatusInfo"] = "Rejected", {"reasonCode": str(refused)}
                else:
                    status = "RebootRequired" if spec.reboot_required else "Accepted"
                    if status == "Accepted":
                        changed.append(Changed(spec.component, spec.variable))
            results.append({"attributeStatus": status, **result})
        return {"setVariableResult": results}, changed

    def report(self, report_base: str) -> list[dict[str, Any]]:
        """The reportData items of a GetBaseReport of ``report_base`` (B07), one of ReportBase's.

        FullInventory: every variable; ConfigurationInventory: the ReadWrite and WriteOnly
        ones; SummaryInventory (B07.FR.09): the station's and EVSEs' AvailabilityState, a
        connector's unlike its EVSE's, and each Problem that is true. Each item has every
        attribute (B07.FR.11), valued but for WriteOnly ones, and the characteristics.
        """
        places = self._places()
        if report_base == "ConfigurationInventory":
            places = (p for p in places if self.specs[p[0]].mutability != "ReadOnly")
        elif report_base == "SummaryInventory":
            places = (p for p in places if self._in_summary(*p))
        return [self._report_item(*place) for place in places]

    def report_for(self, payload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The reportData items of a GetReport ``payload`` (B08); None if none match (answered
        EmptyResultSet), never an empty list.

        ``payload`` must be valid against its schema. componentVariable picks variables, one
        without instance, EVSE, connector or variable all there are (B08.FR.20 to .25);
        componentCriteria components meeting one (B08.FR.13): Active, Available or Enabled true
        or absent, Problem true. With both, both must pick.
        """
        wanted, criteria = payload.get("componentVariable"), payload.get("componentCriteria")
        verdicts: dict[tuple[Any, ...], bool] = {}  # by component: name, instance, evse, connector
        items: list[dict[str, Any]] = []
        for number, evse, connector in self._places():
            spec = self.specs[number]
            if wanted and not any(_picks(item, spec, evse, connector) for item in wanted):
                continue
            component = (*_fold(spec.component, spec.component_instance), evse, connector)
            if criteria and component not in verdicts:
                verdicts[component] = self._meets(component, criteria)
            if not criteria or verdicts[component]:
                items.append(self._report_item(number, evse, connector))
        return items or None

    def _places(self) -> Iterator[tuple[int, int, int]]:
        """Each variable's (number, evse, connector): the station's, each EVSE's and connector's."""
        scoped = self._index.scoped
        yield from ((number, 0, 0) for number in scoped["station"])
        for evse in range(1, self._evses + 1):
            yield from ((number, evse, 0) for number in scoped["evse"])
            yield from ((number, evse, 1) for number in scoped["connector"])

    def _answer(self, data: Mapping[str, Any]) -> tuple[str, Slot | None, dict[str, Any]]:
        """An item's status and slot (:meth:`_resolve`), and its result's start, echoing it."""
        component, variable = data["component"], data["variable"]
        attribute = data.get("attributeType", "Actual")
        place = component.get("evse") or {}
        where = (component["name"], component.get("instance"), place.get("id"))
        address = (*where, place.get("connectorId"), variable["name"], variable.get("instance"))
        result = {"attributeType": attribute, "component": component, "variable": variable}
        return (*self._resolve(address, attribute), result)

    def _resolve(self, address: Address, attribute: str) -> tuple[str, Slot | None]:
        """Where an attribute is, and Accepted; or None, and why (B05.FR.04 to .06, B06.FR.06 to
        .08, .15: an instance must be given where, and only where, the variable has one)."""
        component, component_instance, evse, connector, variable, variable_instance = address
        names = _fold(component, component_instance)
        scope = self._index.components.get(names)
        at_evse = evse is None if scope == "station" else evse in range(1, self._evses + 1)
        if scope is None or not at_evse or connector != (1 if scope == "connector" else None):
            return "UnknownComponent", None
        number = self._index.by_name.get(names + _fold(variable, variable_instance))
        if number is None:
            return "UnknownVariable", None
        if attribute not in self.specs[number].attributes:
            return "NotSupportedAttributeType", None
        return "Accepted", (number, evse or 0, connector or 0, attribute)

    def _locate(self, address: Address, attribute: str) -> Slot:
        key = (address, attribute, self._evses)
        slot = self._index.located.get(key)
        if slot is None:
            status, slot = self._resolve(address, attribute)
            if slot is None:
                raise KeyError(f"{status}: {address}, {attribute}")
            if len(self._index.located) < LOCATED:
                self._index.located[key] = slot
        return slot

    def _default(self, slot: Slot) -> str:
        spec = self.specs[slot[0]]
        return spec.default if slot[3] == "Actual" else dict(spec.other_attributes)[slot[3]]

    def _read(self, slot: Slot) -> str:
        if slot[0] == self._index.clock and slot[3] == "Actual":
            return self.clock()
        if self._values is not None and slot in self._values:
            return self._values[slot]
        return self._default(slot)

    def _set(self, slot: Slot, value: str | int | float | bool) -> None:
        spec = self.specs[slot[0]]
        if slot[0] == self._index.clock:
            raise ValueError(f"{spec.name} is the station's clock: see DeviceModel.clock")
        text = str(value).lower() if isinstance(value, bool) else str(value)
        try:
            self._store(slot, _normalize(spec, text))
        except ValueError as refused:
            raise ValueError(f"{spec.name} cannot be {text[:64]!r}: {refused}") from None

    def _store(self, slot: Slot, value: str) -> None:
        if value != self._default(slot):
            if self._values is None:
                self._values = {}
            self._values[slot] = value
        elif self._values is not None:
            self._values.pop(slot, None)
            if not self._values:
                self._values = None  # back to holding nothing of its own

    def _in_summary(self, number: int, evse: int, connector: int) -> bool:
        """Whether a SummaryInventory reports the variable (B07.FR.09)."""
        spec = self.specs[number]
        name = _fold(spec.variable, spec.variable_instance)
        own = self._read((number, evse, connector, "Actual"))
        if name == ("problem", ""):
            return own == "true"
        if name != ("availabilitystate", "") or spec.scope != "connector":
            return name == ("availabilitystate", "")
        evse_state = self._index.by_name.get(("evse", "", "availabilitystate", ""))
        return evse_state is None or own != self._read((evse_state, evse, 0, "Actual"))

    def _meets(self, component: tuple[Any, ...], criteria: Iterable[str]) -> bool:
        """Whether a component (folded name and instance, evse, connector) meets a criterion."""
        *names, evse, connector = component
        for criterion in criteria:
            number = self._index.by_name.get((*names, criterion.lower(), ""))
            if number is None and criterion != "Problem":  # absent counts as true, but Problem
                return True
            if number is not None and self._read((number, evse, connector, "Actual")) == "true":
                return True
        return False

    def _report_item(self, number: int, evse: int, connector: int) -> dict[str, Any]:
        """A reportData item: the variable there, each of its attributes, its characteristics."""
        spec = self.specs[number]
        place = _present(id=evse or None, connectorId=connector or None) or None
        shown, writable = spec.mutability != "WriteOnly", spec.mutability != "ReadOnly" or None
        attributes = [  # writable values persist (part 2 appendix 2)
            _present(type=attribute, mutability=spec.mutability, persistent=writable)
            | ({"value": self._read((number, evse, connector, attribute))} if shown else {})
            for attribute in spec.attributes
        ]
        values = None if spec.values_list is None else ",".join(spec.values_list)
        characteristics = {"dataType": spec.data_type, "supportsMonitoring": False} | _present(
            unit=spec.unit, minLimit=spec.min_limit, maxLimit=spec.max_limit, valuesList=values
        )
        component = _present(name=spec.component, instance=spec.component_instance, evse=place)
        return {
            "component": component,
            "variable": _present(name=spec.variable, instance=spec.variable_instance),
            "variableAttribute": attributes,
            "variableCharacteristics": characteristics,
        }


def _present(**fields: Any) -> dict[str, Any]:
    """The ``fields`` that are not None: an object without its absent optional fields."""
    return {name: value for name, value in fields.items() if value is not None}


def _picks(item: Mapping[str, Any], spec: VariableSpec, evse: int, connector: int) -> bool:
    """Whether a GetReport componentVariable ``item`` picks ``spec``'s variable there."""
    component, variable = item["component"], item.get("variable")
    place = component.get("evse")
    return (
        component["name"].lower() == spec.component.lower()
        and _same(component.get("instance"), spec.component_instance)
        and (place is None or (evse > 0 and place["id"] == evse))
        and (place is None or place.get("connectorId", connector) == connector)
        and (variable is None or variable["name"].lower() == spec.variable.lower())
        and (variable is None or _same(variable.get("instance"), spec.variable_instance))
    )


def _same(asked: str | None, instance: str | None) -> bool:
    """Whether an instance asked for is ``instance``: none asked is any (B08.FR.21, .25)."""
    return not asked or asked.lower() == (instance or "").lower()


def notify_reports(
    request_id: int, items: list[dict[str, Any]], per_message: int, generated_at: str
) -> list[dict[str, Any]]:
    """The NotifyReportRequest payloads carrying ``items``, ``per_message`` to each (the
    station's ItemsPerMessage[GetReport]): seqNo from 0 (B07.FR.10), ``tbc`` true on each but
    the last. No payloads for no items: an empty report is answered EmptyResultSet, not sent.
    """
    if per_message < 1:
        raise ValueError(f"per_message must be at least 1, not {per_message}")
    pages = [items[start : start + per_message] for start in range(0, len(items), per_message)]
    return [
        {"requestId": request_id, "generatedAt": generated_at, "seqNo": number,
         "tbc": number < len(pages) - 1, "reportData": page}
        for number, page in enumerate(pages)
    ]  # fmt: skip
