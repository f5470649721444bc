"""A task per connection on websockets' asyncio ``Connection``: what the baseline once was.

One task per connection sends a Heartbeat, awaits ``recv()`` and stamps the time when the task
resumes. No Locust, no gevent, no swarm code. It costs more than the lean client
(:mod:`bench.lean_client`, the baseline now) for what a task and a ``Connection`` do per message:
a future to await, a task step to resume, an async context manager around each send, a sleep's
timer and future; ``python -m bench.latency`` shows by how much.
"""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect

from bench.measure import client_arguments, measure_counted, rss_kib
from swarm.eventloop import run


async def charge_point(
    url: str, interval: float, times: list[float], counts: dict[str, int]
) -> None:
    loop = asyncio.get_running_loop()
    try:
        ws = await connect(
            url, subprotocols=["ocpp1.6"], compression=None, proxy=None, ping_interval=None
        )
    except Exception:
        counts["connect_failures"] += 1
        return
    async with ws:
        boot = {"chargePointVendor": "raw", "chargePointModel": "raw"}
        await ws.send(json.dumps([2, "0", "BootNotification", boot]))
        await ws.recv()
        counts["booted"] += 1
        next_at = loop.time() + interval
        for n in range(1, 1 << 62):
            await asyncio.sleep(next_at - loop.time())
            next_at += interval
            unique_id = str(n)
            frame = json.dumps([2, unique_id, "Heartbeat", {}], separators=(",", ":"))
            sent = time.perf_counter()
            await ws.send(frame)
            answer = await ws.recv()
            elapsed = time.perf_counter() - sent
            message = json.loads(answer)
            if message[0] == 3 and message[1] == unique_id:
                times.append(elapsed * 1000)
            else:
                counts["failures"] += 1


async def main() -> None:
    options = client_arguments(__doc__)
    times: list[float] = []
    counts = {"booted": 0, "failures": 0, "connect_failures": 0}
    tasks = []
    rss_base = rss_kib()
    started = time.monotonic()
    for i in range(options.charge_points):
        url = f"{options.url}/RAW-{i:06d}"
        tasks.append(asyncio.create_task(charge_point(url, options.interval, times, counts)))
        await asyncio.sleep(1 / options.spawn_rate)
    result = await measure_counted("task per connection", options, times, counts, started, rss_base)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.emit()


if __name__ == "__main__":
    run(main())
