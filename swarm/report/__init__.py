"""What a run reports, without Locust or websockets: the fleet's counts, the pictures, the
thresholds, and ``python -m swarm.report`` to redraw an earlier run's pictures."""
