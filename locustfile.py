"""Steady state: charge points that boot, heartbeat and authorize.

    locust -f locustfile.py                       # web UI; the embedded CSMS is the target
    locust -f locustfile.py --host ws://csms:9000/ocpp --headless -u 1000 -r 100 -t 5m

Each Locust user is one charge point; see ``locust -f locustfile.py --help`` for the options of
the ocpp-swarm group (heartbeat and authorize intervals, idTags, timeouts, serial prefix).
"""

from swarm import ChargePointUser


class SteadyChargePoint(ChargePointUser):
    """Boots, then heartbeats at the CSMS's interval and authorizes now and then."""
