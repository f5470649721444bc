"""A websockets client connection that times each message where it is read off the socket."""

from __future__ import annotations

import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State

OPENED = Response(101, "Switching Protocols", Headers())
"""What a connection keeps of its handshake's response once open: one for every connection."""


class TimedConnection(ClientConnection):
    """A client connection that hands each complete message to a callback, with its arrival time.

    Messages bypass ``recv()``: :meth:`process_event` runs in the transport's read callback, so
    the arrival time is taken before any task is scheduled. Messages that arrive before
    :meth:`attach` are held and handed over by it.
    """

    _on_message: Callable[[bytes, Opcode, float], None] | None = None
    _on_lost: Callable[[ConnectionClosed], None] | None = None
    on_pong: Callable[[], None] | None = None
    _early: list[tuple[bytes, Opcode, float]] | None = None
    _fragments: list[bytes] | None = None
    _fragments_opcode: Opcode = Opcode.TEXT

    def attach(
        self,
        on_message: Callable[[bytes, Opcode, float], None],
        on_lost: Callable[[ConnectionClosed], None],
    ) -> None:
        """Deliver messages to ``on_message`` and the loss of the connection to ``on_lost``.

        The handshake is over: the connection lets its request and response go, headers it
        would keep to its end (2.2 KiB a charge point: ``python -m bench.memory``; websockets'
        parser still holds the response). ``response`` stays a Response, which tells frames
        from the handshake's answer."""
        self.request, self.response = None, OPENED
        self._on_message, self._on_lost = on_message, on_lost
        early, self._early = self._early or [], None
        for message in early:
            on_message(*message)
        if self.protocol.state is State.CLOSED:
            on_lost(self.close_exc)

    def process_event(self, event: object) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake response
            return
        arrived = time.perf_counter()
        opcode = event.opcode
        if opcode is Opcode.CONT:
            if self._fragments is None:  # the protocol layer rejects this; stay defensive
                return
            self._fragments.append(bytes(event.data))
            if not event.fin:
                return
            data, opcode = b"".join(self._fragments), self._fragments_opcode
            self._fragments = None
        elif opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not event.fin:
                self._fragments, self._fragments_opcode = [bytes(event.data)], opcode
                return
            data = bytes(event.data)
        else:
            super().process_event(event)  # pings, pongs and close frames
            if opcode is Opcode.PONG and self.on_pong is not None:
                self.on_pong()
            return
        if self._on_message is not None:
            self._on_message(data, opcode, arrived)
        else:
            if self._early is None:
                self._early = []
            self._early.append((data, opcode, arrived))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._on_lost is not None:
            self._on_lost(self.close_exc)

    def send_ping_now(self) -> bool:
        """Write a Ping frame at once, from a plain callback; False if the connection is not
        open. Its pong goes to :attr:`on_pong`."""
        if self.protocol.state is not State.OPEN:
            return False
        self.protocol.send_ping(b"")
        self.send_data()
        return True
