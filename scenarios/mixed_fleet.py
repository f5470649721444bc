"""Mixed fleet: OCPP 1.6J charge points and OCPP 2.0.1J stations in one run, charging.

    locust -f scenarios/mixed_fleet.py --headless -u 2000 -r 100 -t 10m
    locust -f scenarios/mixed_fleet.py --ocpp-version 1.6=1,2.0.1=1    # half and half

Seven in ten charge points speak 1.6, three in ten 2.0.1 (each keeps its version across workers
and reconnects: it is picked by its serial). Both boot, heartbeat, authorize and charge: the
1.6 ones with StartTransaction, MeterValues and StopTransaction, the 2.0.1 ones with
TransactionEvent Started, Updated and Ended. Each version's round trips are rows of their own:
request types OCPP and CSMS for 1.6, OCPP201 and CSMS201 for 2.0.1, so a threshold can name
either (``--check-p95 "OCPP201 TransactionEvent=500"``). The embedded CSMS speaks both.
"""

from swarm import ChargePointUser
from swarm.scenario import defaults

defaults(
    num_users=500,
    spawn_rate=50,
    run_time="10m",
    ocpp_version="1.6=7,2.0.1=3",
    connectors=2,
    session_interval=60,
    session_duration=30,
    meter_interval=5,
)


class MixedChargePoint(ChargePointUser):
    """Boots, heartbeats, authorizes and charges, in its OCPP version."""
