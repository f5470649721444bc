"""The charging options of the EVs and the connectors (the *ocpp-swarm charging* group, with the
session options of :mod:`swarm.locust.options`), and the config fields they set.

A distribution is a range, ``LOW-HIGH``, uniform between, or one value for all; kept as text,
as the web UI sends it, and parsed by :func:`ev_values`.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

SPAN = re.compile(r"\s*(\d+(?:\.\d*)?)\s*(?:-\s*(\d+(?:\.\d*)?)\s*)?")
"""A range of non-negative numbers, ``40-100``, or one, ``60``."""

FIELDS = (
    "battery_kwh",
    "arrival_soc",
    "target_soc",
    "taper_soc",
    "single_phase_evs",
    "connector_current",
    "connector_phases",
)
"""The fields of :class:`~swarm.station.config.ChargePointConfig` that these options set, by
the options' names (``--battery-kwh`` sets ``battery_kwh``)."""


def parse_span(text: str) -> tuple[float, float]:
    """``(low, high)`` from ``LOW-HIGH`` or one number; raises ``ValueError``."""
    match = SPAN.fullmatch(str(text))
    if match is None:
        raise ValueError(f"{text!r} is not a number or a range LOW-HIGH")
    low = float(match[1])
    return low, float(match[2]) if match[2] else low


def span(text: str) -> str:
    """An argparse type: a range, ``LOW-HIGH``, or one number; kept as text (the web UI
    converts what it is sent by the type of the default)."""
    try:
        parse_span(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text)


def add_ev_arguments(group: Any) -> None:
    """Add the options of the EVs and the connectors to the charging ``group``."""
    group.add_argument(
        "--battery-kwh",
        type=span,
        default="40-100",
        metavar="LOW-HIGH",
        help="Battery capacity of the EVs in kWh, uniform in the range (or one value)",
    )
    group.add_argument(
        "--arrival-soc",
        type=span,
        default="10-60",
        metavar="LOW-HIGH",
        help="State of charge in percent the EVs arrive with, uniform in the range",
    )
    group.add_argument(
        "--target-soc",
        type=span,
        default="80-100",
        metavar="LOW-HIGH",
        help="State of charge in percent at which the EVs stop drawing (SuspendedEV), uniform"
        " in the range; a session ends when its driver leaves, full or not",
    )
    group.add_argument(
        "--taper-soc",
        type=float,
        default=80.0,
        metavar="PERCENT",
        help="State of charge in percent up to which an EV takes its full power; above it the"
        " power falls linearly to zero at 100 percent (100: never)",
    )
    group.add_argument(
        "--single-phase-evs",
        type=float,
        default=0.2,
        help="Share (0 to 1) of the EVs that charge on one phase; the others take three",
    )
    group.add_argument(
        "--connector-current",
        type=float,
        default=32.0,
        metavar="AMPERES",
        help="Amperes per phase each connector gives at most, at 230 V per phase (6 or more)",
    )
    group.add_argument(
        "--connector-phases",
        type=int,
        default=3,
        help="Phases of each connector: 1 or 3",
    )


def ev_values(options: Any) -> dict[str, Any]:
    """The config fields of these options in Locust's parsed ``options`` (values may be strings,
    as the web UI sends some); raises ``ValueError`` naming the option."""
    values: dict[str, Any] = {}
    for name in FIELDS:
        raw = getattr(options, name)
        try:
            if name in ("battery_kwh", "arrival_soc", "target_soc"):
                values[name] = parse_span(raw)
            elif name == "connector_phases":
                values[name] = int(raw)
            else:
                values[name] = float(raw)
        except ValueError as exc:
            raise ValueError(f"--{name.replace('_', '-')}: {exc}") from None
    return values
