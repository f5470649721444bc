"""The virtual charge point: an OCPP 1.6J charger's life on one WebSocket, in plain asyncio.

A :class:`ChargePoint` connects, boots and then heartbeats and authorizes until it is stopped,
following OCPP 1.6 section 4.2 for the boot:

- Accepted: heartbeat every ``interval`` seconds (or the configured override);
- Pending: send no CALL, answer the CSMS's calls, boot again after ``interval``;
- Rejected: send nothing and answer nothing until ``interval`` has passed, then boot again;
- no valid answer (a CALLERROR, a timeout, an answer that breaks the schema): a failed boot,
  reported, and retried after the fallback interval.

Once accepted, it reports each connector's status, runs charging sessions (Authorize,
StartTransaction, MeterValues, StopTransaction, with status changes around them) and answers
what a CSMS asks: configuration keys (a changed HeartbeatInterval takes effect at once),
TriggerMessage, Remote Start/Stop, Reset (sessions stop, a reboot, a new boot),
ChangeAvailability, UnlockConnector, ClearCache and DataTransfer. Other OCPP 1.6 commands get a
NotSupported CALLERROR.

A lost connection is reported and followed by a reconnect after an exponential backoff with full
jitter, and a new boot. Charging sessions go on offline: their StartTransaction, MeterValues and
StopTransaction wait in a queue and are sent, in order, once a new boot is accepted (OCPP 1.6,
4.7 and 4.8). Everything runs in the event loop; the charge point knows nothing of Locust.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

from websockets.exceptions import ConnectionClosed

from swarm import __version__
from swarm.ocpp16.configuration import Configuration
from swarm.ocpp16.dialect import CSMS_ACTIONS, OCPP16
from swarm.protocol import ocppj
from swarm.protocol.rpc import (
    CallRejected,
    CallTimeout,
    InvalidAnswer,
    OcppSession,
    describe_close,
    open_session,
)
from swarm.protocol.samples import WEBSOCKET, Sample, SampleSink
from swarm.station.state import State

logger = logging.getLogger(__name__)

T = TypeVar("T")


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
    validate: bool = False
    """Check every CALLRESULT against the OCPP 1.6 response schema of its action: an answer
    that breaks it is a failed round trip (``invalid answer: ...``). Off, only the answers a
    charge point acts on are checked: BootNotification, and those of its charging sessions."""
    fallback_interval: float = 60.0
    """Seconds to use where the CSMS's boot answer gives no interval: an interval of 0 (OCPP
    leaves the choice to the charge point), an unusable one, or no valid answer at all."""
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    connectors: int = 1
    """Connectors per charge point (OCPP connector ids 1..n; 0 is the charge point itself)."""
    session_interval: float = 0.0
    """Mean seconds between charging sessions arriving at a charge point (exponential); 0: none
    but those a CSMS starts remotely."""
    session_duration: float = 1800.0
    """Mean length of a charging session in seconds (each uniform in 0.5x to 1.5x of it)."""
    charging_power: float = 11000.0
    """Watts an EV draws at most; each session draws a steady 50 to 100 % of it."""
    meter_interval: float = 0.0
    """Seconds between MeterValues in a session; 0 uses MeterValueSampleInterval (60 s)."""
    update_step: float = 3.0
    """Seconds each step of a firmware update (download, install) or diagnostics upload takes."""
    update_failures: float = 0.0
    """Share (0 to 1) of firmware updates and diagnostics uploads that fail."""
    faults: float = 0.0
    """Share (0 to 1) of charging sessions in which the connector faults (GroundFailure)."""
    day_length: float = 0.0
    """Seconds of a compressed day: session arrivals follow :data:`DAY_PROFILE` around its
    clock, at ``session_interval`` on average; 0 keeps their rate flat."""
    day_start: float = 0.0
    """Wall-clock time (``time.time()``) at which the compressed day is at ``day_hour``."""
    day_hour: float = 0.0
    """Hour of the compressed day at ``day_start`` (0 to 24)."""
    connect_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """Extra keyword arguments for :func:`websockets.asyncio.client.connect`."""

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
        if not 1 <= self.connectors <= 99:
            raise ValueError(f"connectors must be 1 to 99, got {self.connectors}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if (self.authorize_interval or self.session_interval) and not self.id_tags:
            raise ValueError("id_tags must name at least one idTag to authorize with")
        for tag in self.id_tags:
            if not 0 < len(tag) <= 20:
                raise ValueError(
                    f"id_tags: an idTag is 1 to 20 characters (OCPP IdToken), got {tag!r}"
                )


DAY_PROFILE = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.4, 1.1, 1.0,
    1.1, 1.0, 0.9, 1.0, 1.3, 1.8, 2.0, 1.7, 1.3, 0.9, 0.6, 0.4,
)  # fmt: skip
"""Relative rate of session arrivals in each hour of a day: a weekday with a morning and an
evening peak. Over a whole day, arrivals still come every ``session_interval`` on average."""

_PEAK = max(DAY_PROFILE)
_PEAK_TO_MEAN = _PEAK * len(DAY_PROFILE) / sum(DAY_PROFILE)

_BOOT_STATES = {"Pending": State.PENDING, "Rejected": State.REJECTED}

Job = Callable[[OcppSession], Awaitable[None]]
"""Something a CSMS call set off, run by the charge point's loop after the call's answer."""


@dataclass(slots=True)
class Transaction:
    """A charging session on one connector, from StartTransaction to StopTransaction."""

    id: int | None
    """The CSMS's transactionId; None while the StartTransaction waits in the offline queue."""
    connector: int
    id_tag: str
    power: float
    """Watts the EV draws while it charges, steady for the session."""
    metered_at: float
    """Loop time up to which the connector's energy register has counted this session."""
    full: bool = False
    """The EV is full and draws nothing (SuspendedEV)."""
    limited: bool = False
    """A charging profile limits the connector to 0 (SuspendedEVSE)."""

    @property
    def drawing(self) -> float:
        """Watts drawn now."""
        return 0.0 if self.full or self.limited else self.power


class Reading(NamedTuple):
    """What a MeterValues reports: a connector's energy register, and the power drawn in a
    session (None outside one), when they were read."""

    connector: int
    energy_wh: int
    power_w: int | None
    timestamp: str

    def payload(self, transaction_id: int | None) -> dict[str, Any]:
        """The MeterValues payload of this reading."""
        values = [_sampled(str(self.energy_wh), "Energy.Active.Import.Register", "Wh")]
        payload: dict[str, Any] = {"connectorId": self.connector}
        if self.power_w is not None:
            values.append(_sampled(str(self.power_w), "Power.Active.Import", "W"))
        if transaction_id is not None:
            payload["transactionId"] = transaction_id
        payload["meterValue"] = [{"timestamp": self.timestamp, "sampledValue": values}]
        return payload


def _sampled(value: str, measurand: str, unit: str) -> dict[str, str]:
    return {"value": value, "context": "Sample.Periodic", "measurand": measurand, "unit": unit}


@dataclass(slots=True)
class _Queued:
    """A transaction message that waits for a connection. A MeterValues is kept as its
    reading (a fifth of the memory of its payload), the payload built when it is sent."""

    action: str
    payload: dict[str, Any] | Reading
    transaction: Transaction

    def ready(self) -> dict[str, Any]:
        """The payload to send, with the transactionId the CSMS gave (set by now, or None)."""
        if isinstance(self.payload, Reading):
            return self.payload.payload(self.transaction.id)
        if self.action != "StartTransaction":
            self.payload["transactionId"] = self.transaction.id
        return self.payload


@dataclass(slots=True)
class _Update:
    """A firmware update or diagnostics upload in progress: the statuses still to report."""

    steps: list[str]
    version: str = ""


class ChargePoint:
    """One virtual charge point. :meth:`run` is its whole life; cancel the task to stop it."""

    # A fleet holds 15,000 of them: slots take a tenth of the memory of an instance dict.
    __slots__ = (
        "_boot_asked",
        "_diagnostics",
        "_dropping",
        "_firmware",
        "_jobs",
        "_queue",
        "_reboot",
        "_requests",
        "_rng",
        "_scheduled",
        "_session",
        "_timers",
        "charging_profiles",
        "config",
        "configuration",
        "connector_errors",
        "connector_status",
        "diagnostics_status",
        "energy_wh",
        "firmware_status",
        "firmware_version",
        "heartbeat_interval",
        "id",
        "local_list",
        "local_list_version",
        "reservations",
        "sink",
        "state",
        "transactions",
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
    ) -> None:
        if not 0 < len(charge_point_id) <= 25:
            raise ValueError(
                f"a charge point id must be 1 to 25 characters, got {charge_point_id!r}"
            )
        self.id = charge_point_id
        self.url = url
        self.config = config
        self.sink = sink
        self.state = State.CONNECTING
        self.heartbeat_interval: float | None = None
        """The interval in force once booted."""
        self.configuration = Configuration(number_of_connectors=config.connectors)
        self.configuration.on_change("HeartbeatInterval", self._heartbeat_interval_changed)
        self.connector_status = ["Available"] * (config.connectors + 1)
        """OCPP status of each connector; index 0 is the charge point itself."""
        self.connector_errors: dict[int, str] = {}
        """ChargePointErrorCode of each Faulted connector."""
        self._scheduled: dict[int, str] = {}
        """Availability a CSMS asked for while the connector was busy: applied when it is free."""
        self.energy_wh = [0.0] * (config.connectors + 1)
        """Energy register of each connector (index 0 unused): it only ever grows."""
        self.transactions: dict[int, Transaction] = {}
        """Charging sessions in progress, by connector."""
        self._rng = rng or random
        self._session: OcppSession | None = None
        self._jobs: list[Job] = []
        self._requests: collections.deque[tuple[str, dict[str, Any]]] = collections.deque(
            maxlen=100
        )
        """CALLs a scenario asked for: sent once accepted, kept across reconnects."""
        self._queue: list[_Queued] = []  # an empty deque would cost 10x the memory
        """Transaction messages not sent yet: offline, or while older ones are still queued."""
        self._timers: dict[str, float] = {}
        self._boot_asked = False
        self._dropping = False
        self._reboot: str | None = None
        """While a reboot is due: the reason its StopTransactions give."""
        self.firmware_version = config.firmware_version
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self._firmware: _Update | None = None
        self._diagnostics: _Update | None = None
        self.reservations: dict[int, tuple[int, str]] = {}
        """Reservations by connector: (reservationId, idTag)."""
        self.local_list: dict[str, dict[str, Any]] = {}
        """The local authorization list: idTagInfo by idTag (OCPP 1.6, 3.5.3)."""
        self.local_list_version = 0
        self.charging_profiles: dict[int, list[dict[str, Any]]] = {}
        """Charging profiles by connector, as a CSMS set them (OCPP 1.6, 3.13)."""

    async def run(self) -> None:
        """Connect, boot and operate; after a lost connection, back off and do it again.

        Returns only when cancelled, after closing the WebSocket cleanly.
        """
        failures = 0
        try:
            while True:
                self.state = State.CONNECTING
                self.heartbeat_interval = None
                try:
                    session = self._session = await self._meanwhile(
                        open_session(
                            self.url,
                            self.sink,
                            dialect=OCPP16,
                            call_timeout=self.config.call_timeout,
                            connect_timeout=self.config.connect_timeout,
                            handler=self.handle_call,
                            check_answers=OCPP16.schemas.check_answer
                            if self.config.validate
                            else None,
                            **self.config.connect_options,
                        )
                    )
                except Exception:
                    pass  # reported by open_session
                else:
                    await self._operate(session)
                # The backoff grows until a boot is accepted, not merely until a connect
                # succeeds: a CSMS that accepts and drops connections must see it grow too.
                failures = 1 if self.state is State.ACCEPTED else failures + 1
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

    def _backoff(self, failures: int) -> float:
        """The pause before the next connect after ``failures`` in a row (1 after a booted
        connection is lost): uniform in [min, min(max, min * 2**failures)], full jitter, so
        that a fleet that lost its connections together spreads out as it comes back."""
        ceiling = self.config.reconnect_min * 2.0 ** min(failures, 30)
        return self._rng.uniform(self.config.reconnect_min, min(self.config.reconnect_max, ceiling))

    async def _operate(self, session: OcppSession) -> None:
        """Boot and work on one connection until it is lost. Never raises but to cancel."""
        self._start_clean()
        try:
            interval = await self._meanwhile(self._boot(session))
            if not self._reboot:
                self._set_heartbeat_interval(self.config.heartbeat_interval or interval)
                await self._send_statuses(session, range(len(self.connector_status)))
                await self._work(session)
            await self._stop_transactions(session, self._reboot or "Other")
            await session.close()
        except ConnectionClosed as exc:
            if self._dropping:
                self.sink(Sample(WEBSOCKET, "dropped", 0.0))  # on purpose: no failure
            elif not self._reboot:
                self.sink(Sample(WEBSOCKET, "connection lost", 0.0, describe_close(exc)))
        except Exception as exc:
            # Whatever went wrong, one charge point must not vanish from the fleet unseen.
            logger.debug("charge point %s failed", self.id, exc_info=True)
            self.sink(Sample(WEBSOCKET, "charge point error", 0.0, type(exc).__name__))
            await session.close()
        finally:
            self._dropping = False

    def _start_clean(self) -> None:
        """Start a connection from a clean slate, but for what outlives a connection: the
        availability a CSMS set (it persists across reboots, OCPP 1.6 5.2), the charging
        sessions and their timers, a faulted connector's recovery. Gone with the old
        connection: jobs, reservations, updates in progress, faults without a recovery."""
        self._jobs.clear()
        for name in [name for name in self._timers if not name.startswith(_SESSION_TIMERS)]:
            del self._timers[name]
        self._firmware = self._diagnostics = None
        self.firmware_status = self.diagnostics_status = "Idle"
        self.reservations.clear()
        for connector, status in enumerate(self.connector_status):
            if connector in self.transactions or f"recover:{connector}" in self._timers:
                continue
            self.connector_errors.pop(connector, None)
            if status != "Unavailable":
                self.connector_status[connector] = "Available"

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
                for name in [n for n in self._timers if n.startswith(_SESSION_TIMERS)]:
                    deadline = self._timers.get(name)  # an earlier one's work may remove it
                    if deadline is not None and deadline <= due:
                        del self._timers[name]
                        await self._on_timer(None, name)
        except BaseException:
            # Cancelled meanwhile (the charge point stops): end the work too, and close the
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
            (due for name, due in self._timers.items() if name.startswith(_SESSION_TIMERS)),
            default=None,
        )

    def _boot_payload(self) -> dict[str, Any]:
        return {
            "chargePointVendor": self.config.vendor,
            "chargePointModel": self.config.model,
            "chargePointSerialNumber": self.id,
            "chargeBoxSerialNumber": self.id,
            "firmwareVersion": self.firmware_version,
        }

    async def _boot(self, session: OcppSession) -> float:
        """Boot until Accepted (or a Reset); return the heartbeat interval the CSMS gave."""
        loop = asyncio.get_running_loop()
        while True:
            self.state = State.BOOTING
            self._boot_asked = False
            session.answer_calls = True
            try:
                answer = await session.call(
                    "BootNotification", self._boot_payload(), check=_boot_answer
                )
            except (CallRejected, CallTimeout, InvalidAnswer):
                answer = {}  # reported by the session; boot again after the fallback interval
            status = answer.get("status")
            interval = _seconds(answer.get("interval")) or self.config.fallback_interval
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

    # Once booted: one loop, one CALL at a time. Timers name what the charge point does by
    # itself and when; jobs are what CSMS calls set off.

    async def _work(self, session: OcppSession) -> None:
        loop = asyncio.get_running_loop()
        config, timers = self.config, self._timers
        # The first beat at a random phase: charge points that booted together (Locust starts
        # a whole second's worth of users at once) would otherwise beat in step forever.
        timers["heartbeat"] = loop.time() + self._rng.uniform(0, self._heartbeat())
        if config.authorize_interval:
            timers["authorize"] = loop.time() + self._rng.expovariate(1 / config.authorize_interval)
        if config.session_interval and "arrival" not in timers:
            timers["arrival"] = loop.time() + self._until_arrival()
        while True:
            if self._queue:  # what waited offline goes first, in order
                await self._send_queued(session)
            # Jobs first: CSMS calls may have queued some while a timer's CALL was in flight.
            if self._jobs:
                await self._run_jobs(session)
            if self._reboot:  # a Reset, or a firmware update installed
                return
            while self._requests and not session.closed:
                await self._call_quietly(session, *self._requests.popleft())
            if self._jobs:
                continue  # queued while a request's CALL was in flight
            due = min(timers.values(), default=loop.time() + 3600)
            if not await session.sleep(max(0.0, due - loop.time())):
                continue  # woken: a job to run
            # Act on what was due when the timer fired; re-reading the clock here would spin,
            # for a loop's clock is coarser than the deadlines (1 ms under uvloop).
            for name in [name for name, deadline in timers.items() if deadline <= due]:
                deadline = timers.pop(name, None)
                if deadline is None:
                    continue  # an earlier timer's work removed it
                if name == "heartbeat":  # the hot path: no detour through _on_timer
                    await self._call_quietly(session, "Heartbeat", {})
                    timers[name] = next_beat(deadline, self._heartbeat(), loop.time())
                else:
                    await self._on_timer(session, name)

    async def _on_timer(self, session: OcppSession | None, name: str) -> None:
        """Act on timer ``name``; with no session (offline), only a charging session's."""
        loop, config = asyncio.get_running_loop(), self.config
        if name == "authorize":
            tag = self._rng.choice(config.id_tags)
            await self._call_quietly(session, "Authorize", {"idTag": tag})
            self._timers[name] = loop.time() + self._rng.expovariate(1 / config.authorize_interval)
        elif name == "arrival":
            free = [c for c in range(1, len(self.connector_status)) if self._is_free(c)]
            if free and self._arrives():
                await self._charge(
                    session, self._rng.choice(free), self._rng.choice(config.id_tags)
                )
            self._timers[name] = loop.time() + self._until_arrival()
        elif name.startswith("meter:"):
            transaction = self.transactions.get(int(name[6:]))
            if transaction is not None:
                reading = self._read_meter(transaction.connector)
                await self._send_transaction_message(session, transaction, "MeterValues", reading)
                self._timers[name] = loop.time() + self._meter_interval()
        elif name.startswith("full:"):
            transaction = self.transactions.get(int(name[5:]))
            if transaction is not None:
                self._meter(transaction)
                transaction.full = True
                if not transaction.limited:
                    await self._set_status(session, transaction.connector, "SuspendedEV")
        elif name.startswith("fault:"):
            await self._fault(session, int(name[6:]))
        elif name.startswith("recover:"):
            connector = int(name[8:])
            self.connector_errors.pop(connector, None)
            if self.connector_status[connector] == "Faulted":
                status = self._scheduled.pop(connector, "Available")
                await self._set_status(session, connector, status)
        elif name.startswith("end:"):
            await self._stop_transaction(session, int(name[4:]), "EVDisconnected")
        elif name == "firmware" and self._firmware is not None:
            status = await self._advance(
                session, name, self._firmware, "FirmwareStatusNotification"
            )
            self.firmware_status = status if self._firmware.steps else "Idle"
            if not self._firmware.steps:
                if status == "Installed":
                    self.firmware_version = self._firmware.version
                    self._reboot = "Reboot"  # to run the new firmware; it boots reporting it
                self._firmware = None
        elif name == "diagnostics" and self._diagnostics is not None:
            status = await self._advance(
                session, name, self._diagnostics, "DiagnosticsStatusNotification"
            )
            self.diagnostics_status = status if self._diagnostics.steps else "Idle"
            if not self._diagnostics.steps:
                self._diagnostics = None
        elif name.startswith("reservation:"):
            self._end_reservation(int(name[12:]))

    async def _run_jobs(self, session: OcppSession) -> None:
        while self._jobs:
            await self._jobs.pop(0)(session)

    def drop(self) -> None:
        """Lose the connection, as a charger whose network fails: no close handshake, then a
        reconnect after the backoff and a new boot. Reported as a ``dropped`` WebSocket event,
        not a failure. Once booted, it waits for the CALL in flight, so that none fails for it.
        """
        session = self._session
        if session is None or session.closed or self._dropping:
            return
        self._dropping = True
        if self.state is State.ACCEPTED:
            self._soon(_abort)
        else:
            session.abort()

    def _soon(self, job: Job) -> None:
        """Run ``job`` in the charge point's loop: after the current answer is sent."""
        self._jobs.append(job)
        if self._session is not None:
            self._session.wake()

    def _status_soon(self, connector: int) -> None:
        """Report a connector's new status, once booted: the boot's report covers it before."""
        if self.state is State.ACCEPTED:
            self._soon(lambda session: self._send_statuses(session, [connector]))

    def _send_soon(self, action: str, payload: dict[str, Any]) -> None:
        self._soon(lambda session: self._call_quietly(session, action, payload))

    # Session arrivals: a Poisson process whose rate follows the compressed day, by thinning.
    # Candidates come at the day's peak rate; each arrives with its hour's arrival_share.

    def _until_arrival(self) -> float:
        rate = 1 / self.config.session_interval
        if self.config.day_length:
            rate *= _PEAK_TO_MEAN
        return self._rng.expovariate(rate)

    def _arrives(self) -> bool:
        return self._rng.random() < arrival_share(self.config)

    def _heartbeat(self) -> float:
        return self.heartbeat_interval or self.config.fallback_interval

    def _meter_interval(self) -> float:
        return (
            self.config.meter_interval
            or self.configuration.int_value("MeterValueSampleInterval")
            or self.config.fallback_interval
        )

    # Firmware updates and diagnostics uploads (OCPP 1.6, 4.4, 4.5, 5.8, 5.19): a list of the
    # statuses still to report, one timer step apart.

    async def _advance(self, session: OcppSession, timer: str, update: _Update, action: str) -> str:
        status = update.steps.pop(0)
        await self._call_quietly(session, action, {"status": status})
        if update.steps:
            delay = self.config.update_step * _STEP_WEIGHT.get(status, 0)
            self._timers[timer] = asyncio.get_running_loop().time() + delay
        return status

    def _start_timer(self, name: str, delay: float) -> Job:
        async def start(session: OcppSession) -> None:
            self._timers[name] = asyncio.get_running_loop().time() + delay

        return start

    def _outcome(self) -> bool:
        """Whether an update or upload is to succeed (``update_failures`` is the share that
        does not)."""
        return self._rng.random() >= self.config.update_failures

    # Charging sessions (OCPP 1.6, 4.8 to 4.10 and 5.11, 5.12).

    def _is_free(self, connector: int) -> bool:
        return (
            connector not in self.transactions and self.connector_status[connector] == "Available"
        )

    async def _charge(
        self, session: OcppSession | None, connector: int, id_tag: str, *, authorize: bool = True
    ) -> None:
        """An EV plugs in: authorize, start the transaction, charge until its end is due.

        Offline (no session), the idTag is authorized locally, and the StartTransaction waits
        in the queue; so it does when the connection is lost while it is in flight.
        """
        loop = asyncio.get_running_loop()
        if connector in self.transactions or (
            session is None and not self._authorized_offline(id_tag)
        ):
            return
        await self._set_status(session, connector, "Preparing")
        if authorize and session is not None:
            answer = await self._call_or_none(session, "Authorize", {"idTag": id_tag})
            if _id_status(answer) != "Accepted":  # Blocked, Invalid, Expired: no session
                await self._set_status(
                    session, connector, self._scheduled.pop(connector, "Available")
                )
                return
        start = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": int(self.energy_wh[connector]),
            "timestamp": _now(),
        }
        answer: dict[str, Any] | None = None
        if session is not None:
            try:
                answer = await session.call("StartTransaction", start, check=_start_answer)
            except (CallRejected, CallTimeout, InvalidAnswer):  # reported by the session
                await self._set_status(
                    session, connector, self._scheduled.pop(connector, "Available")
                )
                return
            except ConnectionClosed:
                session = None  # the session has begun: it goes on offline
        power = self.config.charging_power * self._rng.uniform(0.5, 1.0)
        transaction = Transaction(
            answer["transactionId"] if answer else None, connector, id_tag, power, loop.time()
        )
        self.transactions[connector] = transaction
        if answer is None:
            self._enqueue(_Queued("StartTransaction", start, transaction))
        elif await self._stop_if_invalid(session, connector, answer):
            return
        await self._set_status(session, connector, "Charging")
        duration = self.config.session_duration * self._rng.uniform(0.5, 1.5)
        self._timers[f"meter:{connector}"] = loop.time() + self._meter_interval()
        self._timers[f"end:{connector}"] = loop.time() + duration
        # Some EVs are full before they leave: they stop drawing power (SuspendedEV).
        full = duration * self._rng.uniform(0.6, 1.2)
        if full < duration:
            self._timers[f"full:{connector}"] = loop.time() + full
        if self._rng.random() < self.config.faults:
            self._timers[f"fault:{connector}"] = loop.time() + duration * self._rng.uniform(
                0.1, 0.9
            )

    async def _stop_if_invalid(
        self, session: OcppSession, connector: int, answer: dict[str, Any]
    ) -> bool:
        """Stop the session if the StartTransaction's answer refused its idTag and the
        configuration says so (StopTransactionOnInvalidId); return whether it stopped."""
        if _id_status(answer) == "Accepted" or not self.configuration.bool_value(
            "StopTransactionOnInvalidId"
        ):
            return False
        await self._stop_transaction(session, connector, "DeAuthorized")
        return True

    async def _stop_transaction(
        self, session: OcppSession | None, connector: int, reason: str
    ) -> None:
        transaction = self.transactions.get(connector)
        if transaction is None:
            return
        await self._set_status(session, connector, "Finishing")
        await self._send_stop(session, transaction, reason, "Finishing")
        await self._set_status(session, connector, self._scheduled.pop(connector, "Available"))

    async def _send_stop(
        self, session: OcppSession | None, transaction: Transaction, reason: str, holding: str
    ) -> None:
        """End the transaction here, then report it with the energy register's reading. The
        connector keeps status ``holding`` meanwhile: not free for a new session yet."""
        self._meter(transaction)
        self._end_locally(transaction.connector)
        self.connector_status[transaction.connector] = holding
        stop = {
            "transactionId": transaction.id,
            "idTag": transaction.id_tag,
            "meterStop": int(self.energy_wh[transaction.connector]),
            "timestamp": _now(),
            "reason": reason,
        }
        await self._send_transaction_message(session, transaction, "StopTransaction", stop)

    # Transaction messages reach the CSMS, all and in order (OCPP 1.6, 4.7): offline, or behind
    # older ones, they wait in the queue, which goes first once a boot is accepted.

    async def _send_transaction_message(
        self,
        session: OcppSession | None,
        transaction: Transaction,
        action: str,
        payload: dict[str, Any] | Reading,
    ) -> None:
        """Send a MeterValues or StopTransaction of ``transaction``, or queue it."""
        message = _Queued(action, payload, transaction)
        if session is not None and not self._queue and transaction.id is not None:
            try:
                await session.call(action, message.ready())
                return
            except (CallRejected, CallTimeout, InvalidAnswer):
                return  # reported by the session; the CSMS had it
            except ConnectionClosed:
                pass  # it may not have arrived: send it again once connected
        self._enqueue(message)

    def _enqueue(self, message: _Queued) -> None:
        # A charger's memory is finite: past the limit, periodic meter values are dropped,
        # never a start or a stop.
        if message.action != "MeterValues" or len(self._queue) < QUEUE_LIMIT:
            self._queue.append(message)

    async def _send_queued(self, session: OcppSession) -> None:
        """Send the queued transaction messages, oldest first, until none is left.

        A message whose connection is lost stays first in the queue. A refused (or
        unanswered) StartTransaction ends its session here: what else it queued is dropped,
        for the CSMS has no transaction to take it.
        """
        queue = self._queue
        while queue:
            message = queue[0]
            transaction = message.transaction
            if message.action == "StartTransaction":
                answer = await self._call_or_none(session, message.action, message.payload)
                del queue[0]
                connector = transaction.connector
                if answer is not None:
                    transaction.id = answer["transactionId"]
                    if self.transactions.get(connector) is transaction:
                        await self._stop_if_invalid(session, connector, answer)
                elif self.transactions.get(connector) is transaction:
                    self._end_locally(connector)
                    self.connector_status[connector] = self._scheduled.pop(connector, "Available")
                    self._status_soon(connector)
                continue
            if transaction.id is not None:
                with contextlib.suppress(CallRejected, CallTimeout, InvalidAnswer):
                    await session.call(message.action, message.ready())
            del queue[0]

    def _authorized_offline(self, id_tag: str) -> bool:
        """Whether a session may start offline (OCPP 1.6, 3.5): an idTag Accepted in the
        local list, with LocalAuthorizeOffline, or any idTag with AllowOfflineTxForUnknownId."""
        configuration = self.configuration
        if configuration.bool_value("AllowOfflineTxForUnknownId"):
            return True
        entry = self.local_list.get(id_tag)
        return (
            configuration.bool_value("LocalAuthorizeOffline")
            and configuration.bool_value("LocalAuthListEnabled")
            and entry is not None
            and entry.get("status") == "Accepted"
        )

    async def _fault(self, session: OcppSession | None, connector: int) -> None:
        """The connector faults mid-session: Faulted, the session stops, and a while later the
        connector is Available again."""
        transaction = self.transactions.get(connector)
        if transaction is None:
            return
        self.connector_errors[connector] = "GroundFailure"
        await self._set_status(session, connector, "Faulted")
        await self._send_stop(session, transaction, "Other", "Faulted")
        self._timers[f"recover:{connector}"] = asyncio.get_running_loop().time() + FAULT_RECOVERY
        self.connector_status[connector] = "Faulted"  # not free until it recovers

    async def _stop_transactions(self, session: OcppSession, reason: str) -> None:
        for connector in list(self.transactions):
            await self._stop_transaction(session, connector, reason)

    def _end_locally(self, connector: int) -> None:
        self.transactions.pop(connector, None)
        self._timers.pop(f"meter:{connector}", None)
        self._timers.pop(f"end:{connector}", None)
        self._timers.pop(f"full:{connector}", None)
        self._timers.pop(f"fault:{connector}", None)
        self.connector_status[connector] = "Available"

    def _end_reservation(self, connector: int) -> None:
        """A reservation expired or was cancelled: the connector is free again."""
        if self.reservations.pop(connector, None) is not None:
            self._timers.pop(f"reservation:{connector}", None)
            if self.connector_status[connector] == "Reserved":
                self.connector_status[connector] = "Available"
                self._status_soon(connector)

    def _meter(self, transaction: Transaction) -> None:
        """Bring the connector's energy register up to now."""
        now = asyncio.get_running_loop().time()
        hours = (now - transaction.metered_at) / 3600
        self.energy_wh[transaction.connector] += transaction.drawing * hours
        transaction.metered_at = now

    def _read_meter(self, connector: int) -> Reading:
        transaction = self.transactions.get(connector)
        if transaction is None:
            return Reading(connector, int(self.energy_wh[connector]), None, _now())
        self._meter(transaction)
        energy = int(self.energy_wh[connector])
        return Reading(connector, energy, round(transaction.drawing), _now())

    def _meter_values(self, connector: int) -> dict[str, Any]:
        transaction = self.transactions.get(connector)
        return self._read_meter(connector).payload(transaction.id if transaction else None)

    async def _set_status(self, session: OcppSession | None, connector: int, status: str) -> None:
        self.connector_status[connector] = status
        await self._call_quietly(session, "StatusNotification", self._status(connector))

    async def _send_statuses(self, session: OcppSession, connectors: Iterable[int]) -> None:
        for connector in connectors:
            await self._call_quietly(session, "StatusNotification", self._status(connector))

    def _status(self, connector: int) -> dict[str, Any]:
        return {
            "connectorId": connector,
            "errorCode": self.connector_errors.get(connector, "NoError"),
            "status": self.connector_status[connector],
        }

    @staticmethod
    async def _call_quietly(
        session: OcppSession | None, action: str, payload: dict[str, Any]
    ) -> None:
        """A call whose failure is reported (by the session) and otherwise changes nothing.

        Offline (no session) nothing is sent: the statuses, for one, are all reported after
        the next boot.
        """
        if session is None:
            return
        # A lost connection too: what called this goes on (a session's state moves on, its
        # timers are set), and the next sleep or CALL of the charge point's loop raises.
        with contextlib.suppress(CallRejected, CallTimeout, InvalidAnswer, ConnectionClosed):
            await session.call(action, payload)

    @staticmethod
    async def _call_or_none(
        session: OcppSession, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The answer's payload, checked against the 1.6 schema; None if there is no good one."""
        try:
            return await session.call(action, payload, check=_response_check(action))
        except (CallRejected, CallTimeout, InvalidAnswer):
            return None

    def _set_heartbeat_interval(self, interval: float) -> None:
        # The key holds whole seconds (OCPP); the swarm's override may be a fraction of one.
        self.heartbeat_interval = interval
        self.configuration.set("HeartbeatInterval", max(1, min(round(interval), 2**31 - 1)))

    def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> None:
        """Send a DataTransfer once booted (the last 100 asked for are kept meanwhile)."""
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        OCPP16.schemas.validate(
            "DataTransfer", payload
        )  # a bad one is the scenario's error, at once
        self._requests.append(("DataTransfer", payload))
        if self._session is not None and self.state is State.ACCEPTED:
            self._session.wake()

    # CSMS-initiated calls. Each handler returns the answer's payload; what the call sets off
    # (a triggered message, a session, a reboot) is a job, run after the answer is sent.

    def handle_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a CSMS-initiated CALL after checking its payload against the 1.6 schema."""
        handler = self._handlers.get(action)
        if handler is None:
            if action in CSMS_ACTIONS:
                raise ocppj.FrameError(ocppj.NOT_SUPPORTED, f"{action} is not supported yet")
            raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, "not an OCPP 1.6 action")
        OCPP16.schemas.validate(action, payload)
        return handler(self, payload)

    def _on_get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.configuration.get_configuration(payload)

    def _on_change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer, _ = self.configuration.change_configuration(payload)
        return answer

    def _heartbeat_interval_changed(self, name: str, value: str) -> None:
        # Takes effect at once: the next beat is one new interval from now.
        self.heartbeat_interval = float(value)

        async def reschedule(session: OcppSession) -> None:
            if "heartbeat" in self._timers:
                loop = asyncio.get_running_loop()
                self._timers["heartbeat"] = loop.time() + self._heartbeat()

        self._soon(reschedule)

    def _on_trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        message, connector = payload["requestedMessage"], payload.get("connectorId")
        if connector is not None and not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        connectors = [connector] if connector is not None else range(len(self.connector_status))
        if message == "BootNotification":
            if self.state is State.ACCEPTED:
                self._send_soon(message, self._boot_payload())
            else:
                self._boot_asked = True  # the boot loop sends it, and acts on the answer
                self._soon(_nothing)
        elif message == "Heartbeat":
            self._send_soon(message, {})
        elif message == "StatusNotification":
            for each in connectors:
                self._soon(lambda session, c=each: self._send_statuses(session, [c]))
        elif message == "MeterValues":
            for each in connectors:
                if each:  # connector 0 has no meter of its own here
                    self._soon(
                        lambda session, c=each: self._call_quietly(
                            session, "MeterValues", self._meter_values(c)
                        )
                    )
        elif message == "FirmwareStatusNotification":
            self._send_soon(message, {"status": self.firmware_status})
        elif message == "DiagnosticsStatusNotification":
            self._send_soon(message, {"status": self.diagnostics_status})
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def _on_remote_start_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload.get("connectorId")
        if connector is None:  # the charge point picks a free connector
            free = [c for c in range(1, len(self.connector_status)) if self._is_free(c)]
            connector = free[0] if free else None
        reserved_for_this_tag = (
            connector in self.reservations and self.reservations[connector][1] == payload["idTag"]
        )
        if (
            self.state is not State.ACCEPTED
            or connector is None
            or not 0 < connector < len(self.connector_status)
            or not (self._is_free(connector) or reserved_for_this_tag)
        ):
            return {"status": "Rejected"}
        if reserved_for_this_tag:  # the reservation is used up by this session
            self.reservations.pop(connector)
            self._timers.pop(f"reservation:{connector}", None)
        authorize = self.configuration.bool_value("AuthorizeRemoteTxRequests")
        self.connector_status[connector] = "Preparing"  # taken: a second request is rejected
        self._soon(
            lambda session: self._charge(session, connector, payload["idTag"], authorize=authorize)
        )
        return {"status": "Accepted"}

    def _on_remote_stop_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        for connector, transaction in self.transactions.items():
            if transaction.id == payload["transactionId"]:
                self._soon(
                    lambda session, c=connector: self._stop_transaction(session, c, "Remote")
                )
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def _on_update_firmware(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._firmware is None:  # one update at a time; the answer has no status to refuse
            if self._outcome():
                steps = ["Downloading", "Downloaded", "Installing", "Installed"]
            elif self._rng.random() < 0.5:
                steps = ["Downloading", "DownloadFailed"]
            else:
                steps = ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
            self._firmware = _Update(steps, _version_of(payload["location"]))
            self._soon(self._start_timer("firmware", _seconds_until(payload["retrieveDate"])))
        return {}

    def _on_get_diagnostics(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._diagnostics is not None:
            return {}  # busy with an upload: no file this time
        self._diagnostics = _Update(
            ["Uploading", "Uploaded" if self._outcome() else "UploadFailed"]
        )
        self._soon(self._start_timer("diagnostics", 0.0))
        return {"fileName": f"{self.id}-diagnostics.log"}

    def _on_reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reboot = f"{payload['type']}Reset"  # after the answer: stop sessions, reboot
        self._soon(_nothing)
        return {"status": "Accepted"}

    def _on_change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        status = "Available" if payload["type"] == "Operative" else "Unavailable"
        targets = [connector] if connector else range(len(self.connector_status))
        scheduled = False
        for each in targets:
            if each in self.transactions or self.connector_status[each] in _BUSY:
                self._scheduled[each] = status  # applied when its session ends (OCPP 1.6, 5.2)
                scheduled = True
            elif self.connector_status[each] != status:
                self.connector_status[each] = status
                self._status_soon(each)
        return {"status": "Scheduled" if scheduled else "Accepted"}

    def _on_unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if not 0 < connector < len(self.connector_status):
            return {"status": "NotSupported"}
        if connector in self.transactions:  # unlocking ends the session (OCPP 1.6, 5.18)
            self._soon(lambda session: self._stop_transaction(session, connector, "UnlockCommand"))
        return {"status": "Unlocked"}

    def _on_reserve_now(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if connector == 0 or not 0 < connector < len(self.connector_status):
            return {"status": "Rejected"}  # ReserveConnectorZeroSupported is false
        status = self.connector_status[connector]
        if status == "Unavailable":
            return {"status": "Unavailable"}
        if connector in self.transactions or status not in ("Available", "Reserved"):
            return {"status": "Occupied"}
        if connector in self.reservations and (
            self.reservations[connector][0] != payload["reservationId"]
        ):
            return {"status": "Occupied"}
        expiry = _seconds_until(payload["expiryDate"])
        if not expiry:
            return {"status": "Rejected"}  # expired already
        self.reservations[connector] = (payload["reservationId"], payload["idTag"])
        self._soon(self._start_timer(f"reservation:{connector}", expiry))
        if status != "Reserved":
            self.connector_status[connector] = "Reserved"
            self._status_soon(connector)
        return {"status": "Accepted"}

    def _on_cancel_reservation(self, payload: dict[str, Any]) -> dict[str, Any]:
        for connector, (reservation, _) in self.reservations.items():
            if reservation == payload["reservationId"]:
                self._end_reservation(connector)
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def _on_get_local_list_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"listVersion": self.local_list_version}

    def _on_send_local_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        entries = payload.get("localAuthorizationList", [])
        if payload["updateType"] == "Full":
            updated = {e["idTag"]: e["idTagInfo"] for e in entries if "idTagInfo" in e}
        else:  # Differential: an entry without idTagInfo removes its idTag
            updated = dict(self.local_list)
            for entry in entries:
                if "idTagInfo" in entry:
                    updated[entry["idTag"]] = entry["idTagInfo"]
                else:
                    updated.pop(entry["idTag"], None)
        if len(updated) > self.configuration.int_value("LocalAuthListMaxLength"):
            return {"status": "Failed"}
        self.local_list, self.local_list_version = updated, payload["listVersion"]
        return {"status": "Accepted"}

    def _on_set_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, profile = payload["connectorId"], payload["csChargingProfiles"]
        if not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        if profile["chargingProfilePurpose"] == "TxProfile" and connector not in self.transactions:
            return {"status": "Rejected"}  # a TxProfile needs a transaction (OCPP 1.6, 5.16)
        kept = [
            p
            for p in self.charging_profiles.get(connector, [])
            if p["chargingProfileId"] != profile["chargingProfileId"]
            and (p["chargingProfilePurpose"], p["stackLevel"])
            != (profile["chargingProfilePurpose"], profile["stackLevel"])
        ]
        self.charging_profiles[connector] = [*kept, profile]
        transaction = self.transactions.get(connector)
        if transaction is not None:
            to_zero = _limits_to_zero(profile)
            self._soon(lambda session: self._limit(session, transaction, to_zero))
        return {"status": "Accepted"}

    async def _limit(self, session: OcppSession, transaction: Transaction, to_zero: bool) -> None:
        """A profile limits a session to 0 (SuspendedEVSE), or lifts that limit."""
        if self.transactions.get(transaction.connector) is not transaction:
            return
        if to_zero != transaction.limited:
            self._meter(transaction)
            transaction.limited = to_zero
            status = (
                "SuspendedEVSE" if to_zero else "SuspendedEV" if transaction.full else "Charging"
            )
            await self._set_status(session, transaction.connector, status)

    def _on_clear_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        def matches(connector: int, profile: dict[str, Any]) -> bool:
            if "id" in payload:
                return profile["chargingProfileId"] == payload["id"]
            return all(
                value == (connector if key == "connectorId" else profile.get(key))
                for key, value in payload.items()
            )

        cleared = 0
        for connector, profiles in self.charging_profiles.items():
            kept = [p for p in profiles if not matches(connector, p)]
            cleared += len(profiles) - len(kept)
            self.charging_profiles[connector] = kept
            transaction = self.transactions.get(connector)
            if transaction is not None and not any(_limits_to_zero(p) for p in kept):
                self._soon(lambda session, t=transaction: self._limit(session, t, False))
        return {"status": "Accepted" if cleared else "Unknown"}

    def _on_get_composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The stored profile of highest stack level for the connector (or the charge point),
        reported back; no real composition of several profiles."""
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        profiles = self.charging_profiles.get(connector) or self.charging_profiles.get(0) or []
        if not profiles:
            return {"status": "Rejected"}
        profile = max(profiles, key=lambda p: p["stackLevel"])
        schedule = dict(profile["chargingSchedule"])
        schedule["duration"] = min(
            schedule.get("duration", payload["duration"]), payload["duration"]
        )
        schedule.pop("startSchedule", None)
        return {
            "status": "Accepted",
            "connectorId": connector,
            "scheduleStart": _now(),
            "chargingSchedule": schedule,
        }

    def _on_clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted"}

    def _on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}  # no vendor extensions here

    _handlers: ClassVar[dict[str, Callable[[ChargePoint, dict[str, Any]], dict[str, Any]]]] = {
        "CancelReservation": _on_cancel_reservation,
        "ChangeAvailability": _on_change_availability,
        "ChangeConfiguration": _on_change_configuration,
        "ClearCache": _on_clear_cache,
        "ClearChargingProfile": _on_clear_charging_profile,
        "DataTransfer": _on_data_transfer,
        "GetCompositeSchedule": _on_get_composite_schedule,
        "GetConfiguration": _on_get_configuration,
        "GetDiagnostics": _on_get_diagnostics,
        "GetLocalListVersion": _on_get_local_list_version,
        "RemoteStartTransaction": _on_remote_start_transaction,
        "RemoteStopTransaction": _on_remote_stop_transaction,
        "ReserveNow": _on_reserve_now,
        "Reset": _on_reset,
        "SendLocalList": _on_send_local_list,
        "SetChargingProfile": _on_set_charging_profile,
        "TriggerMessage": _on_trigger_message,
        "UnlockConnector": _on_unlock_connector,
        "UpdateFirmware": _on_update_firmware,
    }


FAULT_RECOVERY = 5.0
"""Seconds a faulted connector takes to be Available again."""

QUEUE_LIMIT = 1000
"""Transaction messages a charge point holds while offline; past it, MeterValues are dropped."""

_SESSION_TIMERS = ("arrival", "meter:", "end:", "full:", "fault:", "recover:")
"""Timers of charging sessions and their arrivals: they go on while offline."""

_BUSY = frozenset({"Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Faulted"})
"""Connector statuses in which availability cannot change at once."""

_STEP_WEIGHT = {"Downloading": 1.0, "Installing": 1.0, "Uploading": 1.0}
"""How many ``update_step``s follow each status before the next; 0 for the rest."""


def _version_of(location: str) -> str:
    """A firmware version from its file's name: ``ftp://fw/vc-2.1.0.bin`` is ``vc-2.1.0``."""
    name = location.rstrip("/").rsplit("/", 1)[-1]
    return (name.rsplit(".", 1)[0] if "." in name else name)[:50] or "updated"


def _seconds_until(timestamp: str) -> float:
    try:
        when = datetime.fromisoformat(timestamp)
    except ValueError:
        return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def _nothing(session: OcppSession) -> None:
    """A job that only wakes the loop, to look at what a CSMS call changed."""


def _limits_to_zero(profile: dict[str, Any]) -> bool:
    periods = profile["chargingSchedule"]["chargingSchedulePeriod"]
    return bool(periods) and periods[0]["limit"] == 0


def _id_status(answer: dict[str, Any] | None) -> str | None:
    return answer["idTagInfo"]["status"] if answer else None


def _response_check(action: str) -> Callable[[dict[str, Any]], None]:
    return lambda payload: OCPP16.schemas.check_answer(action, payload)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _seconds(value: object) -> float:
    """A positive, finite number of seconds from a CSMS's answer, else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        seconds = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return 0.0
    return seconds if 0 < seconds < math.inf else 0.0


_boot_answer = _response_check("BootNotification")
_start_answer = _response_check("StartTransaction")


async def _abort(session: OcppSession) -> None:
    session.abort()


def arrival_share(config: ChargePointConfig, now: float | None = None) -> float:
    """The share of candidate session arrivals that arrive at ``now`` (see ``_until_arrival``):
    the hour's weight in :data:`DAY_PROFILE` over the peak's, or 1 without a compressed day."""
    if not config.day_length:
        return 1.0
    return DAY_PROFILE[int(hour_of_day(config, now))] / _PEAK


def hour_of_day(config: ChargePointConfig, now: float | None = None) -> float:
    """The hour (0 to 24) of the compressed day at wall-clock time ``now``."""
    elapsed = (time.time() if now is None else now) - config.day_start
    return (config.day_hour + 24 * elapsed / config.day_length) % 24


def next_beat(previous: float, interval: float, now: float) -> float:
    """The first beat after ``now`` on the schedule ``previous + k * interval``.

    A fixed schedule, not "interval after the last answer", so slow answers do not thin out
    the load; beats missed while a call was in flight are skipped, not sent in a burst.
    """
    return previous + interval * (1 + max(0.0, now - previous) // interval)
