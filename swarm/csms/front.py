"""The front of a CSMS over several processes (``python -m swarm.csms --workers N``): it starts
the workers (:mod:`swarm.csms.workers`), says where they listen as one CSMS does, serves the
control API of them all, and stops them; it stops too, with exit code 1, if one exits.

Its control API has one CSMS's routes, checks and answers (:mod:`swarm.csms.control`). It
checks each request as one CSMS does, on a stand-in that never listens, then sends it to every
worker's control API at once and merges their answers:

- ``GET /charge-points``: the counts summed, the first 1,000 ids of all; ``GET /stats``: the
  counters summed; ``GET /ca`` and ``GET /faults``: one worker's (they are alike);
- ``POST /calls``, ``POST /campaigns/<name>`` and ``POST``/``DELETE /charging-profiles``:
  each worker calls its own charge points (a ``share`` of them, or those of ``charge_points``
  it holds) at its part of the ``rate``; the results are summed field by field, ``seconds``
  the longest. An id of ``charge_points`` that no worker holds counts once (as
  ``disconnected``, or ``not_connected``);
- ``POST /disconnects`` and ``POST /frames``: summed; ``POST``/``DELETE /faults``: set on all;
  ``POST /restart``: every worker at once, answered once all listen again.

A password a charge point accepts from a campaign is learned by the worker that holds it; its
reconnect may reach another. While a campaign runs, and once it is over, the front takes what
each worker learned and gives it to all, over a route of the workers' control APIs it alone
uses (:data:`PASSWORDS`, on loopback; never logged).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
import json
import logging
from collections.abc import Awaitable
from functools import partial
from http import HTTPStatus
from typing import Any

from swarm.csms import control, workers
from swarm.csms.config import CsmsConfig
from swarm.csms.server import Csms

logger = logging.getLogger(__name__)

PASSWORDS = "/internal/passwords"
"""The workers' route for passwords: POST ``{"passwords": {id: password}}`` sets them, and
answers ``{"passwords": ...}``, those it learned since it was last asked."""
SYNC_INTERVAL = 0.2
"""Seconds between two rounds of passwords while a campaign runs."""
CONNECT_TIMEOUT = 5.0
"""Seconds to connect to a worker's control API (on loopback)."""
COUNTS = ("targeted", "answered", "callerrors", "timed_out", "disconnected")
"""The counts of a campaign's result."""
RESTARTING = "the CSMS is restarting already"
"""The error of a restart asked while one runs (409), as one CSMS says it."""


async def run(
    config: CsmsConfig,
    args: list[str],
    *,
    count: int,
    control_port: int | None,
    stopping: asyncio.Event,
) -> int:
    """Run ``count`` processes of the CSMS ``config`` says (``args``: their options, see
    :func:`swarm.csms.cli.worker_args`) and, with ``control_port``, the control API of them
    all, until ``stopping`` is set (exit code 0) or a worker exits (1)."""
    try:
        async with workers.start(config, args, count) as running:
            return await _serve(running, config.host, control_port, stopping)
    except workers.StartError as exc:
        logger.error("%s", exc)
        return 1


async def _serve(
    running: workers.Workers, host: str, control_port: int | None, stopping: asyncio.Event
) -> int:
    control_server = None
    if control_port is not None:
        front = FrontControl(running.control_urls)
        control_server = await control.serve(front.handle, host, control_port)
    logger.info("CSMS listening on %s in %d processes", running.url, len(running.workers))
    print(f"listening on {running.url}", flush=True)
    if control_server is not None:
        print(f"control on {control.url(control_server)}", flush=True)
    exited = asyncio.ensure_future(running.exited())
    stopped = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        exited.cancel()
        stopped.cancel()
        if control_server is not None:
            control_server.close()
    if stopped in done:
        return 0
    logger.error("%s; the others stop", exited.result())
    return 1


class FrontControl:
    """The control API of the workers whose control APIs are at ``urls``."""

    def __init__(self, urls: list[str]) -> None:
        self._urls = urls
        self._checker = _Checker()
        self._restarting = False
        self._syncing = asyncio.Lock()

    async def handle(self, request: control.Request) -> Any:
        """The fleet's answer to ``request``; HttpError as one CSMS would refuse it."""
        await control.route(self._checker, request)
        body = await self._forward(request)
        control.note(request, body)
        return body

    async def _forward(self, request: control.Request) -> Any:
        path = request.path
        if request.method == "GET" and path in ("/ca", "/faults"):
            return (await self._ask(request.method, path, urls=self._urls[:1]))[0]
        if path in ("/calls", control.PROFILES) or path.startswith(control.CAMPAIGNS):
            return await self._campaign(request)
        if path == "/restart":
            return await self._restart(request)
        answers = await self._ask(request.method, path, request.body or None)
        if path == "/charge-points":
            return _charge_points(answers)
        if path == "/stats":
            return _stats(answers)
        if path == "/faults":
            return answers[0]  # set alike on all
        key = "closed" if path == "/disconnects" else "sent"  # /frames
        return {key: sum(answer[key] for answer in answers)}

    async def _campaign(self, request: control.Request) -> Any:
        body = json.loads(request.body) if request.body else {}  # DELETE /charging-profiles
        named = body.get("charge_points")
        calls = request.path == "/calls"
        # Each worker calls its own charge points: the fleet's rate is the sum of theirs. But a
        # /calls to named ids paces every id at each worker, which calls those it holds.
        if body.get("rate") is not None and not (calls and named is not None):
            body["rate"] /= len(self._urls)
        asking = self._ask(request.method, request.path, json.dumps(body).encode())
        answers = await self._with_passwords(asking)
        if calls:
            return _result(answers, named)
        merged: dict[str, Any] = {
            version: _result([answer[version] for answer in answers], None)
            for version, result in answers[0].items()
            if isinstance(result, dict)
        }
        found = sum(result["targeted"] for result in merged.values())
        merged["not_connected"] = max(0, len(set(named)) - found) if named is not None else 0
        return control.with_totals(merged) if request.path == control.PROFILES else merged

    async def _restart(self, request: control.Request) -> Any:
        if self._restarting:
            raise control.HttpError(HTTPStatus.CONFLICT, RESTARTING)
        self._restarting = True
        try:
            answers = await self._ask("POST", request.path, request.body)
        finally:
            self._restarting = False
        return {"closed": sum(answer["closed"] for answer in answers), "down": answers[0]["down"]}

    async def _with_passwords(self, asking: Awaitable[list[Any]]) -> list[Any]:
        """Await ``asking`` (a campaign), handing the passwords learned meanwhile round, and
        those learned by its end."""
        task = asyncio.ensure_future(asking)
        try:
            while True:
                await asyncio.wait({task}, timeout=SYNC_INTERVAL)
                await self._hand_passwords_round()
                if task.done():
                    return task.result()
        finally:
            task.cancel()

    async def _hand_passwords_round(self) -> None:
        """Give every worker the passwords any learned, until none learned more meanwhile."""
        async with self._syncing:
            given: dict[str, str] = {}
            while True:
                data = json.dumps({"passwords": given}).encode()
                answers = await self._ask("POST", PASSWORDS, data)
                given = {}
                for answer in answers:
                    given.update(answer["passwords"])
                if not given:
                    return

    async def _ask(
        self, method: str, path: str, data: bytes | None = None, *, urls: list[str] | None = None
    ) -> list[Any]:
        """Send a request to every worker's control API (or those of ``urls``) at once; their
        answers, or HttpError: the first that is not a 200, or 502 for one not answered."""
        answers = await asyncio.gather(
            *(_exchange(url, method, path, data) for url in urls or self._urls)
        )
        for status, body in answers:
            if status != HTTPStatus.OK:
                raise control.HttpError(HTTPStatus(status), body.get("error", ""))
        return [body for _, body in answers]


class _Checker(Csms):
    """A CSMS that never listens, on which :func:`swarm.csms.control.route` checks a request
    as one CSMS does: its campaigns call no one (it is stopped); its restart checks its
    arguments only."""

    def __init__(self) -> None:
        super().__init__(CsmsConfig(port=0))
        self._stopping.set()

    async def restart(self, *, down: float, code: int = 1012) -> int:
        # Once its arguments pass, it raises RuntimeError: it does not listen.
        with contextlib.suppress(RuntimeError):
            await super().restart(down=down, code=code)
        return 0


def _charge_points(answers: list[Any]) -> dict[str, Any]:
    count = sum(answer["count"] for answer in answers)
    ids = itertools.chain.from_iterable(answer["connected"] for answer in answers)
    return {
        "connected": heapq.nsmallest(control.LIST_LIMIT, ids),
        "count": count,
        "truncated": count > control.LIST_LIMIT,
    }


def _stats(answers: list[Any]) -> dict[str, int]:
    total: collections.Counter[str] = collections.Counter()
    for answer in answers:
        total.update(answer)
    return dict(sorted(total.items()))


def _result(results: list[Any], named: list[str] | None) -> dict[str, Any]:
    """The workers' results of one campaign as one: summed, ``seconds`` the longest. With
    ``named`` ids, each worker counted those it does not hold as disconnected: an id is so
    only if no worker had another outcome for it."""
    merged = dict(results[0])
    for key in COUNTS:
        merged[key] = sum(result[key] for result in results)
    for key in ("statuses", "errors"):
        merged[key] = dict(
            sum((collections.Counter(result[key]) for result in results), collections.Counter())
        )
    merged["seconds"] = max(result["seconds"] for result in results)
    if named is not None:
        merged["targeted"] = results[0]["targeted"]  # every id, at every worker
        outcomes = merged["answered"] + merged["callerrors"] + merged["timed_out"]
        merged["disconnected"] = max(0, merged["targeted"] - outcomes)
    return merged


async def _exchange(url: str, method: str, path: str, data: bytes | None) -> tuple[int, Any]:
    """One request to a worker's control API at ``url``: its status and JSON body."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            reader, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        try:
            head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
            if data is not None:
                head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
            writer.write("\r\n".join([*head, "", ""]).encode("latin-1") + (data or b""))
            response = await reader.read()  # until it closes, once it answered
        finally:
            writer.close()
        status_line, _, rest = response.partition(b"\r\n")
        return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])
    except (OSError, TimeoutError, ValueError, IndexError) as exc:
        raise control.HttpError(
            HTTPStatus.BAD_GATEWAY, f"a worker's control API did not answer: {exc}"
        ) from None


async def serve_worker_control(csms: Csms) -> asyncio.Server:
    """Serve the control API of a front's worker on loopback: one CSMS's routes, and
    :data:`PASSWORDS`, the front's."""
    csms.central.learned = {}
    return await control.serve(partial(_worker_answer, csms), "127.0.0.1", 0)


async def _worker_answer(csms: Csms, request: control.Request) -> Any:
    if request.path != PASSWORDS:
        return await control.answer(csms, request)
    # Not logged: its bodies are passwords.
    if request.method != "POST":
        raise control.HttpError(HTTPStatus.METHOD_NOT_ALLOWED, f"{PASSWORDS} takes POST")
    try:
        given = json.loads(request.body)["passwords"]
        if not all(isinstance(text, str) for text in itertools.chain(given, given.values())):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        raise control.HttpError(HTTPStatus.BAD_REQUEST, "not passwords by id") from None
    central = csms.central
    central.passwords.update(given)
    learned, central.learned = central.learned, {}
    return {"passwords": learned}
