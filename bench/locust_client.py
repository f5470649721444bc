"""The swarm inside Locust, run as a library.

Two readings of the same samples: the exact percentiles of the response times Locust's
``request`` event received, and the median Locust itself reports for ``OCPP Heartbeat`` (Locust
rounds times under 100 ms to whole milliseconds, so it cannot show a sub-millisecond median).
The CPU time is the whole process's, Locust's own bookkeeping included. ``--ocpp-version 2.0.1``
runs the swarm with ``--ocpp-version 2.0.1``: every charge point a 2.0.1 station, its round trips
of request type ``OCPP201``; ``--trace-frames`` is the swarm's option (its default: traces on).
"""

from __future__ import annotations

import time

import gevent  # Locust runs on gevent; importing locust patches the process
from locust import events
from locust.argument_parser import parse_options
from locust.env import Environment

from bench.measure import Result, Window, client_arguments, log, rss_kib, wait_for_boots
from swarm.locust.user import ChargePointUser, Swarm
from swarm.protocol.samples import OCPP, OCPP201
from swarm.protocol.trace import DEFAULT_FRAMES


class BenchChargePoint(ChargePointUser):
    pass


def main() -> None:
    options = client_arguments(__doc__, ocpp_version=True, trace_frames=True)
    locust_options = parse_options(
        [
            "--ocpp-version",
            options.ocpp_version,
            "--heartbeat-interval",
            str(options.interval),
            "--authorize-interval",
            "0",
            "--serial-prefix",
            "LOC-",
            "--results-dir",
            "",  # no run folder: its pictures would take the end of the run
            "--trace-frames",
            str(options.trace_frames),
        ]
    )
    environment = Environment(
        user_classes=[BenchChargePoint],
        events=events,
        host=options.url,
        parsed_options=locust_options,
    )
    runner = environment.create_local_runner()
    events.init.fire(environment=environment, runner=runner, web_ui=None)
    times: list[float] = []

    @events.request.add_listener
    def record(
        request_type: str, name: str, response_time: float, exception: object, **_: object
    ) -> None:
        if name == "Heartbeat" and exception is None:
            times.append(response_time)

    swarm = Swarm.of(environment)
    rss_base = rss_kib()
    started = time.monotonic()
    runner.start(options.charge_points, spawn_rate=options.spawn_rate)
    connect_s = wait_for_boots(
        lambda: swarm.engine.census()["accepted"], options.charge_points, started, gevent.sleep
    )
    gevent.sleep(options.warmup)
    booted = swarm.engine.census()["accepted"]
    log(f"locust: {booted} booted, measuring {options.duration:g} s")
    swarm.flush()
    connect_failures = environment.stats.get("connect", "WebSocket").num_failures
    swarm.flush()
    environment.stats.reset_all()
    times.clear()
    window = Window()
    gevent.sleep(options.duration)
    swarm.flush()
    window.close()
    entry = environment.stats.get("Heartbeat", OCPP if options.ocpp_version == "1.6" else OCPP201)
    client = "swarm" if options.ocpp_version == "1.6" else options.ocpp_version
    if options.trace_frames != DEFAULT_FRAMES:
        client += f" --trace-frames {options.trace_frames}"
    result = Result.from_times(f"{client} in Locust", booted, times, entry.num_failures, window)
    result.locust_median_ms = entry.median_response_time
    result.connect_s, result.connect_failures = connect_s, connect_failures
    result.rss_base_kib, result.rss_kib = rss_base, rss_kib()
    runner.quit()
    events.quitting.fire(environment=environment)
    result.emit()


if __name__ == "__main__":
    main()
