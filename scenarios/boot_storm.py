"""Boot storm: the whole fleet connects and boots at once, as after a power cut.

    locust -f scenarios/boot_storm.py --headless -u 5000 -t 2m \
        --check-p95 BootNotification=500 --check-booted 5000

All -u charge points start in the first second and connect concurrently, so they boot as fast
as the CSMS lets them; then they hold their connections and heartbeat until -t is over (or,
without -t, until stopped). The picture to look at is fleet.png: how long the fleet takes from
connecting to booted, and whether some stay pending, rejected or offline.
"""

from locust import LoadTestShape

from swarm import ChargePointUser
from swarm.scenario import defaults

defaults(num_users=1000, run_time="1m", authorize_interval=0)


class StormingChargePoint(ChargePointUser):
    """Boots, then heartbeats at the CSMS's interval."""


class BootStorm(LoadTestShape):
    """-u charge points at once, held for -t."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        if options.run_time and self.get_run_time() >= options.run_time:
            return None
        return options.num_users, options.num_users
