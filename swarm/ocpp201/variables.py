"""The variables of a 2.0.1 station's device model, declared once for a fleet: each component's
variables, where they are (the station, each EVSE, each connector), their types, limits,
mutability and defaults (part 1 chapter 4; part 2 appendix 2 lists what each controller
requires).

The limits of the functional blocks the station implements are declared here and obeyed by the
blocks (:mod:`~swarm.ocpp201.reservations`, :mod:`~swarm.ocpp201.smart_charging`), so that what
a CSMS reads is what the station does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ocpp.v201.enums import MeasurandEnumType

from swarm.station import measurands

LOCAL_LIST_ENTRIES = 100
"""IdTokens the local authorization list holds at most (LocalAuthListCtrlr.Entries)."""
CERTIFICATE_ENTRIES = 20
"""Certificates a station holds at most (SecurityCtrlr.CertificateEntries' maxLimit)."""
PROFILE_ENTRIES = 16
"""Charging profiles a station holds at most (SmartChargingCtrlr.Entries[ChargingProfiles])."""
PERIODS_PER_SCHEDULE = 48
"""Periods a charging schedule may have (SmartChargingCtrlr.PeriodsPerSchedule)."""
PROFILE_STACK_LEVEL = 10
"""The highest stackLevel of a charging profile (SmartChargingCtrlr.ProfileStackLevel)."""

DataType = Literal["string", "decimal", "integer", "dateTime", "boolean",
                   "OptionList", "SequenceList", "MemberList"]  # fmt: skip
Mutability = Literal["ReadOnly", "ReadWrite", "WriteOnly"]
Attribute = Literal["Actual", "Target", "MinSet", "MaxSet"]
Scope = Literal["station", "evse", "connector"]

MIN_INT, MAX_INT = -(2**31), 2**31 - 1  # the range of an integer: OCPP's are 32-bit
MAX_VALUE_LENGTH = 1000  # the longest value: SetVariableData.attributeValue's limit


@dataclass(frozen=True, slots=True)
class VariableSpec:
    """A variable of a component: where it is, its values and defaults, who may read or set it."""

    component: str
    variable: str
    data_type: DataType
    mutability: Mutability  # of each of its attributes
    default: str
    """The Actual attribute's, normalized as :class:`DeviceModel` stores values; ``""`` for
    none: an unset attribute reads as an empty string (B06.FR.13)."""
    variable_instance: str | None = None
    component_instance: str | None = None
    scope: Scope = "station"  # the component is once in the station, per EVSE, per connector
    other_attributes: tuple[tuple[Attribute, str], ...] = ()  # besides Actual, with defaults
    values_list: tuple[str, ...] | None = None  # what a list may hold; None for anything
    min_limit: float | None = None  # a number's least value; a string's or list's least length
    max_limit: float | None = None  # a number's greatest value; a string's or list's greatest
    unit: str | None = None
    reboot_required: bool = False  # a change is stored for the next boot: RebootRequired

    @property
    def attributes(self) -> tuple[Attribute, ...]:
        """Its attribute types, Actual first."""
        return ("Actual", *(attribute for attribute, _ in self.other_attributes))

    @property
    def name(self) -> str:
        """``Component.Variable``, each with its ``[instance]`` if it has one."""
        ci, vi = self.component_instance, self.variable_instance
        return f"{self.component}{f'[{ci}]' if ci else ''}.{self.variable}{f'[{vi}]' if vi else ''}"


def _var(
    component: str,
    variable: str,
    data_type: DataType,
    default: object,
    mutability: Mutability = "ReadWrite",
    **details: Any,
) -> VariableSpec:
    """A spec; ``variable`` is ``Name[instance]`` for an instance. An integer's least value is 0
    unless told, a list's greatest length that of all its values: any list of them fits."""
    name, _, instance = variable.partition("[")
    text = str(default).lower() if isinstance(default, bool) else str(default)
    if data_type == "integer":
        details.setdefault("min_limit", 0)
    elif data_type in ("SequenceList", "MemberList"):
        details.setdefault("max_limit", len(",".join(details["values_list"])))
    instance = instance.removesuffix("]") or None
    return VariableSpec(component, name, data_type, mutability, text, instance, **details)


def _presence(component: str, scope: Scope) -> tuple[VariableSpec, ...]:
    """What ChargingStation, EVSE and Connector have alike: availability, phases, a Problem."""
    return (
        _var(component, "AvailabilityState", "OptionList", "Available", _RO, scope=scope,
             values_list=("Available", "Occupied", "Reserved", "Unavailable", "Faulted")),
        _var(component, "Available", "boolean", True, _RO, scope=scope),
        _var(component, "SupplyPhases", "integer", 3, _RO, scope=scope, max_limit=3),
        _var(component, "Problem", "boolean", False, _RO, scope=scope),
    )  # fmt: skip


def _absent(component: str) -> tuple[VariableSpec, ...]:
    """A functional block not implemented: not Available nor Enabled (B08.FR.08, .09 skip it)."""
    return tuple(_var(component, name, "boolean", False, _RO) for name in ("Available", "Enabled"))


_RO, _WO = "ReadOnly", "WriteOnly"
# The measurands the station has that 2.0.1 names (MeasurandEnumType: no Temperature, no phase
# suffixes as 1.6 has): a list with any other is refused.
_MEASURANDS = tuple(sorted(set(measurands.MEASURANDS) & {m.value for m in MeasurandEnumType}))
_ENERGY = "Energy.Active.Import.Register"
# The transaction start and stop points the station has (part 2, 2.6.6): a parking bay is
# occupied as the EV plugs in, and energy flows as the power path closes.
_TX_POINTS = (
    "ParkingBayOccupancy",
    "EVConnected",
    "Authorized",
    "PowerPathClosed",
    "EnergyTransfer",
)
_COMM, _TX, _SAMPLED, _ALIGNED = "OCPPCommCtrlr", "TxCtrlr", "SampledDataCtrlr", "AlignedDataCtrlr"
_AUTH, _CLOCK, _SECURITY, _DATA = "AuthCtrlr", "ClockCtrlr", "SecurityCtrlr", "DeviceDataCtrlr"

STANDARD_VARIABLES: tuple[VariableSpec, ...] = (
    # General (part 2 appendix 2.1; part 4 chapter 8 for RetryBackOff* and WebSocketPingInterval)
    _var(_COMM, "FileTransferProtocols", "MemberList", "HTTP,HTTPS", _RO,
         values_list=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP")),
    _var(_COMM, "HeartbeatInterval", "integer", 300, unit="s", min_limit=1),
    _var(_COMM, "MessageTimeout[Default]", "integer", 30, _RO, unit="s", min_limit=1),
    _var(_COMM, "MessageAttemptInterval[TransactionEvent]", "integer", 60, unit="s"),
    _var(_COMM, "MessageAttempts[TransactionEvent]", "integer", 3, min_limit=1),
    # One network profile slot; a new priority is for the next boot to connect by (B10.FR.04).
    _var(_COMM, "NetworkConfigurationPriority", "SequenceList", "1", values_list=("1",),
         reboot_required=True),
    _var(_COMM, "NetworkProfileConnectionAttempts", "integer", 3, min_limit=1),
    _var(_COMM, "OfflineThreshold", "integer", 60, unit="s"),
    _var(_COMM, "ResetRetries", "integer", 3),
    _var(_COMM, "RetryBackOffRandomRange", "integer", 10, unit="s"),
    _var(_COMM, "RetryBackOffRepeatTimes", "integer", 6),
    _var(_COMM, "RetryBackOffWaitMinimum", "integer", 1, unit="s"),
    _var(_COMM, "UnlockOnEVSideDisconnect", "boolean", True),
    _var(_COMM, "WebSocketPingInterval", "integer", 60, unit="s"),  # 0: no pings
    *(_var(_DATA, f"{name}[{message}]", "integer", default, _RO, min_limit=1)
      for name, default in (("ItemsPerMessage", 50), ("BytesPerMessage", 65536))
      for message in ("GetReport", "GetVariables", "SetVariables")),
    _var(_DATA, "ConfigurationValueSize", "integer", MAX_VALUE_LENGTH, _RO, max_limit=1000),
    _var(_DATA, "ReportingValueSize", "integer", 2500, _RO, max_limit=2500),
    _var(_CLOCK, "DateTime", "dateTime", "", _RO),  # DeviceModel.clock's
    _var(_CLOCK, "TimeSource", "SequenceList", "RealTimeClock",
         values_list=("RealTimeClock", "Heartbeat")),
    # Security (2.2)
    _var(_SECURITY, "OrganizationName", "string", "ocpp-swarm"),
    _var(_SECURITY, "CertificateEntries", "integer", 0, _RO, max_limit=CERTIFICATE_ENTRIES),
    _var(_SECURITY, "SecurityProfile", "integer", 1, _RO, min_limit=1, max_limit=3),
    _var(_SECURITY, "BasicAuthPassword", "string", "", _WO, min_limit=16, max_limit=40),
    # Authorization (2.3); the authorization cache (2.4) is not implemented
    _var(_AUTH, "AuthorizeRemoteStart", "boolean", True),
    _var(_AUTH, "LocalAuthorizeOffline", "boolean", True),
    _var(_AUTH, "LocalPreAuthorize", "boolean", False),
    _var(_AUTH, "OfflineTxForUnknownIdEnabled", "boolean", False),
    *_absent("AuthCacheCtrlr"),
    # The local authorization list (2.5): swarm.ocpp201.reservations
    _var("LocalAuthListCtrlr", "Available", "boolean", True, _RO),
    _var("LocalAuthListCtrlr", "Enabled", "boolean", True),
    _var("LocalAuthListCtrlr", "Entries", "integer", 0, _RO, max_limit=LOCAL_LIST_ENTRIES),
    _var("LocalAuthListCtrlr", "ItemsPerMessage", "integer", LOCAL_LIST_ENTRIES, _RO),
    _var("LocalAuthListCtrlr", "BytesPerMessage", "integer", 65536, _RO),
    # Transactions (2.6)
    _var(_TX, "EVConnectionTimeOut", "integer", 60, unit="s", min_limit=1),
    _var(_TX, "StopTxOnEVSideDisconnect", "boolean", True),
    _var(_TX, "StopTxOnInvalidId", "boolean", True),
    _var(_TX, "TxStartPoint", "MemberList", "PowerPathClosed", values_list=_TX_POINTS),
    _var(_TX, "TxStopPoint", "MemberList", "EVConnected,Authorized", values_list=_TX_POINTS),
    # Metering (2.7)
    _var(_SAMPLED, "TxEndedMeasurands", "MemberList", _ENERGY, values_list=_MEASURANDS),
    _var(_SAMPLED, "TxEndedInterval", "integer", 0, unit="s"),  # 0: the start's and end's alone
    _var(_SAMPLED, "TxStartedMeasurands", "MemberList", _ENERGY, values_list=_MEASURANDS),
    _var(_SAMPLED, "TxUpdatedMeasurands", "MemberList", f"{_ENERGY},Power.Active.Import",
         values_list=_MEASURANDS),
    _var(_SAMPLED, "TxUpdatedInterval", "integer", 60, unit="s"),
    _var(_ALIGNED, "Interval", "integer", 0, unit="s"),  # 0: no clock-aligned data
    _var(_ALIGNED, "Measurands", "MemberList", _ENERGY, values_list=_MEASURANDS),
    _var(_ALIGNED, "TxEndedInterval", "integer", 0, unit="s"),
    _var(_ALIGNED, "TxEndedMeasurands", "MemberList", "", values_list=_MEASURANDS),
    # Reservation, Smart Charging (2.8, 2.9): not implemented
    # Reservations (2.9) and smart charging (2.8): swarm.ocpp201.reservations, .smart_charging
    _var("ReservationCtrlr", "Available", "boolean", True, _RO),
    _var("ReservationCtrlr", "Enabled", "boolean", True),
    _var("ReservationCtrlr", "NonEvseSpecific", "boolean", False, _RO),
    _var("SmartChargingCtrlr", "Available", "boolean", True, _RO),
    _var("SmartChargingCtrlr", "Enabled", "boolean", True),
    _var("SmartChargingCtrlr", "Entries[ChargingProfiles]", "integer", 0, _RO,
         max_limit=PROFILE_ENTRIES),
    _var("SmartChargingCtrlr", "LimitChangeSignificance", "decimal", 1),
    _var("SmartChargingCtrlr", "PeriodsPerSchedule", "integer", PERIODS_PER_SCHEDULE, _RO),
    _var("SmartChargingCtrlr", "ProfileStackLevel", "integer", PROFILE_STACK_LEVEL, _RO),
    _var("SmartChargingCtrlr", "RateUnit", "MemberList", "A,W", _RO, values_list=("A", "W")),
    # Charging infrastructure (part 2 appendices, 3.2): a three-phase AC station, 22 kW an EVSE
    *_presence("ChargingStation", "station"),
    _var("ChargingStation", "Model", "string", "VirtualCharger", _RO, max_limit=20),
    _var("ChargingStation", "VendorName", "string", "ocpp-swarm", _RO, max_limit=50),
    *_presence("EVSE", "evse"),
    _var("EVSE", "Power", "decimal", 0, _RO, scope="evse", unit="W", min_limit=0, max_limit=22080,
         other_attributes=(("MaxSet", "22080"),)),
    *_presence("Connector", "connector"),
    _var("Connector", "ConnectorType", "string", "sType2", _RO, scope="connector"),
)  # fmt: skip
"""A virtual three-phase AC station's variables, with defaults: those its controllers require
(part 2 appendix 2, part 4 chapter 8) and a few others it uses; ChargingStation's, EVSE's and
Connector's; Available and Enabled, false, of the functional blocks it does not implement."""
