"""The default locustfile: the steady state of scenarios/steady.py.

    locust                                             # web UI; the embedded CSMS is the target
    locust --headless -u 1000 -r 100 -t 5m --host ws://csms:9000/ocpp

Each Locust user is one charge point; ``locust --help`` lists the options of the ocpp-swarm group.
More load shapes are in scenarios/.
"""

from scenarios.steady import SteadyChargePoint

__all__ = ["SteadyChargePoint"]
