"""Charging day: a day of charging sessions, compressed, with their MeterValues.

    locust -f scenarios/charging_day.py --headless -u 2000 -r 100 -t 10m
    locust -f scenarios/charging_day.py --day-length 3600 -t 1h     # a day in an hour

Each charge point (two connectors) sees EVs arrive over a day squeezed into --day-length
seconds: few at night, a morning peak around 8 h, an evening peak around 18 h (the weekday of
swarm.station.arrivals.DAY_PROFILE), one every --session-interval seconds on average. Each
session authorizes, starts a transaction, sends MeterValues every --meter-interval seconds, and
stops after --session-duration seconds on average; statuses go Preparing, Charging, Finishing,
Available around it. The transaction messages' latency follows the day's load in latency.png,
and the charging line of fleet.png shows the day's shape.
"""

from swarm import ChargePointUser
from swarm.scenario import defaults

defaults(
    num_users=500,
    spawn_rate=50,
    run_time="10m",
    connectors=2,
    day_length=600,
    day_hour=0,
    session_interval=60,
    session_duration=30,
    meter_interval=5,
    authorize_interval=0,
)


class DayChargePoint(ChargePointUser):
    """Boots, heartbeats, and charges the EVs that arrive over the compressed day."""
