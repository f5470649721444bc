"""The EV of a session: its charging curve, the energy it draws (the integral of its power), the
connector's and the charging limit's caps, and a session held and released by a limit, in 1.6
and 2.0.1 stations whose ``_power_limit`` is a stub."""

import argparse
import asyncio
import math
import random
import time
from dataclasses import replace
from typing import ClassVar

import pytest

from swarm.engine import Engine
from swarm.locust.options import add_arguments, config_from_options
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.report.fleet import FleetCounters, FleetStatus
from swarm.station import ev
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Status
from swarm.station.ev import EV
from tests.scripted import in_thread, recording_csms, run, scripted_csms, until
from tests.test_engine import wait_until
from tests.test_station201 import Csms201


def an_ev(**changes):
    fields = dict(
        capacity_wh=50_000.0,
        soc=0.5,
        target=0.95,
        rated_w=11_000.0,
        knee=0.8,
        max_w=11_000.0,
        min_w=4140.0,
    )
    return EV(**{**fields, **changes})


def integrated(car, cap, seconds, steps=200_000):
    """Watt-hours drawn over ``seconds`` and the state of charge reached, integrating the power
    numerically (midpoint steps), not by the model's closed form."""
    soc, dt = car.soc, seconds / steps
    for _ in range(steps):
        half = soc + min(car.curve(soc), cap) * dt / 3600 / car.capacity_wh / 2
        soc += min(car.curve(half), cap) * dt / 3600 / car.capacity_wh
        if soc >= car.target:  # the EV stops there
            soc = car.target
            break
    return (soc - car.soc) * car.capacity_wh, soc


def test_the_curve_is_flat_to_the_knee_then_tapers_to_zero_at_full():
    car = an_ev()
    assert [car.curve(soc) for soc in (0.1, 0.5, 0.8)] == [11_000.0] * 3
    assert car.curve(0.9) == pytest.approx(5500.0)
    assert car.curve(0.95) == pytest.approx(2750.0)
    assert car.curve(1.0) == 0.0
    # Drawn: the curve under a cap; nothing at the target.
    assert car.power(7000.0) == 7000.0
    assert replace(car, soc=0.9).power(7000.0) == pytest.approx(5500.0)
    assert replace(car, soc=0.95).power(7000.0) == 0.0


@pytest.mark.parametrize("cap", [11_000.0, 7000.0, 2000.0])
def test_the_energy_drawn_is_the_integral_of_the_power(cap):
    hours = 4.0  # from 50 % past the knee, at 11 kW into the taper (and to the target)
    car = an_ev()
    expected, soc = integrated(car, cap, hours * 3600)
    assert car.charge(cap, hours * 3600) == pytest.approx(expected, rel=1e-6)
    assert car.soc == pytest.approx(soc, abs=1e-6)
    # In steps or at once, the same: the closed form does not depend on when it is read.
    stepped = an_ev()
    total = sum(stepped.charge(cap, seconds) for seconds in [7.0, 0.001, 3600.0] * 5)
    once = an_ev()
    assert total == pytest.approx(once.charge(cap, 5 * 3607.001), rel=1e-12)


def test_the_target_is_reached_when_predicted_and_no_energy_follows():
    car = an_ev(knee=0.6, target=0.9)
    seconds = car.seconds_to(car.target, 11_000.0)
    # Flat from 50 to 60 %, then tapering: 1 - soc falls by e every tau hours.
    tau = 50_000 * 0.4 / 11_000
    assert seconds == pytest.approx(3600 * (0.1 * 50_000 / 11_000 + tau * math.log(0.4 / 0.1)))
    assert car.charge(11_000.0, seconds * (1 - 1e-9)) == pytest.approx(20_000.0)
    assert not car.full
    car.charge(11_000.0, seconds * 2e-9)
    assert car.full and car.soc == 0.9
    assert car.charge(11_000.0, 3600.0) == 0.0
    assert car.power(11_000.0) == 0.0
    # A full battery is never reached: the taper ends at zero power there.
    assert an_ev(target=1.0).seconds_to(1.0, 11_000.0) == math.inf
    assert an_ev().seconds_to(0.9, 0.0) == math.inf


def test_the_connector_caps_what_an_ev_draws():
    rng = random.Random(5)
    three = ChargePointConfig(charging_power=22_000, single_phase_evs=0.0)
    car = ev.arriving(replace(three, connector_current=16.0), rng)
    assert car.max_w == pytest.approx(230 * 3 * 16)  # 16 A on three phases: 11 kW
    assert car.min_w == pytest.approx(230 * 3 * 6)
    car = ev.arriving(replace(three, connector_phases=1), rng)
    assert car.max_w == pytest.approx(car.rated_w / 3)  # one of the three phases it has
    assert car.min_w == pytest.approx(230 * 6)
    one = ev.arriving(replace(three, single_phase_evs=1.0), rng)
    assert one.max_w == pytest.approx(230 * 32)  # its 48 A or more capped at 32 A
    assert 11_000 <= one.rated_w <= 22_000
    assert one.power(one.max_w) == one.max_w < one.rated_w  # the connector caps the curve
    # The distributions' ranges.
    config = ChargePointConfig(battery_kwh=(40, 60), arrival_soc=(20, 30), target_soc=(85, 90))
    cars = [ev.arriving(config, rng) for _ in range(200)]
    assert all(40_000 <= c.capacity_wh <= 60_000 for c in cars)
    assert all(0.2 <= c.soc <= 0.3 and 0.85 <= c.target <= 0.9 for c in cars)
    assert all(c.knee == 0.8 and 5500 <= c.rated_w <= 11_000 for c in cars)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"battery_kwh": (0, 10)}, "battery_kwh"),
        ({"battery_kwh": (60, 40)}, "battery_kwh"),
        ({"arrival_soc": (10, 100)}, "arrival_soc"),
        ({"arrival_soc": (-1, 50)}, "arrival_soc"),
        ({"target_soc": (90, 80)}, "target_soc"),
        ({"target_soc": (0, 0)}, "target_soc"),
        ({"target_soc": (80, 101)}, "target_soc"),
        ({"taper_soc": 101}, "taper_soc"),
        ({"single_phase_evs": 1.5}, "single_phase_evs"),
        ({"connector_current": 5}, "connector_current"),
        ({"connector_current": math.inf}, "connector_current"),
        ({"connector_phases": 2}, "connector_phases"),
    ],
)
def test_config_refuses_evs_and_connectors_that_cannot_be(changes, message):
    with pytest.raises(ValueError, match=message):
        ChargePointConfig(**changes)


# Sessions in stations, with a stub charging limit.

SESSION = ChargePointConfig(
    authorize_interval=0,
    connectors=1,
    session_interval=0.01,
    session_duration=60,
    meter_interval=0.05,
    single_phase_evs=0.0,
)

FAST = replace(
    SESSION,
    battery_kwh=(0.1, 0.1),  # 100 Wh, at 180 to 360 kW: from 50 to 70 % within half a second
    arrival_soc=(50, 50),
    target_soc=(70, 70),
    taper_soc=60,
    charging_power=360_000,
    connector_current=1000,
)


class Limits:
    """A charging limit that steps: ``steps`` is ``[(from wall-clock time, watts or None)]``."""

    steps: ClassVar[list] = []

    def _power_limit(self, connector, now):
        return next((w for at, w in reversed(self.steps) if at <= now), None)

    def _next_limit_change(self, connector, now):
        return next((at for at, _ in self.steps if at > now), None)


class Limited16(Limits, ChargePoint16):
    pass


class Limited201(Limits, ChargePoint201):
    pass


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def statuses(script):
    return [p["status"] for _, _, a, p in script.calls() if a == "StatusNotification"]


def test_an_ev_charges_along_its_curve_to_its_target_and_stops():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = Limited16("CP-1", url + "/CP-1", FAST, lambda s: None, rng=random.Random(2))
            task = asyncio.create_task(cp.run())
            await until(lambda: "SuspendedEV" in statuses(script), timeout=5)
            energy = cp.connectors[1].energy_wh
            await asyncio.sleep(0.15)  # meter values of a full EV
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script, energy, cp.connectors[1].energy_wh

    script, energy, later = run(main())
    assert energy == pytest.approx(100 * (0.7 - 0.5), abs=1e-9)  # capacity x rise in SoC
    assert later == energy
    assert statuses(script)[-2:] == ["Charging", "SuspendedEV"]
    powers = []
    for _, _, _, payload in script.calls("MeterValues"):
        sampled = {v["measurand"]: v["value"] for v in payload["meterValue"][0]["sampledValue"]}
        powers.append(int(sampled["Power.Active.Import"]))
    assert powers[-1] == 0
    assert powers == sorted(powers, reverse=True)  # flat, then tapering, then nothing


def test_a_limit_lowered_and_lifted_mid_session():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = Limited16("CP-1", url + "/CP-1", SESSION, lambda s: None, rng=random.Random(4))
            cp.steps = []
            task = asyncio.create_task(cp.run())
            record = cp.connectors[1]
            await until(lambda: record.status is Status.CHARGING and cp._read(1).power_w)
            rated = record.transaction.ev.rated_w
            seen = []
            for watts, status in [
                (0, Status.SUSPENDED_EVSE),
                (3000, Status.SUSPENDED_EVSE),  # under the 6 A on 3 phases it needs
                (5000, Status.CHARGING),
                (None, Status.CHARGING),
            ]:
                cp.steps = [(0.0, watts)]
                cp._limit_changed(1)
                assert record.status is status
                # From when the change brought the meter up to date to when the reading did:
                # the loop's clock read around them would skew the rate on a busy machine.
                before, start = record.energy_wh, record.transaction.metered_at
                await asyncio.sleep(0.1)
                reading = cp._read(1)
                hours = (record.transaction.metered_at - start) / 3600
                seen.append((reading.power_w, (record.energy_wh - before) / hours))
            await until(lambda: statuses(script)[-1] == "Charging")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return script, seen, rated

    script, seen, rated = run(main())
    assert statuses(script)[-3:] == ["Charging", "SuspendedEVSE", "Charging"]
    (zero, _), (low, _), (capped, capped_rate), (lifted, lifted_rate) = seen
    assert (zero, low) == (0, 0)
    assert seen[0][1] == seen[1][1] == 0.0  # nothing drawn while held
    assert capped == 5000 and capped_rate == pytest.approx(5000, rel=1e-3)
    assert lifted == round(rated) and lifted_rate == pytest.approx(rated, rel=1e-3)


def test_a_session_held_until_the_limit_changes_resumes_by_itself_2_0_1():
    csms = Csms201()
    config = replace(FAST, meter_interval=0.2)

    async def main():
        async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, _):
            cp = Limited201("CS-1", url + "/CS-1", config, lambda s: None, rng=random.Random(1))
            cp.steps = [(0.0, 0.0)]  # held at 0 W from the start
            task = asyncio.create_task(cp.run())
            await until(lambda: "SuspendedEVSE" in states(), timeout=10)
            # Lifted half a second from now: told once, the station resumes on its own timer.
            lifted = time.time() + 0.5
            cp.steps = [(0.0, 0.0), (lifted, None)]
            cp._limit_changed(1)
            await until(lambda: states().count("Charging") == 2, timeout=5)
            resumed = time.time()
            await until(lambda: "SuspendedEV" in states(), timeout=5)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return cp, resumed - lifted

    def states():
        events = csms.actions("TransactionEvent")
        return [e["transactionInfo"].get("chargingState") for e in events]

    cp, late = run(main())
    assert [s for s in states() if s] == ["Charging", "SuspendedEVSE", "Charging", "SuspendedEV"]
    assert 0 <= late < 0.2  # at the limit's change, on the station's own timer
    assert cp.connectors[1].energy_wh == pytest.approx(20.0, abs=1e-9)


def test_options_make_the_evs_and_connectors_of_the_config():
    config = config_from_options(parse())
    assert (config.battery_kwh, config.arrival_soc, config.target_soc) == (
        (40, 100),
        (10, 60),
        (80, 100),
    )
    assert (config.taper_soc, config.single_phase_evs) == (80, 0.2)
    assert (config.connector_current, config.connector_phases) == (32, 3)
    options = parse("--battery-kwh", "60", "--target-soc", "90-95", "--connector-phases", "1")
    options.arrival_soc, options.connector_current = "5 - 20", "16"  # as the web UI sends them
    config = config_from_options(options)
    assert (config.battery_kwh, config.arrival_soc, config.target_soc) == (
        (60, 60),
        (5, 20),
        (90, 95),
    )
    assert (config.connector_current, config.connector_phases) == (16, 1)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("battery_kwh", "40..100", "--battery-kwh: '40..100' is not a number or a range"),
        ("arrival_soc", "50-20", "--arrival-soc must be 0 <= lowest <= highest"),
        ("target_soc", "80-120", "--target-soc must be"),
        ("taper_soc", "soon", "--taper-soc: could not convert"),
        ("connector_current", "4", "--connector-current must be 6 A"),
        ("connector_phases", "2", "--connector-phases must be 1 or 3"),
    ],
)
def test_bad_ev_options_are_refused_naming_them(name, value, message):
    options = parse()
    setattr(options, name, value)
    with pytest.raises(ValueError, match=message):
        config_from_options(options)


def test_the_census_sums_the_power_drawn_and_the_master_sums_the_workers():
    config = replace(SESSION, connector_current=16.0, connectors=2, charging_power=24_000)
    engine = Engine()
    with in_thread(lambda: scripted_csms(recording_csms())) as ((url, _), _loop):
        engine.start()
        for n in range(3):
            engine.start_charge_point(f"CP-{n}", f"{url}/CP-{n}", config)
        # Six EVs of 12 to 24 kW on three phases, each under 16 A: 11,040 W.
        census = wait_until(lambda: engine.census()["power_w"] == 6 * 11_040 and engine.census())
        assert engine.shutdown(5.0)
    assert census and census["charging"] == 3
    counters = FleetCounters()
    one, two = counters.status(census), counters.status({"power_w": 500})
    assert FleetStatus.total([FleetStatus.from_dict(one.as_dict()), two]).power_w == 66_740
