"""The embedded OCPP-J CSMS (central system): the swarm's default target, and a standalone server.

:class:`Csms` listens, checks a connecting charge point's URL and credentials (the security
profiles, alike in OCPP 1.6 and 2.0.1), and answers every charge-point-initiated message of the
version the connection negotiated (its subprotocol, ``ocpp1.6`` or ``ocpp2.0.1`` on the same
port) with a response valid per that version's schemas, validating incoming payloads and
counting what it receives. The answers themselves are the version's (:mod:`swarm.csms.versions`,
:mod:`swarm.ocpp16.csms`, :mod:`swarm.ocpp201.csms`). It is built to stay out of the way of a
load test: no per-message logging, no ``ocpp.ChargePoint``, one dict lookup to dispatch.

Its own calls, campaigns and disconnects are :mod:`swarm.csms.campaigns`', its faults on
request :mod:`swarm.csms.injection`'s; both are mixins of :class:`Csms`. A restart is here, with
start and stop: it stops listening and listens again. The command line is :mod:`swarm.csms.cli`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hmac
import itertools
import logging
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

from websockets.asyncio.server import Server, ServerConnection, basic_auth, serve
from websockets.exceptions import ConnectionClosed
from websockets.headers import build_www_authenticate_basic
from websockets.http11 import Request, Response

from swarm.csms import faults, versions
from swarm.csms.campaigns import Campaigns
from swarm.csms.config import (
    CONNECTIONS_CURRENT,
    CONNECTIONS_TOTAL,
    DISCONNECTED,
    RECEIVED_ERRORS,
    RECEIVED_IGNORED,
    RECEIVED_RESULTS,
    RESTARTS,
    SENT_ERRORS,
    CsmsConfig,
)
from swarm.csms.connection import CsmsConnection
from swarm.csms.injection import FaultInjection
from swarm.protocol import ocppj

MAX_MESSAGE_SIZE = 1 << 20
CLOSE_TIMEOUT = 2.0
REALM = "ocpp-swarm"
HANDSHAKE_LOGGER = logging.getLogger("swarm.csms.handshake")
"""The server's logger when it checks passwords: websockets logs every request header at
DEBUG, ``Authorization`` too, so this one is held at WARNING (as ``main`` holds websockets')."""
HANDSHAKE_LOGGER.setLevel(logging.WARNING)


class Csms(Campaigns, FaultInjection):
    """The CSMS server.

    ``stats`` counts received CALLs by action, whatever the version (one key for an action
    of both, Heartbeat or BootNotification), plus the ``connections.*``, ``received.*`` and
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
        self._call_ids = itertools.count(1)
        self._stopping = asyncio.Event()
        self._basic_auth = basic_auth(realm=REALM, check_credentials=self._check_password)
        self.faults: faults.AnswerFaults | None = None
        self._fault_ids = itertools.count(1)
        self._restarting = False
        # Per subprotocol, the dialect and the answers a connection that negotiated it gets.
        self.central = versions.Central(self.config)
        if self.config.authority is not None:
            self.central.authority = self.config.authority
        if self.config.manufacturer is not None:
            self.central.manufacturer = self.config.manufacturer
        self.central.send = self._send_later
        self._versions = versions.by_subprotocol(self.central)
        self._later: set[asyncio.Task[Any]] = set()

    def _send_later(self, charge_point_id: str, action: str, payload: dict[str, Any]) -> None:
        """Send a call of the CSMS's own once the answer in hand has gone (a CertificateSigned
        after a SignCertificate). Its outcome is counted in ``stats`` as any call's."""

        async def send() -> None:
            with contextlib.suppress(Exception):
                await self.call(charge_point_id, action, payload)

        task = asyncio.get_running_loop().create_task(send())
        self._later.add(task)
        task.add_done_callback(self._later.discard)

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
            # websockets refuses clients that offer none of them with HTTP 400.
            subprotocols=list(self._versions),
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
            reuse_port=config.reuse_port or None,
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

    async def restart(self, *, down: float, code: int = 1012) -> int:
        """Restart as a CSMS deploy does: close every connection with ``code`` (1012, service
        restart, or 1001, going away), stop listening for ``down`` seconds, then listen again
        on the same port. Return how many connections it closed.

        Returns when it listens again, or at once when :meth:`stop` is called meanwhile (it
        then stays stopped). Raises ValueError for a bad argument, RuntimeError if the CSMS
        is not listening or restarting already.
        """
        faults.check_seconds("down", down)
        faults.check_close_code(code)
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
        expected = self.central.passwords.get(username) or self.config.passwords.get(username)
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
        # The handshake took only a subprotocol of self._versions.
        dialect, handlers = self._versions[websocket.subprotocol]  # type: ignore[index]
        connection = CsmsConnection(charge_point_id, websocket, dialect, handlers)
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
                    code = dialect.error_code(ocppj.FORMATION_VIOLATION)
                    await send(ocppj.error_frame("-1", code, "OCPP-J frames are text, not binary"))
                    continue
                try:
                    message = parse(text)
                except ocppj.FrameError as err:
                    if err.answerable:
                        stats[SENT_ERRORS] += 1
                        code = dialect.error_code(err.code)
                        await send(ocppj.error_frame(err.unique_id or "-1", code, err.description))
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
                    code = message.code if message.code in dialect.error_codes else "other"
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

    def _answer(self, connection: CsmsConnection, call: ocppj.Call) -> str:
        """The frame that answers ``call``: the connection's version's answer, or a CALLERROR."""
        action = call.action
        handler = connection.handlers.get(action)
        if handler is None:
            self.stats[SENT_ERRORS] += 1
            dialect = connection.dialect
            if action in dialect.csms_actions:
                code = dialect.error_code(ocppj.NOT_SUPPORTED)
                return ocppj.error_frame(
                    call.unique_id, code, f"{action} is sent by a CSMS, not to one"
                )
            code = dialect.error_code(ocppj.NOT_IMPLEMENTED)
            return ocppj.error_frame(call.unique_id, code, f"unknown action {action[:64]!r}")
        self.stats[action] += 1
        if self.config.validate:
            try:
                connection.dialect.schemas.validate(action, call.payload)
            except ocppj.FrameError as err:
                self.stats[SENT_ERRORS] += 1
                code = connection.dialect.error_code(err.code)
                return ocppj.error_frame(call.unique_id, code, err.description)
        try:
            payload = handler(connection.charge_point_id, call.payload)
        except Exception as exc:  # without validation, a handler can meet any payload
            self.stats[SENT_ERRORS] += 1
            return ocppj.error_frame(
                call.unique_id,
                connection.dialect.error_code(ocppj.INTERNAL_ERROR),
                f"{type(exc).__name__} handling {action}",
            )
        return ocppj.result_frame(call.unique_id, payload)


async def _close(server: Server, code: int) -> None:
    """Stop listening and close every connection with ``code``; abort those that linger."""
    server.close(code=code)
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT + 1.0):
            await server.wait_closed()
    except TimeoutError:
        for connection in server.all_connections:
            connection.transport.abort()


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
