"""The energy meter: each connector's register counts the power its session draws, over time.

Between a session's events its power follows its EV's charging curve (:mod:`swarm.station.ev`),
whose integral has a closed form; so the register is brought up to date exactly at each event
and each reading, never sampled in between, and the power read is the power drawn then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import NamedTuple

from swarm.station.connector import Connector, Transaction

DEFAULT_MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import"


class Reading(NamedTuple):
    """What a meter shows at one moment: a connector's energy register and the power drawn in
    its session (None outside one), when read; and which of its measurands a message carries,
    in what context (see :mod:`swarm.station.measurands`). A version builds its message from
    it, when sent: a reading kept in the outbox takes a fraction of the memory of a payload."""

    connector: int
    energy_wh: int
    power_w: int | None
    timestamp: str
    phases: int = 0
    """Phases the EV draws on; 0 without one."""
    offered_w: int | None = None
    """Watts the connector offers under the limit in force; None when not read."""
    soc: int | None = None
    """The EV's state of charge, in percent; None without one."""
    context: str = "Sample.Periodic"
    """The ReadingContext, as 1.6 and 2.0.1 both spell it."""
    measurands: str = DEFAULT_MEASURANDS
    """The measurands the message carries, comma-separated: a configured list."""


def bring_up_to_date(connector: Connector, transaction: Transaction, now: float) -> None:
    """Add the energy ``transaction`` drew since it was last metered to the register."""
    seconds = now - transaction.metered_at
    if seconds <= 0:
        return
    if not (transaction.full or transaction.limited):
        ev = transaction.ev
        if ev is None:
            connector.energy_wh += transaction.power * seconds / 3600
        else:
            connector.energy_wh += ev.charge(transaction.power, seconds)
    transaction.metered_at = now


def read(
    connectors: Sequence[Connector],
    number: int,
    now: float,
    *,
    offered_w: int | None = None,
    context: str = "Sample.Periodic",
    measurands: str = DEFAULT_MEASURANDS,
) -> Reading:
    """A reading of connector ``number``; connector 0 is the main meter, the sum of all. Made
    whole at once: a reading replaced would leave a tuple behind on CPython's free list."""
    counted = connectors[1:] if number == 0 else (connectors[number],)
    power: float | None = None
    energy, phases, soc = 0.0, 0, None
    for connector in counted:
        transaction = connector.transaction
        if transaction is not None:
            bring_up_to_date(connector, transaction, now)
            power = (power or 0.0) + transaction.drawing
            if transaction.ev is not None:
                phases = max(phases, transaction.ev.phases)
                soc = round(100 * transaction.ev.soc) if number else None  # no EV's, the sum
        energy += connector.energy_wh
    watts = None if power is None else round(power)
    return Reading(
        number, int(energy), watts, timestamp(), phases, offered_w, soc, context, measurands
    )


_written: tuple[int | None, str] = (None, "")
"""The last second written, and how: formatting costs more than the rest of a reading, and a
fleet writes the same second thousands of times."""


def timestamp(at: float | None = None) -> str:
    """Now (or the ``time.time()`` ``at``), as OCPP writes a time (UTC, whole seconds)."""
    global _written
    second = math.floor(time.time() if at is None else at)
    written = _written  # one read: another thread may write it meanwhile
    if written[0] != second:
        written = _written = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return written[1]
