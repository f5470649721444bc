"""Ramp: from 1 to -u charge points over -t, to find where the CSMS breaks.

    locust -f scenarios/ramp.py --headless -u 20000 -t 20m --check-fail-ratio 0.001

The number of charge points grows evenly from 1 to -u over the whole run time (-t), then the
test ends. latency.png shows each message's latency against the connected charge points, so
the point where it bends is the CSMS's knee; the run's log names the number of charge points
at the first failure, if any.
"""

import logging

from locust import LoadTestShape

from swarm import ChargePointUser
from swarm.scenario import defaults

logger = logging.getLogger(__name__)

defaults(num_users=1000, run_time="5m")


class RampingChargePoint(ChargePointUser):
    """Boots, heartbeats at the CSMS's interval and authorizes now and then."""


class Ramp(LoadTestShape):
    """1 to -u charge points, evenly over -t seconds."""

    use_common_options = True
    first_failure: int | None = None
    """Charge points running when the first failure was counted."""

    def tick(self) -> tuple[int, float] | None:
        runner = self.runner
        options = runner.environment.parsed_options
        if self.first_failure is None and runner.stats.total.num_failures:
            self.first_failure = runner.user_count
            logger.warning("ramp: the first failure came with %d charge points", runner.user_count)
        elapsed, total = self.get_run_time(), options.run_time or 300
        if elapsed >= total:
            return None
        users = 1 + round((options.num_users - 1) * elapsed / total)
        return users, max(1.0, options.num_users / total)
