"""A charge point's OCPP 1.6 configuration keys (section 9 of the specification), without I/O.

:data:`STANDARD_KEYS` describes the keys; a :class:`Configuration` holds one charge point's values
and answers GetConfiguration and ChangeConfiguration. Values are strings, as on the wire: integers
in decimal, booleans as ``true`` or ``false``, lists as comma-separated items (``csl``). Key names
are case-insensitive, as OCPP's CiStrings are; answers carry the names as the specification spells
them, and unknown names as the CSMS did.

A fleet may hold 15,000 configurations: each stores only the values that differ from the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from swarm.station import measurands

Kind = Literal["int", "bool", "str", "csl"]

Observer = Callable[[str, str], None]
"""Called with a key's name and its new value after a ChangeConfiguration accepted it."""

MAX_INT = 2**31 - 1
"""The largest ``int`` value: OCPP's integers are 32-bit."""

MAX_VALUE_LENGTH = 500
"""The longest value: GetConfiguration.conf's and ChangeConfiguration.req's limit."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    """One configuration key: the values it takes, its default and whether the CSMS may set it."""

    name: str
    kind: Kind
    readonly: bool
    default: str
    """Normalized, as :class:`Configuration` stores values: ``7``, ``true``, ``A,B``."""
    members: frozenset[str] | None = None
    """For a ``csl``: the items it may list; None allows any."""
    max_count: int | None = None
    """For a ``csl``: how many items it may list; None for no limit. A key set with a readonly
    ``<name>MaxLength`` key (as :data:`STANDARD_KEYS` has for each key with a limit) takes the
    limit from that key's value instead, so that overriding it changes the limit too."""
    minimum: int = 0
    """For an ``int``: its least value."""
    reboot_required: bool = False
    """A change takes effect only after a reboot: it is stored and answered RebootRequired."""
    write_only: bool = False
    """A secret: GetConfiguration lists the key without its value."""


# MeterValuesSampledData and the like list the measurands the charger has, a measurand measured
# per phase maybe with one of its phases ("Voltage.L1-N"): a list with any other is Rejected.
_MEASURANDS = measurands.SUPPORTED
_MAX_MEASURANDS = 10
_PROFILES = (
    "Core",
    "FirmwareManagement",
    "LocalAuthListManagement",
    "Reservation",
    "SmartCharging",
    "RemoteTrigger",
)
# ConnectorPhaseRotation lists "<connectorId>.<rotation>" items, 0 for the main meter.
_PHASE_ROTATION = "ConnectorPhaseRotation"
_ROTATIONS = frozenset({"NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR"})


def _bool(name: str, default: bool, *, readonly: bool = False) -> KeySpec:
    return KeySpec(name, "bool", readonly, "true" if default else "false")


def _int(name: str, default: int, *, readonly: bool = False, minimum: int = 0) -> KeySpec:
    return KeySpec(name, "int", readonly, str(default), minimum=minimum)


def _csl(
    name: str,
    default: str,
    *,
    readonly: bool = False,
    members: Iterable[str] | None = None,
    max_count: int | None = None,
) -> tuple[KeySpec, ...]:
    """A list key and, when it has a limit, the readonly ``<name>MaxLength`` key reporting it."""
    spec = KeySpec(
        name,
        "csl",
        readonly,
        default,
        members=None if members is None else frozenset(members),
        max_count=max_count,
    )
    if max_count is None:
        return (spec,)
    return spec, _int(f"{name}MaxLength", max_count, readonly=True)


CERTIFICATE_STORE = 20
"""Certificates a charge point holds at most: the CertificateStoreMaxLength key's value."""


STANDARD_KEYS: tuple[KeySpec, ...] = (
    # 9.1 Core
    _bool("AllowOfflineTxForUnknownId", False),
    _bool("AuthorizationCacheEnabled", False),
    _bool("AuthorizeRemoteTxRequests", True),
    _int("ClockAlignedDataInterval", 0),
    _int("ConnectionTimeOut", 60, minimum=1),
    *_csl(_PHASE_ROTATION, "0.RST"),  # items checked by _phase_rotations
    _int("GetConfigurationMaxKeys", 50, readonly=True, minimum=1),
    _int("HeartbeatInterval", 300, minimum=1),
    _bool("LocalAuthorizeOffline", True),
    _bool("LocalPreAuthorize", False),
    *_csl(
        "MeterValuesAlignedData",
        "Energy.Active.Import.Register",
        members=_MEASURANDS,
        max_count=_MAX_MEASURANDS,
    ),
    *_csl(
        "MeterValuesSampledData",
        "Energy.Active.Import.Register,Power.Active.Import",
        members=_MEASURANDS,
        max_count=_MAX_MEASURANDS,
    ),
    _int("MeterValueSampleInterval", 60),
    _int("NumberOfConnectors", 1, readonly=True, minimum=1),
    _int("ResetRetries", 3),
    _bool("StopTransactionOnEVSideDisconnect", True),
    _bool("StopTransactionOnInvalidId", True),
    *_csl("StopTxnAlignedData", "", members=_MEASURANDS, max_count=_MAX_MEASURANDS),
    *_csl("StopTxnSampledData", "", members=_MEASURANDS, max_count=_MAX_MEASURANDS),
    *_csl(
        "SupportedFeatureProfiles",
        ",".join(_PROFILES),
        readonly=True,
        members=_PROFILES,
        max_count=len(_PROFILES),
    ),
    _int("TransactionMessageAttempts", 3),
    _int("TransactionMessageRetryInterval", 60),
    _bool("UnlockConnectorOnEVSideDisconnect", True),
    _int("WebSocketPingInterval", 60),
    # 9.2 Local Auth List Management
    _bool("LocalAuthListEnabled", False),
    _int("LocalAuthListMaxLength", 100, readonly=True),
    _int("SendLocalListMaxLength", 100, readonly=True),
    # 9.3 Reservation
    _bool("ReserveConnectorZeroSupported", False, readonly=True),
    # 9.4 Smart Charging
    _int("ChargeProfileMaxStackLevel", 10, readonly=True),
    *_csl(
        "ChargingScheduleAllowedChargingRateUnit",
        "Current,Power",
        readonly=True,
        members=("Current", "Power"),
    ),
    _int("ChargingScheduleMaxPeriods", 24, readonly=True),
    _int("MaxChargingProfilesInstalled", 10, readonly=True),
    # The Security Whitepaper's (edition 3, 3.1): those of the certificates.
    _bool("AdditionalRootCertificateCheck", False, readonly=True),
    _int("CertificateStoreMaxLength", CERTIFICATE_STORE, readonly=True, minimum=1),
    KeySpec("CpoName", "str", False, "ocpp-swarm"),
    # And of the security profiles, which the charge point changes (swarm.ocpp16.security).
    KeySpec("AuthorizationKey", "str", False, "", write_only=True),
    _int("SecurityProfile", 0),
)
"""The keys of OCPP 1.6's Core, Local Auth List Management, Reservation and Smart Charging
profiles (sections 9.1 to 9.4) that a virtual AC charger has, and those of the security
extension's certificate store and security profiles, with their defaults."""


def _index(keys: Iterable[KeySpec]) -> dict[str, KeySpec]:
    specs: dict[str, KeySpec] = {}
    for spec in keys:
        if spec.name.lower() in specs:
            raise ValueError(f"configuration key {spec.name} is defined twice")
        specs[spec.name.lower()] = spec
    return specs


class Configuration:
    """One charge point's configuration keys.

    ``overrides`` set values other than the defaults, readonly keys included (they are what the
    charge point is); ``heartbeat_interval`` and ``number_of_connectors``, when given, set
    HeartbeatInterval and NumberOfConnectors and win over ``overrides``. Raises :class:`KeyError`
    for an unknown key and :class:`ValueError` for a value the key cannot take.

    A subclass may describe other keys (vendor keys, say) by setting :attr:`keys`.
    """

    __slots__ = ("_observers", "_values")

    keys: ClassVar[tuple[KeySpec, ...]] = STANDARD_KEYS
    """The keys, in the order GetConfiguration lists them."""
    _specs: ClassVar[dict[str, KeySpec]] = _index(STANDARD_KEYS)  # by lower-cased name

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._specs = _index(cls.keys)

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        heartbeat_interval: int | None = None,
        number_of_connectors: int | None = None,
    ) -> None:
        self._values: dict[str, str] = {}  # only values other than the default, by name
        self._observers: list[tuple[str, Observer]] | None = None
        settings = dict(overrides or {})
        if heartbeat_interval is not None:
            settings["HeartbeatInterval"] = str(heartbeat_interval)
        if number_of_connectors is not None:
            settings["NumberOfConnectors"] = str(number_of_connectors)
        # Lists last: whether ConnectorPhaseRotation is valid depends on NumberOfConnectors.
        for name, value in sorted(
            settings.items(), key=lambda item: self._spec(item[0]).kind == "csl"
        ):
            self.set(name, value)

    def value(self, name: str) -> str:
        """The value of key ``name`` (in any case); :class:`KeyError` if there is no such key."""
        spec = self._spec(name)
        return self._values.get(spec.name, spec.default)

    def int_value(self, name: str) -> int:
        """The value of the ``int`` key ``name``."""
        return int(self.value(name))

    def bool_value(self, name: str) -> bool:
        """The value of the ``bool`` key ``name``."""
        return self.value(name) == "true"

    def set(self, name: str, value: str | int | bool) -> None:
        """Set key ``name`` from the charge point's side: readonly keys too, observers untold.

        For a value the charge point learnt otherwise, such as a boot answer's interval.
        Raises :class:`KeyError` for an unknown key, :class:`ValueError` for a value it cannot take.
        """
        spec = self._spec(name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        normalized = self._normalize(spec, text)
        if normalized is None:
            raise ValueError(f"{spec.name} cannot be {text[:64]!r}")
        self._store(spec, normalized)

    def on_change(self, name: str, observer: Observer) -> None:
        """Call ``observer(name, value)`` after each ChangeConfiguration Accepted for key ``name``.

        Not after one answered RebootRequired: such a value is for the next boot to read.
        """
        spec = self._spec(name)
        if self._observers is None:
            self._observers = []
        self._observers.append((spec.name, observer))

    def get_configuration(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The GetConfiguration.conf payload answering a GetConfiguration.req ``payload``.

        ``payload`` must be valid against its schema. Without keys, or with an empty list, every
        key. With a list, each key once (the first spelling of it) and at most
        GetConfigurationMaxKeys of them: a CSMS must not ask for more, and keys beyond
        that are left out of both lists, as a charge point that reads only so many would.
        """
        requested = payload.get("key")
        if not requested:
            return {"configurationKey": [self._entry(spec) for spec in self.keys]}
        limit = self.int_value("GetConfigurationMaxKeys")
        known: list[dict[str, Any]] = []
        unknown: list[str] = []
        seen: set[str] = set()
        for name in requested:
            folded = name.lower()
            if folded in seen:
                continue
            if len(seen) == limit:
                break
            seen.add(folded)
            spec = self._specs.get(folded)
            if spec is None:
                unknown.append(name)
            else:
                known.append(self._entry(spec))
        answer: dict[str, Any] = {}
        if known:  # both lists are optional: omitted when empty
            answer["configurationKey"] = known
        if unknown:
            answer["unknownKey"] = unknown
        return answer

    def change_configuration(self, payload: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The ChangeConfiguration.conf payload answering a ChangeConfiguration.req ``payload``,
        and the name of the key it set, None if none.

        ``payload`` must be valid against its schema. NotSupported for an unknown key, Rejected
        for a readonly one or a value the key cannot take; else the value is stored, normalized
        (``007`` as ``7``, ``TRUE`` as ``true``, a list without blanks and repeats) and answered
        RebootRequired or Accepted. Observers hear of an Accepted value even when it is the one
        in force: applying it again is harmless.
        """
        spec = self._specs.get(payload["key"].lower())
        if spec is None:
            return {"status": "NotSupported"}, None
        value = None if spec.readonly else self._normalize(spec, payload["value"])
        if value is None:
            return {"status": "Rejected"}, None
        self._store(spec, value)
        if spec.reboot_required:
            return {"status": "RebootRequired"}, spec.name
        for name, observer in self._observers or ():
            if name == spec.name:
                observer(name, value)
        return {"status": "Accepted"}, spec.name

    def _spec(self, name: str) -> KeySpec:
        try:
            return self._specs[name.lower()]
        except KeyError:
            raise KeyError(f"no configuration key {name!r}") from None

    def _entry(self, spec: KeySpec) -> dict[str, Any]:
        if spec.write_only:
            return {"key": spec.name, "readonly": spec.readonly}
        value = self._values.get(spec.name, spec.default)
        return {"key": spec.name, "readonly": spec.readonly, "value": value}

    def _store(self, spec: KeySpec, value: str) -> None:
        if value == spec.default:
            self._values.pop(spec.name, None)
        else:
            self._values[spec.name] = value

    def _max_count(self, spec: KeySpec) -> float:
        reported = self._specs.get(f"{spec.name}MaxLength".lower())
        if reported is not None:
            return int(self._values.get(reported.name, reported.default))
        return math.inf if spec.max_count is None else spec.max_count

    def _normalize(self, spec: KeySpec, value: str) -> str | None:
        """``value`` as stored for ``spec``'s key, or None if the key cannot take it."""
        if len(value) > MAX_VALUE_LENGTH:
            return None
        if spec.kind == "str":
            return value
        text = value.strip()
        if spec.kind == "int":
            # Plain digits only: int() would also take "1_000", "+1" and non-ASCII digits.
            if not (text.isascii() and text.isdigit()):
                return None
            number = int(text)
            return str(number) if spec.minimum <= number <= MAX_INT else None
        if spec.kind == "bool":
            text = text.lower()
            return text if text in ("true", "false") else None
        items = list(dict.fromkeys(item.strip() for item in text.split(","))) if text else []
        if "" in items or len(items) > self._max_count(spec):
            return None
        if spec.name == _PHASE_ROTATION:
            items = _phase_rotations(items, self.int_value("NumberOfConnectors"))
            if items is None:
                return None
        elif spec.members is not None and not spec.members.issuperset(items):
            return None
        return ",".join(items)


def _phase_rotations(items: list[str], connectors: int) -> list[str] | None:
    """ConnectorPhaseRotation's items normalized, or None unless each names a connector of
    ``connectors`` (or 0) once, and a rotation."""
    normalized: dict[int, str] = {}
    for item in items:
        connector, _, rotation = item.partition(".")
        if not (connector.isascii() and connector.isdigit()) or rotation not in _ROTATIONS:
            return None
        number = int(connector)
        if number > connectors or number in normalized:
            return None
        normalized[number] = f"{number}.{rotation}"
    return list(normalized.values())
