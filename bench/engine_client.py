"""The swarm's engine and charge points in a plain process: no Locust, no gevent.

The same code as inside Locust; the difference between this and the Locust client is what
Locust's process costs the measurement. ``--ocpp-version 2.0.1`` makes every charge point a 2.0.1
station.
"""

from __future__ import annotations

import time

from bench.measure import Result, Window, client_arguments, log, rss_kib, wait_for_boots
from swarm.engine import Engine
from swarm.station.config import ChargePointConfig


def main() -> None:
    options = client_arguments(__doc__, ocpp_version=True)
    config = ChargePointConfig(
        heartbeat_interval=options.interval,
        authorize_interval=0,
        versions=((options.ocpp_version, 1),),
    )
    engine = Engine()
    engine.start()
    rss_base = rss_kib()
    started = time.monotonic()
    for i in range(options.charge_points):
        engine.start_charge_point(f"ENG-{i:06d}", f"{options.url}/ENG-{i:06d}", config)
        time.sleep(1 / options.spawn_rate)
    booted = lambda: engine.census()["accepted"]  # noqa: E731
    connect_s = wait_for_boots(booted, options.charge_points, started, time.sleep)
    time.sleep(options.warmup)
    log(f"engine: {booted()} booted, measuring {options.duration:g} s")
    connect_failures = sum(s.name == "connect" and s.error is not None for s in engine.drain())
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
    client = "swarm engine" if options.ocpp_version == "1.6" else options.ocpp_version + " engine"
    result = Result.from_times(f"{client}, no Locust", booted(), times, failures, window)
    result.connect_s, result.connect_failures = connect_s, connect_failures
    result.rss_base_kib, result.rss_kib = rss_base, rss_kib()
    engine.shutdown()
    result.emit()


if __name__ == "__main__":
    main()
