"""What the fleet is doing: charge points per state and per OCPP version, the power their
sessions draw, CALLERRORs by action and code, CSMS calls by action.

Each process that runs charge points counts its own (:class:`FleetCounters`, fed by the samples
it hands to Locust); a master sums what its workers send with their stats reports (every 3 s,
Locust's report interval). The run's ``fleet.csv``, its pictures and the web UI's tab read the
sum as a :class:`FleetStatus`.

OCPP 1.6's actions go by their bare names (``Heartbeat``), as before 2.0.1 came; another
version's by their Locust request type, a space and the name (``OCPP201 Heartbeat``), as
``--check-p95`` names them: see :func:`fleet_name`.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from swarm.protocol.samples import (
    CALL_TYPES,
    CSMS,
    CSMS_TYPES,
    OCPP,
    Sample,
    callerror_code,
)
from swarm.station.state import State
from swarm.station.versions import VERSIONS

STATES = tuple(state.value for state in State if state is not State.STOPPED)
"""The states a fleet overview shows; ``stopped`` charge points are gone from the fleet."""

CONNECTED = tuple(state for state in STATES if state not in ("connecting", "offline"))
"""States in which a charge point holds an open WebSocket."""

REPORT_KEY = "ocpp_swarm_fleet"
"""Key of a worker's :class:`FleetStatus` in the data of its stats report to the master."""

VERSION_PREFIX = "version "
"""Start of an engine census key that counts the charge points of an OCPP version: the engine's
``VERSION_PREFIX`` (reporting sits beside the engine, and imports it not)."""

BARE_TYPES = (OCPP, CSMS)
"""Request types whose actions a :class:`FleetStatus` names bare: OCPP 1.6's."""

PREFIXED_TYPES = tuple(t for t in (*CALL_TYPES, *CSMS_TYPES) if t not in BARE_TYPES)
"""Request types whose actions a :class:`FleetStatus` names after the type: ``OCPP201 Reset``."""


def fleet_name(request_type: str, action: str) -> str:
    """How a :class:`FleetStatus` names an action of a request type: bare for OCPP 1.6's
    (``Heartbeat``), else after its type and a space (``OCPP201 Heartbeat``)."""
    return action if request_type in BARE_TYPES else f"{request_type} {action}"


@dataclass(slots=True)
class FleetStatus:
    """A fleet's snapshot. Counts only; JSON- and msgpack-friendly through :meth:`as_dict`."""

    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    """Charge points per state (:data:`STATES`)."""
    charging: int = 0
    """Charge points with at least one transaction running."""
    power_w: int = 0
    """Watts the fleet's charging sessions draw."""
    callerrors: dict[str, dict[str, int]] = field(default_factory=dict)
    """CALLERRORs the CSMS answered the charge points' CALLs with: ``{action: {code: n}}``,
    actions named by :func:`fleet_name` (``Heartbeat``, ``OCPP201 Heartbeat``)."""
    csms_calls: dict[str, int] = field(default_factory=dict)
    """CALLs the CSMS sent that the charge points answered, by action named by
    :func:`fleet_name` (``Reset``, ``CSMS201 Reset``)."""
    versions: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VERSIONS, 0))
    """Charge points per OCPP version: ``{"1.6": n, "2.0.1": m}``, every known version."""

    @property
    def connected(self) -> int:
        return sum(self.states.get(state, 0) for state in CONNECTED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "states": dict(self.states),
            "charging": self.charging,
            "power_w": self.power_w,
            "callerrors": {action: dict(codes) for action, codes in self.callerrors.items()},
            "csms_calls": dict(self.csms_calls),
            "versions": dict(self.versions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FleetStatus:
        callerrors = data.get("callerrors", {})
        return cls(
            states={**dict.fromkeys(STATES, 0), **data.get("states", {})},
            charging=data.get("charging", 0),
            power_w=data.get("power_w", 0),
            callerrors={action: dict(codes) for action, codes in callerrors.items()},
            csms_calls=dict(data.get("csms_calls", {})),
            versions={**dict.fromkeys(VERSIONS, 0), **data.get("versions", {})},
        )

    @classmethod
    def total(cls, parts: Iterable[FleetStatus]) -> FleetStatus:
        """The sum of several processes' snapshots."""
        result = cls()
        for part in parts:
            for state, count in part.states.items():
                result.states[state] = result.states.get(state, 0) + count
            result.charging += part.charging
            result.power_w += part.power_w
            for action, codes in part.callerrors.items():
                mine = result.callerrors.setdefault(action, {})
                for code, count in codes.items():
                    mine[code] = mine.get(code, 0) + count
            for action, count in part.csms_calls.items():
                result.csms_calls[action] = result.csms_calls.get(action, 0) + count
            for version, count in part.versions.items():
                result.versions[version] = result.versions.get(version, 0) + count
        return result


class FleetCounters:
    """CALLERRORs by action and code and CSMS calls by action, of every OCPP version, counted
    from one process's samples (on the gevent side, as they are handed to Locust)."""

    def __init__(self) -> None:
        self.callerrors: collections.Counter[tuple[str, str]] = collections.Counter()
        self.csms_calls: collections.Counter[str] = collections.Counter()

    def count(self, sample: Sample) -> None:
        if sample.request_type in CSMS_TYPES:
            self.csms_calls[fleet_name(sample.request_type, sample.name)] += 1
        elif sample.request_type in CALL_TYPES and sample.error is not None:
            code = callerror_code(sample.error)
            if code is not None:
                self.callerrors[fleet_name(sample.request_type, sample.name), code] += 1

    def reset(self) -> None:
        self.callerrors.clear()
        self.csms_calls.clear()

    def status(self, census: dict[str, int]) -> FleetStatus:
        """A snapshot, with the states and versions of an engine's
        :meth:`~swarm.engine.Engine.census`."""
        callerrors: dict[str, dict[str, int]] = {}
        for (action, code), count in self.callerrors.items():
            callerrors.setdefault(action, {})[code] = count
        versions = dict.fromkeys(VERSIONS, 0)
        for key, count in census.items():
            if key.startswith(VERSION_PREFIX):
                versions[key.removeprefix(VERSION_PREFIX)] = count
        return FleetStatus(
            states={state: census.get(state, 0) for state in STATES},
            charging=census.get("charging", 0),
            power_w=census.get("power_w", 0),
            callerrors=callerrors,
            csms_calls=dict(self.csms_calls),
            versions=versions,
        )
