"""When EVs arrive at a charge point: a Poisson process whose rate follows a compressed day.

Candidates come at the day's peak rate (:func:`until_arrival`); each arrives with its hour's
:func:`arrival_share`, so the rate thins to the hour's while its mean over a whole day stays one
per ``session_interval``.
"""

from __future__ import annotations

import random
import time

from swarm.station.config import ChargePointConfig

DAY_PROFILE = (
    0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.4, 1.1, 1.0,
    1.1, 1.0, 0.9, 1.0, 1.3, 1.8, 2.0, 1.7, 1.3, 0.9, 0.6, 0.4,
)  # fmt: skip
"""Relative rate of session arrivals in each hour of a day: a weekday with a morning and an
evening peak. Over a whole day, arrivals still come every ``session_interval`` on average."""

_PEAK = max(DAY_PROFILE)
_PEAK_TO_MEAN = _PEAK * len(DAY_PROFILE) / sum(DAY_PROFILE)


def until_arrival(config: ChargePointConfig, rng: random.Random) -> float:
    """Seconds until the next candidate arrival."""
    rate = 1 / config.session_interval
    if config.day_length:
        rate *= _PEAK_TO_MEAN
    return rng.expovariate(rate)


def arrives(config: ChargePointConfig, rng: random.Random) -> bool:
    """Whether a candidate arrival arrives now."""
    return rng.random() < arrival_share(config)


def arrival_share(config: ChargePointConfig, now: float | None = None) -> float:
    """The share of candidate session arrivals that arrive at ``now`` (see :func:`until_arrival`):
    the hour's weight in :data:`DAY_PROFILE` over the peak's, or 1 without a compressed day."""
    if not config.day_length:
        return 1.0
    return DAY_PROFILE[int(hour_of_day(config, now))] / _PEAK


def hour_of_day(config: ChargePointConfig, now: float | None = None) -> float:
    """The hour (0 to 24) of the compressed day at wall-clock time ``now``."""
    elapsed = (time.time() if now is None else now) - config.day_start
    return (config.day_hour + 24 * elapsed / config.day_length) % 24
