"""Steady state: charge points that boot, then heartbeat and authorize, for as long as it runs.

    locust -f scenarios/steady.py                      # web UI; the embedded CSMS is the target
    locust -f scenarios/steady.py --headless -u 1000 -r 100 -t 10m --host ws://csms:9000/ocpp

The baseline of a CSMS's capacity: connections held, Heartbeat and Authorize latency. Heartbeats
come at the interval the CSMS answers BootNotification with (--heartbeat-interval overrides it),
Authorizes every --authorize-interval seconds on average.
"""

from swarm import ChargePointUser


class SteadyChargePoint(ChargePointUser):
    """Boots, then heartbeats at the CSMS's interval and authorizes now and then."""
