"""OCPP-J framing: the JSON arrays that carry OCPP 1.6 over WebSocket, without I/O.

A frame is one of::

    [2, "<uniqueId>", "<action>", {payload}]                    CALL
    [3, "<uniqueId>", {payload}]                                CALLRESULT
    [4, "<uniqueId>", "<errorCode>", "<description>", {details}]  CALLERROR

:func:`parse` turns text into a :class:`Call`, :class:`CallResult` or :class:`CallError` and raises
:class:`FrameError` carrying the OCPP 1.6 error code to answer with; the ``*_frame`` functions
build text. Serialization is plain :mod:`json` with compact separators: this is the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

SUBPROTOCOL = "ocpp1.6"
"""The WebSocket subprotocol of OCPP 1.6J."""

CALL = 2
CALLRESULT = 3
CALLERROR = 4

# OCPP 1.6J error codes (section 4.2.3 of the JSON specification; the misspellings are the spec's).
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

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


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
    ``message_type`` is its MessageTypeId when that is an integer, else ``None``. Only a CALL
    is answered with a CALLERROR: a malformed CALLRESULT is a bad answer to one's own CALL.
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


def parse(text: str | bytes) -> Message:
    """Parse one OCPP-J frame.

    Raises :class:`FrameError` for anything that is not a well-formed CALL, CALLRESULT or
    CALLERROR. Payloads are checked only for being JSON objects; schema validation is the
    caller's business. Descriptions are fixed texts, so that errors can be counted by them.
    """
    try:
        frame = _loads(text)
    except (ValueError, TypeError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise FrameError(FORMATION_VIOLATION, "not JSON") from None
    if not isinstance(frame, list) or not frame:
        raise FrameError(FORMATION_VIOLATION, "not a JSON array")
    unique_id = frame[1] if len(frame) > 1 and isinstance(frame[1], str) else None
    kind = frame[0] if type(frame[0]) is int else None

    def error(description: str) -> FrameError:
        return FrameError(FORMATION_VIOLATION, description, unique_id, kind)

    if kind == CALL:
        if len(frame) != 4:
            raise error("a CALL has 4 elements")
        _, uid, action, payload = frame
        if not isinstance(uid, str) or not isinstance(action, str):
            raise error("uniqueId and action must be strings")
        if not isinstance(payload, dict):
            raise error("a payload must be a JSON object")
        return Call(uid, action, payload)
    if kind == CALLRESULT:
        if len(frame) != 3 or not isinstance(frame[1], str) or not isinstance(frame[2], dict):
            raise error("a CALLRESULT is [3, uniqueId, {payload}]")
        return CallResult(frame[1], frame[2])
    if kind == CALLERROR:
        # Tolerate what real CSMSs send: a missing details object, a numeric id such as -1.
        if not 3 <= len(frame) <= 5:
            raise error("a CALLERROR has 5 elements")
        uid = frame[1] if isinstance(frame[1], str) else str(frame[1])
        code = str(frame[2])
        description = str(frame[3]) if len(frame) > 3 else ""
        details = frame[4] if len(frame) > 4 and isinstance(frame[4], dict) else {}
        return CallError(uid, code, description, details)
    raise FrameError(PROTOCOL_ERROR, "unknown MessageTypeId", unique_id, kind)


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
