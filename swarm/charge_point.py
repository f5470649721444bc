"""The virtual charge point: an OCPP 1.6J charger's life on one WebSocket, in plain asyncio.

A :class:`ChargePoint` connects, boots and then heartbeats and authorizes until it is stopped,
following OCPP 1.6 section 4.2 for the boot:

- Accepted: heartbeat every ``interval`` seconds (or the configured override);
- Pending: send no CALL, answer the CSMS's calls, boot again after ``interval``;
- Rejected: send nothing and answer nothing until ``interval`` has passed, then boot again;
- no valid answer (a CALLERROR, a timeout, an answer that breaks the schema): a failed boot,
  reported, and retried after the fallback interval.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed

from . import __version__, ocppj, schemas
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
        self._rng = rng or random
        self._session: OcppSession | None = None

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
        try:
            interval = await self._boot(session)
            self.heartbeat_interval = self.config.heartbeat_interval or interval
            await self._heartbeat_and_authorize(session, self.heartbeat_interval)
        except ConnectionClosed as exc:
            self.sink(Sample(WEBSOCKET, "connection lost", 0.0, describe_close(exc)))
        except Exception as exc:
            # Whatever went wrong, one charge point must not vanish from the fleet unseen.
            logger.debug("charge point %s failed", self.id, exc_info=True)
            self.sink(Sample(WEBSOCKET, "charge point error", 0.0, type(exc).__name__))
            await session.close()

    async def _boot(self, session: OcppSession) -> float:
        """Boot until Accepted; return the heartbeat interval the CSMS gave."""
        payload = {
            "chargePointVendor": self.config.vendor,
            "chargePointModel": self.config.model,
            "chargePointSerialNumber": self.id,
            "chargeBoxSerialNumber": self.id,
            "firmwareVersion": self.config.firmware_version,
        }
        while True:
            self.state = State.BOOTING
            session.answer_calls = True
            try:
                answer = await session.call("BootNotification", payload, check=_boot_answer)
            except (CallRejected, CallTimeout, InvalidAnswer):
                answer = {}  # reported by the session; boot again after the fallback interval
            status = answer.get("status")
            interval = _seconds(answer.get("interval")) or self.config.fallback_interval
            if status == "Accepted":
                self.state = State.ACCEPTED
                return interval
            # Pending answers CSMS calls while it waits; Rejected (and a failed boot) stays mute.
            self.state = _BOOT_STATES.get(status, State.BOOT_FAILED)
            session.answer_calls = status == "Pending"
            await session.sleep(interval)

    async def _heartbeat_and_authorize(
        self, session: OcppSession, heartbeat_interval: float
    ) -> None:
        loop = asyncio.get_running_loop()
        authorize_mean = self.config.authorize_interval
        # The first beat at a random phase: charge points that booted together (Locust starts
        # a whole second's worth of users at once) would otherwise beat in step forever.
        next_heartbeat = loop.time() + self._rng.uniform(0, heartbeat_interval)
        next_authorize = (
            loop.time() + self._rng.expovariate(1 / authorize_mean)
            if authorize_mean
            else float("inf")
        )
        while True:
            due = min(next_heartbeat, next_authorize)
            await session.sleep(max(0.0, due - loop.time()))
            # Act on what was due when the timer fired; re-reading the clock here would spin,
            # for a loop's clock is coarser than the deadlines (1 ms under uvloop).
            if next_heartbeat <= due:
                await self._call_quietly(session, "Heartbeat", {})
                next_heartbeat = next_beat(next_heartbeat, heartbeat_interval, loop.time())
            if next_authorize <= due:
                tag = self._rng.choice(self.config.id_tags)
                await self._call_quietly(session, "Authorize", {"idTag": tag})
                next_authorize = loop.time() + self._rng.expovariate(1 / authorize_mean)

    @staticmethod
    async def _call_quietly(session: OcppSession, action: str, payload: dict[str, Any]) -> None:
        """A call whose failure is reported (by the session) and otherwise changes nothing."""
        with contextlib.suppress(CallRejected, CallTimeout, InvalidAnswer):
            await session.call(action, payload)

    def handle_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a CSMS-initiated CALL. None is implemented yet: known ones are NotSupported."""
        if action in CSMS_ACTIONS:
            raise ocppj.FrameError(ocppj.NOT_SUPPORTED, f"{action} is not supported yet")
        raise ocppj.FrameError(ocppj.NOT_IMPLEMENTED, f"{action} is not an OCPP 1.6 action")


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
