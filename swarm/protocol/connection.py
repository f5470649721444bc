"""A client WebSocket connection that times each message where it is read off the socket.

:func:`connect` opens one. The bytes are the loop's (a transport, TLS included), the opening
handshake and the frames websockets' sans-I/O :class:`~websockets.client.ClientProtocol`: no
task, no future and no lock per message. Each complete message goes to a callback from the
transport's read callback, with the time it was read: nothing is scheduled between reading a
frame and stamping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import cast

from websockets.client import ClientProtocol
from websockets.datastructures import HeadersLike
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import USER_AGENT, Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from swarm.protocol.trace import FrameTrace

MessageHandler = Callable[[bytes, Opcode, float], None]
"""Takes a complete message: ``(data, opcode, perf_counter() when its last frame was read)``."""

LossHandler = Callable[[ConnectionClosed], None]
"""Takes the loss of the connection, as the exception that says how it closed."""

WRITE_LIMIT = 32 << 10
"""Bytes the transport may buffer before a sender waits (websockets' default)."""


class Connection(asyncio.Protocol):
    """One client WebSocket connection: messages out, messages in through callbacks.

    Create it with :func:`connect`. Messages read before :meth:`attach` are held and handed
    over by it.
    """

    # One per charge point: slots keep a fleet's connections small.
    __slots__ = (
        "_close_timer",
        "_drained",
        "_early",
        "_fragments",
        "_lost",
        "_on_lost",
        "_on_message",
        "_opened",
        "close_timeout",
        "on_pong",
        "protocol",
        "subprotocol",
        "trace",
        "transport",
    )

    def __init__(
        self, protocol: ClientProtocol, close_timeout: float, trace: FrameTrace | None = None
    ) -> None:
        self.protocol = protocol
        self.close_timeout = close_timeout
        self.trace = trace
        """Records every message sent and received, if set."""
        self.transport: asyncio.Transport | None = None
        self.subprotocol: Subprotocol | None = None
        self.on_pong: Callable[[], None] | None = None
        """Called when a Pong arrives."""
        self._on_message: MessageHandler | None = None
        self._on_lost: LossHandler | None = None
        self._early: list[tuple[bytes, Opcode, float]] | None = None
        self._fragments: tuple[Opcode, list[bytes]] | None = None
        self._opened: asyncio.Future[None] | None = asyncio.get_running_loop().create_future()
        self._lost: asyncio.Future[None] | None = None  # made when someone waits for the end
        self._drained: asyncio.Future[None] | None = None  # made while writing is paused
        self._close_timer: asyncio.TimerHandle | None = None

    @property
    def close_exc(self) -> ConnectionClosed:
        """How the connection closed; only once it has."""
        return self.protocol.close_exc

    def attach(self, on_message: MessageHandler, on_lost: LossHandler) -> None:
        """Deliver messages to ``on_message`` and the loss of the connection to ``on_lost``."""
        self._on_message, self._on_lost = on_message, on_lost
        early, self._early = self._early or [], None
        for message in early:
            on_message(*message)
        if self.transport is None and self.protocol.state is State.CLOSED:
            on_lost(self.close_exc)

    async def send(self, text: str) -> None:
        """Send a text message; wait while the transport's buffer is full.

        Raises :class:`~websockets.exceptions.ConnectionClosed` if the connection is not open.
        """
        if self.protocol.state is not State.OPEN:
            await self.wait_closed()
            raise self.close_exc
        data = text.encode()
        self.protocol.send_text(data)
        self._flush()
        if self.trace is not None:
            self.trace.record(True, data, time.perf_counter())
        if self._drained is not None:
            await asyncio.shield(self._drained)

    def send_ping_now(self) -> bool:
        """Write a Ping frame at once, from a plain callback; False if the connection is not
        open. Its pong goes to :attr:`on_pong`."""
        if self.protocol.state is not State.OPEN:
            return False
        self.protocol.send_ping(b"")
        self._flush()
        return True

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close with a close handshake; wait for its end, at most :attr:`close_timeout` s."""
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, reason)
            self._flush()
            self._expect_close()
        await self.wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the TCP connection is closed."""
        if self.transport is None:
            return
        if self._lost is None:
            self._lost = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._lost)

    def abort(self) -> None:
        """Drop the TCP connection at once, with no close handshake."""
        if self.transport is not None:
            self.transport.abort()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's is one, not a subclass
        transport.set_write_buffer_limits(WRITE_LIMIT)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        protocol = self.protocol
        protocol.receive_data(data)
        events = protocol.events_received()
        self._flush()  # pongs and the close frame that answers one
        if protocol.close_expected():
            self._expect_close()
        for event in events:
            if type(event) is Frame:
                self._on_frame(event, arrived)
            elif isinstance(event, Response):
                self._handshake_done(event)
        if protocol.handshake_exc is not None:  # also a response that does not parse
            self._handshake_done(None)

    def eof_received(self) -> None:
        self.protocol.receive_eof()
        for event in self.protocol.events_received():  # a response that ends at the EOF
            if isinstance(event, Response):
                self._handshake_done(event)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.receive_eof()  # idempotent: the state is CLOSED from here
        self.transport = None
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        for future in (self._opened, self._lost, self._drained):
            if future is not None and not future.done():
                future.set_result(None)
        self._opened = self._drained = None
        if self._on_lost is not None:
            self._on_lost(self.close_exc)

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None:
            self._drained.set_result(None)
            self._drained = None

    # Inside

    def _handshake_done(self, response: Response | None) -> None:
        """The opening handshake is over, its answer ``response`` (None: none that parses)."""
        if self._opened is None:
            return
        if not self._opened.done():
            self._opened.set_result(None)
        self._opened = None
        if response is not None and self.protocol.handshake_exc is None:
            self.subprotocol = self.protocol.subprotocol
            # websockets' parser keeps the response for the life of the connection: its
            # headers are the bulk of it (python -m bench.memory).
            response.headers.clear()

    def _on_frame(self, frame: Frame, arrived: float) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragments = (opcode, [bytes(frame.data)])
                return
            data = bytes(frame.data)
        elif opcode is Opcode.CONT:
            if self._fragments is None:  # the protocol layer refuses this; stay defensive
                return
            opcode, parts = self._fragments
            parts.append(bytes(frame.data))
            if not frame.fin:
                return
            data, self._fragments = b"".join(parts), None
        else:  # pings (answered by the protocol), pongs, close frames
            if opcode is Opcode.PONG and self.on_pong is not None:
                self.on_pong()
            return
        if self.trace is not None:
            self.trace.record(False, data, arrived)
        if self._on_message is not None:
            self._on_message(data, opcode, arrived)
        else:
            if self._early is None:
                self._early = []
            self._early.append((data, opcode, arrived))

    def _flush(self) -> None:
        transport = self.transport
        for data in self.protocol.data_to_send():
            if transport is None:
                continue
            if data:
                transport.write(data)
            elif transport.can_write_eof():  # the end of what we send: half-close
                with contextlib.suppress(Exception):  # uvloop may raise RuntimeError
                    transport.write_eof()
            else:  # TLS cannot half-close
                transport.close()

    def _expect_close(self) -> None:
        """The peer is to close the TCP connection now: it has close_timeout seconds."""
        if self._close_timer is None and self.transport is not None:
            loop = asyncio.get_running_loop()
            self._close_timer = loop.call_later(self.close_timeout, self.abort)


async def connect(
    url: str,
    *,
    subprotocol: str,
    open_timeout: float,
    close_timeout: float,
    ssl: ssl_module.SSLContext | None = None,
    host: str | None = None,
    port: int | None = None,
    local_addr: tuple[str, int] | None = None,
    additional_headers: HeadersLike = (),
    logger: logging.Logger | None = None,
    trace: FrameTrace | None = None,
) -> Connection:
    """Open a WebSocket to ``url`` offering ``subprotocol``, within ``open_timeout`` seconds.

    ``host`` and ``port`` are where to connect instead of the URL's (an address resolved
    already), ``local_addr`` the address to connect from, ``ssl`` the TLS context of a
    ``wss://`` URL (by default the system's CAs); ``additional_headers`` go into the opening
    handshake's request, ``logger`` logs it at DEBUG, and ``trace`` records the messages. The
    CSMS may not have taken the subprotocol: see :attr:`Connection.subprotocol`.

    Raises what the connect raised: an :class:`OSError`, :class:`TimeoutError`, or one of
    websockets' :class:`~websockets.exceptions.InvalidHandshake`.
    """
    uri = parse_uri(url)
    if uri.secure:
        if ssl is None:
            ssl = ssl_module.create_default_context()
    elif ssl is not None:
        raise ValueError(f"a TLS context for a ws:// URL: {url}")
    protocol = ClientProtocol(
        uri,
        subprotocols=[Subprotocol(subprotocol)],
        logger=logger or logging.getLogger("websockets.client"),
    )
    connection = Connection(protocol, close_timeout, trace)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(open_timeout):
            await loop.create_connection(
                lambda: connection,
                host or uri.host,
                port or uri.port,
                ssl=ssl,
                server_hostname=uri.host if ssl is not None else None,
                local_addr=local_addr,
            )
            request = protocol.connect()
            request.headers.update(additional_headers)
            request.headers.setdefault("User-Agent", USER_AGENT)
            protocol.send_request(request)
            connection._flush()
            if connection._opened is not None:
                await asyncio.shield(connection._opened)
    except BaseException:
        connection.abort()
        raise
    if protocol.handshake_exc is not None:
        connection.abort()
        raise protocol.handshake_exc
    return connection
