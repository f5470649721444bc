"""Reconnect storm: connections drop, and the whole fleet reconnects: 1.6 charge points boot
again, 2.0.1 stations come back without a boot and report their changed statuses (B04).

    locust -f scenarios/reconnect_storm.py --headless -u 2000 -r 200 -t 5m \
        --storm-at 60 --storm-every 60
    locust -f scenarios/reconnect_storm.py --storm-by csms      # the embedded CSMS drops them

At --storm-at seconds into the test, and then every --storm-every seconds (0: once),
--storm-share of the connections drop:

- ``--storm-by swarm`` (default): the charge points lose their network, with no close
  handshake, as in a mobile-network outage. Each counts a ``WebSocket dropped`` event (not a
  failure), reconnects after its backoff and boots again (1.6) or comes back (2.0.1).
- ``--storm-by csms``: the CSMS closes them with 1001 (going away), as when it restarts; the
  swarm counts each as a failed ``WebSocket connection lost``. This needs the embedded CSMS or
  --csms-control.

fleet.png shows the fleet going offline and coming back; latency.png shows what the wave of
connects and BootNotifications does to the CSMS.
"""

import logging

from locust import events
from locust.env import Environment

from swarm import ChargePointUser
from swarm.locust.options import WebUiGroup, seconds, share
from swarm.scenario import csms_control, defaults, drop_connections, every

logger = logging.getLogger(__name__)

defaults(num_users=500, spawn_rate=50, run_time="3m", authorize_interval=0)


@events.init_command_line_parser.add_listener
def _arguments(parser, **_kwargs) -> None:
    group = WebUiGroup(parser, "reconnect storm")
    group.add_argument("--storm-at", type=seconds, default=30.0, help="Seconds into the test")
    group.add_argument(
        "--storm-every", type=seconds, default=0.0, help="Seconds between storms; 0: one"
    )
    group.add_argument(
        "--storm-share", type=share, default=1.0, help="Share of the connections to drop"
    )
    group.add_argument(
        "--storm-by",
        choices=["swarm", "csms"],
        default="swarm",
        help="Who drops them: the charge points' network, or the CSMS",
    )


def storm(environment: Environment) -> None:
    options = environment.parsed_options
    if options.storm_by == "csms":
        closed = csms_control(environment, "/disconnects", {"share": options.storm_share})
        logger.info("reconnect storm: the CSMS closed %d connections", closed["closed"])
    else:
        drop_connections(environment, options.storm_share)
        logger.info("reconnect storm: %g of the connections dropped", options.storm_share)


every(
    storm,
    lambda environment: environment.parsed_options.storm_every,
    first=lambda environment: environment.parsed_options.storm_at,
)


class ReconnectingChargePoint(ChargePointUser):
    """Boots, heartbeats, and after a lost connection reconnects and boots again."""
