"""The embedded CSMS's faults on request, as it injects them (:mod:`swarm.csms.faults` says what
they are).

:class:`FaultInjection` is a mixin of :class:`swarm.csms.server.Csms`: it sets the
:class:`~swarm.csms.faults.AnswerFaults` in force, answers the CALLs they hit, and sends stray
frames. Restarts are the server's (:meth:`swarm.csms.server.Csms.restart`): they stop and start
its listening, as :meth:`~swarm.csms.server.Csms.stop` and ``start`` do.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
from collections.abc import Callable, Mapping

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from swarm.csms import faults
from swarm.csms.campaigns import connected_targets
from swarm.csms.config import FAULT_CALLERRORS, FAULT_DELAYED, FAULT_FRAMES, SENT_ERRORS
from swarm.csms.connection import CsmsConnection
from swarm.csms.versions import PRIMARY, Version, primary_error_code
from swarm.protocol import ocppj

FRAMES_AT_ONCE = 64  # stray frames in flight at once


class FaultInjection:
    """Faults on request; counted in ``stats`` as ``faults.delayed``, ``faults.callerror`` and
    ``faults.frames.<kind>``.

    ``faults`` holds the :class:`~swarm.csms.faults.AnswerFaults` in force, or None: set it with
    :meth:`set_faults`.
    """

    # Of the CSMS (swarm.csms.server.Csms).
    stats: collections.Counter[str]
    connections: dict[str, CsmsConnection]
    faults: faults.AnswerFaults | None
    _versions: Mapping[str, Version]
    _fault_ids: itertools.count[int]
    _answer: Callable[[CsmsConnection, ocppj.Call], str]

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

        ``callerror`` is a code of :data:`~swarm.csms.versions.PRIMARY` (OCPP-J 1.6), or another
        version's spelling of one, which it is taken as (``FormatViolation`` is
        ``FormationViolation``); each connection's CALLERROR spells it as its version does.

        Raises ValueError for a bad value or an action the CSMS does not answer; the faults
        in force stay as they were then.
        """
        if not delay and callerror is None:
            if share != 1.0 or actions is not None:
                raise ValueError("share and actions go with a delay or a callerror")
            self.faults = None
            return None
        if isinstance(callerror, str):
            callerror = primary_error_code(callerror)
        plan = faults.AnswerFaults(delay, callerror, share, actions, dialect=PRIMARY)
        answered = frozenset().union(*(version.handlers for version in self._versions.values()))
        unknown = sorted((plan.actions or frozenset()) - answered)
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
        websockets = connected_targets(self.connections, share, charge_point_ids)
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
            code = connection.dialect.error_code(plan.callerror)
            frame = ocppj.error_frame(call.unique_id, code, faults.FAULT_DESCRIPTION)
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


async def _send_later(websocket: ServerConnection, frame: str, delay: float) -> None:
    await asyncio.sleep(delay)
    with contextlib.suppress(ConnectionClosed):
        await websocket.send(frame)
