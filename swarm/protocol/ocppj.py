"""OCPP-J framing: the JSON arrays that carry OCPP over WebSocket, of every version, without I/O.

A frame is one of::

    [2, "<uniqueId>", "<action>", {payload}]                    CALL
    [3, "<uniqueId>", {payload}]                                CALLRESULT
    [4, "<uniqueId>", "<errorCode>", "<description>", {details}]  CALLERROR

:func:`parse` turns text into a :class:`Call`, :class:`CallResult` or :class:`CallError` and raises
:class:`FrameError` carrying the OCPP-J error code to answer with; the ``*_frame`` functions
build text. Serialization is plain :mod:`json` with compact separators: this is the hot path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

CALL = 2
CALLRESULT = 3
CALLERROR = 4

# Error codes as OCPP-J 1.6 spells them (4.2.3; the misspellings are the spec's). A version that
# spells one otherwise says so in its Dialect (swarm.protocol.dialect), where CALLERRORs are made.
NOT_IMPLEMENTED = "NotImplemented"
NOT_SUPPORTED = "NotSupported"
INTERNAL_ERROR = "InternalError"
PROTOCOL_ERROR = "ProtocolError"
SECURITY_ERROR = "SecurityError"
FORMATION_VIOLATION = "FormationViolation"
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
GENERIC_ERROR = "GenericError"


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps`` with compact separators and no ASCII escaping, minus its per-call setup.

    ``JSONEncoder.encode`` builds a new C encoder (and a closure) for every call; this one is
    built once. It keeps no circular-reference markers (a dict of them per call): payloads
    are JSON-shaped data, never a cycle.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    if c_make_encoder is None:  # an interpreter without the _json accelerator
        return encoder.encode
    chunks = c_make_encoder(
        None, encoder.default, encode_basestring, None, ":", ",", False, False, True
    )
    join = "".join

    def dumps(value: Any) -> str:
        return join(chunks(value, 0))

    # c_make_encoder is CPython's internal: should its signature ever change, fall back.
    sample = [2, "1", "Heartbeat", {"é": [1.5, None, True, "\n"]}]
    try:
        if dumps(sample) == encoder.encode(sample):
            return dumps
    except Exception:
        pass
    return encoder.encode


_dumps = _compact_encoder()
_loads = json.loads
_scan_once = json.JSONDecoder().scan_once


@dataclass(frozen=True, slots=True)
class Call:
    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    unique_id: str
    code: str
    description: str
    details: dict[str, Any]


Message = Call | CallResult | CallError


class FrameError(Exception):
    """A frame that is not valid OCPP-J.

    ``code`` is the OCPP error code a CALLERROR answering it should carry; ``unique_id`` is the
    frame's id when one could be read, else ``None`` (answer with ``"-1"`` then, as CSMSs do);
    ``message_type`` is its MessageTypeId when that is an integer, else ``None``.
    """

    def __init__(
        self,
        code: str,
        description: str,
        unique_id: str | None = None,
        message_type: int | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.unique_id = unique_id
        self.message_type = message_type

    @property
    def answerable(self) -> bool:
        """Whether a CALLERROR answers the frame: a CALL, or a frame too broken to tell what it
        was (answered with id ``"-1"``, which matches no CALL). Never a CALLRESULT or CALLERROR,
        whose id may be one the peer waits on, nor a frame of an unknown MessageTypeId, which
        OCPP-J 1.6 (4.1.3) has the receiver ignore."""
        return self.message_type == CALL or self.message_type is self.unique_id is None


def parse(text: str | bytes) -> Message:
    """Parse one OCPP-J frame.

    Raises :class:`FrameError` for anything that is not a well-formed CALL, CALLRESULT or
    CALLERROR. Payloads are checked only for being JSON objects; schema validation is the
    caller's business. Descriptions are fixed texts, so that errors can be counted by them.
    """
    try:
        frame = _load(text)
    except (ValueError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FrameError(FORMATION_VIOLATION, "not JSON") from None
    except RecursionError:  # "[[[[...": json's C decoder recurses once per level
        # Maybe a frame whose payload is too deep: answer it to its own id if it has one.
        kind, unique_id = _head(text)
        raise FrameError(FORMATION_VIOLATION, "JSON nested too deeply", unique_id, kind) from None
    if not isinstance(frame, list) or not frame:
        raise FrameError(FORMATION_VIOLATION, "not a JSON array")
    length = len(frame)
    unique_id = frame[1] if length > 1 and isinstance(frame[1], str) else None
    kind = frame[0] if type(frame[0]) is int else None
    if kind == CALLRESULT:  # first: what a charge point reads most
        if length != 3 or unique_id is None or not isinstance(frame[2], dict):
            raise _malformed("a CALLRESULT is [3, uniqueId, {payload}]", unique_id, kind)
        return CallResult(unique_id, frame[2])
    if kind == CALL:
        if length != 4:
            raise _malformed("a CALL has 4 elements", unique_id, kind)
        _, uid, action, payload = frame
        if not isinstance(uid, str) or not isinstance(action, str):
            raise _malformed("uniqueId and action must be strings", unique_id, kind)
        if not isinstance(payload, dict):
            raise _malformed("a payload must be a JSON object", unique_id, kind)
        return Call(uid, action, payload)
    if kind == CALLERROR:
        # Tolerate what real CSMSs send: a missing details object, a numeric id such as -1.
        if not 3 <= length <= 5:
            raise _malformed("a CALLERROR has 5 elements", unique_id, kind)
        uid = frame[1] if isinstance(frame[1], str) else str(frame[1])
        code = str(frame[2])
        description = str(frame[3]) if length > 3 else ""
        details = frame[4] if length > 4 and isinstance(frame[4], dict) else {}
        return CallError(uid, code, description, details)
    raise FrameError(PROTOCOL_ERROR, "unknown MessageTypeId", unique_id, kind)


_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*("(?:[^"\\\x00-\x1f]|\\.){0,64}")\s*,')


def _head(text: str | bytes) -> tuple[int | None, str | None]:
    """The MessageTypeId and unique id at the start of a frame json cannot parse, if they are
    there (an id of up to 64 characters, as OCPP-J's 36 and some room)."""
    try:
        start = text[:256].decode(errors="replace") if isinstance(text, bytes) else text[:256]
        match = _HEAD.match(start)
        if match is not None:
            return int(match[1]), _loads(match[2])
    except ValueError:
        pass
    return None, None


def _malformed(description: str, unique_id: str | None, kind: int | None) -> FrameError:
    return FrameError(FORMATION_VIOLATION, description, unique_id, kind)


def _load(text: str | bytes) -> Any:
    """``json.loads``, quicker for what nearly every frame is: UTF-8 with no space around it.

    Anything else (surrounding whitespace, a byte order mark, broken JSON) goes to
    ``json.loads`` itself, so results and errors stay exactly its own.
    """
    try:
        decoded = text.decode() if type(text) is bytes else text
        value, end = _scan_once(decoded, 0)
        if end == len(decoded):
            return value
    except (ValueError, TypeError, StopIteration):
        pass
    return _loads(text)


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    """The text of a CALL."""
    return _dumps([CALL, unique_id, action, payload])


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    """The text of a CALLRESULT."""
    return _dumps([CALLRESULT, unique_id, payload])


def error_frame(
    unique_id: str, code: str, description: str = "", details: dict[str, Any] | None = None
) -> str:
    """The text of a CALLERROR."""
    return _dumps([CALLERROR, unique_id, code, description, details or {}])
