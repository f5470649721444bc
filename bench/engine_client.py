"""The swarm's engine and charge points in a plain process: no Locust, no gevent.

The same code as inside Locust; the difference between this and the Locust client is what
Locust's process costs the measurement.
"""

from __future__ import annotations

import time

from bench.measure import Result, Window, client_arguments, log
from swarm.charge_point import ChargePointConfig
from swarm.engine import Engine


def main() -> None:
    options = client_arguments(__doc__)
    config = ChargePointConfig(heartbeat_interval=options.interval, authorize_interval=0)
    engine = Engine()
    engine.start()
    for i in range(options.charge_points):
        engine.start_charge_point(f"ENG-{i:06d}", f"{options.url}/ENG-{i:06d}", config)
        time.sleep(1 / options.spawn_rate)
    time.sleep(options.warmup)
    booted = engine.census()["accepted"]
    log(f"engine: {booted} booted, measuring {options.duration:g} s")
    engine.drain()
    times: list[float] = []
    failures = 0
    window = Window()
    deadline = time.monotonic() + options.duration
    while time.monotonic() < deadline:
        # Drain as often as Locust's pump does: samples held for the whole window would be
        # garbage the collector walks again and again.
        time.sleep(0.1)
        for sample in engine.drain():
            if sample.name == "Heartbeat":
                if sample.error is None:
                    times.append(sample.response_time)
                else:
                    failures += 1
    window.close()
    engine.shutdown()
    Result.from_times("swarm engine, no Locust", booted, times, failures, window).emit()


if __name__ == "__main__":
    main()
