"""``ocpp-swarm``: the ``locust`` command with the swarm's options known from the start.

Locust reads ``--help`` before it imports the locustfile, so ``locust -f locustfile.py --help``
lists only Locust's own options. This command registers the swarm's first (importing
:mod:`swarm.locust.hooks` adds them to every parser Locust makes), then hands the command line
to Locust: ``ocpp-swarm --help`` lists them all, grouped, with their defaults, and every other
use is ``locust``'s.
"""

from __future__ import annotations


def main() -> None:
    # Imported here, not at the top: importing locust patches the standard library (gevent),
    # which only the process that runs Locust may do.
    from locust.main import main as locust_main

    from swarm.locust import hooks  # noqa: F401  (registers the swarm's options)

    locust_main()
