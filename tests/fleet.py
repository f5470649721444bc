"""Charge points played by bare websockets clients, answering the CSMS's calls as a test says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from swarm.protocol import ocppj

Reply = Callable[[list[Any]], Awaitable[str | None]]  # a CALL frame -> the answer's text, or none


async def accept(frame: list[Any]) -> str:
    return ocppj.result_frame(frame[1], {"status": "Accepted"})


async def refuse(frame: list[Any]) -> str:
    return ocppj.error_frame(frame[1], ocppj.NOT_SUPPORTED, "not here")


async def never(frame: list[Any]) -> None:
    return None


def status(text: str, delay: float = 0.0) -> Reply:
    """Answer ``{"status": text}`` after ``delay`` seconds."""

    async def reply(frame: list[Any]) -> str:
        await asyncio.sleep(delay)
        return ocppj.result_frame(frame[1], {"status": text})

    return reply


class FakeChargePoint:
    """One client: it records the CSMS's CALLs and answers each with ``reply``, concurrently.

    ``events`` holds ``("call" | "answer", uniqueId, time.monotonic())`` in order, so a test can
    tell whether a CALL arrived before the previous one was answered.
    """

    def __init__(self, charge_point_id: str, ws: ClientConnection, reply: Reply) -> None:
        self.id = charge_point_id
        self.ws = ws
        self.reply = reply
        self.calls: list[list[Any]] = []
        self.events: list[tuple[str, str, float]] = []

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.TaskGroup() as group:
                async for text in self.ws:
                    frame = json.loads(text)
                    if frame[0] == ocppj.CALL:
                        self.calls.append(frame)
                        self.events.append(("call", frame[1], time.monotonic()))
                        group.create_task(self._answer(frame))

    async def _answer(self, frame: list[Any]) -> None:
        text = await self.reply(frame)
        if text is not None:
            self.events.append(("answer", frame[1], time.monotonic()))
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(text)


@contextlib.asynccontextmanager
async def fleet(
    url: str, ids: Iterable[str], reply: Reply = accept
) -> AsyncIterator[list[FakeChargePoint]]:
    """Connect a :class:`FakeChargePoint` per id to the CSMS at ``url``; yield them, running."""
    async with contextlib.AsyncExitStack() as stack:
        fakes = []
        for charge_point_id in ids:
            ws = await stack.enter_async_context(
                connect(f"{url}/ocpp/{charge_point_id}", subprotocols=["ocpp1.6"], open_timeout=5)
            )
            # The CSMS registers a connection before it reads its first frame: once this is
            # answered, the charge point is among its connections.
            await ws.send(ocppj.call_frame("hello", "Heartbeat", {}))
            async with asyncio.timeout(5):
                await ws.recv()
            fakes.append(FakeChargePoint(charge_point_id, ws, reply))
        async with running(fakes):
            yield fakes


@contextlib.asynccontextmanager
async def running(fakes: list[FakeChargePoint]) -> AsyncIterator[None]:
    """Run each of ``fakes`` while the block runs; cancel them after it."""
    tasks = [asyncio.create_task(fake.run()) for fake in fakes]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
