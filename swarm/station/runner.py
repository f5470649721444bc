"""The station's life on one WebSocket after another, whatever its OCPP version, in plain asyncio.

A :class:`Station` connects, boots and works its schedule until it is stopped:

- boot (the same in shape in every version): Accepted, heartbeat every ``interval`` seconds (or
  the configured override); Pending, send no CALL of its own, answer the CSMS's calls, boot
  again after ``interval``; Rejected, send nothing and answer nothing until ``interval`` has
  passed, then boot again; no valid answer (a CALLERROR, a timeout, an answer that breaks the
  schema), a failed boot, reported, and retried after the fallback interval;
- once booted, one loop and one CALL at a time: the outbox first, then the jobs that CSMS calls
  set off, then what a scenario asked for, then the deadlines as they fall due;
- a lost connection is reported and followed by a reconnect after an exponential backoff with
  full jitter, and a new boot; or, in a version whose stations come back without one (2.0.1,
  B04), the statuses that changed meanwhile. Charging sessions go on offline: their timers
  fire with no session, and what they would send waits in the outbox.

What is said on the wire is the version's (:mod:`swarm.station.vocabulary`): a subclass such
as :class:`swarm.ocpp16.charge_point.ChargePoint` gives its dialect, its boot request, its
statuses, its transaction messages, the actions of its timers and the handlers of the CSMS's
calls. The station knows nothing of Locust.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from websockets.exceptions import ConnectionClosed

from swarm.protocol.rpc import (
    CallRejected,
    CallTimeout,
    InvalidAnswer,
    OcppSession,
    describe_close,
)
from swarm.protocol.samples import OUTBOX, WEBSOCKET, Sample, SampleSink
from swarm.protocol.trace import FrameTrace
from swarm.station import arrivals, connecting, schedule
from swarm.station.config import ChargePointConfig
from swarm.station.connecting import Connecting
from swarm.station.connector import Connector, Status
from swarm.station.credentials import Credentials
from swarm.station.firmware import Update
from swarm.station.outbox import Outbox, Queued
from swarm.station.schedule import HEARTBEAT, RETRY, SESSION_TIMERS, Key, Timer
from swarm.station.sessions import Sessions
from swarm.station.state import State
from swarm.station.vocabulary import Vocabulary

if TYPE_CHECKING:  # their import loads cryptography: only the versions' handlers need it
    from swarm.station.certificates import Store
    from swarm.station.identity import Identity

logger = logging.getLogger(__name__)

T = TypeVar("T")

Job = Callable[[OcppSession], Awaitable[None]]
"""Something a CSMS call set off, run by the station's loop after the call's answer."""

_BOOT_STATES = {"Pending": State.PENDING, "Rejected": State.REJECTED}


class Station(Sessions, Connecting, Credentials, Vocabulary):
    """One virtual charging station. :meth:`run` is its whole life; cancel the task to stop it."""

    # A fleet holds 15,000 of them: slots take a tenth of the memory of an instance dict.
    __slots__ = (
        "_boot_asked",
        "_diagnostics",
        "_dropping",
        "_firmware",
        "_jobs",
        "_lost_at",
        "_reboot",
        "_requests",
        "_rng",
        "_session",
        "_timers",
        "certificates",
        "config",
        "connectors",
        "firmware_version",
        "heartbeat_interval",
        "id",
        "identity",
        "outbox",
        "sink",
        "state",
        "trace",
        "url",
    )

    def __init__(
        self,
        charge_point_id: str,
        url: str,
        config: ChargePointConfig,
        sink: SampleSink,
        *,
        rng: random.Random | None = None,
        trace: FrameTrace | None = None,
    ) -> None:
        if not 0 < len(charge_point_id) <= 25:
            raise ValueError(
                f"a charge point id must be 1 to 25 characters, got {charge_point_id!r}"
            )
        self.id = charge_point_id
        self.url = url
        self.config = config
        self.trace = trace
        """Records the frames of its connections, and is triggered by its failed samples."""
        self.sink = sink if trace is None else trace.watching(sink)
        self.state = State.CONNECTING
        self.heartbeat_interval: float | None = None
        """The interval in force once booted."""
        self.connectors = [Connector(number) for number in range(config.connectors + 1)]
        """Connector 0 (the station as a whole) and connectors 1..n."""
        self.outbox = Outbox()
        """Transaction messages not sent yet: offline, or while older ones still wait."""
        self.certificates: Store = ()
        """The certificates the CSMS installed (:mod:`swarm.station.certificates`): they
        outlive connections and reboots."""
        self.identity: Identity | None = None
        """Its own key and certificate, once the CSMS asked for them (:mod:`.identity`)."""
        self.firmware_version = config.firmware_version
        self._rng = rng or random
        self._session: OcppSession | None = None
        self._jobs: list[Job] = []
        self._requests: collections.deque[tuple[str, dict[str, Any]]] | None = None
        """CALLs a scenario asked for: sent once accepted, kept across reconnects (the last
        100); None until the first (an empty deque is 760 bytes a charge point)."""
        self._timers: dict[Key, float] = {}
        self._boot_asked = False
        self._dropping: str | None = None
        """While the station drops its connection on purpose: the event that reports it."""
        self._reboot: str | None = None
        """While a reboot is due: the reason the transactions it stops give."""
        self._lost_at: float | None = None
        """When a booted connection was lost, while the station may come back without a boot
        (a version that :attr:`resumes`); None while its next connection is to boot."""
        self._firmware: Update | None = None
        self._diagnostics: Update | None = None

    async def run(self) -> None:
        """Connect, boot and operate; after a lost connection, back off and do it again.

        Returns only when cancelled, after closing the WebSocket cleanly.
        """
        failures = 0
        try:
            while True:
                self.state = State.CONNECTING
                profile = self._security_profile()
                session = await self._connect()
                working = session is not None and await self._operate(session)
                if working:
                    self._profile_works(profile)
                # The backoff grows until a boot is accepted (or the station is back), not
                # merely until a connect succeeds: a CSMS that accepts and drops connections
                # must see it grow too.
                failures = 1 if working else failures + 1
                self.state = State.OFFLINE
                if self._reboot:  # a Reset: back after a reboot's pause, not a backoff
                    self._reboot = None
                    await self._meanwhile(asyncio.sleep(self.config.reconnect_min))
                else:
                    await self._meanwhile(asyncio.sleep(self._backoff(failures)))
        finally:
            self.state = State.STOPPED
            if self._session is not None and not self._session.closed:
                await self._session.close()

    async def _operate(self, session: OcppSession) -> bool:
        """Boot (or come back) and work on one connection until it is lost. Returns whether it
        got to work: a boot accepted, or the station back. Never raises but to cancel."""
        working = False
        loop = asyncio.get_running_loop()
        # Back on a new connection, not from a reboot: no boot (2.0.1, B04). It is back (for
        # the backoff) once the CSMS answered a CALL on it: one that accepts a WebSocket and
        # drops it must see the backoff grow.
        resuming = self._lost_at is not None and not self._reboot
        try:
            if resuming:
                # What CSMS calls set off goes on, but a drop meant for the old connection.
                self._jobs[:] = [job for job in self._jobs if job not in connecting.DROPS]
                self.state = State.ACCEPTED
                await self._resume(session, loop.time() - self._lost_at)
            else:
                self._start_clean()
                self.heartbeat_interval = None
                interval = await self._meanwhile(self._boot(session))
                working = self.state is State.ACCEPTED  # else a Reset came while not accepted
                if not self._reboot:
                    self._booted(self.config.heartbeat_interval or interval)
                    await self._send_statuses(session, range(len(self.connectors)))
            if not self._reboot:
                await self._work(session)
            await self._stop_transactions(session, self._reboot)
            await session.close()
            self._lost_at = None  # a reboot, or the station stops
        except ConnectionClosed as exc:
            working = working or (resuming and session.answered > 0)
            if self._reboot:
                self._lost_at = None
            elif working and self.resumes:
                self._lost_at = loop.time()
            # Else a boot not accepted (no _lost_at), or a return cut short: offline since the
            # first loss, still.
            if self._dropping:
                self.sink(Sample(WEBSOCKET, self._dropping, 0.0))  # on purpose: no failure
            elif not self._reboot:
                error = f"dead: {session.dead}" if session.dead else describe_close(exc)
                self.sink(Sample(WEBSOCKET, "connection lost", 0.0, error))
        except Exception as exc:
            # Whatever went wrong, one station must not vanish from the fleet unseen.
            logger.debug("charge point %s failed", self.id, exc_info=True)
            self.sink(Sample(WEBSOCKET, "charge point error", 0.0, type(exc).__name__))
            self._lost_at = None  # as after a crash: the station boots again
            await session.close()
        finally:
            self._dropping = None
        return working or (resuming and session.answered > 0)

    def _start_clean(self) -> None:
        """Start a connection from a clean slate, but for what outlives a connection: the
        availability a CSMS set (it persists across reboots), the charging sessions and their
        timers, a faulted connector's recovery. Gone with the old connection: jobs,
        reservations, updates in progress, faults without a recovery."""
        self._jobs.clear()
        for key in [key for key in self._timers if key.timer not in SESSION_TIMERS]:
            del self._timers[key]
        self._firmware = self._diagnostics = None
        for connector in self.connectors:
            connector.reservation = None
            recovering = Key(Timer.RECOVER, connector.id) in self._timers
            if connector.transaction is not None or recovering:
                continue
            connector.error = None
            if connector.status is not Status.UNAVAILABLE:
                connector.status = Status.AVAILABLE

    async def _meanwhile(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` (a connect, a backoff, a boot) while the charging sessions go
        on: their timers fire with no session, and what they would send is queued."""
        loop = asyncio.get_running_loop()
        if not self._session_due():
            # Only a session's own timers make more of them, so none will come meanwhile.
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                due = self._session_due()
                timeout = None if due is None else max(0.0, due - loop.time())
                done, _ = await asyncio.wait((task,), timeout=timeout)
                if done:
                    return task.result()
                assert due is not None
                for key in [key for key in self._timers if key.timer in SESSION_TIMERS]:
                    deadline = self._timers.get(key)  # an earlier one's work may remove it
                    if deadline is not None and deadline <= due:
                        del self._timers[key]
                        await self._on_timer(None, key)
        except BaseException:
            # Cancelled meanwhile (the station stops): end the work too, and close the
            # session it may have opened just then rather than leak its connection.
            task.cancel()
            with contextlib.suppress(BaseException):
                result = await task
                if isinstance(result, OcppSession):
                    await result.close()
            raise

    def _session_due(self) -> float | None:
        """When the next timer of a charging session (or of its arrival) is due, if any."""
        return min(
            (due for key, due in self._timers.items() if key.timer in SESSION_TIMERS),
            default=None,
        )

    async def _boot(self, session: OcppSession) -> float:
        """Boot until Accepted (or a Reset); return the heartbeat interval the CSMS gave."""
        loop = asyncio.get_running_loop()
        while True:
            self.state = State.BOOTING
            self._boot_asked = False
            session.answer_calls = True
            answer = await self._boot_request(session)
            status = answer.get("status")
            interval = seconds(answer.get("interval")) or self.config.fallback_interval
            if status == "Accepted":
                self.state = State.ACCEPTED
                return interval
            # Pending answers CSMS calls while it waits, and sends what they trigger; Rejected
            # (and a failed boot) stays mute.
            self.state = _BOOT_STATES.get(status, State.BOOT_FAILED)
            session.answer_calls = status == "Pending"
            deadline = loop.time() + interval
            await self._run_jobs(session)  # what a TriggerMessage asked for during the boot CALL
            while (
                not self._boot_asked
                and not self._reboot
                and not await session.sleep(max(0.0, deadline - loop.time()))
            ):
                await self._run_jobs(session)
                if self._boot_asked or self._reboot:
                    break
            if self._reboot:
                return interval

    # Once booted: one loop, one CALL at a time. Timers name what the station does by itself
    # and when; jobs are what CSMS calls set off.

    async def _work(self, session: OcppSession) -> None:
        loop = asyncio.get_running_loop()
        config, timers = self.config, self._timers
        # The first beat at a random phase: stations that booted together (Locust starts a
        # whole second's worth of users at once) would otherwise beat in step forever.
        timers[HEARTBEAT] = loop.time() + self._rng.uniform(0, self._heartbeat())
        if config.authorize_interval:
            timers[schedule.AUTHORIZE] = loop.time() + self._rng.expovariate(
                1 / config.authorize_interval
            )
        if config.session_interval and schedule.ARRIVAL not in timers:
            timers[schedule.ARRIVAL] = loop.time() + arrivals.until_arrival(config, self._rng)
        while True:
            if self.outbox:  # what waited offline goes first, in order
                await self._flush_outbox(session)
            # Jobs first: CSMS calls may have queued some while a timer's CALL was in flight.
            if self._jobs:
                await self._run_jobs(session)
            if self._reboot:  # a Reset, or a firmware update installed
                return
            while self._requests and not session.closed:
                await call_quietly(session, *self._requests.popleft())
            if self._jobs:
                continue  # queued while a request's CALL was in flight
            due = min(timers.values(), default=loop.time() + 3600)
            if not await session.sleep(max(0.0, due - loop.time())):
                continue  # woken: a job to run
            # Act on what was due when the timer fired; re-reading the clock here would spin,
            # for a loop's clock is coarser than the deadlines (1 ms under uvloop).
            for key in [key for key, deadline in timers.items() if deadline <= due]:
                deadline = timers.pop(key, None)
                if deadline is None:
                    continue  # an earlier timer's work removed it
                # The hot path, no detour through _on_timer. The heartbeat's key is always the one
                # constant (a Timer member's lookup costs more than an identity test).
                if key is HEARTBEAT:
                    await call_quietly(session, "Heartbeat", {})
                    timers[key] = schedule.next_beat(deadline, self._heartbeat(), loop.time())
                else:
                    await self._on_timer(session, key)

    async def _on_timer(self, session: OcppSession | None, key: Key) -> None:
        action = self.timer_actions.get(key.timer)
        if action is not None:
            await action(self, session, key)

    async def _run_jobs(self, session: OcppSession) -> None:
        while self._jobs:
            await self._jobs.pop(0)(session)

    def _soon(self, job: Job) -> None:
        """Run ``job`` in the station's loop: after the current answer is sent."""
        self._jobs.append(job)
        if self._session is not None:
            self._session.wake()

    def _send_soon(self, action: str, payload: dict[str, Any]) -> None:
        self._soon(lambda session: call_quietly(session, action, payload))

    def _start_timer(self, key: Key, delay: float) -> Job:
        """A job that sets the deadline ``key`` ``delay`` seconds from when it runs."""

        async def start(session: OcppSession) -> None:
            self._timers[key] = asyncio.get_running_loop().time() + delay

        return start

    def _heartbeat(self) -> float:
        return self.heartbeat_interval or self.config.fallback_interval

    def _failed_to_process(self, message: Queued) -> bool:
        """Count a failure of the CSMS to process ``message``, the outbox's first: True while
        it is to be sent again (the outbox waits for the version's retry interval times its
        failures so far), False once it has had its attempts and is dropped, and reported."""
        attempts, interval = self._retry_policy()
        message.failures += 1
        if message.failures < attempts:
            loop = asyncio.get_running_loop()
            self._timers[RETRY] = loop.time() + interval * message.failures
            return True
        self.outbox.discard(message)
        self.sink(Sample(OUTBOX, message.action, 0.0, "dropped: the CSMS failed to process it"))
        return False

    def _ping_interval(self) -> float:
        """Seconds between WebSocket pings, 0 for none: the swarm's ``ping_interval`` (which
        may be a fraction of a second) until the CSMS changes the version's setting, which
        holds whole seconds."""
        setting, mine = self._ping_setting(), self.config.ping_interval
        return mine if setting == whole_seconds(mine) else setting

    def _ping_interval_changed(self) -> None:
        """A new ping interval takes effect at once."""
        if self._session is not None:
            self._session.ping_interval = self._ping_interval()

    def _heartbeat_changed(self, interval: float) -> None:
        """A new heartbeat interval takes effect at once: the next beat is one interval away."""
        self.heartbeat_interval = interval

        async def reschedule(session: OcppSession) -> None:
            if HEARTBEAT in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[HEARTBEAT] = loop.time() + self._heartbeat()

        self._soon(reschedule)

    def _booted(self, interval: float) -> None:
        """A boot was accepted; ``interval`` is the heartbeat interval in force."""
        self.heartbeat_interval = interval

    def _outcome(self) -> bool:
        """Whether an update or upload is to succeed (``update_failures`` is the share that
        does not)."""
        return self._rng.random() >= self.config.update_failures

    def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> None:
        """Send a DataTransfer once booted (the last 100 asked for are kept meanwhile)."""
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        # A bad one is the scenario's error, at once.
        self.dialect.schemas.validate("DataTransfer", payload)
        if self._requests is None:
            self._requests = collections.deque(maxlen=100)
        self._requests.append(("DataTransfer", payload))
        if self._session is not None and self.state is State.ACCEPTED:
            self._session.wake()

    async def _call_or_none(
        self, session: OcppSession, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The answer's payload, checked against its schema; None if there is no good one."""
        try:
            return await session.call(action, payload, check=self._answer_check(action))
        except (CallRejected, CallTimeout, InvalidAnswer):
            return None

    def _answer_check(self, action: str) -> Callable[[dict[str, Any]], None]:
        check = self.dialect.schemas.check_answer
        return lambda payload: check(action, payload)


async def call_quietly(session: OcppSession | None, action: str, payload: dict[str, Any]) -> None:
    """A call whose failure is reported (by the session) and otherwise changes nothing.

    Offline (no session) nothing is sent: the statuses, for one, are all reported after the
    next boot.
    """
    if session is None:
        return
    # A lost connection too: what called this goes on (a session's state moves on, its timers
    # are set), and the next sleep or CALL of the station's loop raises.
    with contextlib.suppress(CallRejected, CallTimeout, InvalidAnswer, ConnectionClosed):
        await session.call(action, payload)


def seconds(value: object) -> float:
    """A positive, finite number of seconds from a CSMS's answer, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return 0.0
    return number if 0 < number < math.inf else 0.0


def whole_seconds(interval: float) -> int:
    """An interval as a configuration value of whole seconds holds it: at least 1 but for 0
    (off), at most a 32-bit integer's."""
    return max(1, min(round(interval), 2**31 - 1)) if interval else 0
