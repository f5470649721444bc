"""Load balancing: a fleet charges, the CSMS caps the stations' power, and later lifts the cap.

    locust -f scenarios/load_balancing.py --headless -u 500 -r 50 -t 5m \
        --cap-at 60 --cap-watts 5000 --cap-share 1 --cap-for 120

EVs arrive every --session-interval seconds per charge point (30 by default) and draw what
their charging curve allows. At --cap-at seconds into the test the embedded CSMS (or the
`python -m swarm.csms` named by --csms-control) pushes a ChargePointMaxProfile (1.6) or
ChargingStationMaxProfile (2.0.1) of --cap-watts to --cap-share of each version's charge points
(``POST /charging-profiles``); each EV on them draws no more from then on. With --cap-for the
profile lasts that many seconds, and the stations lift it by themselves (0: until the end).
The fleet's power drops to the cap and recovers: fleet.png draws it, with the sum of the caps
the stations accepted (``caps.csv`` in the run folder: from each timestamp, the watts the capped
stations may draw in all). Against a CSMS of your own, cap from there (--cap-share 0 sends
nothing from here).
"""

import csv
import logging
import time

from locust import events
from locust.env import Environment

from swarm import ChargePointUser
from swarm.locust.context import context
from swarm.locust.options import WebUiGroup, seconds, share
from swarm.report.plots import CAPS_CSV
from swarm.scenario import csms_control, defaults, every

logger = logging.getLogger(__name__)

defaults(num_users=500, spawn_rate=50, run_time="5m", session_interval=30, authorize_interval=0)


@events.init_command_line_parser.add_listener
def _arguments(parser, **_kwargs) -> None:
    group = WebUiGroup(parser, "load balancing")
    group.add_argument("--cap-at", type=seconds, default=60.0, help="Seconds into the test")
    group.add_argument(
        "--cap-watts", type=float, default=5000.0, help="Watts each capped station may draw"
    )
    group.add_argument(
        "--cap-share", type=share, default=1.0, help="Share of the fleet to cap (0 to 1)"
    )
    group.add_argument(
        "--cap-for", type=seconds, default=120.0, help="Seconds the cap lasts; 0: to the end"
    )


def cap(environment: Environment) -> None:
    options = environment.parsed_options
    if not options.cap_share:
        return
    profile = {"purpose": "ChargePointMaxProfile", "unit": "W", "limit": options.cap_watts}
    if options.cap_for:
        profile["duration"] = max(1, round(options.cap_for))
    capped = time.time()
    answer = csms_control(
        environment, "/charging-profiles", {"profile": profile, "share": options.cap_share}
    )
    logger.info(
        "load balancing: %g W caps sent to %d charge points, %d accepted",
        options.cap_watts,
        answer["targeted"],
        answer["accepted"],
    )
    run = context(environment).run
    if run is None:
        return
    rows = [(capped, answer["accepted"] * options.cap_watts, answer["accepted"])]
    if options.cap_for:
        rows.append((capped + options.cap_for, "", 0))  # the stations lift it then
    with (run.path / CAPS_CSV).open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("timestamp", "watts", "stations"))
        writer.writerows((f"{t:.1f}", w, n) for t, w, n in rows)


every(cap, 0, first=lambda environment: environment.parsed_options.cap_at)


class BalancedChargePoint(ChargePointUser):
    """Boots, charges the EVs that arrive, and obeys the CSMS's charging profiles."""
