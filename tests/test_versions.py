"""swarm.station.versions: a fleet's OCPP versions by weight, and each charge point's version."""

from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from swarm.station.config import ChargePointConfig
from swarm.station.versions import VERSIONS, check_versions, parse_versions, version_of

ROOT = Path(__file__).resolve().parent.parent


def serials(workers: int = 4, each: int = 500) -> list[str]:
    """Ids as a run gives them: ``CP-<worker index>-<counter>``."""
    return [f"CP-{worker}-{n:06d}" for worker in range(workers) for n in range(1, each + 1)]


@pytest.mark.parametrize(
    ("spec", "versions"),
    [
        ("1.6", (("1.6", 1),)),
        ("2.0.1", (("2.0.1", 1),)),
        ("1.6,2.0.1", (("1.6", 1), ("2.0.1", 1))),
        (" 2.0.1 , 1.6 ", (("1.6", 1), ("2.0.1", 1))),  # in the order of VERSIONS
        ("1.6=7,2.0.1=3", (("1.6", 7), ("2.0.1", 3))),
        ("1.6 = 7, 2.0.1", (("1.6", 7), ("2.0.1", 1))),
        ("2.0.1=5", (("2.0.1", 5),)),
    ],
)
def test_versions_are_read_from_text(spec, versions):
    assert parse_versions(spec) == versions


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "names no OCPP version"),
        ("  ", "names no OCPP version"),
        ("2.0", r"unknown OCPP version '2.0' \(known: 1.6, 2.0.1\)"),
        ("1.6J", "unknown OCPP version '1.6J'"),
        ("1.6,1.6", "1.6 is named twice"),
        ("1.6=1,1.6=2", "1.6 is named twice"),
        ("1.6,", "expected VERSION or VERSION=WEIGHT, got ''"),
        ("=3", "expected VERSION or VERSION=WEIGHT"),
        ("1.6=0", "weight of 1.6 must be a whole number above 0, got '0'"),
        ("1.6=-1", "above 0, got '-1'"),
        ("1.6=1.5", "above 0, got '1.5'"),
        ("1.6=", "above 0, got ''"),
        ("2.0.1=many", "above 0, got 'many'"),
    ],
)
def test_bad_versions_are_refused_saying_why(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_versions(spec)


def test_a_single_version_takes_the_whole_fleet():
    for version in VERSIONS:
        assert {version_of(cp, [(version, 3)]) for cp in serials()} == {version}


@pytest.mark.parametrize(
    ("versions", "shares"),
    [
        ((("1.6", 1), ("2.0.1", 1)), {"1.6": 0.5, "2.0.1": 0.5}),
        ((("1.6", 7), ("2.0.1", 3)), {"1.6": 0.7, "2.0.1": 0.3}),
        ((("1.6", 1), ("2.0.1", 9)), {"1.6": 0.1, "2.0.1": 0.9}),
    ],
)
def test_shares_follow_the_weights(versions, shares):
    ids = serials()
    counts = collections.Counter(version_of(cp, versions) for cp in ids)
    for version, share in shares.items():
        assert counts[version] / len(ids) == pytest.approx(share, abs=0.03), counts
    # Each worker's own charge points are split so too, not only the fleet's.
    for worker in range(4):
        mine = [cp for cp in ids if cp.startswith(f"CP-{worker}-")]
        share = sum(version_of(cp, versions) == "1.6" for cp in mine) / len(mine)
        assert share == pytest.approx(shares["1.6"], abs=0.06)


def test_the_order_of_the_versions_does_not_matter():
    ids = serials(1, 200)
    forward = [version_of(cp, [("1.6", 7), ("2.0.1", 3)]) for cp in ids]
    assert forward == [version_of(cp, [("2.0.1", 3), ("1.6", 7)]) for cp in ids]


def test_every_process_gives_a_charge_point_the_same_version():
    # Python's hash() of a str differs between processes: the version must not.
    ids = serials(2, 50)
    here = [version_of(cp, [("1.6", 1), ("2.0.1", 1)]) for cp in ids]
    code = (
        "import sys; from swarm.station.versions import version_of;"
        " print(' '.join(version_of(cp, [('1.6', 1), ('2.0.1', 1)]) for cp in sys.argv[1:]))"
    )
    for seed in ("1", "2"):
        there = subprocess.run(
            [sys.executable, "-c", code, *ids],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            cwd=ROOT,
        ).stdout.split()
        assert there == here


@pytest.mark.parametrize(
    ("versions", "message"),
    [
        ((), "at least one OCPP version"),
        ((("1.5", 1),), "unknown OCPP version '1.5'"),
        ((("1.6", 1), ("1.6", 2)), "1.6 is named twice"),
        ((("2.0.1", 0),), "weight of 2.0.1 must be a whole number above 0"),
        ((("2.0.1", 1.5),), "weight of 2.0.1"),
        ((("2.0.1", True),), "weight of 2.0.1"),
    ],
)
def test_the_config_refuses_bad_versions(versions, message):
    with pytest.raises(ValueError, match=message):
        check_versions(versions)
    with pytest.raises(ValueError, match=message):
        ChargePointConfig(versions=versions)
    with pytest.raises(ValueError, match=message):
        version_of("CP-0-000001", versions)


def test_the_config_runs_1_6_unless_told():
    assert ChargePointConfig().versions == (("1.6", 1),)
    assert ChargePointConfig(versions=(("1.6", 7), ("2.0.1", 3))).versions[1] == ("2.0.1", 3)
