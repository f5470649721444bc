"""An embedded OCPP 1.6J CSMS (central system): the swarm's default target, and a standalone server.

It answers every charge-point-initiated OCPP 1.6 message (and the security extension's) with a
response that is valid per the 1.6 schemas, validates incoming payloads, and counts what it
receives. It is built to stay out of the way of a load test: no per-message logging, no
``ocpp.ChargePoint``, one dict lookup to dispatch.

It also sends the CSMS's own calls: :meth:`Csms.call` to one charge point, :meth:`Csms.campaign`
to many (a share of the fleet, at a given rate), and with ``--control-port`` the HTTP API in
:mod:`swarm.csms.control` does the same for a scenario from outside the process.

On request it misbehaves, as a CSMS under load does (see :mod:`swarm.csms.faults`): it answers late
or with CALLERRORs (:meth:`Csms.set_faults`), sends malformed frames (:meth:`Csms.send_frames`),
drops connections (:meth:`Csms.disconnect`) and restarts (:meth:`Csms.restart`).

Its configuration is :mod:`swarm.csms.config`'s, its command line (``python -m swarm.csms``)
:mod:`swarm.csms.cli`'s; a parent process runs it as a child with
:class:`swarm.csms.process.CsmsProcess`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import itertools
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import EXTERNAL_CLOSE_CODES
from websockets.headers import build_www_authenticate_basic
from websockets.http11 import Request, Response

from swarm.csms import faults
from swarm.csms.config import (
    CONNECTIONS_CURRENT,
    CONNECTIONS_TOTAL,
    DISCONNECTED,
    FAULT_CALLERRORS,
    FAULT_DELAYED,
    FAULT_FRAMES,
    RECEIVED_ERRORS,
    RECEIVED_IGNORED,
    RECEIVED_RESULTS,
    RESTARTS,
    SENT_ERRORS,
    CsmsConfig,
)
from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj

MAX_MESSAGE_SIZE = 1 << 20
CLOSE_TIMEOUT = 2.0
REALM = "ocpp-swarm"
HANDSHAKE_LOGGER = logging.getLogger("swarm.csms.handshake")
"""The server's logger when it checks passwords: websockets logs every request header at
DEBUG, ``Authorization`` too, so this one is held at WARNING (as ``main`` holds websockets')."""
HANDSHAKE_LOGGER.setLevel(logging.WARNING)
FRAMES_AT_ONCE = 64  # stray frames in flight at once
CLOSE_CODES = frozenset(EXTERNAL_CLOSE_CODES) | frozenset(range(3000, 5000))
"""Close codes a CSMS may send (RFC 6455 7.4, as websockets checks them)."""

# Responses are serialized as soon as they are built, so handlers can share these.
_EMPTY: dict[str, Any] = {}
_ACCEPTED = {"status": "Accepted"}
_ID_ACCEPTED = {"idTagInfo": {"status": "Accepted"}}
_ID_INVALID = {"idTagInfo": {"status": "Invalid"}}


class NotConnectedError(LookupError):
    """The charge point is not connected, or its connection closed before it answered."""


@dataclass(eq=False, slots=True)
class CsmsConnection:
    """One connected charge point."""

    charge_point_id: str
    websocket: ServerConnection
    # The CSMS's own CALL: OCPP 1.6 allows one in flight per direction. Its future gets the
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


@dataclass(slots=True)
class CampaignResult:
    """What the calls of a campaign came to.

    ``answered`` counts CALLRESULTs whatever they say (``statuses`` counts their ``status``
    fields), ``callerrors`` CALLERRORs (``errors`` counts their codes); ``disconnected`` counts
    the charge points not connected when their call was due or whose connection closed before
    they answered.
    """

    action: str
    targeted: int = 0
    answered: int = 0
    callerrors: int = 0
    timed_out: int = 0
    disconnected: int = 0
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "action": self.action,
            "targeted": self.targeted,
            "answered": self.answered,
            "callerrors": self.callerrors,
            "timed_out": self.timed_out,
            "disconnected": self.disconnected,
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "seconds": round(self.seconds, 3),
        }


class Csms:
    """The CSMS server.

    ``stats`` counts received CALLs by action, plus the ``connections.*``, ``received.*`` and
    ``sent.callerror`` keys, and the CSMS's own calls as ``sent.<Action>``,
    ``answered.<Action>`` (a CALLRESULT), ``callerror.<Action>``, ``timeout.<Action>`` and
    ``disconnected.<Action>``; ``connections`` maps connected charge point ids to their
    connection. CALLERRORs from charge points count as ``received.callerror.<code>`` too, and
    injected faults as ``faults.delayed``, ``faults.callerror``, ``faults.frames.<kind>`` and
    ``restarts``.

    ``faults`` holds the :class:`~swarm.csms.faults.AnswerFaults` in force, or None: set it with
    :meth:`set_faults`.
    """

    def __init__(self, config: CsmsConfig | None = None) -> None:
        self.config = config or CsmsConfig()
        self.stats: collections.Counter[str] = collections.Counter()
        self.connections: dict[str, CsmsConnection] = {}
        self._server: Server | None = None
        self._transaction_ids = itertools.count(1)
        self._call_ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._booted: set[str] = set()  # charge point ids whose first boot was answered
        self._clock_second = -1
        self._clock_text = ""
        self._basic_auth = basic_auth(realm=REALM, check_credentials=self._check_password)
        self.faults: faults.AnswerFaults | None = None
        self._fault_ids = itertools.count(1)
        self._restarting = False
        self._handlers: dict[str, Callable[[CsmsConnection, dict[str, Any]], dict[str, Any]]] = {
            "Authorize": self._authorize,
            "BootNotification": self._boot_notification,
            "DataTransfer": self._accepted,
            "DiagnosticsStatusNotification": self._empty,
            "FirmwareStatusNotification": self._empty,
            "Heartbeat": self._heartbeat,
            "MeterValues": self._empty,
            "StartTransaction": self._start_transaction,
            "StatusNotification": self._empty,
            "StopTransaction": self._stop_transaction,
            "SecurityEventNotification": self._empty,
            "SignCertificate": self._accepted,
            "LogStatusNotification": self._empty,
            "SignedFirmwareStatusNotification": self._empty,
        }

    async def start(self) -> None:
        """Start listening."""
        if self._server is not None:
            raise RuntimeError("the CSMS is already started")
        self._stopping = asyncio.Event()
        self._server = await self._listen(self.config.port)

    async def _listen(self, port: int) -> Server:
        config = self.config
        return await serve(
            self._serve_connection,
            config.host,
            port,
            subprotocols=[
                OCPP16.subprotocol
            ],  # websockets refuses clients without it with HTTP 400
            process_request=(
                self._authenticate if config.passwords.enabled or config.client_ca else _check_path
            ),
            ssl=config.ssl_context,
            logger=HANDSHAKE_LOGGER if config.passwords.enabled else None,
            compression=None,
            ping_interval=None,  # OCPP has its own Heartbeat
            max_size=MAX_MESSAGE_SIZE,
            close_timeout=CLOSE_TIMEOUT,
            # asyncio's default of 100 drops SYNs when a fleet connects at once, and a dropped
            # SYN costs the charge point a 1 s retransmit. The kernel caps it at somaxconn.
            backlog=4096,
        )

    async def stop(self) -> None:
        """Close every connection (code 1001) and stop listening; bounded by a timeout."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        await _close(server, 1001)

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS) with the port actually bound."""
        if self._server is None or not self._server.sockets:  # not started, or restarting
            raise RuntimeError("the CSMS is not started")
        port = self._server.sockets[0].getsockname()[1]
        host = self.config.host
        scheme = "wss" if self.config.ssl_context is not None else "ws"
        return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"

    async def _authenticate(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        """``process_request`` of a CSMS with security profiles: the path, then the client
        certificate's CN, then HTTP Basic auth, each against the charge point id."""
        refused = _check_path(connection, request)
        if refused is not None:
            return refused
        charge_point_id = _charge_point_id(request)
        if self.config.client_ca:
            # The TLS handshake verified the certificate; the whitepaper binds it to the id.
            peercert = connection.transport.get_extra_info("peercert") or {}
            subject = peercert.get("subject", ())
            common_names = [value for rdn in subject for key, value in rdn if key == "commonName"]
            if common_names != [charge_point_id]:
                return connection.respond(
                    HTTPStatus.FORBIDDEN,
                    "The client certificate's CN must be the charge point id\n",
                )
        if self.config.passwords.enabled:
            refused = await self._basic_auth(connection, request)
            if refused is not None:
                return refused
            if connection.username != charge_point_id:
                refused = connection.respond(
                    HTTPStatus.UNAUTHORIZED, "The user name must be the charge point id\n"
                )
                refused.headers["WWW-Authenticate"] = build_www_authenticate_basic(REALM)
                return refused
        return None

    def _check_password(self, username: str, password: str) -> bool:
        expected = self.config.passwords.get(username)
        return expected is not None and hmac.compare_digest(
            expected.encode(errors="surrogateescape"), password.encode(errors="surrogateescape")
        )

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve_connection(self, websocket: ServerConnection) -> None:
        charge_point_id = _charge_point_id(websocket.request)
        connection = CsmsConnection(charge_point_id, websocket)
        stats = self.stats
        stats[CONNECTIONS_CURRENT] += 1
        stats[CONNECTIONS_TOTAL] += 1
        self.connections[charge_point_id] = connection  # a reconnect replaces the old entry
        answer = self._answer
        send = websocket.send
        parse = ocppj.parse
        try:
            async for text in websocket:
                if type(text) is not str:
                    stats[SENT_ERRORS] += 1
                    await send(
                        ocppj.error_frame(
                            "-1", ocppj.FORMATION_VIOLATION, "OCPP-J frames are text, not binary"
                        )
                    )
                    continue
                try:
                    message = parse(text)
                except ocppj.FrameError as err:
                    if err.answerable:
                        stats[SENT_ERRORS] += 1
                        await send(
                            ocppj.error_frame(err.unique_id or "-1", err.code, err.description)
                        )
                    else:
                        stats[RECEIVED_IGNORED] += 1
                    continue
                if type(message) is ocppj.Call:
                    plan = self.faults
                    if plan is None:  # the one check faults cost the hot path
                        await send(answer(connection, message))
                    else:
                        await self._answer_faultily(connection, message, plan)
                elif type(message) is ocppj.CallResult:
                    stats[RECEIVED_RESULTS] += 1
                    connection.resolve(message)
                else:
                    stats[RECEIVED_ERRORS] += 1
                    code = message.code if message.code in OCPP16.error_codes else "other"
                    stats[f"{RECEIVED_ERRORS}.{code}"] += 1
                    connection.resolve(message)
        except ConnectionClosed:
            pass
        finally:
            connection.closed = True
            if connection.delayed:
                for task in list(connection.delayed):
                    task.cancel()
            if connection.pending is not None and not connection.pending[1].done():
                connection.pending[1].set_result(None)
            stats[CONNECTIONS_CURRENT] -= 1
            if self.connections.get(charge_point_id) is connection:
                del self.connections[charge_point_id]

    # The CSMS's own calls.

    async def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float = 30.0,
    ) -> ocppj.CallResult | ocppj.CallError:
        """Send ``action`` to a connected charge point and return its answer.

        Raises ValueError, before anything is sent, for an action a CSMS does not send or a
        payload that breaks its 1.6 schema; NotConnectedError if the charge point is not
        connected or its connection closes before it answers; TimeoutError if no answer comes
        within ``timeout`` seconds, the wait for a call already in flight to it included.
        """
        _check_request(action, payload)
        _check_positive("timeout", timeout)
        return await self._call(charge_point_id, action, payload, timeout)

    async def campaign(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        share: float = 1.0,
        charge_point_ids: list[str] | None = None,
        rate: float | None = None,
        timeout: float = 30.0,
    ) -> CampaignResult:
        """Send ``action`` to many charge points at once, or ``rate`` per second; count the answers.

        The targets are ``charge_point_ids`` (an id not connected when its call is due counts
        as disconnected), or else a random ``share`` (0 < share <= 1, rounded, at least one) of
        the charge points connected now. Every target gets the same ``payload``. With ``rate``,
        the calls start evenly spaced; without it, all at once. Each is bounded by ``timeout``.
        Stopping the CSMS ends the campaign: calls not yet started count as disconnected.
        Raises ValueError for a bad action, payload or argument, before anything is sent.
        """
        _check_request(action, payload)
        _check_positive("timeout", timeout)
        if rate is not None:
            _check_positive("rate", rate)
        faults.check_share(share)
        if charge_point_ids is None:
            connected = list(self.connections)
            count = max(1, round(share * len(connected))) if connected else 0
            targets = random.sample(connected, min(count, len(connected)))
        elif share != 1.0:
            raise ValueError("give a share or charge_point_ids, not both")
        elif isinstance(charge_point_ids, str):
            raise ValueError("charge_point_ids must be a list of ids, not one string")
        else:
            targets = list(dict.fromkeys(charge_point_ids))
        result = CampaignResult(action, targeted=len(targets))
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def send(charge_point_id: str) -> None:
            try:
                answer = await self._call(charge_point_id, action, payload, timeout)
            except TimeoutError:
                result.timed_out += 1
            except NotConnectedError:
                result.disconnected += 1
            else:
                if type(answer) is ocppj.CallResult:
                    result.answered += 1
                    status = answer.payload.get("status")
                    if isinstance(status, str):
                        # Cut short: a charge point's text must not grow the result unbounded.
                        result.statuses[status[:64]] += 1
                else:
                    result.callerrors += 1
                    result.errors[answer.code[:64]] += 1

        stopping = self._stopping
        async with asyncio.TaskGroup() as group:
            for index, charge_point_id in enumerate(targets):
                if rate is not None:
                    delay = started + index / rate - loop.time()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(delay):
                                await stopping.wait()
                if stopping.is_set():
                    result.disconnected += len(targets) - index
                    break
                group.create_task(send(charge_point_id))
        result.seconds = loop.time() - started
        return result

    async def disconnect(
        self,
        *,
        share: float = 1.0,
        charge_point_ids: list[str] | None = None,
        code: int = 1001,
        reason: str = "",
    ) -> int:
        """Close the connections of ``charge_point_ids``, or of a random ``share`` (0 < share
        <= 1) of the connected charge points, with close ``code``; return how many it closed.

        1001 (going away) is what a restarting server sends. The close handshakes run
        concurrently; each is bounded by the websockets close timeout.
        """
        _check_close_code(code)
        websockets = self._targets(share, charge_point_ids)
        await asyncio.gather(*(websocket.close(code, reason) for websocket in websockets))
        self.stats[DISCONNECTED] += len(websockets)
        return len(websockets)

    def _targets(self, share: float, charge_point_ids: list[str] | None) -> list[ServerConnection]:
        """The connections of ``charge_point_ids`` still connected, or a random ``share``."""
        faults.check_share(share)
        if charge_point_ids is None:
            connected = list(self.connections)
            targets = random.sample(connected, round(share * len(connected)))
        else:
            targets = [id_ for id_ in dict.fromkeys(charge_point_ids) if id_ in self.connections]
        return [self.connections[id_].websocket for id_ in targets]

    # Faults on request (see swarm.csms.faults).

    def set_faults(
        self,
        *,
        delay: float = 0.0,
        callerror: str | None = None,
        share: float = 1.0,
        actions: list[str] | None = None,
    ) -> faults.AnswerFaults | None:
        """Answer a ``share`` of the CALLs of ``actions`` (default: all) ``delay`` seconds late,
        or with a CALLERROR of code ``callerror``, or both, until faults are set again or
        cleared; return the faults now in force. Neither ``delay`` nor ``callerror``: clear
        them, return None.

        Raises ValueError for a bad value or an action the CSMS does not answer; the faults
        in force stay as they were then.
        """
        if not delay and callerror is None:
            if share != 1.0 or actions is not None:
                raise ValueError("share and actions go with a delay or a callerror")
            self.faults = None
            return None
        plan = faults.AnswerFaults(delay, callerror, share, actions)
        unknown = sorted((plan.actions or frozenset()) - self._handlers.keys())
        if unknown:
            names = ", ".join(repr(action[:64]) for action in unknown[:5])
            raise ValueError(f"not an action a charge point sends: {names}")
        self.faults = plan
        return plan

    def clear_faults(self) -> None:
        """Answer every CALL at once and as it should be answered again."""
        self.faults = None

    async def send_frames(
        self,
        kind: str,
        *,
        share: float = 1.0,
        charge_point_ids: list[str] | None = None,
        size: int | None = None,
    ) -> int:
        """Send one stray frame of ``kind`` (see :data:`swarm.csms.faults.FRAME_KINDS`) to each of
        ``charge_point_ids`` still connected, or to a random ``share`` (0 < share <= 1) of
        the connected charge points; return how many it was sent to.

        ``size`` is the length of a ``huge`` frame in bytes (by default one over 1 MiB, the
        swarm's limit). Raises ValueError for a bad argument, before anything is sent.
        """
        faults.check_frame(kind, size)
        websockets = self._targets(share, charge_point_ids)
        # A few at a time: huge frames sent to a whole fleet at once would all be in memory.
        sending = asyncio.Semaphore(FRAMES_AT_ONCE)

        async def send(websocket: ServerConnection) -> None:
            async with sending:
                frame = faults.stray_frame(kind, f"fault-{next(self._fault_ids)}", size)
                with contextlib.suppress(ConnectionClosed):
                    await websocket.send(frame)

        await asyncio.gather(*map(send, websockets))
        self.stats[f"{FAULT_FRAMES}.{kind}"] += len(websockets)
        return len(websockets)

    async def restart(self, *, down: float, code: int = 1012) -> int:
        """Restart as a CSMS deploy does: close every connection with ``code`` (1012, service
        restart, or 1001, going away), stop listening for ``down`` seconds, then listen again
        on the same port. Return how many connections it closed.

        Returns when it listens again, or at once when :meth:`stop` is called meanwhile (it
        then stays stopped). Raises ValueError for a bad argument, RuntimeError if the CSMS
        is not listening or restarting already.
        """
        faults.check_seconds("down", down)
        _check_close_code(code)
        server = self._server
        if server is None:
            raise RuntimeError("the CSMS is not listening")
        if self._restarting:
            raise RuntimeError("the CSMS is restarting already")
        self._restarting = True
        try:
            stopping = self._stopping
            port = server.sockets[0].getsockname()[1]
            closed = len(server.connections)
            # The closed server stays self._server while down: stop() then finds it (closing it
            # again does nothing) and sets _stopping, which ends the wait below.
            await _close(server, code)
            self.stats[RESTARTS] += 1
            self.stats[DISCONNECTED] += closed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(down):
                    await stopping.wait()
            if stopping.is_set() or self._server is not server:
                return closed
            try:
                listening = await self._listen(port)
            except OSError as exc:  # another process took the port meanwhile
                raise RuntimeError(
                    f"the CSMS could not listen on port {port} again: {exc}"
                ) from exc
            if stopping.is_set():  # stopped while it started listening: it stays stopped
                await _close(listening, 1001)
            else:
                self._server = listening
            return closed
        finally:
            self._restarting = False

    async def _answer_faultily(
        self, connection: CsmsConnection, call: ocppj.Call, plan: faults.AnswerFaults
    ) -> None:
        if not plan.hits(call.action):
            await connection.websocket.send(self._answer(connection, call))
            return
        if plan.callerror is None:
            frame = self._answer(connection, call)
        else:
            self.stats[SENT_ERRORS] += 1
            self.stats[FAULT_CALLERRORS] += 1
            frame = ocppj.error_frame(call.unique_id, plan.callerror, faults.FAULT_DESCRIPTION)
        if not plan.delay:
            await connection.websocket.send(frame)
            return
        # Later, from a task of its own: the connection goes on reading, and answers the next
        # CALL (once the charge point gave up on this one) before this answer arrives.
        self.stats[FAULT_DELAYED] += 1
        task = asyncio.get_running_loop().create_task(
            _send_later(connection.websocket, frame, plan.delay)
        )
        if connection.delayed is None:
            connection.delayed = set()
        connection.delayed.add(task)
        task.add_done_callback(connection.delayed.discard)

    async def _call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], timeout: float
    ) -> ocppj.CallResult | ocppj.CallError:
        stats = self.stats
        try:
            connection = self.connections.get(charge_point_id)
            if connection is None:
                raise NotConnectedError(f"{charge_point_id!r} is not connected")
            async with asyncio.timeout(timeout), connection.call_lock:
                if connection.closed:
                    raise NotConnectedError(f"{charge_point_id!r} closed its connection")
                unique_id = str(next(self._call_ids))
                future: asyncio.Future[ocppj.CallResult | ocppj.CallError | None]
                future = asyncio.get_running_loop().create_future()
                connection.pending = (unique_id, future)
                try:
                    await connection.websocket.send(ocppj.call_frame(unique_id, action, payload))
                    stats[f"sent.{action}"] += 1
                    answer = await future
                finally:
                    connection.pending = None
                if answer is None:
                    raise NotConnectedError(
                        f"{charge_point_id!r} closed its connection before answering"
                    )
        except TimeoutError:
            stats[f"timeout.{action}"] += 1
            raise
        except ConnectionClosed:
            stats[f"disconnected.{action}"] += 1
            raise NotConnectedError(f"{charge_point_id!r} closed its connection") from None
        except NotConnectedError:
            stats[f"disconnected.{action}"] += 1
            raise
        if type(answer) is ocppj.CallResult:
            stats[f"answered.{action}"] += 1
        else:
            stats[f"callerror.{action}"] += 1
        return answer

    def _answer(self, connection: CsmsConnection, call: ocppj.Call) -> str:
        action = call.action
        handler = self._handlers.get(action)
        if handler is None:
            self.stats[SENT_ERRORS] += 1
            if action in OCPP16.csms_actions:
                return ocppj.error_frame(
                    call.unique_id, ocppj.NOT_SUPPORTED, f"{action} is sent by a CSMS, not to one"
                )
            return ocppj.error_frame(
                call.unique_id, ocppj.NOT_IMPLEMENTED, f"unknown action {action[:64]!r}"
            )
        self.stats[action] += 1
        if self.config.validate:
            try:
                OCPP16.schemas.validate(action, call.payload)
            except ocppj.FrameError as err:
                self.stats[SENT_ERRORS] += 1
                return ocppj.error_frame(call.unique_id, err.code, err.description)
        try:
            payload = handler(connection, call.payload)
        except Exception as exc:  # without validation, a handler can meet any payload
            self.stats[SENT_ERRORS] += 1
            return ocppj.error_frame(
                call.unique_id, ocppj.INTERNAL_ERROR, f"{type(exc).__name__} handling {action}"
            )
        return ocppj.result_frame(call.unique_id, payload)

    def _now(self) -> str:
        # Formatting a timestamp costs more than the rest of a Heartbeat: do it once a second.
        second = int(time.time())
        if second != self._clock_second:
            self._clock_text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            self._clock_second = second
        return self._clock_text

    def _id_tag_info(self, id_tag: str) -> dict[str, Any]:
        return _ID_INVALID if id_tag in self.config.reject_id_tags else _ID_ACCEPTED

    # Handlers: (connection, request payload) -> response payload.

    def _empty(self, connection: CsmsConnection, payload: dict[str, Any]) -> dict[str, Any]:
        return _EMPTY

    def _accepted(self, connection: CsmsConnection, payload: dict[str, Any]) -> dict[str, Any]:
        return _ACCEPTED

    def _heartbeat(self, connection: CsmsConnection, payload: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": self._now()}

    def _authorize(self, connection: CsmsConnection, payload: dict[str, Any]) -> dict[str, Any]:
        return self._id_tag_info(payload.get("idTag", ""))

    def _boot_notification(
        self, connection: CsmsConnection, payload: dict[str, Any]
    ) -> dict[str, Any]:
        config = self.config
        status, interval = "Accepted", config.heartbeat_interval
        if config.boot != "accept" and connection.charge_point_id not in self._booted:
            status = "Pending" if config.boot == "pending" else "Rejected"
            interval = config.boot_retry_interval
            self._booted.add(connection.charge_point_id)
        return {"status": status, "currentTime": self._now(), "interval": interval}

    def _start_transaction(
        self, connection: CsmsConnection, payload: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "idTagInfo": self._id_tag_info(payload.get("idTag", ""))["idTagInfo"],
            "transactionId": next(self._transaction_ids),
        }

    def _stop_transaction(
        self, connection: CsmsConnection, payload: dict[str, Any]
    ) -> dict[str, Any]:
        id_tag = payload.get("idTag")
        return _EMPTY if id_tag is None else self._id_tag_info(id_tag)


def _check_request(action: str, payload: dict[str, Any]) -> None:
    """Raise ValueError unless ``action`` is a CSMS's to send and ``payload`` fits its schema."""
    if not isinstance(action, str) or action not in OCPP16.csms_actions:
        raise ValueError(f"{action!r} is not an OCPP 1.6 call a CSMS sends")
    if not isinstance(payload, dict):
        raise ValueError(f"the payload of {action} must be an object, not {type(payload).__name__}")
    try:
        OCPP16.schemas.validate(action, payload)
    except ocppj.FrameError as err:
        raise ValueError(f"invalid {action} payload: {err.description}") from None


def _check_close_code(code: int) -> None:
    if isinstance(code, bool) or code not in CLOSE_CODES:
        raise ValueError(f"code must be a close code a server may send, not {code!r}")


async def _close(server: Server, code: int) -> None:
    """Stop listening and close every connection with ``code``; abort those that linger."""
    server.close(code=code)
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT + 1.0):
            await server.wait_closed()
    except TimeoutError:
        for connection in server.all_connections:
            connection.transport.abort()


async def _send_later(websocket: ServerConnection, frame: str, delay: float) -> None:
    await asyncio.sleep(delay)
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(frame)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, not {value!r}")


def _charge_point_id(request: Request | None) -> str:
    """The last segment of the request path, URL-decoded: ``/ocpp/CP-1`` is ``CP-1``."""
    path = request.path if request is not None else ""
    return unquote(path.partition("?")[0].rpartition("/")[2])


def _check_path(connection: ServerConnection, request: Request) -> Response | None:
    if not _charge_point_id(request):
        return connection.respond(
            HTTPStatus.NOT_FOUND, "The URL must end with the charge point id: ws://host/path/<id>\n"
        )
    return None
