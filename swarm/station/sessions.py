"""Charging sessions on the schedule: when EVs arrive, the power they draw, when they are full,
when their drivers leave, whether the connector faults meanwhile.

What a session says (its start, meter values and stop) is the version's; when it happens is
the station's, the same in every version.
"""

from __future__ import annotations

import asyncio

from swarm.protocol.rpc import OcppSession
from swarm.station import arrivals
from swarm.station.connector import Status, Transaction
from swarm.station.schedule import SESSION_ENDS, Key, Timer


class Sessions:
    """The charging sessions of a :class:`~swarm.station.runner.Station`."""

    __slots__ = ()

    @property
    def transactions(self) -> dict[int, Transaction]:
        """The charging sessions in progress, by connector."""
        return {c.id: c.transaction for c in self.connectors if c.transaction is not None}

    async def _on_arrival(self, session: OcppSession | None, key: Key) -> None:
        """Maybe an EV arrives, at a free connector; the next candidate is scheduled."""
        config = self.config
        free = [c.id for c in self.connectors[1:] if c.free]
        if free and arrivals.arrives(config, self._rng):
            await self._charge(session, self._rng.choice(free), self._rng.choice(config.id_tags))
        self._timers[key] = asyncio.get_running_loop().time() + arrivals.until_arrival(
            config, self._rng
        )

    def _begin_session(self, transaction: Transaction) -> None:
        """Schedule the meter values of a session that has begun, its end, and what may
        happen before."""
        now = asyncio.get_running_loop().time()
        connector = transaction.connector
        duration = self.config.session_duration * self._rng.uniform(0.5, 1.5)
        self._timers[Key(Timer.METER, connector)] = now + self._meter_interval()
        self._timers[Key(Timer.END, connector)] = now + duration
        # Some EVs are full before they leave: they stop drawing power (SuspendedEV).
        full = duration * self._rng.uniform(0.6, 1.2)
        if full < duration:
            self._timers[Key(Timer.FULL, connector)] = now + full
        if self._rng.random() < self.config.faults:
            self._timers[Key(Timer.FAULT, connector)] = now + duration * self._rng.uniform(0.1, 0.9)

    def _ev_power(self) -> float:
        """Watts an arriving EV draws: 50 to 100 % of the charging power."""
        return self.config.charging_power * self._rng.uniform(0.5, 1.0)

    def _end_locally(self, connector: int) -> None:
        """The session on ``connector`` is over here: its timers go, the connector is free."""
        record = self.connectors[connector]
        record.transaction = None
        for timer in SESSION_ENDS:
            self._timers.pop(Key(timer, connector), None)
        record.status = Status.AVAILABLE
