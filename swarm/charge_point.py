"""The virtual charge point: an OCPP 1.6J charger's life on one WebSocket, in plain asyncio.

A :class:`ChargePoint` connects, boots and then heartbeats and authorizes until it is stopped,
following OCPP 1.6 section 4.2 for the boot:

- Accepted: heartbeat every ``interval`` seconds (or the configured override);
- Pending: send no CALL, answer the CSMS's calls, boot again after ``interval``;
- Rejected: send nothing and answer nothing until ``interval`` has passed, then boot again;
- no valid answer (a CALLERROR, a timeout, an answer that breaks the schema): a failed boot,
  reported, and retried after the fallback interval.

Once accepted, it reports each connector's status and answers what a CSMS asks: configuration
keys (a changed HeartbeatInterval takes effect at once), TriggerMessage, Reset (a reboot and a new
boot), ChangeAvailability, UnlockConnector, ClearCache and DataTransfer. Other OCPP 1.6 commands
get a NotSupported CALLERROR.

A lost connection is reported and followed by a reconnect after an exponential backoff with full
jitter, and a new boot. Everything runs in the event loop; the charge point knows nothing of Locust.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from websockets.exceptions import ConnectionClosed

from . import __version__, ocppj, schemas
from .configuration import Configuration
from .rpc import (
    WEBSOCKET,
    CallRejected,
    CallTimeout,
    InvalidAnswer,
    OcppSession,
    Sample,
    SampleSink,
    describe_close,
    open_session,
)
from .schemas import CSMS_ACTIONS

logger = logging.getLogger(__name__)


class State(enum.Enum):
    """Where a charge point is in its life; what a fleet overview counts."""

    CONNECTING = "connecting"
    BOOTING = "booting"
    PENDING = "pending"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    BOOT_FAILED = "boot failed"
    """The boot was answered with a CALLERROR or an invalid answer, or not at all."""
    OFFLINE = "offline"
    STOPPED = "stopped"


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
    fallback_interval: float = 60.0
    """Seconds to use where the CSMS's boot answer gives no interval: an interval of 0 (OCPP
    leaves the choice to the charge point), an unusable one, or no valid answer at all."""
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    connectors: int = 1
    """Connectors per charge point (OCPP connector ids 1..n; 0 is the charge point itself)."""
    connect_options: Mapping[str, Any] = field(default_factory=dict)
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
        for name in ("heartbeat_interval", "authorize_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more seconds, got {getattr(self, name)}")
        for name in ("call_timeout", "connect_timeout", "fallback_interval", "reconnect_min"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be more than 0 seconds, got {getattr(self, name)}")
        if not 1 <= self.connectors <= 99:
            raise ValueError(f"connectors must be 1 to 99, got {self.connectors}")
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be at least reconnect_min")
        if self.authorize_interval and not self.id_tags:
            raise ValueError("id_tags must name at least one idTag when authorizing")
        for tag in self.id_tags:
            if not 0 < len(tag) <= 20:
                raise ValueError(
                    f"id_tags: an idTag is 1 to 20 characters (OCPP IdToken), got {tag!r}"
                )


_BOOT_STATES = {"Pending": State.PENDING, "Rejected": State.REJECTED}


class ChargePoint:
    """One virtual charge point. :meth:`run` is its whole life; cancel the task to stop it."""

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
        self.energy_wh = [0] * (config.connectors + 1)
        """Energy register of each connector (index 0 unused): it only ever grows."""
        self._rng = rng or random
        self._session: OcppSession | None = None
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        self._reschedule = False
        self._reboot = False

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
                    session = self._session = await open_session(
                        self.url,
                        self.sink,
                        call_timeout=self.config.call_timeout,
                        connect_timeout=self.config.connect_timeout,
                        handler=self.handle_call,
                        **self.config.connect_options,
                    )
                except Exception:
                    pass  # reported by open_session
                else:
                    await self._operate(session)
                # The backoff grows until a boot is accepted, not merely until a connect
                # succeeds: a CSMS that accepts and drops connections must see it grow too.
                failures = 0 if self.state is State.ACCEPTED else failures + 1
                self.state = State.OFFLINE
                if self._reboot:  # a Reset: back after a reboot's pause, not a backoff
                    self._reboot = False
                    await asyncio.sleep(self.config.reconnect_min)
                else:
                    await asyncio.sleep(self._backoff(failures))
        finally:
            self.state = State.STOPPED
            if self._session is not None and not self._session.closed:
                await self._session.close()

    def _backoff(self, failures: int) -> float:
        """Full jitter: uniform in [min, min(max, min * 2**failures)]; a fleet spreads out."""
        ceiling = self.config.reconnect_min * 2.0 ** min(failures, 30)
        return self._rng.uniform(self.config.reconnect_min, min(self.config.reconnect_max, ceiling))

    async def _operate(self, session: OcppSession) -> None:
        """Boot and heartbeat on one connection until it is lost. Never raises but to cancel."""
        self._outbox.clear()
        try:
            interval = await self._boot(session)
            if not self._reboot:
                self._set_heartbeat_interval(self.config.heartbeat_interval or interval)
                await self._send_statuses(session, range(len(self.connector_status)))
                await self._heartbeat_and_authorize(session)
        except ConnectionClosed as exc:
            if not self._reboot:
                self.sink(Sample(WEBSOCKET, "connection lost", 0.0, describe_close(exc)))
        except Exception as exc:
            # Whatever went wrong, one charge point must not vanish from the fleet unseen.
            logger.debug("charge point %s failed", self.id, exc_info=True)
            self.sink(Sample(WEBSOCKET, "charge point error", 0.0, type(exc).__name__))
            await session.close()

    def _boot_payload(self) -> dict[str, Any]:
        return {
            "chargePointVendor": self.config.vendor,
            "chargePointModel": self.config.model,
            "chargePointSerialNumber": self.id,
            "chargeBoxSerialNumber": self.id,
            "firmwareVersion": self.config.firmware_version,
        }

    async def _boot(self, session: OcppSession) -> float:
        """Boot until Accepted (or a Reset); return the heartbeat interval the CSMS gave."""
        loop = asyncio.get_running_loop()
        while True:
            self.state = State.BOOTING
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
            while not await session.sleep(max(0.0, deadline - loop.time())):
                if await self._after_wake(session, booted=False) or self._reboot:
                    break
            if self._reboot:
                await session.close()
                return interval

    async def _heartbeat_and_authorize(self, session: OcppSession) -> None:
        loop = asyncio.get_running_loop()
        authorize_mean = self.config.authorize_interval
        interval = self.heartbeat_interval or self.config.fallback_interval
        # The first beat at a random phase: charge points that booted together (Locust starts
        # a whole second's worth of users at once) would otherwise beat in step forever.
        next_heartbeat = loop.time() + self._rng.uniform(0, interval)
        next_authorize = (
            loop.time() + self._rng.expovariate(1 / authorize_mean)
            if authorize_mean
            else float("inf")
        )
        while True:
            due = min(next_heartbeat, next_authorize)
            if not await session.sleep(max(0.0, due - loop.time())):
                await self._after_wake(session, booted=True)
                if self._reboot:
                    await session.close()
                    return
                if self._reschedule:  # a new HeartbeatInterval takes effect at once
                    self._reschedule = False
                    interval = self.heartbeat_interval or interval
                    next_heartbeat = loop.time() + interval
                continue
            # Act on what was due when the timer fired; re-reading the clock here would spin,
            # for a loop's clock is coarser than the deadlines (1 ms under uvloop).
            if next_heartbeat <= due:
                await self._call_quietly(session, "Heartbeat", {})
                next_heartbeat = next_beat(next_heartbeat, interval, loop.time())
            if next_authorize <= due:
                tag = self._rng.choice(self.config.id_tags)
                await self._call_quietly(session, "Authorize", {"idTag": tag})
                next_authorize = loop.time() + self._rng.expovariate(1 / authorize_mean)

    async def _after_wake(self, session: OcppSession, *, booted: bool) -> bool:
        """Send what CSMS calls triggered; return whether a BootNotification is asked for."""
        boot_asked = False
        while self._outbox:
            action, payload = self._outbox.pop(0)
            if action == "BootNotification" and not booted:
                boot_asked = True  # the boot loop sends it, and acts on the answer
            else:
                await self._call_quietly(session, action, payload)
        return boot_asked

    async def _send_statuses(self, session: OcppSession, connectors: Iterable[int]) -> None:
        for connector in connectors:
            await self._call_quietly(session, "StatusNotification", self._status(connector))

    def _status(self, connector: int) -> dict[str, Any]:
        return {
            "connectorId": connector,
            "errorCode": "NoError",
            "status": self.connector_status[connector],
        }

    @staticmethod
    async def _call_quietly(session: OcppSession, action: str, payload: dict[str, Any]) -> None:
        """A call whose failure is reported (by the session) and otherwise changes nothing."""
        with contextlib.suppress(CallRejected, CallTimeout, InvalidAnswer):
            await session.call(action, payload)

    def _set_heartbeat_interval(self, interval: float) -> None:
        # The key holds whole seconds (OCPP); the swarm's override may be a fraction of one.
        self.heartbeat_interval = interval
        self.configuration.set("HeartbeatInterval", max(1, min(round(interval), 2**31 - 1)))

    def _send_soon(self, action: str, payload: dict[str, Any]) -> None:
        """Queue a CALL for the charge point's loop: it goes after the current answer."""
        self._outbox.append((action, payload))
        if self._session is not None:
            self._session.wake()

    # CSMS-initiated calls. Each handler returns the answer's payload; what the call sets off
    # (a triggered message, a reboot) is queued and happens after the answer is sent.

    def handle_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a CSMS-initiated CALL after checking its payload against the 1.6 schema."""
        handler = self._handlers.get(action)
        if handler is None:
            if action in CSMS_ACTIONS:
                raise ocppj.FrameError(ocppj.NOT_SUPPORTED, f"{action} is not supported yet")
            raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, "not an OCPP 1.6 action")
        schemas.validate(action, payload)
        return handler(self, payload)

    def _on_get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.configuration.get_configuration(payload)

    def _on_change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer, _ = self.configuration.change_configuration(payload)
        return answer

    def _heartbeat_interval_changed(self, name: str, value: str) -> None:
        self.heartbeat_interval = float(value) or self.config.fallback_interval
        self._reschedule = True
        if self._session is not None:
            self._session.wake()

    def _on_trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        message, connector = payload["requestedMessage"], payload.get("connectorId")
        if connector is not None and not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        connectors = [connector] if connector is not None else range(len(self.connector_status))
        if message == "BootNotification":
            self._send_soon(message, self._boot_payload())
        elif message == "Heartbeat":
            self._send_soon(message, {})
        elif message == "StatusNotification":
            for each in connectors:
                self._send_soon(message, self._status(each))
        elif message == "MeterValues":
            for each in connectors:
                if each:  # connector 0 has no meter of its own here
                    self._send_soon(message, self._meter_values(each))
        elif message in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
            self._send_soon(message, {"status": "Idle"})
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def _meter_values(self, connector: int) -> dict[str, Any]:
        return {
            "connectorId": connector,
            "meterValue": [
                {
                    "timestamp": _now(),
                    "sampledValue": [
                        {
                            "value": str(self.energy_wh[connector]),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                        }
                    ],
                }
            ],
        }

    def _on_reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reboot = True  # after the answer: close, come back after a pause, boot again
        if self._session is not None:
            self._session.wake()
        return {"status": "Accepted"}

    def _on_change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connector_status):
            return {"status": "Rejected"}
        status = "Available" if payload["type"] == "Operative" else "Unavailable"
        for each in [connector] if connector else range(len(self.connector_status)):
            if self.connector_status[each] != status:
                self.connector_status[each] = status
                self._send_soon("StatusNotification", self._status(each))
        return {"status": "Accepted"}

    def _on_unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        ok = 0 < connector < len(self.connector_status)
        return {"status": "Unlocked" if ok else "NotSupported"}

    def _on_clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted"}

    def _on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}  # no vendor extensions here

    _handlers: ClassVar[dict[str, Callable[[ChargePoint, dict[str, Any]], dict[str, Any]]]] = {
        "ChangeAvailability": _on_change_availability,
        "ChangeConfiguration": _on_change_configuration,
        "ClearCache": _on_clear_cache,
        "DataTransfer": _on_data_transfer,
        "GetConfiguration": _on_get_configuration,
        "Reset": _on_reset,
        "TriggerMessage": _on_trigger_message,
        "UnlockConnector": _on_unlock_connector,
    }


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


def _boot_answer(payload: dict[str, Any]) -> None:
    schemas.validate("BootNotification", payload, response=True)


def next_beat(previous: float, interval: float, now: float) -> float:
    """The first beat after ``now`` on the schedule ``previous + k * interval``.

    A fixed schedule, not "interval after the last answer", so slow answers do not thin out
    the load; beats missed while a call was in flight are skipped, not sent in a burst.
    """
    return previous + interval * (1 + max(0.0, now - previous) // interval)
