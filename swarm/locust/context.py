"""What the swarm keeps in one Locust process, in one typed place.

Locust hands its listeners and users the :class:`~locust.env.Environment` and nothing of ours;
the swarm's state rides on it in one attribute, reached only through :func:`context`, so that
what a process holds (and which role holds what) is written down once, here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from swarm.report.fleet import FleetStatus
from swarm.report.timeline import Timeline

if TYPE_CHECKING:
    import gevent.event
    from locust.env import Environment

    from swarm.csms.process import CsmsProcess
    from swarm.locust.results import RunFolder
    from swarm.locust.swarm import Swarm
    from swarm.locust.workers import Workers

_ATTRIBUTE = "ocpp_swarm"
"""The one attribute of Locust's environment that holds the :class:`SwarmContext`."""


@dataclass(eq=False)
class SwarmContext:
    """The swarm's state in one Locust process; the ``init`` listener fills in its role's part."""

    swarm: Swarm | None = None
    """This process's charge points: on every process that runs users (not on a master)."""
    csms: CsmsProcess | None = None
    """The embedded CSMS, on the process that started it (no ``--host``; never a worker)."""
    workers: Workers | None = None
    """On a master: its workers' fleet reports, and the workers it lost."""
    run: RunFolder | None = None
    """The run's folder, on the process that writes it (never a worker; none without
    ``--results-dir``)."""
    timeline: Timeline = field(default_factory=Timeline)
    """Latency and failures second by second: this process's samples, or on a master its
    workers' (see :mod:`swarm.report.timeline`)."""
    quitting: gevent.event.Event | None = None
    """Set once the first ``quitting`` listener is done: Locust may fire ``quitting`` twice."""

    def fleet(self) -> FleetStatus:
        """The whole fleet's status: this process's, or on a master the sum of the last reports
        of its workers still connected (one that stopped or went missing counts no more)."""
        if self.swarm is not None:
            return self.swarm.status()
        if self.workers is not None:
            return self.workers.fleet()
        return FleetStatus()


def context(environment: Environment) -> SwarmContext:
    """The swarm's state in ``environment``'s process (empty until the ``init`` listener ran)."""
    found = getattr(environment, _ATTRIBUTE, None)
    if found is None:
        found = SwarmContext()
        setattr(environment, _ATTRIBUTE, found)
    return found
