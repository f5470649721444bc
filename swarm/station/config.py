"""How every charge point of a fleet behaves: one frozen :class:`ChargePointConfig` per fleet."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from swarm.station.versions import DEFAULT_VERSIONS, check_versions
from swarm.version import __version__


@dataclass(frozen=True, slots=True)
class ChargePointConfig:
    """How every charge point of a fleet behaves. One instance is shared by the whole fleet."""

    vendor: str = "ocpp-swarm"
    model: str = "VirtualCharger"
    firmware_version: str = __version__
    heartbeat_interval: float = 0.0
    """Seconds between Heartbeats; 0 uses the interval of the CSMS's BootNotification answer."""
    authorize_interval: float = 60.0
    """Mean seconds between Authorizes (exponentially distributed); 0 sends none."""
    id_tags: tuple[str, ...] = tuple(f"SWARM-TAG-{n:04d}" for n in range(1, 11))
    call_timeout: float = 30.0
    connect_timeout: float = 30.0
    ping_interval: float = 60.0
    """Seconds between WebSocket pings (OCPP's WebSocketPingInterval, which a CSMS may change);
    0 sends none. A connection whose pong does not come within ``call_timeout`` is dead."""
    dead_after: int = 3
    """CallTimeouts in a row after which a connection is dead; 0: no number of them is."""
    validate: bool = False
    """Check every CALLRESULT against the response schema of its action: an answer
    that breaks it is a failed round trip (``invalid answer: ...``). Off, only the answers a
    charge point acts on are checked: BootNotification, and those of its charging sessions."""
    fallback_interval: float = 60.0
    """Seconds to use where the CSMS's boot answer gives no interval: an interval of 0 (OCPP
    leaves the choice to the charge point), an unusable one, or no valid answer at all."""
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    connectors: int = 1
    """Connectors per charge point (ids 1..n; 0 is the charge point itself)."""
    session_interval: float = 0.0
    """Mean seconds between charging sessions arriving at a charge point (exponential); 0: none
    but those a CSMS starts remotely."""
    session_duration: float = 1800.0
    """Mean length of a charging session in seconds (each uniform in 0.5x to 1.5x of it)."""
    charging_power: float = 11000.0
    """Watts of an EV's maximum AC power at most: each EV's is half to all of it."""
    battery_kwh: tuple[float, float] = (40.0, 100.0)
    """Lowest and highest capacity of the EVs' batteries (kWh), uniform between."""
    arrival_soc: tuple[float, float] = (10.0, 60.0)
    """Lowest and highest state of charge (%) the EVs arrive with, uniform between."""
    target_soc: tuple[float, float] = (80.0, 100.0)
    """Lowest and highest state of charge (%) at which the EVs stop drawing, uniform between."""
    taper_soc: float = 80.0
    """State of charge (%) from which an EV's power tapers, to zero at 100 %; 100: never."""
    single_phase_evs: float = 0.2
    """Share (0 to 1) of the EVs that charge on one phase; the others take three."""
    connector_current: float = 32.0
    """Amperes per phase each connector gives at most (at 230 V per phase)."""
    connector_phases: int = 3
    """Phases each connector has: 1 or 3."""
    meter_interval: float = 0.0
    """Seconds between MeterValues in a session; 0 uses MeterValueSampleInterval (60 s)."""
    update_step: float = 3.0
    """Seconds each step of a firmware update (download, install) or diagnostics upload takes."""
    update_failures: float = 0.0
    """Share (0 to 1) of firmware updates and diagnostics uploads that fail."""
    faults: float = 0.0
    """Share (0 to 1) of charging sessions in which the connector faults (GroundFailure)."""
    day_length: float = 0.0
    """Seconds of a compressed day: session arrivals follow
    :data:`~swarm.station.arrivals.DAY_PROFILE` around its
    clock, at ``session_interval`` on average; 0 keeps their rate flat."""
    day_start: float = 0.0
    """Wall-clock time (``time.time()``) at which the compressed day is at ``day_hour``."""
    day_hour: float = 0.0
    """Hour of the compressed day at ``day_start`` (0 to 24)."""
    versions: tuple[tuple[str, int], ...] = DEFAULT_VERSIONS
    """The fleet's OCPP versions by weight, ``(("1.6", 7), ("2.0.1", 3))``: each charge point
    takes one by its id (:func:`~swarm.station.versions.version_of`)."""
    connect_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Extra keyword arguments for :func:`websockets.asyncio.client.connect`."""
    security_profile: int = 0
    """The OCPP security profile that ``connect_options`` make (0 to 3: none, a password, TLS
    and a password, TLS with a client certificate), where each station starts; a CSMS may raise
    a 1.6 charge point's (:mod:`swarm.station.credentials`)."""

    def __post_init__(self) -> None:
        for name in ("vendor", "model"):
            value = getattr(self, name)
            if not 0 < len(value) <= 20:
                raise ValueError(
                    f"{name} must be 1 to 20 characters (OCPP CiString20), got {value!r}"
                )
        if len(self.firmware_version) > 50:
            raise ValueError("firmware_version must be at most 50 characters (OCPP CiString50)")
        for name in (
            "heartbeat_interval",
            "authorize_interval",
            "ping_interval",
            "session_interval",
            "meter_interval",
            "day_length",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more seconds, got {getattr(self, name)}")
        for name in (
            "call_timeout",
            "connect_timeout",
            "fallback_interval",
            "reconnect_min",
            "session_duration",
            "charging_power",
        ):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number above 0, got {value}")
        self._check_evs()
        if not 0 <= self.faults <= 1:
            raise ValueError(f"faults must be a share from 0 to 1, got {self.faults}")
        if not 0 <= self.update_failures <= 1:
            raise ValueError(
                f"update_failures must be a share from 0 to 1, got {self.update_failures}"
            )
        if not 0 <= self.update_step < math.inf:
            raise ValueError(f"update_step must be 0 or more seconds, got {self.update_step}")
        if not 0 <= self.day_hour < 24:
            raise ValueError(f"day_hour must be from 0 to 24, got {self.day_hour}")
        if self.dead_after < 0:
            raise ValueError(f"dead_after must be 0 or more CallTimeouts, got {self.dead_after}")
        if not 1 <= self.connectors <= 99:
            raise ValueError(f"connectors must be 1 to 99, got {self.connectors}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if (self.authorize_interval or self.session_interval) and not self.id_tags:
            raise ValueError("id_tags must name at least one idTag to authorize with")
        check_versions(self.versions)
        for tag in self.id_tags:
            if not 0 < len(tag) <= 20:
                raise ValueError(
                    f"id_tags: an idTag is 1 to 20 characters (OCPP IdToken), got {tag!r}"
                )

    def _check_evs(self) -> None:
        """The EVs' distributions and the connectors' maxima are usable."""
        low, high = self.battery_kwh
        if not 0 < low <= high < math.inf:
            raise ValueError(f"battery_kwh must be 0 < lowest <= highest kWh, got {low}-{high}")
        for name in ("arrival_soc", "target_soc"):
            low, high = getattr(self, name)
            if not 0 <= low <= high <= 100:
                raise ValueError(
                    f"{name} must be 0 <= lowest <= highest <= 100 %, got {low}-{high}"
                )
        if self.arrival_soc[1] >= 100:
            raise ValueError("arrival_soc must be below 100 %: a full EV has nothing to charge")
        if self.target_soc[0] <= 0:
            raise ValueError("target_soc must be above 0 %")
        if not 0 <= self.taper_soc <= 100:
            raise ValueError(f"taper_soc must be from 0 to 100 %, got {self.taper_soc}")
        if not 0 <= self.single_phase_evs <= 1:
            raise ValueError(
                f"single_phase_evs must be a share from 0 to 1, got {self.single_phase_evs}"
            )
        if not 6 <= self.connector_current < math.inf:
            raise ValueError(
                "connector_current must be 6 A (the least an EV charges at) or more,"
                f" got {self.connector_current}"
            )
        if self.connector_phases not in (1, 3):
            raise ValueError(f"connector_phases must be 1 or 3, got {self.connector_phases}")
