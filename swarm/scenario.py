"""What scenarios are written with: see :mod:`swarm.locust.scenario`."""

from swarm.locust.scenario import csms_control, defaults, drop_connections, every

__all__ = ["csms_control", "defaults", "drop_connections", "every"]
