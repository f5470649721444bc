"""The measurands a charger measures, version-neutrally: what a list of them asks of a reading.

A :class:`~swarm.station.meter.Reading` holds a connector's quantities at one instant; its
``measurands`` (a configured list, such as 1.6's MeterValuesSampledData or 2.0.1's
TxUpdatedMeasurands) say which of them a message carries. :func:`samples` gives each as a
:data:`Sample`, with its phase, unit and location as OCPP names them (1.6 section 7.31 to 7.33;
2.0.1's SampledValueType): the versions word them, 1.6 as strings, 2.0.1 as numbers.

The meter is at the connector (Outlet); the state of charge is the EV's (EV); the temperature
is the charger's body's (Body), warming with the power drawn. A phase-to-neutral voltage of
:data:`~swarm.station.composite.VOLTAGE` is on each phase the connector supplies; the current
is on each phase the EV draws on (on L1 first).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from swarm.station import meter
from swarm.station.composite import VOLTAGE
from swarm.station.meter import Reading

if TYPE_CHECKING:
    from swarm.station.connector import Transaction
    from swarm.station.sessions import Sessions

ENERGY = "Energy.Active.Import.Register"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
VOLTAGE_MEASURAND = "Voltage"
CURRENT_OFFERED = "Current.Offered"
POWER_OFFERED = "Power.Offered"
SOC = "SoC"
TEMPERATURE = "Temperature"

_UNITS = {
    ENERGY: "Wh",
    POWER: "W",
    CURRENT: "A",
    VOLTAGE_MEASURAND: "V",
    CURRENT_OFFERED: "A",
    POWER_OFFERED: "W",
    SOC: "Percent",
    TEMPERATURE: "Celsius",
}
MEASURANDS = tuple(_UNITS)
"""The measurands the charger has."""

_PHASES = {CURRENT: ("L1", "L2", "L3"), VOLTAGE_MEASURAND: ("L1-N", "L2-N", "L3-N")}
"""The phases of the measurands measured per phase: a current on a line, a line's voltage to
neutral."""

_ITEMS: dict[str, tuple[str, str | None]] = {
    **{m: (m, None) for m in MEASURANDS},
    **{f"{m}.{phase}": (m, phase) for m, phases in _PHASES.items() for phase in phases},
    **{
        f"{VOLTAGE_MEASURAND}.{line}": (VOLTAGE_MEASURAND, f"{line}-N") for line in _PHASES[CURRENT]
    },
}
"""What a list of measurands may hold, each as a measurand and the phase it asks for (None:
all): a measurand, or one of its phases (``Current.Import.L1``, ``Voltage.L1-N``; a voltage
"on L1" is L1's to neutral)."""

SUPPORTED = frozenset(_ITEMS)
"""The items a list of measurands may hold."""

_LOCATIONS = {SOC: "EV", TEMPERATURE: "Body"}  # else the connector's meter: Outlet, unwritten

KEPT_READINGS = 48
"""Readings a transaction keeps for its stop message at most (1.6's StopTransaction
transactionData, 2.0.1's TransactionEvent Ended), its end's besides: a charger's memory is
finite (see :class:`KeptReadings`)."""

AMBIENT = 25.0
"""Degrees Celsius of an idle charger's body."""
WARMING = 1 / 2000
"""Degrees Celsius its body warms per watt drawn."""


Sample = tuple[str, str | None, float, str, str | None]
"""One measured value, as a SampledValue carries it: measurand, phase (None: not per phase),
value, unit, and where it was measured: None at the connector's meter, Outlet, which both
versions take for the default of a SampledValue without one (1.6 section 7.31, 2.0.1
SampledValueType). A plain tuple: a reading's samples are made for each message sent."""


def read(station: Sessions, connector: int, measurands: str, context: str) -> Reading:
    """A reading of ``connector`` (0: the main meter) now, to carry ``measurands`` in
    ``context``. The offer is read only when asked for: it is the composite of the profiles."""
    connectors = station.connectors
    offered_w = None
    if "Offered" in measurands:
        wall, most = time.time(), station._connector_watts()
        numbers = range(1, len(connectors)) if connector == 0 else (connector,)
        limits = [station._power_limit(number, wall) for number in numbers]
        offered_w = round(sum(most if x is None else min(most, max(x, 0.0)) for x in limits))
    now = asyncio.get_running_loop().time()
    return meter.read(
        connectors, connector, now, offered_w=offered_w, context=context, measurands=measurands
    )


class KeptReadings(list[Reading]):
    """The readings a transaction keeps for its stop message, in the order they were offered:
    :data:`KEPT_READINGS` at most. When full, every other one after the first is dropped and,
    from then on, one in two of those offered kept (then one in four, and so on): those kept
    are spaced alike and still span the whole transaction."""

    __slots__ = ("_offered", "_stride")

    def __init__(self) -> None:
        super().__init__()
        self._offered = 0
        self._stride = 1

    def offer(self, read: Callable[[], Reading], stamp: str | None = None) -> None:
        """Keep ``read()``, timestamped ``stamp`` (a clock-aligned instant) or when read, if
        its turn comes (``read`` is not called otherwise)."""
        offered = self._offered
        self._offered += 1
        if offered % self._stride:
            return
        if len(self) >= KEPT_READINGS:  # those kept are the multiples of the stride
            del self[1::2]
            self._stride *= 2
            if offered % self._stride:
                return
        reading = read()
        self.append(reading._replace(timestamp=stamp) if stamp else reading)


def keep(transaction: Transaction, read: Callable[[], Reading], stamp: str | None = None) -> None:
    """Offer ``read()`` to ``transaction``'s :class:`KeptReadings` (timestamped ``stamp``, a
    clock-aligned instant, or when read)."""
    if transaction.readings is None:
        transaction.readings = KeptReadings()
    transaction.readings.offer(read, stamp)


def next_boundary(after: float, interval: int) -> float:
    """The first clock-aligned instant after ``after`` (``time.time()``): a multiple of
    ``interval`` seconds from midnight, UTC (1.6 ClockAlignedDataInterval, 2.0.1
    AlignedDataCtrlr.Interval)."""
    midnight = after - after % 86400
    return midnight + ((after - midnight) // interval + 1) * interval


def nearest_boundary(now: float, interval: int) -> float:
    """The clock-aligned instant nearest ``now``: the one a timer that fired a little early,
    or late, was for."""
    midnight = now - now % 86400
    return midnight + round((now - midnight) / interval) * interval


def samples(reading: Reading, supply_phases: int) -> list[Sample]:
    """The samples ``reading`` carries: one of each measurand it lists, per phase for those
    measured per phase (only the phase listed, if one is); none of a quantity it lacks (the
    power, current and state of charge outside a session, the offer when not read)."""
    result: list[Sample] = []
    for measurand, phase, unit, location in _listed(reading.measurands):
        for each, value in _values(reading, measurand, supply_phases):
            if phase is None or each == phase:
                result.append((measurand, each, value, unit, location))
    return result


@functools.lru_cache(maxsize=256)
def _listed(measurands: str) -> tuple[tuple[str, str | None, str, str | None], ...]:
    """A list of measurands' items, each as its measurand, the phase it asks for (None: all),
    unit and location: a list is parsed once, not at each reading."""
    items = (_ITEMS[item] for item in measurands.split(",") if item)
    return tuple(
        (measurand, phase, _UNITS[measurand], _LOCATIONS.get(measurand))
        for measurand, phase in items
    )


def _values(reading: Reading, measurand: str, supply_phases: int) -> list[tuple[str | None, float]]:
    """``measurand``'s values in ``reading``, each with its phase (None: not per phase)."""
    power = reading.power_w or 0
    if measurand == ENERGY:
        return [(None, reading.energy_wh)]
    if measurand in (POWER, CURRENT) and reading.power_w is None:
        return []  # no session: nothing drawn to measure
    if measurand == POWER:
        return [(None, power)]
    if measurand == CURRENT:
        phases = reading.phases or supply_phases
        current = round(power / (VOLTAGE * phases), 1)
        return [(phase, current) for phase in _PHASES[CURRENT][:phases]]
    if measurand == VOLTAGE_MEASURAND:
        return [(phase, round(VOLTAGE)) for phase in _PHASES[VOLTAGE_MEASURAND][:supply_phases]]
    if measurand == TEMPERATURE:
        return [(None, round(AMBIENT + power * WARMING))]
    if measurand == SOC:
        value = reading.soc
    elif reading.offered_w is None:
        value = None
    elif measurand == POWER_OFFERED:
        value = reading.offered_w
    else:  # Current.Offered, on each phase the connector supplies
        value = round(reading.offered_w / (VOLTAGE * supply_phases), 1)
    return [] if value is None else [(None, value)]
