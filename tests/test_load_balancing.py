"""The control API's charging profiles (POST and DELETE /charging-profiles, swarm.csms.charging)
against a real embedded CSMS over real sockets: 1.6 charge points and 2.0.1 stations of the
swarm, each sent the profile in its version's words, and the limit it then sets on them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from swarm.csms import Csms, CsmsConfig, CsmsProcess, control
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.report import plots
from swarm.station.state import State
from tests.scripted import run, until
from tests.test_commands import CONFIG as CONFIG16
from tests.test_control import http
from tests.test_csms_workers import booted
from tests.test_csms_workers import start as start_workers
from tests.test_station201 import CONFIG as CONFIG201

CAP = {"limit": 3680}  # watts, on the station
Fleet = tuple[str, list[ChargePoint16], list[ChargePoint201]]


@contextlib.asynccontextmanager
async def served(each: int = 1) -> AsyncIterator[Fleet]:
    """A CSMS's control API, and ``each`` booted 1.6 charge points and 2.0.1 stations."""
    async with Csms(CsmsConfig(port=0)) as csms:
        server = await control.serve_control(csms, "127.0.0.1", 0)
        cps16 = [
            ChargePoint16(f"CP-{i}", f"{csms.url}/CP-{i}", CONFIG16, [].append) for i in range(each)
        ]
        cps201 = [
            ChargePoint201(f"CS-{i}", f"{csms.url}/CS-{i}", CONFIG201, [].append)
            for i in range(each)
        ]
        everyone = [*cps16, *cps201]
        tasks = [asyncio.create_task(cp.run()) for cp in everyone]
        try:
            await until(lambda: all(cp.state is State.ACCEPTED for cp in everyone))
            yield control.url(server), cps16, cps201
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.close()


async def profiles(method: str, url: str, body: Any = None) -> dict[str, Any]:
    code, answer, _ = await http(method, f"{url}/charging-profiles", body)
    assert code == 200, answer
    return answer


def limit(cp: ChargePoint16 | ChargePoint201) -> float | None:
    """Watts the charge point's profiles allow on its connector 1 now."""
    return cp._power_limit(1, time.time())


def test_a_station_cap_reaches_both_versions_in_their_words_and_is_cleared() -> None:
    async def body() -> None:
        async with served() as (url, (cp16,), (cp201,)):
            answer = await profiles("POST", url, {"profile": CAP})
            assert answer["targeted"] == answer["accepted"] == 2
            assert answer["1.6"]["action"] == "SetChargingProfile"
            assert answer["2.0.1"]["statuses"] == {"Accepted": 1}
            (sent16,) = cp16.charging_profiles[0]
            assert sent16["chargingProfilePurpose"] == "ChargePointMaxProfile"
            assert sent16["chargingProfileId"] == 100
            [(evse, sent201)] = cp201.charging_profiles
            assert (evse, sent201["chargingProfilePurpose"]) == (0, "ChargingStationMaxProfile")
            assert sent201["chargingSchedule"][0]["chargingRateUnit"] == "W"
            assert limit(cp16) == limit(cp201) == 3680

            answer = await profiles("DELETE", url)
            assert answer["accepted"] == 2
            assert answer["1.6"]["action"] == answer["2.0.1"]["action"] == "ClearChargingProfile"
            assert limit(cp16) is limit(cp201) is None
            answer = await profiles("DELETE", url, {"purpose": "ChargePointMaxProfile"})
            assert (answer["accepted"], answer["2.0.1"]["statuses"]) == (0, {"Unknown": 1})

    run(body())


def test_a_tx_default_profile_in_amperes_with_periods() -> None:
    async def body() -> None:
        async with served() as (url, (cp16,), (cp201,)):
            profile = {
                "purpose": "TxDefaultProfile",
                "unit": "A",
                "stack_level": 2,
                "periods": [{"start": 0, "limit": 16, "phases": 1}, {"start": 3600, "limit": 8}],
            }
            answer = await profiles("POST", url, {"profile": profile, "connector": 1})
            assert answer["accepted"] == 2
            assert cp16.charging_profiles[1][0]["chargingProfileId"] == 202
            assert limit(cp16) == limit(cp201) == 16 * 230 * 1
            answer = await profiles("DELETE", url, {"id": 202})
            assert answer["accepted"] == 2
            assert limit(cp16) is limit(cp201) is None

    run(body())


def test_a_cap_with_a_duration_is_lifted_by_the_stations_themselves() -> None:
    async def body() -> None:
        async with served() as (url, (cp16,), (cp201,)):
            answer = await profiles("POST", url, {"profile": {**CAP, "duration": 2}})
            assert answer["accepted"] == 2
            assert cp16.charging_profiles[0][0]["chargingSchedule"]["duration"] == 2
            assert limit(cp16) == limit(cp201) == 3680
            await until(lambda: limit(cp16) is limit(cp201) is None, timeout=4)

    run(body())


def test_a_share_of_each_version_and_named_charge_points() -> None:
    async def body() -> None:
        async with served(each=2) as (url, cps16, cps201):
            answer = await profiles("POST", url, {"profile": CAP, "share": 0.5})
            assert (answer["1.6"]["targeted"], answer["2.0.1"]["targeted"]) == (1, 1)
            assert answer["accepted"] == 2
            assert sorted(limit(cp) is None for cp in cps16) == [False, True]
            assert sorted(limit(cp) is None for cp in cps201) == [False, True]

            named = {"profile": {"limit": 7000}, "charge_points": ["CS-1", "CP-9"]}
            answer = await profiles("POST", url, named)
            assert (answer["targeted"], answer["not_connected"]) == (1, 1)
            assert limit(cps201[1]) == 7000

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({}, "profile must be given"),
        ({"profile": 7400}, "profile must be an object"),
        ({"profile": {}}, "a limit or periods"),
        ({"profile": {"limit": 1, "periods": []}}, "a limit or periods"),
        ({"profile": {"limit": -1}}, "limit must be 0 or more"),
        ({"profile": {"limit": "7kW"}}, "limit must be a number"),
        ({"profile": {"limit": 1, "unit": "kW"}}, 'unit must be "W" or "A"'),
        ({"profile": {"limit": 1, "purpose": "TxProfile"}}, "purpose must be one of"),
        ({"profile": {"limit": 1, "purpose": ["x"]}}, "purpose must be one of"),
        ({"profile": CAP, "connector": 1}, "it is set on connector 0"),
        ({"profile": CAP, "connector": -1}, "connector must be a whole number"),
        ({"profile": {"limit": 1, "stack_level": 11}}, "stack_level must be a whole number"),
        ({"profile": {"limit": 1, "phases": 4}}, "phases must be a whole number"),
        ({"profile": {"periods": [{"start": 5, "limit": 1}]}}, "start at 0"),
        ({"profile": {"periods": [{"start": 0, "limit": 1}] * 2}}, "increasing order"),
        ({"profile": {"periods": [1]}}, "a period must be an object"),
        ({"profile": {"periods": [{"start": 0, "limit": 1, "x": 1}]}}, "a period takes"),
        ({"profile": {"limit": 1, "kind": "Relative"}}, "profile takes"),
        ({"profile": {"limit": 1, "duration": 0}}, "duration must be a whole number"),
        ({"profile": {"limit": 0.05}}, "invalid SetChargingProfile payload"),
        ({"profile": CAP, "share": 0}, "share"),
        ({"profile": CAP, "rate": "fast"}, "rate must be a number"),
        ({"profile": CAP, "share": 0.5, "charge_points": ["CP-0"]}, "not both"),
        ({"profile": CAP, "purpose": "TxDefaultProfile"}, "unknown keys: purpose"),
    ],
)
def test_bad_bodies_get_400(request_body: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (url, (cp16,), (cp201,)):
            code, answer, _ = await http("POST", f"{url}/charging-profiles", request_body)
            assert code == 400
            assert error in answer["error"]
            assert not cp16.charging_profiles.get(0) and not cp201.charging_profiles

    run(body())


@pytest.mark.parametrize(
    ("request_body", "error"),
    [
        ({"profile": CAP}, "unknown keys: profile"),
        ({"id": 0}, "id must be a whole number"),
        ({"id": 100, "stack_level": 0}, "give id alone"),
        ({"purpose": "Max"}, "purpose must be one of"),
        ({"connector": "1"}, "connector must be a whole number"),
    ],
)
def test_bad_clears_get_400(request_body: Any, error: str) -> None:
    async def body() -> None:
        async with served() as (url, _, _):
            code, answer, _ = await http("DELETE", f"{url}/charging-profiles", request_body)
            assert (code, error in answer["error"]) == (400, True), answer

    run(body())


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="SO_REUSEPORT")
def test_the_front_of_several_workers_pushes_and_clears_at_all() -> None:
    ids = [f"CP-{i:02d}" for i in range(20)]

    async def body(front: CsmsProcess) -> None:
        async with booted(front.url, ids) as fakes:
            answer = await profiles("POST", front.control_url, {"profile": CAP, "rate": 100})
            assert (answer["targeted"], answer["accepted"]) == (20, 20)
            assert answer["1.6"]["statuses"] == {"Accepted": 20}
            assert all(fake.calls[0][2] == "SetChargingProfile" for fake in fakes)
            assert fakes[0].calls[0][3]["csChargingProfiles"]["chargingSchedule"][
                "chargingSchedulePeriod"
            ] == [{"startPeriod": 0, "limit": 3680}]
            answer = await profiles("DELETE", front.control_url)
            assert answer["accepted"] == 20
            assert all(fake.calls[1][2:] == ["ClearChargingProfile", {}] for fake in fakes)
            code, answer, _ = await http("POST", f"{front.control_url}/charging-profiles", {})
            assert (code, answer) == (400, {"error": 'profile must be given, e.g. {"limit": 7400}'})

    with start_workers() as front:
        run(body(front), timeout=60)


# The picture: fleet.png's power panel, and the caps a scenario logged.


def test_fleet_png_draws_the_power_and_the_caps_set(tmp_path: Path) -> None:
    header = "timestamp,users,connecting,booting,pending,rejected,accepted,boot failed,offline"
    rows = [
        f"{100 + t}.0,10,0,0,0,0,10,0,0,10,{w}" for t, w in enumerate([0, 80e3, 90e3, 20e3, 85e3])
    ]
    (tmp_path / plots.FLEET_CSV).write_text("\n".join([f"{header},charging,power_w", *rows]))
    # Capped at 102 s, lifted at 103.5 s; a malformed row, and a cap after the run's end.
    caps = ["timestamp,watts,stations", "102.0,20000,10", "oops,1,1", "103.5,,0", "200.0,5,1"]
    (tmp_path / plots.CAPS_CSV).write_text("\n".join(caps))
    read = plots.read_caps(tmp_path / plots.CAPS_CSV)
    assert read["t"] == [102.0, 103.5, 200.0]
    assert read["watts"][0] == 20000 and read["watts"][1] != read["watts"][1]  # NaN: lifted
    fleet = plots.read_fleet(tmp_path / plots.FLEET_CSV)
    assert fleet["power_w"] == [0, 80e3, 90e3, 20e3, 85e3]
    figure = plots.draw_fleet(fleet, 100.0, "test", caps=read)
    power = figure.axes[1]
    drawn, cap = (line.get_ydata() for line in power.get_lines())
    assert list(drawn) == [0, 80, 90, 20, 85]  # kW
    assert list(cap[:1]) == [20] and len(cap) == 3  # the cap after the end is left out
    assert plots.render(tmp_path)[1].exists()
