"""A scripted CSMS for tests: each test says how it answers, including how it misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Handler = Callable[[ServerConnection, "Script"], Awaitable[None]]


class Script:
    """What a scripted CSMS saw: the frames of each connection, and how connections ended."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self.paths: list[str] = []
        self.connections: list[ServerConnection] = []
        self.transactions: dict[int, int] = {}
        self.started: dict[int, int] = {}
        self.close_codes: list[int | None] = []
        self.frame_arrived = asyncio.Event()

    def calls(self, action: str | None = None) -> list[list[Any]]:
        return [f for f in self.frames if f[0] == 2 and (action is None or f[2] == action)]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.frame_arrived.clear()
                await self.frame_arrived.wait()

    async def receive(self, ws: ServerConnection) -> list[Any]:
        frame = json.loads(await ws.recv())
        self.frames.append(frame)
        self.frame_arrived.set()
        return frame


def answer(frame: list[Any], payload: dict[str, Any]) -> str:
    return json.dumps([3, frame[1], payload])


def run(coroutine: Awaitable[Any], timeout: float = 30.0) -> Any:
    """Run a test's coroutine to the end, within ``timeout`` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def until(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, checking every 10 ms; fail after ``timeout`` s."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


BOOT_ACCEPTED = {"status": "Accepted", "currentTime": "2026-01-01T00:00:00Z", "interval": 60}


async def answer_everything(
    ws: ServerConnection,
    script: Script,
    boot: dict[str, Any] = BOOT_ACCEPTED,
    fail: Collection[str] = (),
) -> None:
    """A well-behaved CSMS: Accepted boot, then an empty-enough answer to every CALL, but a
    CALLERROR InternalError to the actions in ``fail``."""
    while True:
        frame = await script.receive(ws)
        if frame[0] != 2:
            continue
        action = frame[2]
        if action in fail:
            await ws.send(json.dumps([4, frame[1], "InternalError", "test", {}]))
        elif action == "BootNotification":
            await ws.send(answer(frame, boot))
        elif action == "Heartbeat":
            await ws.send(answer(frame, {"currentTime": "2026-01-01T00:00:00Z"}))
        elif action == "Authorize":
            await ws.send(answer(frame, {"idTagInfo": {"status": "Accepted"}}))
        else:
            await ws.send(answer(frame, {}))


def recording_csms(id_tag_status: str = "Accepted", pending_boots: int = 0) -> Handler:
    """A CSMS that answers charging sessions: Authorize with ``id_tag_status``, and
    StartTransaction with transactionIds from 100 on, recorded in ``script.transactions`` (by
    connector) and ``script.started`` (connector by transactionId). The first
    ``pending_boots`` boots are answered Pending, with an interval of 1 s."""
    transaction_ids = iter(range(100, 1000))
    boots = 0

    async def handler(ws: ServerConnection, script: Script) -> None:
        nonlocal boots
        while True:
            frame = await script.receive(ws)
            if frame[0] != 2:
                continue
            action, payload = frame[2], frame[3]
            if action == "BootNotification":
                boots += 1
                pending = {**BOOT_ACCEPTED, "status": "Pending", "interval": 1}
                reply = pending if boots <= pending_boots else BOOT_ACCEPTED
            elif action == "Authorize":
                reply = {"idTagInfo": {"status": id_tag_status}}
            elif action == "StartTransaction":
                transaction = next(transaction_ids)
                script.transactions[payload["connectorId"]] = transaction
                script.started[transaction] = payload["connectorId"]
                reply = {"idTagInfo": {"status": "Accepted"}, "transactionId": transaction}
            elif action == "Heartbeat":
                reply = {"currentTime": "2026-01-01T00:00:00Z"}
            else:
                reply = {}
            await ws.send(answer(frame, reply))

    return handler


@contextlib.asynccontextmanager
async def scripted_csms(
    handler: Handler, *, subprotocol: bool = True, protocol: str = "ocpp1.6"
) -> AsyncIterator[tuple[str, Script]]:
    """Serve ``handler`` on a free loopback port; yield the base URL and the :class:`Script`.
    The server speaks subprotocol ``protocol`` (none if ``subprotocol`` is false).

    A handler that fails (an assertion in it, say) fails the test when the server closes; the
    client going away is no failure.
    """
    script = Script()
    failures: list[BaseException] = []

    async def run(ws: ServerConnection) -> None:
        script.paths.append(ws.request.path)
        script.connections.append(ws)
        try:
            await handler(ws, script)
        except ConnectionClosed:
            pass
        except Exception as exc:
            failures.append(exc)
        finally:
            await ws.wait_closed()
            script.close_codes.append(ws.close_code)
            script.frame_arrived.set()

    async with serve(
        run,
        "127.0.0.1",
        0,
        subprotocols=[protocol] if subprotocol else None,  # type: ignore[list-item]
        compression=None,
        ping_interval=None,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", script
        server.close()
    if failures:
        raise failures[0]


# A server in this process, in its own asyncio loop on a background thread (no gevent here).


@contextlib.contextmanager
def in_thread(
    make: Callable[[], AbstractAsyncContextManager[Any]],
) -> Iterator[tuple[Any, asyncio.AbstractEventLoop]]:
    """Enter ``make()`` in a fresh event loop on a thread; yield its value and the loop."""
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        box["loop"] = asyncio.get_running_loop()
        box["stop"] = stop = asyncio.Event()
        try:
            async with make() as value:
                box["value"] = value
                ready.set()
                await stop.wait()
        except BaseException as exc:
            box["error"] = exc
            raise
        finally:
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="test-server", daemon=True)
    thread.start()
    assert ready.wait(10), "the server did not start"
    if "error" in box:
        raise box["error"]
    try:
        yield box["value"], box["loop"]
    finally:
        with contextlib.suppress(RuntimeError):
            box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
        assert not thread.is_alive(), "the server thread did not stop"


def call_in(loop: asyncio.AbstractEventLoop, function: Callable[[], Any]) -> Any:
    """Run ``function`` in ``loop``'s thread; return its result."""

    async def call() -> Any:
        return function()

    return asyncio.run_coroutine_threadsafe(call(), loop).result(5)


def free_port() -> int:
    """A TCP port free on loopback now (for a server a test starts in another process)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
