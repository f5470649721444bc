"""The EV of a charging session: its battery, its charging curve, and the power it draws.

Sans-I/O: a model of numbers, with no clock of its own. An EV arrives with a battery of
``capacity_wh``, a state of charge ``soc`` and a ``target`` (shares of the capacity, 0 to 1). Its
charging curve takes ``rated_w``, the EV's maximum AC power, up to the ``knee``; above it the
power falls linearly with the state of charge, to zero at a full battery (a lithium battery's
constant-voltage phase), and the EV stops at its target. What it draws is the lower of that
curve and a cap: what the connector gives it (its own and the charger's maximum current on the
phases they share) and the charging limit in force.

Under a cap ``c`` the power is flat (``p = min(rated_w, c)``) until the curve falls to ``p``, at
``soc_c = 1 - (1 - knee) * p / rated_w``, and tapers past it. Above the knee the power is
proportional to ``1 - soc``, so there the state of charge nears 100 % exponentially in time:
``1 - soc(t) = (1 - soc_0) * exp(-t / tau)`` with ``tau = capacity * (1 - knee) / rated_w``.
Both stretches have closed forms, so the energy drawn over any interval (:meth:`EV.charge`),
and the time to reach a state of charge (:meth:`EV.seconds_to`), are exact: the energy is the
integral of the power drawn, the capacity times the rise in state of charge.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from swarm.station.composite import VOLTAGE
from swarm.station.config import ChargePointConfig

MIN_CURRENT = 6.0
"""Amperes per phase an EV charges at the least (IEC 61851-1): a lower limit suspends it."""


@dataclass(slots=True)
class EV:
    """An EV plugged in at a connector, for one session."""

    capacity_wh: float
    soc: float
    """State of charge, 0 to 1, as of its session's ``metered_at``."""
    target: float
    """State of charge at which it stops drawing (SuspendedEV)."""
    rated_w: float
    """Its maximum AC power: the curve's level up to the knee."""
    knee: float
    """State of charge from which the curve tapers."""
    max_w: float
    """Watts it may draw at this connector: its own and the charger's maximum current, on the
    phases they share."""
    min_w: float
    """Watts below which it does not charge: :data:`MIN_CURRENT` on those phases."""
    phases: int = 3
    """Phases it draws on at this connector: its own the connector has."""

    @property
    def full(self) -> bool:
        return self.soc >= self.target

    def curve(self, soc: float) -> float:
        """Watts the EV takes at ``soc`` with nothing to hold it back."""
        if soc <= self.knee:
            return self.rated_w
        return self.rated_w * (1 - soc) / (1 - self.knee)

    def power(self, cap: float) -> float:
        """Watts drawn now under ``cap``: none once at the target."""
        return 0.0 if self.full else min(self.curve(self.soc), cap)

    def seconds_to(self, soc: float, cap: float) -> float:
        """Seconds until it reaches ``soc`` drawing under ``cap``; infinite if never."""
        now = self.soc
        if soc <= now:
            return 0.0
        flat = min(self.rated_w, cap)
        if flat <= 0:
            return math.inf
        bend = 1 - (1 - self.knee) * flat / self.rated_w
        hours = 0.0
        if now < bend:
            reached = min(soc, bend)
            hours += (reached - now) * self.capacity_wh / flat
            now = reached
        if soc > now:  # tapering
            if soc >= 1:
                return math.inf
            hours += self._tau() * math.log((1 - now) / (1 - soc))
        return hours * 3600

    def charge(self, cap: float, seconds: float) -> float:
        """Draw under ``cap`` for ``seconds``, up to the target; return the watt-hours drawn."""
        start = soc = self.soc
        flat = min(self.rated_w, cap)
        if flat <= 0 or seconds <= 0 or soc >= self.target:
            return 0.0
        hours = seconds / 3600
        bend = 1 - (1 - self.knee) * flat / self.rated_w
        if soc < bend:
            reached = min(self.target, bend)
            needed = (reached - soc) * self.capacity_wh / flat
            if hours <= needed:
                soc += hours * flat / self.capacity_wh
                hours = 0.0
            else:
                soc, hours = reached, hours - needed
        if hours > 0 and soc < self.target:  # tapering: soc >= bend >= knee, knee < 1
            soc = min(self.target, 1 - (1 - soc) * math.exp(-hours / self._tau()))
        self.soc = soc
        return (soc - start) * self.capacity_wh

    def _tau(self) -> float:
        """Hours in which the taper brings ``1 - soc`` down by a factor e."""
        return self.capacity_wh * (1 - self.knee) / self.rated_w


def arriving(config: ChargePointConfig, rng: random.Random) -> EV:
    """An EV drawn from the fleet's distributions: uniform capacity, arrival and target state
    of charge, a maximum AC power of half to all of ``charging_power``, on one phase for a
    ``single_phase_evs`` share of them, else three."""
    rated = config.charging_power * rng.uniform(0.5, 1.0)
    own_phases = 1 if rng.random() < config.single_phase_evs else 3
    phases = min(own_phases, config.connector_phases)
    current = min(rated / (VOLTAGE * own_phases), config.connector_current)
    max_w = VOLTAGE * phases * current
    return EV(
        capacity_wh=1000 * rng.uniform(*config.battery_kwh),
        soc=rng.uniform(*config.arrival_soc) / 100,
        target=rng.uniform(*config.target_soc) / 100,
        rated_w=rated,
        knee=config.taper_soc / 100,
        max_w=max_w,
        min_w=min(max_w, VOLTAGE * phases * MIN_CURRENT),
        phases=phases,
    )
