"""Frame traces: what a charge point and its CSMS said to each other, kept for when it fails.

Each charge point's :class:`FrameTrace` records every message its connections carry, in one
``bytearray`` ring of its last frames: the time, the direction, the length, and the text cut at
:data:`TEXT_LIMIT` bytes. When one of its samples fails (but a failed connect, which carries no
frame), the trace is *triggered*: the frames so far, and the next :data:`AFTER` frames or what
came within :data:`FOLLOW` seconds, go to its :class:`Tracer` as one :class:`Trace`, to be
written out. The first :attr:`Tracer.limit` charge points that fail are traced; others are not.

A frame that names a secret a CSMS may set (1.6's AuthorizationKey, 2.0.1's BasicAuthPassword,
an APN password) is kept without its payload. Handshake headers, where a password travels, are
never recorded.

Everything here runs in the engine's loop but :meth:`Tracer.drain`, which may be called from
any thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
import time
from collections import deque
from typing import NamedTuple

from swarm.protocol.samples import WEBSOCKET, Sample, SampleSink

DEFAULT_FRAMES = 32
"""Frames a charge point keeps by default."""

FRAME_BYTES = 52
"""Room in a ring per frame it keeps, its 10 bytes of header included: a Heartbeat (25 bytes of
text) and its answer (about 55) fit in two frames' room; larger frames take more, and the ring
then holds fewer of them."""

TEXT_LIMIT = 512
"""Bytes of a frame's text kept; its length says how long it was."""

AFTER = 6
"""Frames recorded after a failure before its trace is handed in."""

FOLLOW = 5.0
"""Seconds after a failure at which its trace is handed in, whatever came meanwhile."""

SENT, RECEIVED = "sent", "received"

WITHHELD = '{"withheld":"it may carry a secret"}'
"""The payload recorded for a frame that names a secret."""

# A frame in the ring: its header, the length of a frame not kept whole, the text kept. The
# header's first two bytes are the bytes kept and two flags (the ring reads them to drop the
# oldest frame), then the perf_counter() time it was sent or read.
_HEADER = struct.Struct("<Hd")
_LENGTH = struct.Struct("<I")
_SENT, _CUT, _KEPT = 1 << 14, 1 << 15, (1 << 14) - 1  # TEXT_LIMIT < 1 << 14
_pack, _pack_length, _HEADER_SIZE = _HEADER.pack, _LENGTH.pack, _HEADER.size
_SECRET = re.compile(rb"(?i)authorizationkey|basicauthpassword|apnpassword")


class TracedFrame(NamedTuple):
    """One frame as a trace holds it."""

    number: int
    """The charge point's count of frames when it was recorded, from 1: its place in the file."""
    at: float
    """When it was sent or read, ``time.time()`` seconds."""
    direction: str
    """:data:`SENT` or :data:`RECEIVED`."""
    text: str
    """The frame's text, cut at :data:`TEXT_LIMIT` bytes."""
    length: int
    """The frame's length in bytes."""


class Trace(NamedTuple):
    """A charge point's failures and the frames around them not handed in before."""

    charge_point_id: str
    failures: list[tuple[float, str]]
    """``(time.time(), what failed)``: ``OCPP Heartbeat: CallTimeout``."""
    frames: list[TracedFrame]


class Tracer:
    """The traces of one process's charge points: it makes them and collects what they hand
    in, for :meth:`drain`.

    ``frames`` is how many each keeps (0: no tracing); ``limit`` how many charge points are
    traced at most; ``every_frame`` hands in every frame of every charge point as it comes, with
    no limit, for small runs.
    """

    def __init__(
        self, frames: int = DEFAULT_FRAMES, limit: int = 100, *, every_frame: bool = False
    ) -> None:
        if frames < 0 or limit < 0:
            raise ValueError(f"frames and limit must be at least 0, got {frames} and {limit}")
        self.frames = frames
        self.limit = limit
        self.every_frame = every_frame
        self.traced: set[str] = set()
        """The charge points that handed in a trace."""
        self._out: deque[Trace] = deque()
        self._following: set[FrameTrace] = set()  # triggered, awaiting their next frames

    def trace(self, charge_point_id: str) -> FrameTrace | None:
        """A new trace for a charge point; None when tracing is off."""
        if not (self.frames or self.every_frame):
            return None
        return FrameTrace(charge_point_id, self)

    def end_all(self) -> None:
        """Hand in now every trace that awaits its next frames (a test ends)."""
        for trace in list(self._following):
            trace.end()

    def drain(self) -> list[Trace]:
        """Take every trace handed in so far."""
        out = self._out
        return [out.popleft() for _ in range(len(out))]

    def _may_trace(self, charge_point_id: str) -> bool:
        if charge_point_id in self.traced or self.every_frame:
            return True
        if len(self.traced) >= self.limit:
            return False
        self.traced.add(charge_point_id)
        return True

    def _hand_in(self, trace: Trace) -> None:
        self.traced.add(trace.charge_point_id)
        self._out.append(trace)


class FrameTrace:
    """One charge point's last frames (see the module's docstring). Give it to its connections
    (:func:`~swarm.protocol.connection.connect`) and put :meth:`watching` in front of its sink.
    """

    # One per charge point: slots keep a fleet's traces small.
    __slots__ = (
        "_count",
        "_failures",
        "_handed",
        "_left",
        "_recorded",
        "_ring",
        "_sink",
        "_timer",
        "_tracer",
        "charge_point_id",
    )

    def __init__(self, charge_point_id: str, tracer: Tracer) -> None:
        self.charge_point_id = charge_point_id
        self._tracer = tracer
        self._ring = bytearray()
        self._count = 0  # frames in the ring
        self._recorded = 0  # frames ever recorded: the last one's number
        self._handed = 0  # the number of the last frame handed in
        self._failures: list[tuple[float, str]] | None = None  # while following a failure
        self._left = 0  # frames to record before handing in
        self._timer: asyncio.TimerHandle | None = None
        self._sink: SampleSink = _unwatched

    def record(self, sent: bool, data: bytes, at: float) -> None:
        """Record a frame ``sent`` or received, at ``perf_counter()`` time ``at``."""
        length = len(data)
        # A secret comes in a CSMS's CALL, never in an answer: the bulk skips the search.
        if sent or data.startswith(b"[3,") or _SECRET.search(data) is None:
            if length > TEXT_LIMIT:
                data = data[:TEXT_LIMIT]
        else:
            data = _withheld(data)
        ring, kept, tracer = self._ring, len(data), self._tracer
        if not tracer.every_frame:
            # Room first, then the frame: a ring that never grows past its room is never
            # reallocated larger (a bytearray over-allocates by an eighth as it grows).
            count, frames = self._count, tracer.frames
            size = _HEADER_SIZE + kept + (0 if kept == length else _LENGTH.size)
            room = frames * FRAME_BYTES - size
            while count and (count >= frames or len(ring) > room):
                bits = ring[0] | ring[1] << 8  # the oldest frame's
                del ring[: _HEADER_SIZE + (bits & _KEPT) + (_LENGTH.size if bits & _CUT else 0)]
                count -= 1
            self._count = count + 1
        if kept == length:
            ring += _pack(kept | _SENT if sent else kept, at)
        else:
            ring += _pack(kept | _CUT | _SENT if sent else kept | _CUT, at)
            ring += _pack_length(length)
        ring += data
        self._recorded += 1
        if tracer.every_frame:
            self._hand_in()
            return
        if self._failures is not None:
            self._left -= 1
            if self._left <= 0:
                self._hand_in()

    def watching(self, sink: SampleSink) -> FrameTrace:
        """The trace as a sink that passes every sample on to ``sink`` and is triggered by
        those that failed. (No closure: a fleet has one per charge point.)"""
        self._sink = sink
        return self

    def __call__(self, sample: Sample) -> None:
        self._sink(sample)
        if sample.error is not None:
            self.failed(sample)

    def failed(self, sample: Sample) -> None:
        """Trigger the trace: ``sample`` failed."""
        if sample.request_type == WEBSOCKET and sample.name == "connect":
            return  # no frame to show
        if not self._tracer._may_trace(self.charge_point_id):
            return
        failure = (time.time(), f"{sample.request_type} {sample.name}: {sample.error}")
        if self._tracer.every_frame:
            self._tracer._hand_in(Trace(self.charge_point_id, [failure], []))
            return
        if self._failures is None:
            self._failures = []
            self._tracer._following.add(self)
            self._left = AFTER
            self._timer = asyncio.get_running_loop().call_later(FOLLOW, self._hand_in)
        self._failures.append(failure)

    def end(self) -> None:
        """The charge point stopped: a trace that awaits its next frames is handed in now."""
        if self._failures is not None:
            self._hand_in()

    def _hand_in(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        failures, self._failures = self._failures or [], None
        self._tracer._following.discard(self)
        frames = self._frames()
        if frames:
            self._handed = frames[-1].number
        self._tracer._hand_in(Trace(self.charge_point_id, failures, frames))

    def _frames(self) -> list[TracedFrame]:
        """The frames in the ring not handed in yet; the ring is emptied in every-frame mode."""
        ring, frames, offset = self._ring, [], 0
        number = self._recorded - (1 if self._tracer.every_frame else self._count)
        to_wall = time.time() - time.perf_counter()
        while offset < len(ring):
            bits, at = _HEADER.unpack_from(ring, offset)
            offset += _HEADER_SIZE
            kept = bits & _KEPT
            if bits & _CUT:
                (length,) = _LENGTH.unpack_from(ring, offset)
                offset += _LENGTH.size
            else:
                length = kept
            number += 1
            if number > self._handed:
                text = ring[offset : offset + kept].decode(errors="replace")
                frames.append(
                    TracedFrame(
                        number, at + to_wall, SENT if bits & _SENT else RECEIVED, text, length
                    )
                )
            offset += kept
        if self._tracer.every_frame:
            ring.clear()
        return frames


def _unwatched(_sample: Sample) -> None:
    raise RuntimeError("a trace passes samples on once watching() gave it a sink")


def _withheld(data: bytes) -> bytes:
    """A frame naming a secret without its payload: ``[2,"17","ChangeConfiguration",{...}]``."""
    try:
        message = json.loads(data)
        head = message[:3] if message[0] == 2 else message[:2]
        text = json.dumps(head, separators=(",", ":"))[:-1] + "," + WITHHELD + "]"
    except Exception:  # not a frame that parses: nothing of it is kept
        text = WITHHELD
    return text.encode()[:TEXT_LIMIT]
