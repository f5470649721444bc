"""Connectors and the charging sessions on them: one record per connector, its state kept once.

A charge point has connectors ``0..n``: 0 is the charge point as a whole (its availability, its
main meter), ``1..n`` are where EVs plug in. A :class:`Connector` holds everything the charge
point knows of one: its status, a fault, the availability a CSMS asked for while it was busy,
its energy register, its session and its reservation. Each OCPP version words the status its
own way: :class:`Status` values are the finest of them, OCPP 1.6's, and a version with coarser
words maps them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarm.station.ev import EV
    from swarm.station.measurands import KeptReadings


class Status(enum.StrEnum):
    """What a connector is doing."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    """The EV draws nothing: it is full."""
    SUSPENDED_EVSE = "SuspendedEVSE"
    """The charger offers nothing: a charging limit of 0."""
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


BUSY = frozenset(
    {
        Status.PREPARING,
        Status.CHARGING,
        Status.SUSPENDED_EV,
        Status.SUSPENDED_EVSE,
        Status.FINISHING,
        Status.FAULTED,
    }
)
"""Statuses in which a connector's availability cannot change at once."""


@dataclass(slots=True)
class Transaction:
    """A charging session on one connector, from its start to its stop."""

    id: int | str | None
    """The transaction's id: the CSMS's in 1.6 (None while the start waits in the outbox), the
    station's own in 2.0.1."""
    connector: int
    id_tag: str
    power: float
    """Watts the EV may draw at most now: what the connector gives it, under the charging limit
    in force. Without an :attr:`ev`, it draws that, steadily."""
    metered_at: float
    """Loop time up to which the connector's energy register has counted this session."""
    full: bool = False
    """The EV is full and draws nothing (SuspendedEV)."""
    limited: bool = False
    """A charging limit below what the EV accepts holds the session (SuspendedEVSE)."""
    seq_no: int = 0
    """Messages of the transaction made so far (2.0.1's TransactionEvent seqNo)."""
    ev: EV | None = None
    """The EV's battery and charging curve: what it draws under :attr:`power`."""
    started: float | None = None
    """When the EV plugged in, ``time.time()``: Relative charging schedules count from it."""
    readings: KeptReadings | None = None
    """Readings kept for its stop message (1.6 StopTxnSampledData and StopTxnAlignedData,
    2.0.1 TxEndedMeasurands); None while none are asked for."""

    @property
    def drawing(self) -> float:
        """Watts drawn now."""
        if self.full or self.limited:
            return 0.0
        return self.power if self.ev is None else self.ev.power(self.power)

    @property
    def status(self) -> Status:
        """The status its drawing gives: held by a limit, full, or charging."""
        if self.limited:
            return Status.SUSPENDED_EVSE
        return Status.SUSPENDED_EV if self.full else Status.CHARGING


@dataclass(slots=True, eq=False)
class Connector:
    """One connector (or, as connector 0, the charge point as a whole)."""

    id: int
    status: Status = Status.AVAILABLE
    error: str | None = None
    """The error code of a fault, while it lasts."""
    availability: Status | None = None
    """Availability a CSMS asked for while the connector was busy: applied when it is free."""
    energy_wh: float = 0.0
    """The energy register: it only ever grows."""
    transaction: Transaction | None = None
    reservation: tuple[int, str] | None = None
    """``(reservationId, idTag)`` while the connector is reserved."""

    @property
    def free(self) -> bool:
        """Whether a new session may start here."""
        return self.transaction is None and self.status is Status.AVAILABLE

    def release(self) -> Status:
        """The status a connector goes back to after a session or a fault: the availability
        asked for meanwhile, if any, else Available. The request is used up."""
        status, self.availability = self.availability or Status.AVAILABLE, None
        return status
