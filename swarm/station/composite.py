"""The charging limit a station's profiles set, in any OCPP version: sans-I/O, pure functions.

A CSMS limits a station with charging profiles (OCPP 1.6 3.13, 7.7 to 7.13; 2.0.1 block K).
This module reads them in a version-neutral :class:`Profile` (:func:`from_16`, :func:`from_201`)
and combines those installed on a station into the limit in force on one connector (an EVSE
in 2.0.1) at an instant (:func:`limit_at`), the instant it next changes (:func:`next_change`)
and the composite schedule GetCompositeSchedule reports (:func:`composite`), as the
specifications combine them:

- per purpose, of the profiles valid at the instant (validFrom, validTo; a TxProfile only for
  its transaction) the one of highest stackLevel whose schedule covers the instant sets the
  limit; before its schedule starts and after its duration, a lower one shows through;
- a TxDefaultProfile on a connector replaces one on connector 0 for that connector (1.6 3.13.2);
  this module takes that per instant: connector 0's applies where none of the connector's own
  covers the instant;
- during a transaction a TxProfile overrules the TxDefaultProfile; the result is capped by the
  ChargePointMaxProfile (2.0.1's ChargingStationMaxProfile) on connector 0. Connector 0 itself,
  the grid connection, is limited by that profile alone;
- Absolute schedules start at startSchedule; one without (1.6 allows it) and Relative ones at
  the start of the transaction, or with none at the start of what is asked (as if a transaction
  began then); Recurring ones at startSchedule plus whole days or weeks, the last period
  lasting until the next recurrence;
- a limit in A is per phase: ``A * VOLTAGE * numberPhases`` watts, numberPhases 3 unless the
  period gives another. Limits combine with the fewest phases in force, so a result converts
  between A and W both ways.

Times are float seconds since the epoch (``time.time()``), durations seconds; timestamps in a
profile parse to the same (UTC unless they name an offset).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

VOLTAGE = 230.0
"""Volts per phase, line to neutral, that convert a limit in A to W and back."""

PHASES = 3
"""The phases a period uses when it gives no numberPhases (1.6 7.12, 2.0.1 2.11)."""

DAY = 86400.0
WEEK = 7 * DAY


class Purpose(enum.StrEnum):
    STATION_MAX = "StationMax"
    """1.6's ChargePointMaxProfile, 2.0.1's ChargingStationMaxProfile (and its external
    constraints): a cap on the station, set on connector 0."""
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(enum.StrEnum):
    ABSOLUTE = "Absolute"
    DAILY = "Daily"
    """Recurring, every day from startSchedule."""
    WEEKLY = "Weekly"
    """Recurring, every week from startSchedule."""
    RELATIVE = "Relative"


_PURPOSES = {
    "ChargePointMaxProfile": Purpose.STATION_MAX,
    "ChargingStationMaxProfile": Purpose.STATION_MAX,
    "ChargingStationExternalConstraints": Purpose.STATION_MAX,
    "TxDefaultProfile": Purpose.TX_DEFAULT,
    "TxProfile": Purpose.TX,
}

_RECURRENCES = {Kind.DAILY: DAY, Kind.WEEKLY: WEEK}


@dataclass(frozen=True, slots=True)
class Period:
    """A chargingSchedulePeriod: from ``start`` seconds into its schedule, ``limit`` in the
    schedule's unit on ``phases`` phases."""

    start: int
    limit: float
    phases: int = PHASES


@dataclass(frozen=True, slots=True)
class Schedule:
    """A chargingSchedule: its unit ("A" or "W"), periods in increasing ``start``, and when."""

    unit: str
    periods: tuple[Period, ...]
    start: float | None = None
    """startSchedule; None: relative to the transaction's start."""
    duration: float | None = None
    """None: the last period lasts (until the next recurrence of a Recurring profile)."""
    min_rate: float | None = None
    """minChargingRate, in ``unit``: the EV charges at no lower rate."""


@dataclass(frozen=True, slots=True)
class Profile:
    """A charging profile, whatever the version that set it."""

    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: Schedule
    valid_from: float = -math.inf
    valid_to: float = math.inf
    transaction_id: int | str | None = None
    """A TxProfile's transaction; None: the connector's transaction, whichever it is."""


Installed = tuple[int, Profile]
"""A profile and the connector (EVSE) it is set on, 0 for the station as a whole."""


@dataclass(frozen=True, slots=True)
class Session:
    """The transaction on a connector: its id and its start (None: not known, as if now)."""

    transaction_id: int | str | None
    start: float | None = None


@dataclass(frozen=True, slots=True)
class Limit:
    """What the profiles allow at an instant: ``watts`` on ``phases`` phases, the unit of the
    profile that sets it, and the EV's minChargingRate in watts (None: none given)."""

    watts: float
    phases: int
    unit: str
    min_watts: float | None = None

    def value(self, unit: str, voltage: float = VOLTAGE) -> float:
        """The limit in ``unit``: watts, or amperes per phase."""
        return self.watts if unit == "W" else self.watts / (voltage * self.phases)

    @property
    def offered(self) -> float:
        """Watts the station offers: the limit, or 0 where it is below the EV's minimum rate
        (the EV cannot charge at so low a rate)."""
        if self.min_watts is not None and self.watts < self.min_watts:
            return 0.0
        return self.watts


# Parsing: a CSMS's profile, as its version words it.


class ScheduleError(ValueError):
    """A profile's schedule the composite cannot follow: no period, periods out of order,
    numberPhases out of 1 to 3, a negative limit."""


def from_16(profile: Mapping[str, Any]) -> Profile:
    """A 1.6 ``csChargingProfiles`` (7.8 ChargingProfile)."""
    return _profile(profile, profile["chargingProfileId"], profile["chargingSchedule"])


def from_201(profile: Mapping[str, Any]) -> Profile:
    """A 2.0.1 ``chargingProfile`` (2.10 ChargingProfileType). Of its one to three
    chargingSchedules, the first: the others are offered to an EV in ISO 15118 schedule
    negotiation (K01), which the station does not do."""
    return _profile(profile, profile["id"], profile["chargingSchedule"][0])


def _profile(profile: Mapping[str, Any], number: int, schedule: Mapping[str, Any]) -> Profile:
    kind = profile["chargingProfileKind"]
    if kind == "Recurring":  # without a recurrencyKind (1.6 allows it): taken as daily
        kind = profile.get("recurrencyKind", "Daily")
    start, duration = schedule.get("startSchedule"), schedule.get("duration")
    periods = tuple(
        Period(
            p["startPeriod"],
            float(p["limit"]),
            p.get("numberPhases", PHASES),
        )
        for p in schedule["chargingSchedulePeriod"]
    )
    # What the schemas leave open, and the composite needs: a CSMS's frame must not break it.
    starts = [period.start for period in periods]
    if not starts or starts[0] != 0 or starts != sorted(set(starts)):
        raise ScheduleError("the periods' startPeriods do not rise from 0")
    if any(not 1 <= period.phases <= 3 or period.limit < 0 for period in periods):
        raise ScheduleError("a period's numberPhases is not 1 to 3, or its limit is below 0")
    valid_from, valid_to = profile.get("validFrom"), profile.get("validTo")
    return Profile(
        number,
        profile["stackLevel"],
        _PURPOSES[profile["chargingProfilePurpose"]],
        Kind(kind),
        Schedule(
            schedule["chargingRateUnit"],
            periods,
            None if start is None or kind == "Relative" else instant(start),
            None if duration is None else float(duration),
            schedule.get("minChargingRate"),
        ),
        -math.inf if valid_from is None else instant(valid_from),
        math.inf if valid_to is None else instant(valid_to),
        profile.get("transactionId"),
    )


def instant(timestamp: str) -> float:
    """An OCPP dateTime as epoch seconds (UTC unless it names an offset); ValueError if it
    does not parse."""
    when = datetime.fromisoformat(timestamp)
    return (when if when.tzinfo is not None else when.replace(tzinfo=UTC)).timestamp()


# One profile's schedule at an instant.


def _instance(profile: Profile, at: float, origin: float) -> float | None:
    """When the instance of ``profile``'s schedule that ``at`` may fall in began: its
    startSchedule, the relative ``origin``, or a recurrence's latest start up to ``at``."""
    start = profile.schedule.start
    if profile.kind is Kind.RELATIVE or start is None:
        return origin
    every = _RECURRENCES.get(profile.kind)
    if every is None:
        return start
    return start + math.floor((at - start) / every) * every


def _length(profile: Profile) -> float:
    """How long an instance of the schedule lasts: its duration, cut at the next recurrence."""
    duration = profile.schedule.duration
    length = math.inf if duration is None else duration
    return min(length, _RECURRENCES.get(profile.kind, math.inf))


def _period(profile: Profile, at: float, origin: float) -> Period | None:
    """The period of ``profile`` in force at ``at``; None if it is not valid then or its
    schedule does not cover ``at``."""
    if not profile.valid_from <= at < profile.valid_to:
        return None
    begun = _instance(profile, at, origin)
    offset = at - begun
    if not 0 <= offset < _length(profile):
        return None
    found = None
    for period in profile.schedule.periods:
        if period.start > offset:
            break
        found = period
    return found


def _boundaries(profile: Profile, after: float, origin: float) -> Iterator[float]:
    """Instants after ``after`` at which ``profile`` may start or stop setting a limit, or
    change it: those of the instance in force and of the next one (every recurrence is
    alike, so a change that is not in these two is in none)."""
    yield profile.valid_from
    yield profile.valid_to
    begun = _instance(profile, after, origin)
    every = _RECURRENCES.get(profile.kind)
    for start in (begun,) if every is None else (begun, begun + every):
        yield from (start + period.start for period in profile.schedule.periods)
        yield start + _length(profile)


# Combining the profiles installed on a station.


def _applies(connector: int, session: Session | None, where: int, profile: Profile) -> bool:
    """Whether a profile set on ``where`` may limit ``connector`` (0: the grid connection)."""
    if connector == 0:
        return where == 0 and profile.purpose is Purpose.STATION_MAX
    if profile.purpose is Purpose.STATION_MAX:
        return where == 0
    if profile.purpose is Purpose.TX_DEFAULT:
        return where in (0, connector)
    return (
        where == connector
        and session is not None
        and profile.transaction_id in (None, session.transaction_id)
    )


def _winner(
    candidates: Iterable[tuple[int, Profile]], at: float, origin: float
) -> tuple[Profile, Period] | None:
    """Of ``candidates`` (one purpose's), the profile of highest stack level that sets a
    limit at ``at``, and its period; a connector's own before connector 0's at a level."""
    ranked = sorted(candidates, key=lambda c: (c[1].stack_level, c[0]), reverse=True)
    for _, profile in ranked:
        period = _period(profile, at, origin)
        if period is not None:
            return profile, period
    return None


def _limit(
    installed: Sequence[Installed],
    connector: int,
    at: float,
    session: Session | None,
    origin: float,
    voltage: float,
) -> Limit | None:
    by_purpose: dict[Purpose, list[Installed]] = {purpose: [] for purpose in Purpose}
    for where, profile in installed:
        if _applies(connector, session, where, profile):
            by_purpose[profile.purpose].append((where, profile))
    defaults = by_purpose[Purpose.TX_DEFAULT]
    charging = _winner(by_purpose[Purpose.TX], at, origin) or (
        _winner([d for d in defaults if d[0] == connector], at, origin)
        or _winner([d for d in defaults if d[0] == 0], at, origin)
    )
    in_force = [
        found
        for found in (charging, _winner(by_purpose[Purpose.STATION_MAX], at, origin))
        if found is not None
    ]
    if not in_force:
        return None
    phases = min(period.phases for _, period in in_force)
    watts, unit = min(
        (_watts(profile.schedule.unit, period.limit, phases, voltage), profile.schedule.unit)
        for profile, period in in_force
    )
    minimum = None
    if charging is not None and charging[0].schedule.min_rate is not None:
        schedule = charging[0].schedule
        minimum = _watts(schedule.unit, schedule.min_rate, phases, voltage)
    return Limit(watts, phases, unit, minimum)


def _watts(unit: str, value: float, phases: int, voltage: float) -> float:
    return value if unit == "W" else value * voltage * phases


def limit_at(
    installed: Sequence[Installed],
    connector: int,
    at: float,
    session: Session | None = None,
    *,
    voltage: float = VOLTAGE,
) -> Limit | None:
    """The limit in force on ``connector`` (0: the grid connection) at ``at``, given the
    profiles ``installed`` on the station and the ``session`` on the connector, if any; None
    where no profile limits it. A Relative schedule starts at the session's start, or at
    ``at`` without one (as if a transaction began then)."""
    origin = at if session is None or session.start is None else session.start
    return _limit(installed, connector, at, session, origin, voltage)


def next_change(
    installed: Sequence[Installed],
    connector: int,
    after: float,
    session: Session | None = None,
    *,
    origin: float | None = None,
    voltage: float = VOLTAGE,
) -> float | None:
    """The first instant after ``after`` at which the limit on ``connector`` changes; None if
    it never does. ``origin``: where Relative schedules start without a session's start (by
    default ``after``)."""
    if origin is None:
        origin = after if session is None or session.start is None else session.start
    relevant = [(w, p) for w, p in installed if _applies(connector, session, w, p)]
    now = _limit(relevant, connector, after, session, origin, voltage)
    instants = sorted(
        {
            boundary
            for _, profile in relevant
            for boundary in _boundaries(profile, after, origin)
            if after < boundary < math.inf
        }
    )
    for candidate in instants:
        if _limit(relevant, connector, candidate, session, origin, voltage) != now:
            return candidate
    return None


def composite(
    installed: Sequence[Installed],
    connector: int,
    start: float,
    duration: float,
    unit: str | None = None,
    session: Session | None = None,
    *,
    maximum: float,
    phases: int = PHASES,
    voltage: float = VOLTAGE,
) -> tuple[str, list[dict[str, Any]]]:
    """The composite schedule of ``connector`` over ``[start, start + duration)``: its unit
    and its chargingSchedulePeriods (startPeriod in whole seconds from ``start``, limit to one
    decimal, numberPhases), one where the limit changes. Where no profile limits the
    connector, the station's own ``maximum`` watts on its ``phases`` holds. ``unit`` None
    takes that of the profile setting the limit at ``start`` (A without one)."""
    origin = start if session is None or session.start is None else session.start
    unlimited = Limit(maximum, phases, unit or "A")
    changes: list[tuple[float, Limit]] = []
    at: float | None = start
    while at is not None and at < start + duration:
        limit = _limit(installed, connector, at, session, origin, voltage) or unlimited
        changes.append((at, limit))
        at = next_change(installed, connector, at, session, origin=origin, voltage=voltage)
    unit = unit or changes[0][1].unit
    periods: list[dict[str, Any]] = []
    for at, limit in changes:
        period = {
            "startPeriod": round(at - start),
            "limit": round(limit.value(unit, voltage), 1),
            "numberPhases": limit.phases,
        }
        if periods and periods[-1]["startPeriod"] == period["startPeriod"]:
            periods.pop()  # two changes within a second: the later holds
        if not periods or {**periods[-1], "startPeriod": 0} != {**period, "startPeriod": 0}:
            periods.append(period)
    return unit, periods
