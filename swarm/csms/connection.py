"""One charge point's connection as the embedded CSMS holds it, and the error of one it lacks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from swarm.csms.versions import Handler
from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect


class NotConnectedError(LookupError):
    """The charge point is not connected, or its connection closed before it answered."""


@dataclass(eq=False, slots=True)
class CsmsConnection:
    """One connected charge point, and the version it speaks: its dialect and the CSMS's answers
    to it by action, looked up once when it connects."""

    charge_point_id: str
    websocket: ServerConnection
    dialect: Dialect
    handlers: Mapping[str, Handler]
    # The CSMS's own CALL: OCPP-J allows one in flight per direction. Its future gets the
    # answer, or None when the connection closes first.
    call_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: tuple[str, asyncio.Future[ocppj.CallResult | ocppj.CallError | None]] | None = None
    closed: bool = False
    delayed: set[asyncio.Task[None]] | None = None  # answers held back by a fault

    def resolve(self, answer: ocppj.CallResult | ocppj.CallError) -> None:
        """Hand ``answer`` to the CSMS's call in flight if it answers that; drop it otherwise."""
        pending = self.pending
        if pending is not None and pending[0] == answer.unique_id and not pending[1].done():
            pending[1].set_result(answer)
