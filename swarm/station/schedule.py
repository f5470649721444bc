"""The schedule of a charge point's deadlines: what it does by itself, and when.

A deadline is keyed by a :class:`Key`, a :class:`Timer` kind and the connector it is for (0 for
the charge point as a whole), so that a connector's timers are found by value, not by parsing a
name. The runner (:mod:`swarm.station.runner`) keeps ``{Key: loop time}`` and, when one is due,
hands it to the version's action for its kind.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import NamedTuple


class Timer(enum.IntEnum):
    """What a deadline is for. An int, so that a key hashes in C: keys are hashed on every beat."""

    HEARTBEAT = enum.auto()
    AUTHORIZE = enum.auto()
    ARRIVAL = enum.auto()
    """An EV may arrive (see :mod:`swarm.station.arrivals`)."""
    METER = enum.auto()
    """A session's next meter values."""
    SAMPLE = enum.auto()
    """A transaction's next reading kept for its end (2.0.1's SampledDataCtrlr.TxEndedInterval)."""
    POWER = enum.auto()
    """The power a session draws steps: its EV reaches its target, or a charging limit changes
    (between steps it follows the EV's curve, which readings integrate in closed form)."""
    FAULT = enum.auto()
    """The connector faults mid-session."""
    RECOVER = enum.auto()
    """A faulted connector is back."""
    END = enum.auto()
    """The driver leaves: the session stops."""
    FIRMWARE = enum.auto()
    """The next step of a firmware update."""
    DIAGNOSTICS = enum.auto()
    """The next step of a diagnostics or log upload."""
    RESERVATION = enum.auto()
    """A reservation expires."""
    ALIGNED = enum.auto()
    """Clock-aligned meter values are due (2.0.1's AlignedDataCtrlr.Interval)."""
    RETRY = enum.auto()
    """The outbox's first message, which the CSMS failed to process, may be sent again."""
    REBOOTED = enum.auto()
    """A connector that was reset on its own (2.0.1's EVSE reset) is back."""
    RENEW = enum.auto()
    """The station's certificate nears expiry (see :mod:`swarm.station.pki`)."""


class Key(NamedTuple):
    """A deadline's key: its kind and its connector."""

    timer: Timer
    connector: int = 0


SESSION_ENDS = (Timer.METER, Timer.SAMPLE, Timer.END, Timer.POWER, Timer.FAULT)
"""A session's own timers: cleared when it ends."""

SESSION_TIMERS = frozenset({*SESSION_ENDS, Timer.ARRIVAL, Timer.RECOVER, Timer.REBOOTED})
"""Timers of charging sessions, their arrivals and their connectors: they go on while offline."""

HEARTBEAT = Key(Timer.HEARTBEAT)
AUTHORIZE = Key(Timer.AUTHORIZE)
ARRIVAL = Key(Timer.ARRIVAL)
FIRMWARE = Key(Timer.FIRMWARE)
DIAGNOSTICS = Key(Timer.DIAGNOSTICS)
RETRY = Key(Timer.RETRY)
ALIGNED = Key(Timer.ALIGNED)


def seconds_until(timestamp: str | None) -> float:
    """Seconds from now to an OCPP dateTime (UTC if it names no offset); 0 if it is absent, has
    passed or does not parse."""
    if not timestamp:
        return 0.0
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def next_beat(previous: float, interval: float, now: float) -> float:
    """The first beat after ``now`` on the schedule ``previous + k * interval``.

    A fixed schedule, not "interval after the last answer", so slow answers do not thin out
    the load; beats missed while a call was in flight are skipped, not sent in a burst.
    """
    return previous + interval * (1 + max(0.0, now - previous) // interval)
