"""swarm.protocol.connection against a scripted server: the handshake, frames read with the
101, a close the peer never finishes, a peer that reads nothing, handshakes that fail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus
from websockets.frames import Close, Frame, Opcode
from websockets.utils import accept_key

from swarm.protocol.connection import Connection, connect

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin).serialize(mask=False, extensions=[])


async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, extra: bytes = b""):
    """Read the opening request and answer 101 with ocpp1.6, then ``extra`` in the same write."""
    head = await reader.readuntil(b"\r\n\r\n")
    key = next(
        line.split(b":", 1)[1].strip().decode()
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n".encode()
        + b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        + extra
    )
    await writer.drain()


@asynccontextmanager
async def server(script: Script) -> AsyncIterator[str]:
    """A TCP server running ``script`` for each connection; yields its ws:// URL."""
    tasks: list[asyncio.Task[None]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            await script(reader, writer)
        finally:
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"ws://127.0.0.1:{port}/CP-1"
    finally:
        listening.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def open_(url: str, open_timeout: float = 5.0, close_timeout: float = 5.0) -> Connection:
    return await connect(
        url, subprotocol="ocpp1.6", open_timeout=open_timeout, close_timeout=close_timeout
    )


def test_frames_read_with_the_handshake_are_held_until_attached_and_fragments_joined() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parts = frame(Opcode.TEXT, b'[3,"1",', fin=False) + frame(Opcode.CONT, b"{}]")
        await accept(reader, writer, frame(Opcode.TEXT, b"first") + parts)
        await asyncio.sleep(10)

    async def main() -> list[tuple[bytes, Opcode]]:
        async with server(script) as url:
            connection = await open_(url)
            assert connection.subprotocol == "ocpp1.6"
            await asyncio.sleep(0.2)  # both messages are read before anyone listens
            got: list[tuple[bytes, Opcode]] = []
            connection.attach(lambda data, opcode, _: got.append((data, opcode)), print)
            connection.abort()
            return got

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [
        (b"first", Opcode.TEXT),
        (b'[3,"1",{}]', Opcode.TEXT),
    ]


def test_a_close_the_peer_never_ends_is_cut_after_the_close_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await reader.read(100)  # our close frame
        writer.write(frame(Opcode.CLOSE, Close(1000, "").serialize()))
        await asyncio.sleep(10)  # but the TCP connection stays open

    async def main() -> tuple[float, ConnectionClosed]:
        async with server(script) as url:
            connection = await open_(url, close_timeout=0.3)
            lost: list[ConnectionClosed] = []
            connection.attach(lambda *_: None, lost.append)
            started = time.monotonic()
            await connection.close()
            return time.monotonic() - started, lost[0]

    took, lost = asyncio.run(asyncio.wait_for(main(), 10))
    assert 0.25 <= took < 2.0
    assert lost.rcvd is not None and lost.rcvd.code == 1000


def test_a_peer_that_reads_nothing_holds_the_sender_until_the_connection_is_lost() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept(reader, writer)
        await asyncio.sleep(10)  # reads nothing more

    async def main() -> tuple[int, bool]:
        async with server(script) as url:
            connection = await open_(url)
            connection.attach(lambda *_: None, lambda _: None)
            sent, message = 0, "x" * 65536

            async def flood() -> None:
                nonlocal sent
                while True:
                    await connection.send(message)
                    sent += 1

            sender = asyncio.create_task(flood())
            await asyncio.sleep(0.5)
            held = not sender.done()
            connection.abort()
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(sender, 5)
            return sent, held

    sent, held = asyncio.run(asyncio.wait_for(main(), 10))
    assert held
    assert 0 < sent < 1000  # the kernel's buffers and ours, not every message in 0.5 s


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n", InvalidStatus),
        (b"this is no HTTP\r\n\r\n", InvalidMessage),
    ],
    ids=["401", "garbage"],
)
def test_a_failed_handshake_raises_at_once_even_if_the_peer_stays(answer, error) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await asyncio.sleep(10)  # and keeps the connection open

    async def main() -> float:
        async with server(script) as url:
            started = time.monotonic()
            with pytest.raises(error):
                await open_(url, open_timeout=5.0)
            return time.monotonic() - started

    assert asyncio.run(asyncio.wait_for(main(), 10)) < 2.0
