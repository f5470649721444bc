"""The outbox: transaction messages that wait for a connection, or behind older ones.

Every transaction message reaches the CSMS, all and in order (OCPP 1.6 3.7; 2.0.1 E04): while
offline, or while older ones still wait, a message goes here, and the outbox goes first once a
boot is accepted. A message stays first until the CSMS has answered it: a lost connection sends
it again after the next boot. Only a CSMS that fails to process it (a CALLERROR, no answer in
time) as often as the version's attempts allow drops it (1.6 3.7.1; 2.0.1 E13), and each
failure but the last holds the outbox for the retry interval times the failures so far. Past
:data:`LIMIT`, periodic meter readings are dropped, never a start or a stop: a charger's memory
is finite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarm.station.connector import Transaction
from swarm.station.meter import Reading

LIMIT = 1000
"""Messages a charge point holds; past it, periodic readings are dropped."""


@dataclass(slots=True)
class Queued:
    """A transaction message: its action, and its payload or, for periodic meter values, the
    reading it is built from when sent."""

    action: str
    payload: dict[str, Any] | Reading
    transaction: Transaction
    failures: int = 0
    """How often the CSMS failed to process it so far."""


class Outbox(list[Queued]):
    """The queue, oldest first: a plain list (an empty deque costs ten times the memory)."""

    __slots__ = ()

    def add(self, message: Queued) -> None:
        """Queue ``message``, unless it is a periodic reading and the outbox is full."""
        if not isinstance(message.payload, Reading) or len(self) < LIMIT:
            self.append(message)

    def discard(self, message: Queued) -> None:
        """Remove ``message`` (this one, not an equal one) if it is queued."""
        for index, queued in enumerate(self):
            if queued is message:
                del self[index]
                return
