"""The fleet's gauges in OpenTelemetry, with Locust's ``--otel``.

Locust sets up OpenTelemetry's meter provider itself (``locust[otel]``, configured by the
``OTEL_*`` environment variables) and records each request's duration in its histogram
``locust.client.duration``, with the request's name; so every OCPP round trip is one
measurement of it. To the same meter provider this adds, on the process that holds the fleet's
status (a master, or a process on its own), observable gauges read at each export:

- ``ocpp_swarm.charge_points``: charge points by ``state``;
- ``ocpp_swarm.charge_points_by_version``: charge points by OCPP ``version``;
- ``ocpp_swarm.charging``: charge points with a charging session running.

Without ``--otel`` it adds nothing; without OpenTelemetry's SDK, Locust says so and the gauges
go to OpenTelemetry's no-op provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from swarm.locust.context import context

if TYPE_CHECKING:
    from locust.env import Environment

    from swarm.report.fleet import FleetStatus

METER = "ocpp-swarm"
"""The name of the swarm's meter."""

UNIT = "{charge_point}"


def export_fleet(environment: Environment) -> None:
    """With ``--otel``, observe the fleet's states and versions through the meter provider."""
    if not getattr(environment.parsed_options, "otel", False):
        return
    try:
        from opentelemetry import metrics
    except ImportError:  # OpenTelemetry's API is in Locust's optional otel extra
        return
    fleet = context(environment).fleet

    def gauge(name: str, description: str, read: Callable[[FleetStatus], Iterable[Any]]) -> None:
        def observe(_options: Any) -> Iterable[Any]:
            return [metrics.Observation(count, labels) for count, labels in read(fleet())]

        meter.create_observable_gauge(name, [observe], unit=UNIT, description=description)

    meter = metrics.get_meter(METER)
    gauge(
        "ocpp_swarm.charge_points",
        "Charge points, by state",
        lambda status: ((count, {"state": state}) for state, count in status.states.items()),
    )
    gauge(
        "ocpp_swarm.charge_points_by_version",
        "Charge points, by OCPP version",
        lambda status: (
            (count, {"version": version}) for version, count in status.versions.items()
        ),
    )
    gauge(
        "ocpp_swarm.charging",
        "Charge points with a charging session running",
        lambda status: [(status.charging, {})],
    )
