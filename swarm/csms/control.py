"""The embedded CSMS's control API: JSON over HTTP, to command the fleet and make the CSMS fail.

``python -m swarm.csms --control-port 8900`` serves it on the CSMS's ``--host`` (loopback by
default); with ``--workers N``, the front serves it for the N processes alike
(:mod:`swarm.csms.front`). It has no authentication: anyone who can reach it can command the
fleet. One request per connection; every answer is JSON::

    GET  /charge-points  -> {"connected": [the first 1,000 ids, sorted], "count": n,
                             "truncated": n > 1,000}
    GET  /stats          -> the CSMS's counters
    GET  /ca             -> {"certificate": PEM, "manufacturer": PEM}: the root of the CSMS's
                            certificate authority, which signs the charge points' CSRs (install
                            it in them first), and the root of the manufacturer whose firmware
                            signed-firmware sends
    POST /calls          {"action": "Reset", "payload": {"type": "Soft"},
                          "share": 0.1  or  "charge_points": ["CP-0-000001", ...],
                          "rate": 50, "timeout": 30}
                         -> the campaign's result (see :class:`swarm.csms.CampaignResult`)
    POST /campaigns/<name>  {"share": 0.1  or  "charge_points": [...], "rate": 50,
                          "timeout": 30, and the campaign's options}
                         -> {"1.6": result, "2.0.1": result, "not_connected": n}
    POST /disconnects    {"share": 0.5  or  "charge_points": [...], "code": 1001}
                         -> {"closed": n}: connections closed by the CSMS
    POST   /charging-profiles  {"share": 0.5  or  "charge_points": [...], "rate": 50,
                          "timeout": 30, "connector": 0,
                          "profile": {"purpose": "ChargePointMaxProfile", "limit": 7400}}
    DELETE /charging-profiles  {the same but profile; "purpose", "stack_level", "id"}
                         -> {"targeted": n, "accepted": m, "1.6": result, "2.0.1": result,
                             "not_connected": k}

Faults on request (see :mod:`swarm.csms.faults`), to see how the swarm fares against a failing
CSMS::

    POST   /faults       {"delay": 2.5, "callerror": "InternalError", "share": 0.5,
                          "actions": ["Heartbeat"]}
                         -> the faults now in force, as GET /faults gives them
    GET    /faults       -> {"delay": 2.5, "callerror": "InternalError", "share": 0.5,
                          "actions": ["Heartbeat"]}, or {} when the CSMS answers as it should
    DELETE /faults       -> {}: faults cleared (as POST /faults {} does)
    POST   /frames       {"kind": "malformed-json", "share": 1  or  "charge_points": [...],
                          "size": 2000000}
                         -> {"sent": n}: one stray frame sent to each charge point targeted
    POST   /restart      {"down": 2, "code": 1012}
                         -> {"closed": n, "down": 2}, once the CSMS listens again

POST /faults answers a ``share`` (default 1) of the CALLs of ``actions`` (default: all)
``delay`` seconds late (0 to 3600; a delay over the swarm's call timeout makes the answer arrive
after it gave up), and with a CALLERROR of the OCPP-J 1.6 code ``callerror`` (or its 2.0.1
spelling), spelled as each charge point's version does, instead of the CALLRESULT when that is
set; each POST replaces the faults before it. POST /frames kinds: ``malformed-json`` (text that
is not JSON), ``unknown-type`` (MessageTypeId 7), ``unknown-id`` (a CALLRESULT matching no
CALL), ``invalid-payload`` (a Reset CALL that breaks its schema), ``binary`` (a binary frame),
``huge`` (a CALL of ``size`` bytes, by default one over 1 MiB, the swarm's limit). Odd close
codes (1002, 1011, 4000, ...) are POST /disconnects'. POST /restart closes every connection with
``code`` (1012 by default, or 1001), stops listening for ``down`` seconds (0 to 3600), and
listens again on the same port.

``share`` defaults to 1 (every connected charge point), ``rate`` (calls per second) to none
(all at once), ``timeout`` to 30 s; ``payload`` to ``{}``. A share is taken of the charge points
of the OCPP versions the call fits (a Reset of type Soft is 1.6's, of type Immediate 2.0.1's);
``charge_points`` get it whatever their version. An id in ``charge_points`` that is not
connected counts as ``disconnected`` in the result.

POST /campaigns/<name> runs a named campaign of OCPP security, each version's charge points
sent it in their version's words (:mod:`swarm.csms.security_campaigns`): ``install-root``
(option ``root``: ``"csms"`` or ``"manufacturer"``), ``renew-certificates``,
``signed-firmware`` (options ``version``, ``install_at``) and ``fetch-logs`` (option ``log``:
``"DiagnosticsLog"`` or ``"SecurityLog"``). ``share`` is taken of each version's charge points
(at least one of each connected); ``rate`` paces the calls of all versions together. Its answer
is a result per version as POST /calls gives one, and ``not_connected``, how many ids of
``charge_points`` were not connected when it started (their version unknown). An unknown name
or option is a 400.

POST /charging-profiles pushes a charging profile, given in neither version's words, to a share
of each version's charge points, each in its version's SetChargingProfile; DELETE clears them
with ClearChargingProfile (every profile, without criteria; its body is optional). See
:mod:`swarm.csms.charging` for the profile. The answer is that of POST /campaigns, with
``targeted`` and ``accepted`` summed over the versions.

POST /calls and POST /campaigns need ``Content-Type: application/json`` (which a web page cannot
send to another site without asking), as every POST does, and answer when the campaign is
over. Errors are ``{"error": "..."}`` with status 400 (a bad request, call or campaign), 404,
405, 408, 409 (a restart while one runs, or of a CSMS not listening), 411, 413, 415 or 431.
"""

from __future__ import annotations

import asyncio
import heapq
import ipaddress
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from swarm.csms import charging, security_campaigns

if TYPE_CHECKING:
    from swarm.csms.server import Csms

logger = logging.getLogger(__name__)

MAX_HEAD = 16 << 10
MAX_BODY = 1 << 20
READ_TIMEOUT = 10.0  # seconds for the whole request
WRITE_TIMEOUT = 10.0
LIST_LIMIT = 1000  # ids in GET /charge-points; its count is always complete

PROFILES = "/charging-profiles"
ROUTES = {
    "/charge-points": ("GET",),
    "/stats": ("GET",),
    "/ca": ("GET",),
    "/calls": ("POST",),
    "/disconnects": ("POST",),
    "/faults": ("GET", "POST", "DELETE"),
    "/frames": ("POST",),
    "/restart": ("POST",),
    PROFILES: ("POST", "DELETE"),
}
CAMPAIGNS = "/campaigns/"  # followed by the campaign's name
CALL_KEYS = frozenset({"action", "payload", "share", "charge_points", "rate", "timeout"})
DISCONNECT_KEYS = frozenset({"share", "charge_points", "code"})
FAULT_KEYS = frozenset({"delay", "callerror", "share", "actions"})
FRAME_KEYS = frozenset({"kind", "share", "charge_points", "size"})
RESTART_KEYS = frozenset({"down", "code"})
CAMPAIGN_KEYS = frozenset({"share", "charge_points", "rate", "timeout"})
PROFILE_KEYS = CAMPAIGN_KEYS | {"connector", "profile"}
CLEAR_KEYS = CAMPAIGN_KEYS | charging.CLEAR_KEYS


class HttpError(Exception):
    """An answer other than 200: its status, its ``error`` text and extra header lines."""

    def __init__(self, status: HTTPStatus, message: str, headers: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = tuple(headers)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, read whole."""

    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


Handler = Callable[[Request], Awaitable[Any]]
"""What answers a request read whole: its JSON-ready answer, or HttpError."""


async def serve_control(csms: Csms, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve the control API of ``csms`` on ``host:port`` (0 picks a free port) in this loop."""
    return await serve(partial(answer, csms), host, port)


async def serve(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Serve ``handler``'s answers over HTTP as the control API is served, on ``host:port``:
    one request per connection, read whole and bounded in size and time, every answer JSON."""
    server = await asyncio.start_server(partial(_serve, handler), host, port, limit=MAX_HEAD)
    if not _is_loopback(host):
        logger.warning(
            "the control API listens on %s without authentication: whoever reaches it can"
            " send commands to every charge point",
            host,
        )
    logger.info("control API on %s", url(server))
    return server


def url(server: asyncio.Server) -> str:
    """``http://host:port`` of a started control server."""
    host, port = server.sockets[0].getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _serve(
    handler: Handler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        headers: tuple[str, ...] = ()
        try:
            try:
                async with asyncio.timeout(READ_TIMEOUT):
                    request = await _read_request(reader, writer)
            except TimeoutError:
                raise HttpError(HTTPStatus.REQUEST_TIMEOUT, "request not read in time") from None
            status, body = HTTPStatus.OK, await handler(request)
        except HttpError as err:
            status, body, headers = err.status, {"error": err.message}, err.headers
        except Exception:
            logger.exception("control API: unexpected error")
            status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
        writer.write(_response(status, body, headers))
        async with asyncio.timeout(WRITE_TIMEOUT):
            await writer.drain()
    except (OSError, EOFError, TimeoutError):
        pass  # the client went away or stopped reading: nobody to answer
    finally:
        writer.close()


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise HttpError(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"request head over {MAX_HEAD} bytes"
        ) from None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, _ = parts
    headers = {}
    for line in lines[1:]:
        if line:
            name, colon, value = line.partition(":")
            if not colon:
                raise HttpError(HTTPStatus.BAD_REQUEST, "malformed header line")
            headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise HttpError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
    length = headers.get("content-length", "0")
    if not (length.isascii() and length.isdigit()):
        raise HttpError(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    if int(length) > MAX_BODY:
        raise HttpError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    if int(length) and headers.get("expect", "").lower() == "100-continue":
        # curl asks first for bodies over 1 KiB, and waits a second when nobody answers.
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await reader.readexactly(int(length))
    return Request(method, target.partition("?")[0], headers, body)


async def answer(csms: Csms, request: Request) -> Any:
    """The answer of ``csms`` to ``request`` (:func:`route`), logged if it changed anything."""
    body = await route(csms, request)
    note(request, body)
    return body


def note(request: Request, body: Any) -> None:
    """Log the answer to a request that changed something (any method but GET)."""
    if request.method != "GET":
        logger.info("control API: %s %s -> %s", request.method, request.path, json.dumps(body))


async def route(csms: Csms, request: Request) -> Any:
    """The answer of ``csms`` to ``request``, its JSON-ready body; HttpError for a bad one."""
    campaign = request.path.startswith(CAMPAIGNS)
    allowed = ("POST",) if campaign else ROUTES.get(request.path)
    if allowed is None:
        raise HttpError(
            HTTPStatus.NOT_FOUND,
            "no such path; there are GET /charge-points, GET /stats, GET /ca, POST /calls,"
            " POST /campaigns/<name>, POST /disconnects, GET|POST|DELETE /faults, POST /frames,"
            " POST /restart and POST|DELETE /charging-profiles",
        )
    if request.method not in allowed:
        methods = ", ".join(allowed)
        raise HttpError(
            HTTPStatus.METHOD_NOT_ALLOWED, f"{request.path} takes {methods}", [f"Allow: {methods}"]
        )
    if request.path == "/charge-points":
        connected = csms.connections
        return {
            "connected": heapq.nsmallest(LIST_LIMIT, connected),
            "count": len(connected),
            "truncated": len(connected) > LIST_LIMIT,
        }
    if request.path == "/stats":
        return dict(sorted(csms.stats.items()))
    if request.path == "/ca":
        return {
            "certificate": csms.central.authority.root_pem,
            "manufacturer": csms.central.manufacturer.root_pem,
        }
    if campaign:
        return await _campaign(csms, request, request.path.removeprefix(CAMPAIGNS))
    if request.path == "/disconnects":
        return await _disconnects(csms, request)
    if request.path == "/faults":
        return _faults(csms, request)
    if request.path == "/frames":
        return await _frames(csms, request)
    if request.path == "/restart":
        return await _restart(csms, request)
    if request.path == PROFILES:
        return await _charging_profiles(csms, request)
    return await _calls(csms, request)


def _json_body(request: Request, keys: frozenset[str]) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != "application/json":
        raise HttpError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send Content-Type: application/json")
    try:
        body = json.loads(request.body)
    except ValueError as err:  # UnicodeDecodeError is one too
        raise HttpError(HTTPStatus.BAD_REQUEST, f"malformed JSON: {err}") from None
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    unknown = body.keys() - keys
    if unknown:
        raise _bad(f"unknown keys: {', '.join(sorted(unknown)[:10])}")
    if "share" in body and "charge_points" in body:
        raise _bad("give share or charge_points, not both")
    ids = body.get("charge_points")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise _bad("charge_points must be a list of charge point ids")
    return body


async def _disconnects(csms: Csms, request: Request) -> Any:
    body = _json_body(request, DISCONNECT_KEYS)
    try:
        closed = await csms.disconnect(
            share=_number(body, "share", 1.0),
            charge_point_ids=body.get("charge_points"),
            code=body.get("code", 1001),
        )
    except ValueError as err:
        raise _bad(str(err)) from None
    return {"closed": closed}


def _faults(csms: Csms, request: Request) -> Any:
    if request.method == "POST":
        body = _json_body(request, FAULT_KEYS)
        callerror = body.get("callerror")
        if callerror is not None and not isinstance(callerror, str):
            raise _bad('callerror must be an OCPP error code, e.g. "InternalError"')
        try:
            csms.set_faults(
                delay=_number(body, "delay", 0.0),
                callerror=callerror,
                share=_number(body, "share", 1.0),
                actions=body.get("actions"),  # checked by AnswerFaults
            )
        except ValueError as err:
            raise _bad(str(err)) from None
    elif request.method == "DELETE":
        csms.clear_faults()
    return _faults_now(csms)


def _faults_now(csms: Csms) -> dict[str, Any]:
    return csms.faults.as_dict() if csms.faults is not None else {}


async def _frames(csms: Csms, request: Request) -> Any:
    body = _json_body(request, FRAME_KEYS)
    kind = body.get("kind")
    if not isinstance(kind, str):
        raise _bad('kind must be a string, e.g. "malformed-json"')
    try:
        sent = await csms.send_frames(
            kind,
            share=_number(body, "share", 1.0),
            charge_point_ids=body.get("charge_points"),
            size=body.get("size"),  # checked by send_frames
        )
    except ValueError as err:
        raise _bad(str(err)) from None
    return {"sent": sent}


async def _restart(csms: Csms, request: Request) -> Any:
    body = _json_body(request, RESTART_KEYS)
    if "down" not in body:
        raise _bad("down must be given: seconds not listening, e.g. 2")
    down = _number(body, "down", None)
    try:
        closed = await csms.restart(down=down, code=body.get("code", 1012))
    except ValueError as err:
        raise _bad(str(err)) from None
    except RuntimeError as err:
        raise HttpError(HTTPStatus.CONFLICT, str(err)) from None
    return {"closed": closed, "down": down}


async def _calls(csms: Csms, request: Request) -> Any:
    call = _json_body(request, CALL_KEYS)
    action = call.get("action")
    if not isinstance(action, str):
        raise _bad('action must be a string, e.g. "Reset"')
    payload = call.get("payload", {})
    if not isinstance(payload, dict):
        raise _bad("payload must be a JSON object")
    pace = _pace(call)
    try:
        result = await csms.campaign(action, payload, **pace)
    except ValueError as err:
        raise _bad(str(err)) from None
    return result.as_dict()


async def _campaign(csms: Csms, request: Request, name: str) -> Any:
    options = security_campaigns.OPTIONS.get(name)
    if options is None:
        there = ", ".join(security_campaigns.OPTIONS)
        raise _bad(f"no campaign {name[:64]!r}; there are {there}")
    body = _json_body(request, CAMPAIGN_KEYS | options)
    pace = _pace(body)
    try:
        orders = security_campaigns.orders(
            name, {key: body[key] for key in options if key in body}, csms.central
        )
        result = await csms.versioned_campaign(orders, **pace)
    except ValueError as err:
        raise _bad(str(err)) from None
    return result.as_dict()


async def _charging_profiles(csms: Csms, request: Request) -> Any:
    clearing = request.method == "DELETE"
    if clearing and not request.body:
        body: dict[str, Any] = {}  # clear every profile on every charge point
    else:
        body = _json_body(request, CLEAR_KEYS if clearing else PROFILE_KEYS)
    pace = _pace(body)
    try:
        if clearing:
            orders = charging.clear_orders({k: body[k] for k in charging.CLEAR_KEYS if k in body})
        else:
            if "profile" not in body:
                raise ValueError('profile must be given, e.g. {"limit": 7400}')
            orders = charging.set_orders(body["profile"], body.get("connector", 0), csms.central)
        result = await csms.versioned_campaign(orders, **pace)
    except ValueError as err:
        raise _bad(str(err)) from None
    return with_totals(result.as_dict())


def with_totals(result: dict[str, Any]) -> dict[str, Any]:
    """A campaign's result per version (:meth:`VersionedResult.as_dict
    <swarm.csms.campaigns.VersionedResult.as_dict>`) with ``targeted`` and ``accepted`` summed
    over the versions."""
    versions = [v for v in result.values() if isinstance(v, dict)]
    return {
        "targeted": sum(v["targeted"] for v in versions),
        "accepted": sum(v["statuses"].get("Accepted", 0) for v in versions),
        **result,
    }


def _pace(call: dict[str, Any]) -> dict[str, Any]:
    """Whom a campaign calls and how fast: its keyword arguments from a request's body."""
    return {
        "share": _number(call, "share", 1.0),
        "charge_point_ids": call.get("charge_points"),
        "rate": _number(call, "rate", None),
        "timeout": _number(call, "timeout", 30.0),
    }


def _number(call: dict[str, Any], key: str, default: float | None) -> Any:
    value = call.get(key, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{key} must be a number")
    return value


def _bad(message: str) -> HttpError:
    return HttpError(HTTPStatus.BAD_REQUEST, message)


def _response(status: HTTPStatus, body: Any, headers: Iterable[str] = ()) -> bytes:
    data = json.dumps(body).encode() + b"\n"
    head = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *headers,
    ]
    return "\r\n".join(head).encode("latin-1") + b"\r\n\r\n" + data
