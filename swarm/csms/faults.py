"""Faults the embedded CSMS injects on request: a failing CSMS to load-test the swarm against.

Two kinds, which :class:`swarm.csms.Csms` injects (:mod:`swarm.csms.injection`) when told to,
by a method call or through its control API (:mod:`swarm.csms.control`):

- :class:`AnswerFaults`: how the CSMS answers charge-point-initiated CALLs while it misbehaves:
  late (``delay``), with a CALLERROR (``callerror``), or both, for a ``share`` of the CALLs of
  some ``actions`` (all, by default). They hold until cleared.
- stray frames (:data:`FRAME_KINDS`, built by :func:`stray_frame`): one frame the CSMS sends a
  charge point out of the blue, malformed in one of the ways a real CSMS gets OCPP-J wrong.

Dropped connections and restarts are the CSMS's own: :meth:`~swarm.csms.Csms.disconnect` and
:meth:`~swarm.csms.Csms.restart`. The checks of what they all take (a share, seconds, a close
code) are here, so that each says the same.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from websockets.frames import EXTERNAL_CLOSE_CODES

from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect

MAX_DELAY = 3600.0
"""Longest delay of an answer, or time down of a restart, in seconds."""

FAULT_DESCRIPTION = "fault injected by the CSMS"
"""The errorDescription of the CALLERRORs that :class:`AnswerFaults` make."""

HUGE_SIZE = (1 << 20) + 1
"""Bytes of a ``huge`` frame by default: one over websockets' default ``max_size`` (1 MiB),
the limit of the swarm's connections and of most clients'."""

MAX_HUGE_SIZE = 64 << 20

FRAME_KINDS = (
    "malformed-json",
    "unknown-type",
    "unknown-id",
    "invalid-payload",
    "binary",
    "huge",
)
"""What :func:`stray_frame` makes:

- ``malformed-json``: text that is not JSON;
- ``unknown-type``: a frame of MessageTypeId 7, which neither OCPP-J 1.6 nor 2.0.1 has;
- ``unknown-id``: a CALLRESULT whose unique id matches no CALL;
- ``invalid-payload``: a Reset CALL whose ``type`` is not one of the schema's values;
- ``binary``: a binary WebSocket frame (OCPP-J frames are text);
- ``huge``: a DataTransfer CALL of ``size`` bytes, over the receiver's message size limit.
"""

INVALID_RESET = {"type": "Sideways"}
"""The payload of an ``invalid-payload`` frame: a PropertyConstraintViolation of Reset."""

CLOSE_CODES = frozenset(EXTERNAL_CLOSE_CODES) | frozenset(range(3000, 5000))
"""Close codes a CSMS may send (RFC 6455 7.4, as websockets checks them)."""


@dataclass(frozen=True, slots=True)
class AnswerFaults:
    """How the CSMS answers the CALLs it receives while it misbehaves.

    A CALL of one of ``actions`` (``None``: any action) is hit with probability ``share``
    (0 < share <= 1). A hit CALL is answered ``delay`` seconds late (0: at once), with a
    CALLERROR of code ``callerror`` instead of its CALLRESULT if that is set: one of the error
    codes of ``dialect``. A delay longer than the charge point's call timeout makes the answer
    arrive after it gave up. Raises ValueError for a value out of range, or when neither fault
    is set.
    """

    delay: float = 0.0
    callerror: str | None = None
    share: float = 1.0
    actions: frozenset[str] | None = None
    dialect: Dialect = field(default=OCPP16, kw_only=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_seconds("delay", self.delay)
        codes = self.dialect.error_codes
        if self.callerror is not None and self.callerror not in codes:
            raise ValueError(
                f"callerror must be an OCPP-J {self.dialect.version} error code"
                f" ({', '.join(sorted(codes))}), not {self.callerror!r}"
            )
        check_share(self.share)
        if self.actions is not None:
            # Any collection of names (a list from JSON), kept as a frozenset.
            if (
                isinstance(self.actions, str | bytes | Mapping)
                or not isinstance(self.actions, Collection)
                or not all(isinstance(action, str) and action for action in self.actions)
            ):
                raise ValueError("actions must be a list of action names")
            if not self.actions:
                raise ValueError("actions must name at least one action (leave it out for all)")
            object.__setattr__(self, "actions", frozenset(self.actions))
        if not self.delay and self.callerror is None:
            raise ValueError("set a delay, a callerror or both")

    def hits(self, action: str) -> bool:
        """Whether this CALL is to be answered faultily: its action, then the dice."""
        actions = self.actions
        if actions is not None and action not in actions:
            return False
        return self.share >= 1 or random.random() < self.share

    def as_dict(self) -> dict[str, Any]:
        """The faults as JSON-ready data, as the control API takes them."""
        return {
            "delay": self.delay,
            "callerror": self.callerror,
            "share": self.share,
            "actions": sorted(self.actions) if self.actions is not None else None,
        }


def check_seconds(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` is a number of seconds from 0 to :data:`MAX_DELAY`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number of seconds, not {value!r}")
    if not (0 <= value <= MAX_DELAY and math.isfinite(value)):
        raise ValueError(f"{name} must be 0 to {MAX_DELAY:g} seconds, not {value!r}")


def check_share(share: float) -> None:
    """Raise ValueError unless ``share`` is a number in (0, 1]."""
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 1:
        raise ValueError(f"share must be a number in (0, 1], not {share!r}")


def check_close_code(code: int) -> None:
    """Raise ValueError unless ``code`` is one of :data:`CLOSE_CODES`."""
    if isinstance(code, bool) or code not in CLOSE_CODES:
        raise ValueError(f"code must be a close code a server may send, not {code!r}")


def check_frame(kind: str, size: int | None) -> None:
    """Raise ValueError unless ``kind`` is one of :data:`FRAME_KINDS` and ``size`` fits it."""
    if kind not in FRAME_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FRAME_KINDS)}, not {kind!r}")
    if size is None:
        return
    if kind != "huge":
        raise ValueError("size is for frames of kind huge only")
    if isinstance(size, bool) or not isinstance(size, int) or not 256 <= size <= MAX_HUGE_SIZE:
        raise ValueError(f"size must be a whole number of bytes, 256 to {MAX_HUGE_SIZE}")


def stray_frame(kind: str, unique_id: str, size: int | None = None) -> str | bytes:
    """The frame of ``kind`` (see :data:`FRAME_KINDS`), with ``unique_id`` where it has one.

    ``unique_id`` should match nothing the receiver sent: ``fault-1``, not a number.
    """
    check_frame(kind, size)
    if kind == "malformed-json":
        return f'[2, "{unique_id}", "Heartbeat", {{'
    if kind == "unknown-type":
        return f'[7,"{unique_id}","Heartbeat",{{}}]'
    if kind == "unknown-id":
        return ocppj.result_frame(unique_id, {})
    if kind == "invalid-payload":
        return ocppj.call_frame(unique_id, "Reset", INVALID_RESET)
    if kind == "binary":
        return ocppj.call_frame(unique_id, "ClearCache", {}).encode()
    # huge: a well-formed CALL, padded to the size; a receiver that takes it gets a DataTransfer.
    size = HUGE_SIZE if size is None else size
    empty = ocppj.call_frame(unique_id, "DataTransfer", {"vendorId": "ocpp-swarm", "data": ""})
    return ocppj.call_frame(
        unique_id,
        "DataTransfer",
        {"vendorId": "ocpp-swarm", "data": "x" * max(0, size - len(empty))},
    )
