"""The embedded CSMS's own calls: to one charge point (:meth:`Campaigns.call`), to many at a given
rate (:meth:`Campaigns.campaign`; in each version's words, :meth:`Campaigns.versioned_campaign`),
and dropping connections (:meth:`Campaigns.disconnect`).

:class:`Campaigns` is a mixin of :class:`swarm.csms.server.Csms`, which holds the connections.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from swarm.csms import faults
from swarm.csms.config import DISCONNECTED
from swarm.csms.connection import CsmsConnection, NotConnectedError
from swarm.csms.versions import ANSWERS, PRIMARY, Central
from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect

T = TypeVar("T")


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


@dataclass(frozen=True, slots=True)
class Order:
    """One version's part of a campaign: its action, and what makes each call's payload (called
    when the call is due, so that each may differ: a requestId unique per call)."""

    action: str
    payload: Callable[[], dict[str, Any]]

    @classmethod
    def same(cls, action: str, payload: dict[str, Any]) -> Order:
        """An order whose every call has ``payload``."""
        return cls(action, lambda: payload)


@dataclass(slots=True)
class VersionedResult:
    """What a campaign in each version's words came to: a :class:`CampaignResult` by OCPP
    version, and ``not_connected``, the charge points named that were not connected when it
    started (their version unknown, they are in no version's result)."""

    results: dict[str, CampaignResult]
    not_connected: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data: ``{"1.6": {...}, "2.0.1": {...}, "not_connected": n}``."""
        return {
            **{version: result.as_dict() for version, result in self.results.items()},
            "not_connected": self.not_connected,
        }


CampaignCall = tuple[str, CampaignResult, Callable[[], dict[str, Any]]]
"""One call of a campaign: to whom, the result it counts in (whose action it sends), the maker
of its payload."""


class Campaigns:
    """The CSMS's calls and disconnects; counted in ``stats`` as ``sent.<Action>``,
    ``answered.<Action>``, ``callerror.<Action>``, ``timeout.<Action>``,
    ``disconnected.<Action>`` and ``connections.closed_by_csms``."""

    # Of the CSMS (swarm.csms.server.Csms).
    stats: collections.Counter[str]
    connections: dict[str, CsmsConnection]
    central: Central
    _call_ids: itertools.count[int]
    _stopping: asyncio.Event

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
        payload that breaks its schema, in the OCPP version the charge point speaks (in every
        version the CSMS speaks, if it is not connected); NotConnectedError if the charge point
        is not connected or its connection closes before it answers; TimeoutError if no answer
        comes within ``timeout`` seconds, the wait for a call already in flight to it included.
        """
        connection = self.connections.get(charge_point_id)
        if connection is None:
            # A bad call is refused as such, before it is found to have no one to go to.
            fitting_dialects(action, payload)
        else:
            check_request(connection.dialect, action, payload)
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
        the charge points connected now that speak an OCPP version the call fits (a Reset of
        type Soft goes to 1.6 charge points, one of type Immediate to 2.0.1 ones; a ClearCache
        to both); a charge point named gets it whatever its version. Every target gets the
        same ``payload``. With ``rate``, the calls start evenly spaced; without it, all at once.
        Each is bounded by ``timeout``. Stopping the CSMS ends the campaign: calls not yet
        started count as disconnected.
        Raises ValueError for an action or payload that fits no version, or a bad argument,
        before anything is sent.
        """
        dialects = fitting_dialects(action, payload)
        _check_pace(rate, timeout)
        targets = _campaign_targets(self.connections, share, charge_point_ids, dialects)
        result = CampaignResult(action, targeted=len(targets))
        same = Order.same(action, payload).payload
        result.seconds = await self._run([(id_, result, same) for id_ in targets], rate, timeout)
        return result

    async def versioned_campaign(
        self,
        orders: Mapping[Dialect, Order],
        *,
        share: float = 1.0,
        charge_point_ids: list[str] | None = None,
        rate: float | None = None,
        timeout: float = 30.0,
    ) -> VersionedResult:
        """Send each version's charge points its own order: one campaign in each version's
        words (an InstallCertificate whose certificateType is CentralSystemRootCertificate in
        1.6 and CSMSRootCertificate in 2.0.1), counted by version.

        ``orders`` has one :class:`Order` for each version the CSMS speaks. The targets are
        ``charge_point_ids`` that are connected when the campaign starts, each sent its
        version's order (the others are counted as ``not_connected``), or else a random
        ``share`` (0 < share <= 1, rounded, at least one) of each version's charge points
        connected now. With ``rate``, the calls of all versions together start evenly spaced,
        the versions mixed; without it, all at once. Each is bounded by ``timeout``; stopping
        the CSMS ends the campaign as it ends :meth:`campaign`.
        Raises ValueError, before anything is sent, for a missing order, a payload that breaks
        its version's schema (one payload of each order is made and checked), or a bad
        argument.
        """
        speaks = [dialect for dialect, _ in ANSWERS]
        missing = [dialect.version for dialect in speaks if dialect not in orders]
        if missing:
            raise ValueError(f"no order for OCPP {', '.join(missing)}")
        for dialect, order in orders.items():
            check_request(dialect, order.action, order.payload())
        _check_pace(rate, timeout)
        targets, not_connected = _versioned_targets(
            self.connections, share, charge_point_ids, speaks
        )
        results = {dialect: CampaignResult(orders[dialect].action) for dialect in speaks}
        calls: list[CampaignCall] = []
        for charge_point_id, dialect in targets:
            result = results[dialect]
            result.targeted += 1
            calls.append((charge_point_id, result, orders[dialect].payload))
        seconds = await self._run(calls, rate, timeout)
        for result in results.values():
            result.seconds = seconds
        return VersionedResult(
            {dialect.version: result for dialect, result in results.items()}, not_connected
        )

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
        faults.check_close_code(code)
        websockets = connected_targets(self.connections, share, charge_point_ids)
        await asyncio.gather(*(websocket.close(code, reason) for websocket in websockets))
        self.stats[DISCONNECTED] += len(websockets)
        return len(websockets)

    async def _run(
        self, calls: Sequence[CampaignCall], rate: float | None, timeout: float
    ) -> float:
        """Make ``calls``, all at once or ``rate`` per second, each bounded by ``timeout``, and
        count their outcomes; return the seconds they took. Calls not yet started when the CSMS
        stops count as disconnected."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent = 0
        due = _paced(calls, rate, started, self._stopping)
        async with asyncio.TaskGroup() as group, contextlib.aclosing(due):
            async for charge_point_id, result, payload in due:
                group.create_task(self._campaign_call(result, charge_point_id, payload(), timeout))
                sent += 1
        for _, result, _ in calls[sent:]:
            result.disconnected += 1
        return loop.time() - started

    async def _campaign_call(
        self, result: CampaignResult, charge_point_id: str, payload: dict[str, Any], timeout: float
    ) -> None:
        """One call of a campaign, its outcome counted in ``result``."""
        try:
            answer = await self._call(charge_point_id, result.action, payload, timeout)
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
            self.central.answered(charge_point_id, action, payload, answer.payload)
        else:
            stats[f"callerror.{action}"] += 1
        return answer


def check_request(dialect: Dialect, action: str, payload: dict[str, Any]) -> None:
    """Raise ValueError unless ``action`` is a CSMS's to send in ``dialect`` and ``payload`` fits
    its schema."""
    if not isinstance(action, str) or action not in dialect.csms_actions:
        raise ValueError(f"{action!r} is not an OCPP {dialect.version} call a CSMS sends")
    if not isinstance(payload, dict):
        raise ValueError(f"the payload of {action} must be an object, not {type(payload).__name__}")
    try:
        dialect.schemas.validate(action, payload)
    except ocppj.FrameError as err:
        raise ValueError(f"invalid {action} payload: {err.description}") from None


def fitting_dialects(action: str, payload: dict[str, Any]) -> frozenset[Dialect]:
    """The OCPP versions the CSMS speaks in which ``action`` is a CSMS's call and ``payload``
    fits its schema. Raises ValueError if there is none: that of the first version that has the
    action (of :data:`~swarm.csms.versions.PRIMARY` if none has it)."""
    fitting: set[Dialect] = set()
    refusals: list[tuple[Dialect, str]] = []
    for dialect, _ in ANSWERS:
        try:
            check_request(dialect, action, payload)
        except ValueError as err:
            refusals.append((dialect, str(err)))
        else:
            fitting.add(dialect)
    if fitting:
        return frozenset(fitting)
    having = [
        text
        for dialect, text in refusals
        if isinstance(action, str) and action in dialect.csms_actions
    ]
    primary = next(text for dialect, text in refusals if dialect is PRIMARY)
    raise ValueError(having[0] if having else primary)


def connected_targets(
    connections: dict[str, CsmsConnection], share: float, charge_point_ids: list[str] | None
) -> list[ServerConnection]:
    """The connections of ``charge_point_ids`` still connected, or of a random ``share``."""
    faults.check_share(share)
    if charge_point_ids is None:
        connected = list(connections)
        targets = random.sample(connected, round(share * len(connected)))
    else:
        targets = [id_ for id_ in dict.fromkeys(charge_point_ids) if id_ in connections]
    return [connections[id_].websocket for id_ in targets]


def _campaign_targets(
    connections: dict[str, CsmsConnection],
    share: float,
    charge_point_ids: list[str] | None,
    dialects: frozenset[Dialect],
) -> list[str]:
    """``charge_point_ids`` without repeats, or a random ``share``, at least one, of those
    connected that speak one of ``dialects``."""
    faults.check_share(share)
    if charge_point_ids is None:
        if len(dialects) == len(ANSWERS):  # every version: no need to look at each connection
            connected = list(connections)
        else:
            connected = [id_ for id_, conn in connections.items() if conn.dialect in dialects]
        count = max(1, round(share * len(connected))) if connected else 0
        return random.sample(connected, min(count, len(connected)))
    if share != 1.0:
        raise ValueError("give a share or charge_point_ids, not both")
    if isinstance(charge_point_ids, str):
        raise ValueError("charge_point_ids must be a list of ids, not one string")
    return list(dict.fromkeys(charge_point_ids))


def _versioned_targets(
    connections: dict[str, CsmsConnection],
    share: float,
    charge_point_ids: list[str] | None,
    dialects: Sequence[Dialect],
) -> tuple[list[tuple[str, Dialect]], int]:
    """The targets of a campaign in each version's words, with their versions: those of
    ``charge_point_ids`` connected now (and how many are not), or a random ``share``, at least
    one, of the charge points of each of ``dialects`` connected now, the versions shuffled
    together."""
    faults.check_share(share)
    if charge_point_ids is not None:
        if share != 1.0:
            raise ValueError("give a share or charge_point_ids, not both")
        if isinstance(charge_point_ids, str):
            raise ValueError("charge_point_ids must be a list of ids, not one string")
        named = list(dict.fromkeys(charge_point_ids))
        found = [(id_, connections[id_].dialect) for id_ in named if id_ in connections]
        return found, len(named) - len(found)
    by_dialect: dict[Dialect, list[str]] = {dialect: [] for dialect in dialects}
    for id_, connection in connections.items():
        by_dialect[connection.dialect].append(id_)
    targets = []
    for dialect, connected in by_dialect.items():
        count = min(max(1, round(share * len(connected))), len(connected))
        targets += [(id_, dialect) for id_ in random.sample(connected, count)]
    random.shuffle(targets)  # at a rate, each version's share is under way from the start
    return targets, 0


async def _paced(
    targets: Sequence[T], rate: float | None, started: float, stopping: asyncio.Event
) -> AsyncIterator[T]:
    """``targets``, each when its call is due: ``rate`` per second from ``started``, or all at
    once; none once ``stopping`` is set."""
    loop = asyncio.get_running_loop()
    for index, target in enumerate(targets):
        delay = 0.0 if rate is None else started + index / rate - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stopping.wait()
        if stopping.is_set():
            return
        yield target


def _check_pace(rate: float | None, timeout: float) -> None:
    _check_positive("timeout", timeout)
    if rate is not None:
        _check_positive("rate", rate)


def _check_positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, not {value!r}")
