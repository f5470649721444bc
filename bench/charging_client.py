"""The swarm inside Locust, every charge point charging: a session each, its MeterValues every
``--interval`` seconds as its Heartbeats.

Run as a library, as :mod:`bench.locust_client` runs it, with the options the swarm has had since
before its EVs, so that :mod:`bench.charging` runs this same file against an earlier revision's
swarm; for that it takes from ``bench`` only what :mod:`bench.measure` had then, and repeats the
few lines it shares with :mod:`bench.locust_client`. Sessions arrive within a second of the
boot and outlast the run. The window opens once every booted charge point charges; its result
counts every round trip, whatever its action, and the process's resident memory growth since
before the first charge point started.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path

import gevent  # Locust runs on gevent; importing locust patches the process
from locust import events
from locust.argument_parser import parse_options
from locust.env import Environment

from bench.measure import BOOT_LIMIT, Result, Window, client_arguments, log, rss_kib, wait_for_boots
from swarm.locust.user import ChargePointUser, Swarm

SESSION_INTERVAL = 0.5
"""Mean seconds from a boot (or a session's end) to the next session's arrival."""
SESSION_DURATION = 86_400.0
"""Mean seconds a session lasts: longer than any run."""


class ChargingChargePoint(ChargePointUser):
    pass


def main() -> None:
    options = client_arguments(__doc__, ocpp_version=True)
    here, imported = Path.cwd().resolve(), Path(inspect.getfile(ChargePointUser)).resolve()
    if not imported.is_relative_to(here):  # PYTHONSAFEPATH or PYTHONPATH took another swarm
        raise SystemExit(f"the swarm imported is {imported}, not the one in {here}")
    interval = str(options.interval)
    locust_options = parse_options(
        [
            "--ocpp-version", options.ocpp_version,
            "--heartbeat-interval", interval,
            "--meter-interval", interval,
            "--session-interval", str(SESSION_INTERVAL),
            "--session-duration", str(SESSION_DURATION),
            "--authorize-interval", "0",
            "--serial-prefix", "CHG-",
            "--results-dir", "",  # no run folder: its pictures would take the end of the run
        ]
    )  # fmt: skip
    environment = Environment(
        user_classes=[ChargingChargePoint],
        events=events,
        host=options.url,
        parsed_options=locust_options,
    )
    runner = environment.create_local_runner()
    events.init.fire(environment=environment, runner=runner, web_ui=None)
    times: list[float] = []
    failures = [0]

    @events.request.add_listener
    def record(response_time: float, exception: object, **_: object) -> None:
        if exception is None:
            times.append(response_time)
        else:
            failures[0] += 1

    swarm = Swarm.of(environment)
    rss_base = rss_kib()
    started = time.monotonic()
    runner.start(options.charge_points, spawn_rate=options.spawn_rate)
    census = swarm.engine.census
    connect_s = wait_for_boots(
        lambda: census()["accepted"], options.charge_points, started, gevent.sleep
    )
    wait_for_boots(lambda: census()["charging"], census()["accepted"], started, gevent.sleep)
    if time.monotonic() - started >= BOOT_LIMIT:
        log(f"charging: {census()['charging']} of {census()['accepted']} charge points charge")
    gevent.sleep(options.warmup)
    booted = census()["accepted"]
    log(f"charging: {booted} booted, {census()['charging']} charging, measuring")
    swarm.flush()
    times.clear()
    failures[0] = 0
    window = Window()
    gevent.sleep(options.duration)
    swarm.flush()
    window.close()
    result = Result.from_times(f"swarm {options.ocpp_version}", booted, times, failures[0], window)
    result.connect_s = connect_s
    result.rss_base_kib, result.rss_kib = rss_base, rss_kib()
    runner.quit()
    events.quitting.fire(environment=environment)
    result.emit()


if __name__ == "__main__":
    main()
