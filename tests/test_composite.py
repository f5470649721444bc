"""The composite of charging profiles (swarm.station.composite), against cases computed by hand
from OCPP 1.6 3.13 and 2.0.1 block K, and GetCompositeSchedule's answers in both versions."""

import asyncio
import time

import pytest

from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.ocpp201.dialect import OCPP201
from swarm.station.composite import (
    Kind,
    Purpose,
    Session,
    from_16,
    from_201,
    instant,
    limit_at,
    next_change,
)
from swarm.station.composite import composite as schedule_of
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Transaction
from swarm.station.state import State

T0 = instant("2024-01-01T00:00:00Z")  # a Monday
HOUR = 3600.0


def p16(
    number,
    purpose="TxDefaultProfile",
    stack=0,
    kind="Absolute",
    periods=((0, 16),),
    unit="A",
    start="2024-01-01T00:00:00Z",
    **extra,
):
    """A 1.6 csChargingProfiles; ``periods`` as (startPeriod, limit[, numberPhases])."""
    schedule = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [
            {"startPeriod": p[0], "limit": p[1], **({"numberPhases": p[2]} if p[2:] else {})}
            for p in periods
        ],
        **extra.pop("schedule", {}),
    }
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = start
    return {
        "chargingProfileId": number,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": schedule,
        **extra,
    }


def amps(installed, at, connector=1, session=None):
    limit = limit_at([(c, from_16(p)) for c, p in installed], connector, at, session)
    return None if limit is None else round(limit.value("A"), 3)


def test_profiles_parse_from_either_version():
    one = from_16(
        p16(
            7,
            "ChargePointMaxProfile",
            3,
            "Recurring",
            recurrencyKind="Weekly",
            validTo="2024-02-01T00:00:00+01:00",
            schedule={"duration": 600, "minChargingRate": 6.0},
        )
    )
    assert (one.id, one.stack_level, one.purpose, one.kind) == (
        7,
        3,
        Purpose.STATION_MAX,
        Kind.WEEKLY,
    )
    assert (one.schedule.start, one.schedule.duration, one.schedule.min_rate) == (T0, 600, 6.0)
    assert one.valid_to == instant("2024-01-31T23:00:00Z") and one.valid_from == -float("inf")
    two = from_201(
        {
            "id": 3,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "transactionId": "tx-1",
            "chargingSchedule": [
                {
                    "id": 1,
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 7400, "numberPhases": 1}
                    ],
                },
                {"id": 2, "chargingRateUnit": "A", "chargingSchedulePeriod": []},
            ],
        }
    )
    assert (two.purpose, two.kind, two.transaction_id) == (Purpose.TX, Kind.RELATIVE, "tx-1")
    assert (two.schedule.unit, two.schedule.periods[0].limit, two.schedule.periods[0].phases) == (
        "W",
        7400.0,
        1,
    )  # the first schedule: the others are for ISO 15118 negotiation
    with pytest.raises(ValueError):
        from_16(p16(1, validFrom="tomorrow"))


def test_the_higher_stack_level_wins_while_its_schedule_runs():
    """3.13.3: stack level 1 from 01:00 for an hour over stack level 0 for the day."""
    low = p16(1, stack=0, periods=((0, 32),), schedule={"duration": 86400})
    high = p16(
        2, stack=1, periods=((0, 10),), start="2024-01-01T01:00:00Z", schedule={"duration": 3600}
    )
    installed = [(1, low), (1, high)]
    assert amps(installed, T0 + 0.5 * HOUR) == 32  # before it: the lower shows through
    assert amps(installed, T0 + 1.5 * HOUR) == 10
    assert amps(installed, T0 + 2.5 * HOUR) == 32  # after its duration
    assert amps(installed, T0 + 25 * HOUR) is None  # past both
    assert next_change([(1, from_16(p)) for _, p in installed], 1, T0) == T0 + HOUR


def test_validity_bounds_a_profile():
    low = p16(1, periods=((0, 32),))
    high = p16(
        2,
        stack=5,
        periods=((0, 8),),
        validFrom="2024-01-01T02:00:00Z",
        validTo="2024-01-01T03:00:00Z",
    )
    installed = [(1, low), (1, high)]
    assert [amps(installed, T0 + h * HOUR) for h in (1, 2, 2.99, 3)] == [32, 8, 8, 32]


def test_a_tx_profile_overrules_the_default_and_the_station_maximum_caps_both():
    """3.13.4's combination: min(ChargePointMax, TxProfile if any, else TxDefaultProfile)."""
    installed = [
        (0, p16(1, "TxDefaultProfile", periods=((0, 25),))),
        (0, p16(2, "ChargePointMaxProfile", periods=((0, 20), (7200, 12)))),
        (1, p16(3, "TxProfile", stack=1, periods=((0, 16),), transactionId=42)),
    ]
    session = Session(42, T0)
    assert amps(installed, T0, session=None) == 20  # no transaction: the default, capped
    assert amps(installed, T0, session=session) == 16  # the TxProfile, under the cap
    assert amps(installed, T0 + 3 * HOUR, session=session) == 12  # the cap lowered
    assert amps(installed, T0, session=Session(43, T0)) == 20  # another transaction's
    assert amps(installed, T0, connector=0) == 20  # the grid connection: the cap alone
    assert amps(installed, T0, connector=2, session=Session(9, T0)) == 20


def test_a_connector_s_default_replaces_connector_0_s():
    installed = [
        (0, p16(1, stack=3, periods=((0, 10),))),
        (1, p16(2, stack=0, periods=((0, 30),), schedule={"duration": 3600})),
    ]
    assert amps(installed, T0 + 0.5 * HOUR) == 30  # its own, whatever connector 0's level
    assert amps(installed, T0 + 0.5 * HOUR, connector=2) == 10
    assert amps(installed, T0 + 1.5 * HOUR) == 10  # past its own: connector 0's again


def test_a_daily_profile_recurs_across_midnight():
    """Every day, 32 A from 22:00 for 8 hours (to 06:00 the next day), 6 A the rest."""
    night = p16(
        1,
        kind="Recurring",
        recurrencyKind="Daily",
        start="2024-01-01T22:00:00Z",
        periods=((0, 32), (28800, 6)),
    )
    assert [amps([(1, night)], T0 + 86400 * 9 + h * HOUR) for h in (1, 5.9, 6, 21.9, 22, 23)] == [
        32,
        32,
        6,
        6,
        32,
        32,
    ]
    change = next_change([(1, from_16(night))], 1, T0 + 86400 * 9 + 12 * HOUR)
    assert change == T0 + 86400 * 9 + 22 * HOUR


def test_a_weekly_profile_recurs_across_the_week_s_end():
    """From Sunday 20:00, 10 A for 12 hours (to Monday 08:00), then none of it for the week."""
    sunday = "2024-01-07T20:00:00Z"
    weekly = p16(
        1,
        kind="Recurring",
        recurrencyKind="Weekly",
        start=sunday,
        periods=((0, 10),),
        schedule={"duration": 12 * 3600},
    )
    week = 7 * 86400
    monday = T0 + 3 * week  # 2024-01-22, three weeks on
    assert amps([(1, weekly)], monday - 1 * HOUR) == 10  # Sunday 23:00
    assert amps([(1, weekly)], monday + 7.9 * HOUR) == 10
    assert amps([(1, weekly)], monday + 8 * HOUR) is None
    assert amps([(1, weekly)], monday + 3 * 86400) is None  # Thursday
    assert (
        next_change([(1, from_16(weekly))], 1, monday + 9 * HOUR) == monday + 6 * 86400 + 20 * HOUR
    )


def test_a_relative_profile_runs_from_the_transaction_s_start():
    relative = p16(1, "TxProfile", kind="Relative", periods=((0, 16), (1800, 8)))
    started = T0 + 5 * HOUR
    session = Session(1, started)
    assert amps([(1, relative)], started + 1799, session=session) == 16
    assert amps([(1, relative)], started + 1800, session=session) == 8
    assert amps([(1, relative)], started, session=None) is None  # a TxProfile needs one
    assert next_change([(1, from_16(relative))], 1, started + 60, session) == started + 1800
    # An Absolute one without startSchedule (1.6 7.13) runs from the start of charging too.
    no_start = p16(2, start=None, periods=((0, 20), (600, 10)))
    assert amps([(1, no_start)], started + 700, session=session) == 10


def test_amperes_and_watts_convert_with_the_phases():
    """16 A on 3 phases is 11,040 W; on 1 phase, 3,680 W. Limits combine on the fewest phases."""
    three = [(1, from_16(p16(1, periods=((0, 16),))))]
    one = [(1, from_16(p16(1, periods=((0, 16, 1),))))]
    assert limit_at(three, 1, T0).value("W") == pytest.approx(11040)
    assert limit_at(one, 1, T0).value("W") == pytest.approx(3680)
    watts = [(1, from_16(p16(1, unit="W", periods=((0, 7360),))))]
    assert limit_at(watts, 1, T0).value("A") == pytest.approx(7360 / 690)
    # 10 A on 3 phases as the station's cap, 16 A on 1 phase for the transaction: 1 phase of 10 A.
    mixed = [
        (0, from_16(p16(1, "ChargePointMaxProfile", periods=((0, 10),)))),
        (1, from_16(p16(2, "TxProfile", periods=((0, 16, 1),)))),
    ]
    limit = limit_at(mixed, 1, T0, Session(1, T0))
    assert (limit.phases, limit.value("A"), limit.value("W")) == (
        1,
        pytest.approx(10),
        pytest.approx(2300),
    )


def test_below_the_min_charging_rate_nothing_is_offered():
    slow = from_16(p16(1, periods=((0, 5), (600, 8)), schedule={"minChargingRate": 6.0}))
    assert limit_at([(1, slow)], 1, T0).offered == 0  # 5 A: below the EV's 6 A
    assert limit_at([(1, slow)], 1, T0 + 600).offered == pytest.approx(8 * 690)


def test_the_composite_lists_each_change_over_the_duration_asked():
    installed = [
        (
            0,
            from_16(
                p16(1, "ChargePointMaxProfile", periods=((0, 20),), start="2024-01-01T00:30:00Z")
            ),
        ),
        (1, from_16(p16(2, periods=((0, 32), (3600, 16)), schedule={"duration": 7200}))),
    ]
    unit, periods = schedule_of(installed, 1, T0, 3 * 3600, "A", maximum=22080)
    assert unit == "A"
    assert periods == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 3},
        {"startPeriod": 1800, "limit": 20.0, "numberPhases": 3},
        {"startPeriod": 3600, "limit": 16.0, "numberPhases": 3},
        {"startPeriod": 7200, "limit": 20.0, "numberPhases": 3},
    ]
    # Shorter than the schedule: only what falls within it, in watts, from 00:10.
    unit, periods = schedule_of(installed, 1, T0 + 600, 1800, "W", maximum=22080)
    assert (unit, periods) == (
        "W",
        [
            {"startPeriod": 0, "limit": 22080.0, "numberPhases": 3},
            {"startPeriod": 1200, "limit": 13800.0, "numberPhases": 3},
        ],
    )
    # Without profiles: the station's own maximum, in A unless asked.
    assert schedule_of([], 1, T0, 60, maximum=22080) == (
        "A",
        [{"startPeriod": 0, "limit": 32.0, "numberPhases": 3}],
    )


# The versions' GetCompositeSchedule, answered by a charge point that is not connected.

CONFIG = ChargePointConfig(connectors=2, authorize_interval=0)


def _transaction(cp, connector, number):
    cp.connectors[connector].transaction = Transaction(number, connector, "T", 11000.0, 0.0)


def test_1_6_answers_the_composite_and_the_limit_the_sessions_follow():
    cp = ChargePoint16("CP-1", "ws://unused", CONFIG, lambda s: None)
    now = time.time()
    today = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(now))
    midnight = instant(today)
    cap = p16(
        1,
        "ChargePointMaxProfile",
        start=today,
        periods=((0, 16),),
        validTo=_at(midnight + 2 * 86400),
    )
    _transaction(cp, 1, 42)
    tx = p16(2, "TxProfile", kind="Relative", periods=((0, 11040), (86400 * 3, 0)), unit="W")

    async def main():  # handlers run in the charge point's loop
        answers = [
            cp._on_set_charging_profile({"connectorId": 0, "csChargingProfiles": cap}),
            cp._on_set_charging_profile({"connectorId": 1, "csChargingProfiles": tx}),
            cp._on_set_charging_profile(
                {"connectorId": 2, "csChargingProfiles": {**tx, "chargingProfileId": 3}}
            ),
        ]
        asked = {"connectorId": 1, "duration": 86400 * 3, "chargingRateUnit": "W"}
        return answers, [
            cp._on_get_composite_schedule(asked),
            cp._on_get_composite_schedule({"connectorId": 0, "duration": 60}),
            cp._on_get_composite_schedule({"connectorId": 3, "duration": 60}),
        ]

    answers, (one, grid, unknown) = asyncio.run(asyncio.wait_for(main(), 10))
    assert [a["status"] for a in answers] == [
        "Accepted",
        "Accepted",
        "Rejected",
    ]  # 2: no transaction
    for answer in (one, grid, unknown):
        OCPP16.schemas.validate("GetCompositeSchedule", answer, response=True)
    assert unknown == {"status": "Rejected"}
    start = instant(one["scheduleStart"])
    assert one["chargingSchedule"]["chargingRateUnit"] == "W"
    # 16 A on 3 phases (11,040 W) until the cap's validTo, then the TxProfile's 11,040 W alone.
    assert one["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 11040.0, "numberPhases": 3}
    ]
    assert grid["chargingSchedule"]["chargingRateUnit"] == "A"
    assert grid["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 16.0
    assert cp._power_limit(1, start) == pytest.approx(11040)
    assert cp._power_limit(2, start) == pytest.approx(11040)  # the cap alone
    assert cp._next_limit_change(2, start) == midnight + 2 * 86400  # the cap's validTo
    cp.charging_profiles.clear()
    assert cp._power_limit(1, start) is None and cp._next_limit_change(1, start) is None


def test_a_relative_profile_counts_from_the_start_of_the_connector_s_session():
    cp = ChargePoint16("CP-1", "ws://unused", CONFIG, lambda s: None)
    now = time.time()
    transaction = Transaction(7, 1, "T", 11000.0, 0.0, started=now - 100)
    cp.connectors[1].transaction = transaction
    # 10 A for the first minute of the session, 16 A after: it is 100 s in.
    tx = p16(1, "TxProfile", kind="Relative", periods=((0, 10), (60, 16)))

    async def main():
        return cp._on_set_charging_profile({"connectorId": 1, "csChargingProfiles": tx})

    assert asyncio.run(asyncio.wait_for(main(), 10))["status"] == "Accepted"
    assert cp._power_limit(1, now) == pytest.approx(16 * 230 * 3)
    assert cp._power_limit(1, now - 50) == pytest.approx(10 * 230 * 3)
    assert cp._next_limit_change(1, now - 50) == pytest.approx(now - 40)


def test_2_0_1_answers_the_composite_as_k08_gives():
    cp = ChargePoint201("CS-1", "ws://unused", CONFIG, lambda s: None)
    now = time.time()
    starts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))

    def body(number, purpose, limit, unit="A", **extra):
        return {
            "id": number,
            "stackLevel": 0,
            "chargingProfilePurpose": purpose,
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": number,
                    "startSchedule": starts,
                    "duration": 7200,
                    "chargingRateUnit": unit,
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": limit, "numberPhases": 1}
                    ],
                }
            ],
            **extra,
        }

    async def main():
        set_ = [
            cp._on_set_charging_profile(
                {"evseId": 0, "chargingProfile": body(1, "ChargingStationMaxProfile", 20)}
            ),
            cp._on_set_charging_profile(
                {"evseId": 1, "chargingProfile": body(2, "TxDefaultProfile", 2300, "W")}
            ),
        ]
        return set_, [
            cp._on_get_composite_schedule({"evseId": 1, "duration": 600, "chargingRateUnit": "A"}),
            cp._on_get_composite_schedule({"evseId": 2, "duration": 600, "chargingRateUnit": "W"}),
            cp._on_get_composite_schedule({"evseId": 0, "duration": 600, "chargingRateUnit": "A"}),
            cp._on_get_composite_schedule({"evseId": 7, "duration": 600, "chargingRateUnit": "A"}),
        ]

    set_, (one, two, grid, unknown) = asyncio.run(asyncio.wait_for(main(), 10))
    assert [a["status"] for a in set_] == ["Accepted", "Accepted"]
    for answer in (one, two, grid, unknown):
        OCPP201.schemas.validate("GetCompositeSchedule", answer, response=True)
    assert [a["status"] for a in (one, two, grid, unknown)] == ["Accepted"] * 3 + ["Rejected"]
    assert unknown["statusInfo"]["reasonCode"] == "UnknownEvse"
    # EVSE 1: its default, 2,300 W on one phase (10 A), under the station's 20 A on one phase.
    assert one["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 10.0, "numberPhases": 1}
    ]
    assert (one["schedule"]["evseId"], one["schedule"]["duration"]) == (1, 600)
    # EVSE 2: no default of its own, the station's 20 A on one phase.
    assert two["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 4600.0, "numberPhases": 1}
    ]
    assert grid["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 20.0, "numberPhases": 1}
    ]
    assert cp._power_limit(1, now) == pytest.approx(2300)
    assert cp._next_limit_change(1, now) == pytest.approx(instant(starts) + 7200)


def _at(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_1_6_a_remote_start_s_profile_is_its_transaction_s_tx_profile():
    """5.11: a TxProfile sent with RemoteStartTransaction limits the transaction it starts, and
    goes when that stops (3.13.2); a profile of another purpose makes the start Rejected."""
    cp = ChargePoint16("CP-1", "ws://unused", CONFIG, lambda s: None)
    cp.state = State.ACCEPTED
    tx = p16(5, "TxProfile", kind="Relative", periods=((0, 10),))

    async def main():
        return [
            cp._on_remote_start_transaction({"connectorId": 1, "idTag": "T", "chargingProfile": p})
            for p in (p16(6), tx)
        ]

    refused, accepted = asyncio.run(asyncio.wait_for(main(), 10))
    assert (refused, accepted) == ({"status": "Rejected"}, {"status": "Accepted"})
    now = time.time()
    assert cp._power_limit(1, now) is None  # no transaction yet: nothing to limit
    _transaction(cp, 1, 42)
    assert cp._power_limit(1, now) == pytest.approx(10 * 690)
    cp._end_locally(1)
    assert cp.charging_profiles[1] == [] and cp._power_limit(1, now) is None


# What a CSMS's frames leave open and the composite must not be broken by.


def _answers(cp, calls):
    async def main():  # handlers run in the charge point's loop
        return [getattr(cp, handler)(payload) for handler, payload in calls]

    return asyncio.run(asyncio.wait_for(main(), 10))


@pytest.mark.parametrize(
    "periods",
    [((60, 16),), ((0, 16), (600, 10), (300, 6)), ((0, 16, 0),), ((0, -1),)],
    ids=["not from 0", "out of order", "no phases", "negative"],
)
def test_1_6_refuses_periods_the_composite_cannot_follow(periods):
    cp = ChargePoint16("CP-1", "ws://unused", CONFIG, lambda s: None)
    profile = p16(1, periods=periods)
    (answer,) = _answers(
        cp, [("_on_set_charging_profile", {"connectorId": 1, "csChargingProfiles": profile})]
    )
    assert answer == {"status": "Rejected"}
    assert cp._power_limit(1, time.time()) is None


def test_2_0_1_refuses_a_start_that_is_no_time_and_periods_out_of_order():
    cp = ChargePoint201("CS-1", "ws://unused", CONFIG, lambda s: None)
    schedule = {"id": 1, "chargingRateUnit": "W", "startSchedule": "tomorrow"}
    schedule["chargingSchedulePeriod"] = [{"startPeriod": 0, "limit": 5000}]
    profile = {
        "id": 1,
        "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [schedule],
    }
    late = {**schedule, "startSchedule": "2024-01-01T00:00:00Z"}
    late["chargingSchedulePeriod"] = [{"startPeriod": 60, "limit": 5000}]
    answers = _answers(
        cp,
        [
            ("_on_set_charging_profile", {"evseId": 1, "chargingProfile": profile}),
            (
                "_on_set_charging_profile",
                {"evseId": 1, "chargingProfile": {**profile, "chargingSchedule": [late]}},
            ),
        ],
    )
    assert [(a["status"], a["statusInfo"]["reasonCode"]) for a in answers] == [
        ("Rejected", "InvalidValue"),
        ("Rejected", "InvalidSchedule"),
    ]
    assert cp._power_limit(1, time.time()) is None


def test_a_composite_asked_for_years_covers_a_week_and_one_of_no_time_a_second():
    config = ChargePointConfig(authorize_interval=0, connector_phases=1)
    cp = ChargePoint16("CP-1", "ws://unused", config, lambda s: None)
    daily = p16(1, kind="Recurring", periods=[(h * 3600, 6 + h % 2) for h in range(24)])
    started = time.monotonic()
    longest, shortest = (
        _answers(
            cp,
            [
                ("_on_set_charging_profile", {"connectorId": 1, "csChargingProfiles": daily}),
                ("_on_get_composite_schedule", {"connectorId": 1, "duration": 2**31 - 1}),
            ],
        )[1],
        _answers(cp, [("_on_get_composite_schedule", {"connectorId": 1, "duration": 0})])[0],
    )
    assert time.monotonic() - started < 5
    for answer in (longest, shortest):
        OCPP16.schemas.validate("GetCompositeSchedule", answer, response=True)
    assert longest["chargingSchedule"]["duration"] == 7 * 86400
    assert len(longest["chargingSchedule"]["chargingSchedulePeriod"]) <= 7 * 24 + 1
    assert shortest["chargingSchedule"]["duration"] == 1
    # Where nothing limits it, the connector's own maximum, on its one phase: 32 A.
    cp.charging_profiles.clear()
    (free,) = _answers(cp, [("_on_get_composite_schedule", {"connectorId": 1, "duration": 60})])
    assert free["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 32.0, "numberPhases": 1}
    ]


def test_the_station_s_cap_is_shared_by_its_sessions_and_regrown_when_one_ends():
    # Two connectors, EVs of 11 to 22 kW on three phases: each could take the whole cap alone.
    config = ChargePointConfig(
        connectors=2, authorize_interval=0, charging_power=22080, single_phase_evs=0
    )
    cp = ChargePoint16("CP-1", "ws://unused", config, lambda s: None)
    cap = p16(1, "ChargePointMaxProfile", periods=((0, 16),), start="2024-01-01T00:00:00Z")
    now = time.time()

    async def main():
        assert cp._on_set_charging_profile({"connectorId": 0, "csChargingProfiles": cap}) == {
            "status": "Accepted"
        }
        alone = cp._power_limit(1, now)
        for connector in (1, 2):
            transaction = cp._plug_in(connector, connector, "T")
            cp.connectors[connector].transaction = transaction
            cp.connectors[connector].status = "Charging"
            cp._begin_session(transaction)
        shared = [cp._power_limit(c, now) for c in (1, 2)]
        drawn = [cp.connectors[c].transaction.power for c in (1, 2)]
        cp._end_locally(2)  # the other session regrows at once
        return alone, shared, drawn, cp.connectors[1].transaction.power

    alone, shared, drawn, regrown = asyncio.run(asyncio.wait_for(main(), 10))
    full = 16 * 230 * 3
    assert alone == pytest.approx(full)
    assert shared == pytest.approx([full / 2, full / 2])
    assert drawn == pytest.approx([full / 2, full / 2])
    assert regrown == pytest.approx(full)
