"""How a station connects and lets go: a session on a new connection with its credentials
(:mod:`swarm.station.credentials`), the backoff between connects, and a connection dropped or
closed on purpose.

:class:`Connecting` is a mixin of :class:`swarm.station.runner.Station`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from swarm.protocol.rpc import OcppSession, open_session
from swarm.protocol.samples import WEBSOCKET, Sample
from swarm.station.state import State

if TYPE_CHECKING:
    import random

    from swarm.protocol.samples import SampleSink
    from swarm.protocol.trace import FrameTrace
    from swarm.station.config import ChargePointConfig

Job = Callable[[OcppSession], Awaitable[None]]


class Connecting:
    """A station's connects, its backoff, and the ends of connections it chooses."""

    __slots__ = ()

    url: str
    sink: SampleSink
    trace: FrameTrace | None
    config: ChargePointConfig
    state: State
    _rng: random.Random
    _session: OcppSession | None
    _dropping: str | None

    async def _connect(self) -> OcppSession | None:
        """A session on a new connection, or None when the connect failed (reported)."""
        try:
            options = self._connect_options()
        except Exception as exc:  # its own TLS context did not build
            self.sink(Sample(WEBSOCKET, "connect", 0.0, f"{type(exc).__name__}: {exc}"))
            return None
        try:
            session = self._session = await self._meanwhile(
                open_session(
                    self.url,
                    self.sink,
                    dialect=self.dialect,
                    call_timeout=self.config.call_timeout,
                    connect_timeout=self.config.connect_timeout,
                    handler=self.handle_call,
                    check_answers=(
                        self.dialect.schemas.check_answer if self.config.validate else None
                    ),
                    ping_interval=self._ping_interval(),
                    dead_after=self.config.dead_after,
                    trace=self.trace,
                    **options,
                )
            )
        except Exception as exc:  # reported by open_session
            self._connect_failed(exc)
            return None
        return session

    def _backoff(self, failures: int) -> float:
        """The pause before the next connect after ``failures`` in a row (1 after a booted
        connection is lost): uniform in [min, min(max, min * 2**failures)], full jitter, so
        that a fleet that lost its connections together spreads out as it comes back."""
        ceiling = self.config.reconnect_min * 2.0 ** min(failures, 30)
        return self._rng.uniform(self.config.reconnect_min, min(self.config.reconnect_max, ceiling))

    def drop(self) -> None:
        """Lose the connection, as a station whose network fails: no close handshake, then a
        reconnect after the backoff and a new boot. Reported as a ``dropped`` WebSocket event,
        not a failure. Once booted, it waits for the CALL in flight, so that none fails for it.
        """
        session = self._session
        if session is None or session.closed or self._dropping:
            return
        self._dropping = "dropped"
        if self.state is State.ACCEPTED:
            self._soon(_abort)
        else:
            session.abort()

    def _reconnect(self) -> None:
        """Close the connection once the current answer is sent, and connect again after the
        usual pause, with what the CSMS just changed: a password (A01), a security profile
        (A05). Reported as a ``reconnect`` WebSocket event, not a failure."""
        if self._session is not None and not self._dropping:
            self._dropping = "reconnect"
            self._soon(_close)


async def _abort(session: OcppSession) -> None:
    session.abort()


async def _close(session: OcppSession) -> None:
    await session.close()


DROPS: tuple[Job, ...] = (_abort, _close)
"""The jobs that end a connection on purpose: gone with the connection they were meant for."""
