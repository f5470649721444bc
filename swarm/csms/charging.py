"""Charging profiles the embedded CSMS pushes to a share of the fleet (``POST`` and ``DELETE
/charging-profiles`` of the control API): one campaign in each version's words
(:meth:`Campaigns.versioned_campaign <swarm.csms.campaigns.Campaigns.versioned_campaign>`),
made here as an :class:`~swarm.csms.campaigns.Order` per version from a version-neutral body.

``POST`` takes ``connector`` (0, the default: the station as a whole; else a connector, an
EVSE in 2.0.1) and ``profile``::

    {"purpose": "ChargePointMaxProfile", "stack_level": 0, "unit": "W", "limit": 7400,
     "phases": 3, "id": 100}
    {"purpose": "TxDefaultProfile", "unit": "A", "periods": [{"start": 0, "limit": 16},
     {"start": 600, "limit": 8, "phases": 1}]}

- ``purpose``: ``ChargePointMaxProfile`` (2.0.1's name ``ChargingStationMaxProfile`` is the
  same; the default), a cap on the station, on connector 0 only; or ``TxDefaultProfile``, the
  limit of the sessions on ``connector`` (0: on every connector);
- ``stack_level``: 0 (the default) to 10, 2.0.1's highest;
- ``unit``: ``"W"`` (the default) or ``"A"`` (per phase);
- ``limit`` and ``phases`` (1 to 3, by default none: the station takes 3), or ``periods``:
  each ``start`` in whole seconds from the push (the first 0, rising), ``limit`` and
  ``phases``; at most 48;
- ``duration``: whole seconds the profile limits from the push, after which the station lifts
  it by itself (by default none: until cleared);
- ``id``: the chargingProfileId, by default 100 (ChargePointMaxProfile) or 200 (TxDefaultProfile)
  plus the stack level, so that pushing the same purpose and stack level again replaces it.

The profile is Absolute from the campaign's start (its startSchedule): 1.6's
SetChargingProfile with ``connectorId`` and ``csChargingProfiles``, 2.0.1's with ``evseId`` and
``chargingProfile``. ``DELETE`` clears with ClearChargingProfile: all the profiles the CSMS may
clear, or those of the body's ``id``, or of its ``purpose``, ``stack_level`` and ``connector``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from swarm.csms.campaigns import Order
from swarm.csms.versions import Central
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.dialect import Dialect

MAX, TX_DEFAULT = "ChargePointMaxProfile", "TxDefaultProfile"
PURPOSES = {
    MAX: {OCPP16: MAX, OCPP201: "ChargingStationMaxProfile"},
    "ChargingStationMaxProfile": {OCPP16: MAX, OCPP201: "ChargingStationMaxProfile"},
    TX_DEFAULT: {OCPP16: TX_DEFAULT, OCPP201: TX_DEFAULT},
}
"""Each purpose a push may name, and its name in each version."""
DEFAULT_IDS = {MAX: 100, "ChargingStationMaxProfile": 100, TX_DEFAULT: 200}
"""The chargingProfileId of a purpose at stack level 0, when the body gives none."""
PROFILE_KEYS = frozenset(
    {"purpose", "stack_level", "unit", "limit", "phases", "periods", "duration", "id"}
)
PERIOD_KEYS = frozenset({"start", "limit", "phases"})
CLEAR_KEYS = frozenset({"purpose", "stack_level", "connector", "id"})
MAX_STACK_LEVEL = 10
MAX_PERIODS = 48
MAX_CONNECTOR = 99


def set_orders(profile: Any, connector: Any, central: Central) -> dict[Dialect, Order]:
    """The SetChargingProfile of each version for ``profile`` on ``connector``, for the CSMS
    ``central``; ValueError says what is wrong with them."""
    if not isinstance(profile, dict):
        raise ValueError('profile must be an object, e.g. {"limit": 7400}')
    _check_keys("profile", profile, PROFILE_KEYS)
    connector = _integer("connector", connector, 0, MAX_CONNECTOR)
    purpose = profile.get("purpose", MAX)
    if not isinstance(purpose, str) or purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    if purpose != TX_DEFAULT and connector != 0:
        raise ValueError(f"a {purpose} caps the station: it is set on connector 0")
    level = _integer("stack_level", profile.get("stack_level", 0), 0, MAX_STACK_LEVEL)
    number = _integer("id", profile.get("id", DEFAULT_IDS[purpose] + level), 1, 2**31 - 1)
    unit = profile.get("unit", "W")
    if unit not in ("W", "A"):
        raise ValueError(f'unit must be "W" or "A", not {unit!r}')
    periods = _periods(profile)
    duration = profile.get("duration")
    ocpp_periods = [
        {
            "startPeriod": p["start"],
            "limit": p["limit"],
            **({"numberPhases": p["phases"]} if "phases" in p else {}),
        }
        for p in periods
    ]
    schedule = {
        "startSchedule": central.now(),
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": ocpp_periods,
    }
    if duration is not None:
        schedule["duration"] = _integer("duration", duration, 1, 2**31 - 1)
    common = {"stackLevel": level, "chargingProfileKind": "Absolute"}
    names = PURPOSES[purpose]
    return {
        OCPP16: Order.same(
            "SetChargingProfile",
            {
                "connectorId": connector,
                "csChargingProfiles": {
                    "chargingProfileId": number,
                    **common,
                    "chargingProfilePurpose": names[OCPP16],
                    "chargingSchedule": schedule,
                },
            },
        ),
        OCPP201: Order.same(
            "SetChargingProfile",
            {
                "evseId": connector,
                "chargingProfile": {
                    "id": number,
                    **common,
                    "chargingProfilePurpose": names[OCPP201],
                    "chargingSchedule": [{"id": 1, **schedule}],
                },
            },
        ),
    }


def clear_orders(criteria: Mapping[str, Any]) -> dict[Dialect, Order]:
    """The ClearChargingProfile of each version for ``criteria`` (``id``, or ``purpose``,
    ``stack_level`` and ``connector``; none: every profile); ValueError says what is wrong."""
    if "id" in criteria:
        if len(criteria) > 1:
            raise ValueError("give id alone, or purpose, stack_level and connector")
        number = _integer("id", criteria["id"], 1, 2**31 - 1)
        return {
            OCPP16: Order.same("ClearChargingProfile", {"id": number}),
            OCPP201: Order.same("ClearChargingProfile", {"chargingProfileId": number}),
        }
    by16: dict[str, Any] = {}
    by201: dict[str, Any] = {}
    if "purpose" in criteria:
        purpose = criteria["purpose"]
        names = PURPOSES.get(purpose) if isinstance(purpose, str) else None
        if names is None:
            raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
        by16["chargingProfilePurpose"] = names[OCPP16]
        by201["chargingProfilePurpose"] = names[OCPP201]
    if "stack_level" in criteria:
        level = _integer("stack_level", criteria["stack_level"], 0, MAX_STACK_LEVEL)
        by16["stackLevel"] = by201["stackLevel"] = level
    if "connector" in criteria:
        connector = _integer("connector", criteria["connector"], 0, MAX_CONNECTOR)
        by16["connectorId"] = by201["evseId"] = connector
    return {
        OCPP16: Order.same("ClearChargingProfile", by16),
        OCPP201: Order.same(
            "ClearChargingProfile", {"chargingProfileCriteria": by201} if by201 else {}
        ),
    }


def _periods(profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The body's ``periods``, or one from its ``limit`` and ``phases``."""
    if ("limit" in profile) == ("periods" in profile):
        raise ValueError("give the profile a limit or periods, one of them")
    if "limit" in profile:
        periods = [{"start": 0, **{k: profile[k] for k in ("limit", "phases") if k in profile}}]
    else:
        periods = profile["periods"]
        if not (isinstance(periods, list) and 1 <= len(periods) <= MAX_PERIODS):
            raise ValueError(f"periods must be a list of 1 to {MAX_PERIODS} periods")
    checked = []
    for period in periods:
        if not isinstance(period, dict):
            raise ValueError('a period must be an object, e.g. {"start": 0, "limit": 7400}')
        _check_keys("a period", period, PERIOD_KEYS)
        entry = {
            "start": _integer("start", period.get("start"), 0, 2**31 - 1),
            "limit": _limit(period.get("limit")),
        }
        if "phases" in period:
            entry["phases"] = _integer("phases", period["phases"], 1, 3)
        checked.append(entry)
    starts = [p["start"] for p in checked]
    if starts[0] != 0 or any(a >= b for a, b in pairwise(starts)):
        raise ValueError("the periods start at 0 and in increasing order")
    return checked


def _limit(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"limit must be a number, not {value!r}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"limit must be 0 or more, not {value!r}")
    return value


def _integer(key: str, value: Any, lowest: int, highest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        raise ValueError(f"{key} must be a whole number from {lowest} to {highest}, not {value!r}")
    return value


def _check_keys(what: str, body: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = body.keys() - known
    if unknown:
        raise ValueError(
            f"{what} takes {', '.join(sorted(known))}, not {', '.join(sorted(unknown)[:10])}"
        )
