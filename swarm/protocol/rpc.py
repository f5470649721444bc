"""OCPP-J remote procedure calls over a WebSocket client connection, timed at the frame.

:func:`open_session` connects and returns an :class:`OcppSession`. The session sends CALLs one
at a time (OCPP 1.6: one CALL in flight per direction), correlates answers by unique id, enforces
the call timeout, answers CSMS-initiated CALLs through a handler, and reports each round trip as
a :class:`Sample` to a sink.

A session also watches that the connection is alive: it pings at :attr:`OcppSession.ping_interval`
and drops a connection whose pong does not come within the call timeout, or that lets
``dead_after`` CALLs in a row time out; :attr:`OcppSession.dead` then says why.

Timing: a round trip runs from just before the CALL frame is written to the transport to the
moment its answer is read off the socket. The answer is stamped in the transport's read
callback, before any task is woken: no task switch sits between reading the frame and its
timestamp. What a loop cannot avoid still counts: a frame that arrives while the loop runs
other callbacks (or waits for the GIL) is read when they are done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, NamedTuple

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.frames import CloseCode, Opcode

from swarm.protocol import ocppj
from swarm.protocol.connection import Connection, connect
from swarm.protocol.dialect import Dialect

from .samples import (
    CALLERROR_PREFIX,
    NOT_AN_OCPP_CODE,
    UNKNOWN_ACTION,
    WEBSOCKET,
    Sample,
    SampleSink,
)

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the CSMS's side of the close handshake when a charge point stops."""

LATE_ANSWERS = 8
"""Timed-out CALLs per session whose late answers are still awaited (:meth:`OcppSession.call`)."""

QUOTE_LIMIT = 80
"""Characters of a CSMS's own text (an unknown code, an action) quoted in a DEBUG log line."""

CallHandler = Callable[[str, dict[str, Any]], dict[str, Any] | Awaitable[dict[str, Any]]]
"""Answers a CSMS-initiated CALL: ``(action, payload) -> response payload``.

Raise :class:`~swarm.protocol.ocppj.FrameError` to answer with a CALLERROR of its code.
"""


AnswerCheck = Callable[[str, dict[str, Any]], None]
"""Checks the payload of a CALLRESULT to a CALL of an action: ``(action, payload) -> None``.

Raises :class:`~swarm.protocol.ocppj.FrameError`, with a fixed description, to refuse it.
"""


LateAnswer = Callable[[dict[str, Any]], None]
"""Takes the payload of a CALLRESULT that came after its CALL timed out."""


class CallRejected(Exception):
    """The CSMS answered a CALL with a CALLERROR (``code`` as it was sent)."""

    def __init__(self, error: ocppj.CallError) -> None:
        super().__init__(f"{error.code}: {error.description}" if error.description else error.code)
        self.code = error.code
        self.description = error.description


class CallTimeout(Exception):
    """The CSMS did not answer a CALL in time."""


class InvalidAnswer(Exception):
    """The CSMS answered a CALL with a malformed frame, or a payload its check refused."""


def _set_result(future: asyncio.Future[Any], value: Any = None) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class _Pending(NamedTuple):
    unique_id: str
    future: asyncio.Future[tuple[float, ocppj.CallResult | ocppj.CallError]]


class OcppSession:
    """OCPP-J RPC over one open connection.

    Create it with :func:`open_session`. ``answer_calls`` may be turned off while a charge point
    must stay silent (OCPP 1.6: after a Rejected boot). ``check_answers``, when set, checks the
    payload of every CALLRESULT, ``(action, payload)``, as :meth:`call`'s ``check`` does.
    ``ping_interval`` and ``dead_after`` say when the connection counts as dead (0: never).
    """

    # One per charge point: slots keep a fleet's sessions small.
    __slots__ = (
        "_awaiting_pong",
        "_closed",
        "_handling",
        "_keepalive",
        "_last_id",
        "_late",
        "_lock",
        "_loop",
        "_pending",
        "_ping_interval",
        "_sleeper",
        "_timeouts",
        "answer_calls",
        "answered",
        "call_timeout",
        "check_answers",
        "connection",
        "dead",
        "dead_after",
        "dialect",
        "handler",
        "sink",
    )

    def __init__(
        self,
        connection: Connection,
        sink: SampleSink,
        *,
        dialect: Dialect,
        call_timeout: float,
        handler: CallHandler | None = None,
        check_answers: AnswerCheck | None = None,
        ping_interval: float = 0.0,
        dead_after: int = 0,
    ) -> None:
        self.connection = connection
        self.sink = sink
        self.dialect = dialect
        self.call_timeout = call_timeout
        self.handler = handler
        self.check_answers = check_answers
        self.answer_calls = True
        self.answered = 0
        """CALLs of ours the CSMS answered (a CALLRESULT or a CALLERROR) on this connection."""
        self._loop = asyncio.get_running_loop()
        self._lock = asyncio.Lock()
        self._last_id = 0  # unique ids are "1", "2", ...: a late answer shows by its id
        self._pending: _Pending | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._closed: ConnectionClosed | None = None
        self.dead: str | None = None
        """Why the session dropped its connection as dead, if it did: a fixed text."""
        self.dead_after = dead_after
        """CallTimeouts in a row that make the connection dead; 0: none do."""
        self._timeouts = 0  # CallTimeouts in a row
        self._late: dict[str, LateAnswer] | None = None
        # The keepalive: plain timer callbacks, no task, so that a loop stuck on a write (a peer
        # that reads no more) cannot hold it up.
        self._ping_interval = ping_interval
        self._keepalive: asyncio.TimerHandle | None = None
        self._awaiting_pong = False
        connection.on_pong = self._on_pong
        connection.attach(self._on_message, self._on_lost)
        self._schedule_ping()

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def ping_interval(self) -> float:
        """Seconds between WebSocket pings; 0: none. A pong must come within the call timeout.

        Setting it takes effect at once; a ping that awaits its pong still does.
        """
        return self._ping_interval

    @ping_interval.setter
    def ping_interval(self, seconds: float) -> None:
        self._ping_interval = seconds
        if not self._awaiting_pong:
            self._schedule_ping()

    async def call(
        self,
        action: str,
        payload: dict[str, Any],
        check: Callable[[dict[str, Any]], None] | None = None,
        late: LateAnswer | None = None,
    ) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT's payload.

        Waits for any CALL in flight to be answered first. Reports one sample, a failure unless
        a valid CALLRESULT came back; ``check`` (else the session's ``check_answers``) may refuse
        its payload by raising :class:`~swarm.protocol.ocppj.FrameError`, whose description must
        be a fixed text: the sample's error is ``invalid answer: <description>``. A CALLERROR's
        code is reported as sent when it is one of the dialect's, else as
        :data:`~swarm.protocol.samples.NOT_AN_OCPP_CODE`. Raises :class:`CallRejected`,
        :class:`CallTimeout`, :class:`InvalidAnswer` or
        :class:`~websockets.exceptions.ConnectionClosed`.

        After a timeout, ``late`` (if given) takes the payload of a CALLRESULT that comes yet on
        this connection, unchecked, from the read callback: keep it short. Only the last
        :data:`LATE_ANSWERS` such calls are awaited.
        """
        async with self._lock:
            if self._closed is not None:
                raise self._closed
            self._last_id += 1
            unique_id = str(self._last_id)
            future = self._loop.create_future()
            self._pending = _Pending(unique_id, future)
            frame = ocppj.call_frame(unique_id, action, payload)
            timer = None
            sent = time.perf_counter()
            try:
                timer = self._loop.call_later(
                    self.call_timeout, _set_exception, future, CallTimeout()
                )
                await self.connection.send(frame)
                arrived, answer = await future
            except CallTimeout:
                self._report(action, self.call_timeout * 1000, "CallTimeout")
                if late is not None:
                    self._await_late(unique_id, late)
                self._timeouts += 1
                if self.dead_after and self._timeouts >= self.dead_after:
                    self._drop_dead(f"{self.dead_after} CallTimeouts in a row")
                raise
            except (InvalidAnswer, ConnectionClosed) as exc:
                error = describe_close(exc) if isinstance(exc, ConnectionClosed) else str(exc)
                self._report(action, (time.perf_counter() - sent) * 1000, error)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
                self._pending = None
                # Settle the future whatever ended the call (send() may raise before it is
                # awaited), so that asyncio has no unretrieved exception to complain of.
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()
        self._timeouts = 0
        elapsed = (arrived - sent) * 1000
        if isinstance(answer, ocppj.CallError):
            code = answer.code
            if code not in self.dialect.error_codes:
                logger.debug("%s answered with errorCode %r", action, code[:QUOTE_LIMIT])
                code = NOT_AN_OCPP_CODE
            self._report(action, elapsed, CALLERROR_PREFIX + code)
            raise CallRejected(answer)
        try:  # free in Python 3.11 when nothing raises
            if check is not None:
                check(answer.payload)
            elif self.check_answers is not None:
                self.check_answers(action, answer.payload)
        except ocppj.FrameError as exc:
            self._report(action, elapsed, f"invalid answer: {exc.description}")
            raise InvalidAnswer(exc.description) from None
        self._report(action, elapsed, None)
        return answer.payload

    async def sleep(self, delay: float) -> bool:
        """Sleep ``delay`` seconds, or until :meth:`wake`; return whether the time ran out.

        Raises ``ConnectionClosed`` as soon as the connection is lost.
        """
        if self._closed is not None:
            raise self._closed
        self._sleeper = future = self._loop.create_future()
        timer = self._loop.call_later(delay, _set_result, future, True)
        try:
            return await future
        finally:
            timer.cancel()
            self._sleeper = None

    def wake(self) -> None:
        """End the current :meth:`sleep` early (it returns False); nothing if none sleeps."""
        if self._sleeper is not None:
            _set_result(self._sleeper, False)

    def abort(self) -> None:
        """Drop the connection at once, with no close handshake, as a failing network would."""
        self.connection.abort()

    async def close(self) -> None:
        """Close the WebSocket with a normal closure and wait for the close handshake."""
        await self.connection.close()

    def _report(self, name: str, response_time: float, error: str | None) -> None:
        self.sink(Sample(self.dialect.call_type, name, response_time, error))

    def _await_late(self, unique_id: str, late: LateAnswer) -> None:
        if self._late is None:
            self._late = {}
        elif len(self._late) >= LATE_ANSWERS:
            del self._late[next(iter(self._late))]  # the oldest
        self._late[unique_id] = late

    # The keepalive: a ping every interval, each pong due within the call timeout.

    def _schedule_ping(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._ping_interval > 0 and self._closed is None:
            self._keepalive = self._loop.call_later(self._ping_interval, self._ping)

    def _ping(self) -> None:
        self._keepalive = None
        if self._closed is None and self.connection.send_ping_now():
            self._awaiting_pong = True
            self._keepalive = self._loop.call_later(
                self.call_timeout, self._drop_dead, "no pong in time"
            )

    def _on_pong(self) -> None:
        if self._awaiting_pong:
            self._awaiting_pong = False
            self._schedule_ping()

    def _drop_dead(self, reason: str) -> None:
        """Drop a connection that no longer carries anything: no close handshake, for the peer
        would not answer it either. The loss is reported by whoever waits on the connection."""
        if self._closed is None and self.dead is None:
            self.dead = reason
            self.abort()

    # Read callback: runs in the transport's data_received, keep it short. Error texts are
    # fixed, not taken from the frame: Locust keeps one row per distinct error.

    def _on_message(self, data: bytes, opcode: Opcode, arrived: float) -> None:
        if opcode is Opcode.BINARY:
            self.sink(Sample(WEBSOCKET, "binary frame", 0.0, "binary frame (OCPP-J is text)"))
            return
        pending = self._pending
        try:
            message = ocppj.parse(data)
        except ocppj.FrameError as exc:
            error = f"{exc.code}: {exc.description}"
            if (
                exc.message_type in (ocppj.CALLRESULT, ocppj.CALLERROR)
                and pending is not None
                and exc.unique_id == pending.unique_id
            ):
                _set_exception(pending.future, InvalidAnswer(f"invalid answer: {error}"))
                return
            self.sink(Sample(WEBSOCKET, "invalid frame", 0.0, error))
            if self.answer_calls and exc.answerable:
                code = self.dialect.error_code(exc.code)
                frame = ocppj.error_frame(exc.unique_id or "-1", code, exc.description)
                self._spawn(self._send_quietly(frame))
            return
        if type(message) is ocppj.Call:
            self._spawn(self._answer(message, arrived))
            return
        # Only the CALL whose unique id it carries: a CALLERROR with id "-1" (what some CSMSs
        # send when they could not read one) is a stray, whatever is in flight.
        if pending is not None and message.unique_id == pending.unique_id:
            # Done already when the call timed out or was cancelled and its task has not yet
            # run its cleanup: still the answer to that call, no stray.
            if not pending.future.done():
                self.answered += 1
                pending.future.set_result((arrived, message))
        elif not self._is_ours(message.unique_id):
            self.sink(Sample(WEBSOCKET, "unexpected answer", 0.0, "no CALL has its unique id"))
        elif self._late is not None and message.unique_id in self._late:
            late = self._late.pop(message.unique_id)
            if type(message) is ocppj.CallResult:
                try:
                    late(message.payload)
                except Exception:  # the read callback must go on
                    logger.exception("a late answer's handler failed")

    def _is_ours(self, unique_id: str) -> bool:
        """Whether ``unique_id`` is one of our earlier CALLs': a late answer, reported already."""
        # Only what str(n) gives: int() refuses some of what isdigit() takes ("²", and more
        # than 4,300 digits), and a stray id must not raise in the read callback.
        return (
            unique_id.isascii()
            and unique_id.isdigit()
            and unique_id[0] != "0"
            and len(unique_id) <= len(str(self._last_id))
            and int(unique_id) <= self._last_id
        )

    async def _answer(self, call: ocppj.Call, arrived: float) -> None:
        # Decided here, not in the read callback: an answer read in the same callback, just
        # before this CALL, may change answer_calls (a Rejected boot), and its waiter resumes
        # before this task's first step.
        if not self.answer_calls:
            return
        name = call.action
        if name not in self.dialect.schemas.actions:
            logger.debug("the CSMS called unknown action %r", name[:QUOTE_LIMIT])
            name = UNKNOWN_ACTION
        try:
            if self.handler is None:
                raise ocppj.FrameError(ocppj.NOT_SUPPORTED, f"{call.action} is not supported")
            response = self.handler(call.action, call.payload)
            if isinstance(response, Awaitable):
                response = await response
            frame, error = ocppj.result_frame(call.unique_id, response), None
        except ocppj.FrameError as exc:
            code = self.dialect.error_code(exc.code)
            frame = ocppj.error_frame(call.unique_id, code, exc.description)
            error = CALLERROR_PREFIX + code
        except Exception as exc:  # a bug in a handler must not kill the charge point
            code = self.dialect.error_code(ocppj.INTERNAL_ERROR)
            frame = ocppj.error_frame(call.unique_id, code, type(exc).__name__)
            error = f"{CALLERROR_PREFIX}{code}: {type(exc).__name__}"
        await self._send_quietly(frame)
        self.sink(
            Sample(self.dialect.csms_type, name, (time.perf_counter() - arrived) * 1000, error)
        )

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        # The loop keeps only weak references to tasks: hold them until they are done.
        task = self._loop.create_task(coroutine)
        self._handling.add(task)
        task.add_done_callback(self._handling.discard)

    async def _send_quietly(self, frame: str) -> None:
        # A lost connection is reported once, by whoever waits on it.
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(frame)

    def _on_lost(self, exc: ConnectionClosed) -> None:
        self._closed = exc
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if self._pending is not None:
            _set_exception(self._pending.future, exc)
        if self._sleeper is not None:
            _set_exception(self._sleeper, exc)


def describe_close(exc: ConnectionClosed) -> str:
    """``ConnectionClosed: code 1011``, or 1006 when no close frame was exchanged.

    The reason the peer gave is left out: its text is the peer's to choose, and Locust keeps a
    row per distinct error. So are the numbers of codes outside RFC 6455's own (1000 to 2999),
    which the peer chooses too: ``3xxx`` (registered) and ``4xxx`` (private) stand for them.
    """
    frame = exc.rcvd or exc.sent
    if frame is None:
        return "ConnectionClosed: code 1006 (no close frame)"
    code = frame.code
    return f"ConnectionClosed: code {code if code < 3000 else f'{code // 1000}xxx'}"


async def open_session(
    url: str,
    sink: SampleSink,
    *,
    dialect: Dialect,
    call_timeout: float,
    connect_timeout: float,
    handler: CallHandler | None = None,
    check_answers: AnswerCheck | None = None,
    ping_interval: float = 0.0,
    dead_after: int = 0,
    **connect_kwargs: Any,
) -> OcppSession:
    """Open a WebSocket to ``url`` with the subprotocol of ``dialect``; return a session on it.

    Reports the connect time (TCP, TLS and opening handshake) as a ``WebSocket connect``
    sample, a failure if it raises. ``handler``, ``check_answers``, ``ping_interval`` and
    ``dead_after`` go to the session.
    ``connect_kwargs`` go to :func:`~swarm.protocol.connection.connect`: ``host`` and ``port``
    to skip name resolution, ``local_addr``, ``ssl``, ``additional_headers``, ``logger`` and
    ``trace``.
    """
    started = time.perf_counter()
    try:
        connection = await connect(
            url,
            subprotocol=dialect.subprotocol,
            open_timeout=connect_timeout,
            close_timeout=CLOSE_TIMEOUT,
            **connect_kwargs,
        )
    except Exception as exc:
        sink(
            Sample(
                WEBSOCKET, "connect", (time.perf_counter() - started) * 1000, _describe_error(exc)
            )
        )
        raise
    elapsed = (time.perf_counter() - started) * 1000
    if connection.subprotocol != dialect.subprotocol:
        refused = f"the CSMS did not accept subprotocol {dialect.subprotocol}"
        sink(Sample(WEBSOCKET, "connect", elapsed, refused))
        await connection.close(
            CloseCode.PROTOCOL_ERROR, f"subprotocol {dialect.subprotocol} is required"
        )
        raise ConnectionRefusedError(refused)
    sink(Sample(WEBSOCKET, "connect", elapsed))
    return OcppSession(
        connection,
        sink,
        dialect=dialect,
        call_timeout=call_timeout,
        handler=handler,
        check_answers=check_answers,
        ping_interval=ping_interval,
        dead_after=dead_after,
    )


def _describe_error(exc: BaseException) -> str:
    # One text per kind of failure, whatever the loop: asyncio names the address in a refused
    # connect ("Connect call failed ('10.0.0.5', 9000)"), uvloop does not, and Locust keeps a
    # row per distinct text. A refused handshake's text quotes the CSMS's headers: only the
    # status code is kept.
    if isinstance(exc, InvalidStatus):
        return f"InvalidStatus: HTTP {exc.response.status_code}"
    if isinstance(exc, InvalidHandshake):
        return type(exc).__name__
    # An SSLError's errno is OpenSSL's error kind, not an OS errno: its own text says more.
    if (
        isinstance(exc, OSError)
        and not isinstance(exc, ssl.SSLError)
        and isinstance(exc.errno, int)
        and exc.errno > 0
    ):
        return f"{type(exc).__name__}: [Errno {exc.errno}] {os.strerror(exc.errno)}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
