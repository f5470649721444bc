"""What a version's package gives the station: the words it says on the wire.

:class:`~swarm.station.runner.Station` runs the life of a charger; what it sends and how it
answers are its version's. A version's charge point
(:class:`swarm.ocpp16.charge_point.ChargePoint`) derives from the station and fills in what
:class:`Vocabulary` leaves open: its
:class:`~swarm.protocol.dialect.Dialect`, its boot request, its statuses, its transaction
messages, the actions of its timers and the handlers of its CSMS's calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect
from swarm.protocol.rpc import OcppSession
from swarm.station.composite import Installed
from swarm.station.connector import Status, Transaction
from swarm.station.schedule import Key, Timer

Handler = Callable[[Any, dict[str, Any]], dict[str, Any]]
"""Answers a CSMS command: ``(station, payload) -> response payload``, the payload valid per its
schema; raises :class:`~swarm.protocol.ocppj.FrameError` to answer with a CALLERROR."""

TimerAction = Callable[[Any, OcppSession | None, Key], Awaitable[None]]
"""What a station does when a deadline of a kind falls due: ``(station, session, key)``; with
no session (offline), only a charging session's timers fire."""


class Vocabulary:
    """The part of a station that its version must give."""

    __slots__ = ()

    dialect: ClassVar[Dialect]
    timer_actions: ClassVar[Mapping[Timer, TimerAction]] = {}
    """The action for each kind of deadline but the heartbeat, which the station sends itself."""
    handlers: ClassVar[Mapping[str, Handler]] = {}
    """The handler of each CSMS command the version answers."""
    resumes: ClassVar[bool] = False
    """Whether a station that lost its connection but did not reboot comes back without a
    boot (2.0.1, B04), by :meth:`_resume`."""

    async def _boot_request(self, session: OcppSession) -> dict[str, Any]:
        """Send the boot CALL; its checked answer, or {} when there is no good one."""
        raise NotImplementedError

    async def _send_statuses(self, session: OcppSession, connectors: Iterable[int]) -> None:
        """Report the statuses of ``connectors``."""
        raise NotImplementedError

    async def _resume(self, session: OcppSession, offline_for: float) -> None:
        """Come back on a new connection after ``offline_for`` seconds, without a boot."""
        raise NotImplementedError

    async def _charge(
        self, session: OcppSession | None, connector: int, id_tag: str, *, authorize: bool = True
    ) -> None:
        """An EV plugs in at ``connector``: authorize, start, charge until its end is due."""
        raise NotImplementedError

    async def _report_charging(
        self, session: OcppSession | None, transaction: Transaction, status: Status
    ) -> None:
        """Say that a session's EV goes ``status``: Charging, SuspendedEV or SuspendedEVSE."""
        raise NotImplementedError

    def _installed_profiles(self) -> list[Installed]:
        """The charging profiles in force, each with the connector (EVSE) it is set on."""
        raise NotImplementedError

    async def _stop_transactions(self, session: OcppSession, reason: str | None) -> None:
        """Stop every session before the connection closes: for a reboot of ``reason``, or
        (None) because the station stops."""
        raise NotImplementedError

    async def _flush_outbox(self, session: OcppSession) -> None:
        """Send the outbox's messages, oldest first."""
        raise NotImplementedError

    def _meter_interval(self) -> float:
        """Seconds between a session's meter values."""
        raise NotImplementedError

    def _retry_policy(self) -> tuple[int, float]:
        """How often a transaction message is sent in all while the CSMS fails to process it,
        and the seconds to wait before the next, times the failures so far."""
        raise NotImplementedError

    def _ping_setting(self) -> int:
        """The version's WebSocketPingInterval: whole seconds between pings, 0 for none."""
        raise NotImplementedError

    def _with_reason(self, status: str, reason: str, info: str) -> dict[str, Any]:
        """An answer of ``status``, with its ``reason`` and ``info`` where the version's answers
        carry one (2.0.1's statusInfo); 1.6's carry none."""
        return {"status": status}

    def handle_call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a CSMS-initiated CALL with its handler, after checking its payload against
        the version's schema. A CSMS command without one is NotSupported, an action the version
        does not have a CSMS send NotImplemented."""
        handler = self.handlers.get(action)
        if handler is None:
            if action in self.dialect.csms_actions:
                raise ocppj.FrameError(ocppj.NOT_SUPPORTED, f"{action} is not supported yet")
            raise ocppj.FrameError(
                ocppj.NOT_IMPLEMENTED, f"not an OCPP {self.dialect.version} command"
            )
        self.dialect.schemas.validate(action, payload)
        return handler(self, payload)
