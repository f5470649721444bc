"""The baseline: the leanest honest client on the swarm's stack, websockets' sans-I/O protocol
on a uvloop transport, callbacks only.

Each connection is an :class:`asyncio.Protocol`: the opening handshake and the frames are
websockets' (``ClientProtocol``), the bytes uvloop's. A timer of the loop sends each Heartbeat;
the read callback stamps the answer, parses it, matches its unique id, and sets the timer of the
next one (``--interval`` after the last was due, or at once if that has passed: one CALL in
flight, as OCPP has it). No task, no future, no ``Connection`` object per message: the least a
client on websockets and uvloop can do for a round trip it checks. No Locust, no gevent, no
swarm code.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from bench.measure import client_arguments, measure_counted, rss_kib
from swarm.eventloop import run

BOOT = json.dumps(
    [2, "0", "BootNotification", {"chargePointVendor": "lean", "chargePointModel": "lean"}]
)


class ChargePoint(asyncio.Protocol):
    """One connection: boots, then one Heartbeat per ``interval``, each answer checked."""

    def __init__(
        self, url: str, interval: float, times: list[float], counts: dict[str, int]
    ) -> None:
        self.protocol = ClientProtocol(parse_uri(url), subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        self.interval, self.times, self.counts = interval, times, counts
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.number = 0
        self.pending = "0"
        self.sent = 0.0
        self.next_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.protocol.send_request(self.protocol.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT and event.fin:
                    self.answered(event.data, now)
            elif isinstance(event, Response):
                if event.status_code != 101 or self.protocol.handshake_exc is not None:
                    self.counts["connect_failures"] += 1
                else:
                    self.protocol.send_text(BOOT.encode())
        self.flush()  # pongs, close frames

    def answered(self, data: bytes, now: float) -> None:
        message = json.loads(data)
        if message[0] != 3 or message[1] != self.pending:
            self.counts["failures"] += 1
        elif self.pending == "0":
            self.counts["booted"] += 1
            self.next_at = self.loop.time() + self.interval
            self.loop.call_at(self.next_at, self.beat)
        else:
            self.times.append((now - self.sent) * 1000)
            self.next_at += self.interval
            self.loop.call_at(self.next_at, self.beat)

    def beat(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.number += 1
        self.pending = str(self.number)
        self.sent = time.perf_counter()
        self.protocol.send_text(f'[2,"{self.pending}","Heartbeat",{{}}]'.encode())
        self.flush()

    def flush(self) -> None:
        assert self.transport is not None
        for data in self.protocol.data_to_send():
            if data:
                self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def main() -> None:
    options = client_arguments(__doc__)
    loop = asyncio.get_running_loop()
    times: list[float] = []
    counts = {"booted": 0, "failures": 0, "connect_failures": 0}
    transports = []
    rss_base = rss_kib()
    started = time.monotonic()
    address = urlsplit(options.url)
    for i in range(options.charge_points):
        url = f"{options.url}/LEAN-{i:06d}"
        try:
            transport, _ = await loop.create_connection(
                lambda url=url: ChargePoint(url, options.interval, times, counts),
                address.hostname,
                address.port,
            )
        except OSError:
            counts["connect_failures"] += 1
        else:
            transports.append(transport)
        await asyncio.sleep(1 / options.spawn_rate)
    result = await measure_counted("lean client", options, times, counts, started, rss_base)
    for transport in transports:
        transport.abort()
    result.emit()


if __name__ == "__main__":
    run(main())
