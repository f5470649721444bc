"""Charging sessions on the schedule: when EVs arrive, what they draw, when they are full or held
by a charging limit, when their drivers leave, whether the connector faults meanwhile.

What a session says (its start, meter values, charging state and stop) is the version's; when
it happens is the station's, the same in every version.

Each session's EV (:mod:`swarm.station.ev`) draws the least of its charging curve, its own and
the charger's maximum, and the charging limit in force (the version's ``_power_limit``). What
it draws steps only when its EV reaches its target or the limit changes: the station then brings
the meter up to date, sets the new power and status, and sets a timer for the next step
(:data:`~swarm.station.schedule.Timer.POWER`); in between, readings integrate the curve exactly.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import arrivals, composite, ev, meter
from swarm.station.composite import VOLTAGE
from swarm.station.connector import Connector, Status, Transaction
from swarm.station.schedule import SESSION_ENDS, Key, Timer

CHARGING = frozenset({Status.CHARGING, Status.SUSPENDED_EV, Status.SUSPENDED_EVSE})
"""Statuses of a session that has begun: what it draws moves it between them."""

CLOSE_ENOUGH = 0.01
"""Seconds of charging left under which an EV is at its target, the energy of those seconds
counted at once: a timer may fire a little before its time (a loop's clock is coarser than the
deadlines), and must not fire again and again."""


COMPOSITE_DURATION = 7 * 86400
"""Seconds a composite schedule covers at most, whatever duration a CSMS asks."""


class Sessions:
    """The charging sessions of a :class:`~swarm.station.runner.Station`, and the limit they
    follow: the composite of the charging profiles the version keeps. The version gives those
    profiles and says what a session's EV does (``_installed_profiles``, ``_report_charging``:
    see :class:`~swarm.station.vocabulary.Vocabulary`)."""

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

    def _plug_in(
        self, transaction_id: int | str | None, connector: int, id_tag: str
    ) -> Transaction:
        """The transaction of an EV that plugs in at ``connector`` now, drawn from the fleet's
        distributions; it draws from now, unlimited until its session begins."""
        car = ev.arriving(self.config, self._rng)
        loop = asyncio.get_running_loop()
        return Transaction(
            transaction_id, connector, id_tag, car.max_w, loop.time(), ev=car, started=time.time()
        )

    def _connector_watts(self) -> float:
        """Watts a connector gives at most: its current on its phases."""
        return self.config.connector_current * VOLTAGE * self.config.connector_phases

    def _begin_session(self, transaction: Transaction) -> None:
        """Schedule the meter values of a session that has begun, its end, and what may
        happen before."""
        now = asyncio.get_running_loop().time()
        connector = transaction.connector
        duration = self.config.session_duration * self._rng.uniform(0.5, 1.5)
        self._timers[Key(Timer.METER, connector)] = now + self._meter_interval()
        self._timers[Key(Timer.END, connector)] = now + duration
        # What it draws under the limit in force, and when that steps: at once, in the loop.
        self._timers[Key(Timer.POWER, connector)] = now
        if self._rng.random() < self.config.faults:
            self._timers[Key(Timer.FAULT, connector)] = now + duration * self._rng.uniform(0.1, 0.9)
        self._sharing_changed()

    async def _on_power(self, session: OcppSession | None, key: Key) -> None:
        """What a session draws steps (its EV is full, a limit changes): report its status."""
        record = self.connectors[key.connector]
        transaction = record.transaction
        if transaction is not None:
            status = self._reevaluate(record, transaction)
            if status is not None:
                await self._report_charging(session, transaction, status)

    def _limit_changed(self, connector: int) -> None:
        """The charging limit of ``connector`` (0: of the whole station) changed, as a profile
        was set or cleared: its sessions draw what it allows from now on, and the statuses that
        change are reported after the CSMS's call is answered."""
        records = self.connectors[1:] if connector == 0 else (self.connectors[connector],)
        for record in records:
            transaction = record.transaction
            if transaction is None:
                continue
            status = self._reevaluate(record, transaction)
            if status is not None:
                self._soon(
                    lambda session, t=transaction, s=status: self._report_if_current(session, t, s)
                )

    async def _report_if_current(
        self, session: OcppSession, transaction: Transaction, status: Status
    ) -> None:
        if self.connectors[transaction.connector].transaction is transaction:
            await self._report_charging(session, transaction, status)

    def _reevaluate(self, record: Connector, transaction: Transaction) -> Status | None:
        """Bring the meter up to date, then set what the session draws from now on under the
        limit in force, its status, and the timer of its next step. Returns the new status if
        it changed (a session not begun yet keeps Preparing)."""
        car = transaction.ev
        if car is None:  # a steady draw, set by hand
            return None
        now, wall = asyncio.get_running_loop().time(), time.time()
        meter.bring_up_to_date(record, transaction, now)
        limit = self._power_limit(record.id, wall)
        transaction.limited = limit is not None and limit < car.min_w
        transaction.power = car.max_w if limit is None else min(car.max_w, max(limit, 0.0))
        steps = []
        if not (transaction.limited or transaction.full):
            left = car.seconds_to(car.target, transaction.power)
            if left <= CLOSE_ENOUGH:  # the last instant's energy at once: the register is exact
                record.energy_wh += car.charge(transaction.power, left)
                transaction.full = True
            elif left < math.inf:
                steps.append(now + left)
        change = self._next_limit_change(record.id, wall)
        if change is not None:
            steps.append(now + max(0.0, change - wall))
        key = Key(Timer.POWER, record.id)
        if steps:
            self._timers[key] = min(steps)
        else:
            self._timers.pop(key, None)
        status = transaction.status
        if record.status is status or record.status not in CHARGING:
            return None
        record.status = status
        return status

    def _end_locally(self, connector: int) -> None:
        """The session on ``connector`` is over here: its timers go, the connector is free."""
        record = self.connectors[connector]
        record.transaction = None
        for timer in SESSION_ENDS:
            self._timers.pop(Key(timer, connector), None)
        record.status = Status.AVAILABLE
        self._sharing_changed()

    def _sharing_changed(self) -> None:
        """A session began or ended: on a station of several connectors, the others' share of
        the station's cap changed."""
        if len(self.connectors) > 2:
            self._limit_changed(0)

    # The limit in force: the composite of the profiles the version keeps.

    def _power_limit(self, connector: int, now: float) -> float | None:
        """Watts the profiles allow on ``connector`` at ``now`` (``time.time()``), 0 where that
        is below the EV's minChargingRate; None: no profile limits it. The station's own cap
        is the whole station's (1.6 3.13.1, 2.0.1 K01): its sessions share it alike."""
        installed = self._installed_profiles()
        limit = composite.limit_at(installed, connector, now, self._charging_session(connector))
        if limit is None:
            return None
        offered = limit.offered
        if connector and len(self.connectors) > 2:
            station = composite.limit_at(installed, 0, now)  # the cap alone
            if station is not None:
                sharing = sum(c.transaction is not None for c in self.connectors[1:]) or 1
                offered = min(offered, station.offered / sharing)
        return offered

    def _next_limit_change(self, connector: int, now: float) -> float | None:
        """When, after ``now`` (``time.time()``), the limit on ``connector`` next changes; None:
        it does not."""
        return composite.next_change(
            self._installed_profiles(), connector, now, self._charging_session(connector)
        )

    def _composite_schedule(
        self, connector: int, duration: int, unit: str | None
    ) -> tuple[float, int, str, list[dict[str, Any]]]:
        """GetCompositeSchedule's answer for ``connector`` (0: the grid connection, capped by
        every connector's maximum): its start (now, in whole seconds, as the answer writes it),
        duration (1 s to a week: a longer one would hold the loop and make a huge frame),
        unit and periods, in ``unit`` (None: the composite's)."""
        start = float(int(time.time()))
        duration = max(1, min(duration, COMPOSITE_DURATION))
        connectors = len(self.connectors) - 1 if connector == 0 else 1
        unit, periods = composite.composite(
            self._installed_profiles(),
            connector,
            start,
            duration,
            unit,
            self._charging_session(connector),
            maximum=self._connector_watts() * connectors,
            phases=self.config.connector_phases,
        )
        return start, duration, unit, periods

    def _charging_session(self, connector: int) -> composite.Session | None:
        """The transaction on ``connector`` as the composite sees it."""
        transaction = self.connectors[connector].transaction if connector else None
        if transaction is None:
            return None
        return composite.Session(transaction.id, transaction.started)
