"""swarm.csms: the embedded CSMS's own calls to charge points, one at a time and in campaigns."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from swarm.csms import Csms, CsmsConfig, NotConnectedError
from swarm.protocol import ocppj
from tests.fleet import fleet, never, refuse, status
from tests.scripted import run
from tests.test_csms import TIMEOUT, eventually

# The CSMS's own calls.

RESET = {"type": "Soft"}


def test_csms_call_returns_the_charge_points_answer() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            answer = await csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT)
            assert isinstance(answer, ocppj.CallResult)
            assert answer.payload == {"status": "Accepted"}
            assert cp.calls == [[ocppj.CALL, answer.unique_id, "Reset", RESET]]
            assert (csms.stats["sent.Reset"], csms.stats["answered.Reset"]) == (1, 1)
            assert csms.stats["received.callresult"] == 1

    run(body())


def test_csms_call_returns_a_callerror() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"], refuse):
            answer = await csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT)
            assert isinstance(answer, ocppj.CallError)
            assert (answer.code, answer.description) == (ocppj.NOT_SUPPORTED, "not here")
            assert csms.stats["callerror.ClearCache"] == 1
            assert csms.stats["answered.ClearCache"] == 0

    run(body())


def test_csms_call_times_out_and_a_late_answer_is_not_taken_for_the_next() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            cp.reply = status("Late", delay=0.4)
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                await csms.call("CP-1", "Reset", RESET, timeout=0.2)
            assert time.monotonic() - started < 0.35
            assert csms.stats["timeout.Reset"] == 1
            # The first answer ("Late") arrives while the second call waits for its own.
            cp.reply = status("OnTime", delay=0.4)
            answer = await csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT)
            assert answer.payload == {"status": "OnTime"}
            assert csms.stats["received.callresult"] == 2
            assert csms.stats["answered.Reset"] == 1

    run(body())


def test_csms_call_to_a_charge_point_not_connected_raises() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]):
            with pytest.raises(NotConnectedError, match="CP-2"):
                await csms.call("CP-2", "Reset", RESET)
            assert csms.stats["disconnected.Reset"] == 1
            assert csms.stats["sent.Reset"] == 0

    run(body())


@pytest.mark.parametrize(
    ("action", "payload", "timeout", "match"),
    [
        ("Reset", {"type": "Sideways"}, 1.0, r"invalid Reset payload: type: not one of Hard, Soft"),
        ("Reset", {}, 1.0, "invalid Reset payload: .*'type' is a required property"),
        ("Reset", {"type": "Soft", "extra": 1}, 1.0, "invalid Reset payload"),
        ("Reset", ["Soft"], 1.0, "must be an object"),
        ("Heartbeat", {}, 1.0, "'Heartbeat' is not an OCPP 1.6 call a CSMS sends"),
        ("Frobnicate", {}, 1.0, "'Frobnicate' is not"),
        ("Reset", RESET, 0, "timeout must be positive"),
        ("Reset", RESET, float("inf"), "timeout must be positive and finite"),
    ],
)
def test_csms_call_refuses_a_bad_call_before_sending_anything(
    action: str, payload: Any, timeout: float, match: str
) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            with pytest.raises(ValueError, match=match):
                await csms.call("CP-1", action, payload, timeout=timeout)
            await csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT)
            assert [frame[2] for frame in cp.calls] == ["ClearCache"]
            counted = {key for key in csms.stats if "." in key and "connections" not in key}
            assert counted == {"sent.ClearCache", "answered.ClearCache", "received.callresult"}

    run(body())


def test_one_csms_call_in_flight_per_charge_point() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            cp.reply = status("Accepted", delay=0.2)
            first, second = await asyncio.gather(
                csms.call("CP-1", "Reset", RESET, timeout=TIMEOUT),
                csms.call("CP-1", "ClearCache", {}, timeout=TIMEOUT),
            )
            events = [(kind, uid) for kind, uid, _ in cp.events]
            a, b = first.unique_id, second.unique_id
            assert a != b
            assert events == [("call", a), ("answer", a), ("call", b), ("answer", b)]
            assert csms.stats["sent.Reset"] == csms.stats["sent.ClearCache"] == 1

    run(body())


def test_calls_to_different_charge_points_run_concurrently() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(5)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids, status("Ok", 0.3)):
            started = time.monotonic()
            answers = await asyncio.gather(*(csms.call(i, "ClearCache", {}) for i in ids))
            assert time.monotonic() - started < 1.0
            assert [a.payload for a in answers] == [{"status": "Ok"}] * 5

    run(body())


def test_a_closing_connection_fails_the_pending_call_at_once() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"], never) as [cp]:
            pending = asyncio.create_task(csms.call("CP-1", "Reset", RESET, timeout=30))
            await eventually(lambda: bool(cp.calls))
            started = time.monotonic()
            await cp.ws.close()
            with pytest.raises(NotConnectedError, match="closed its connection"):
                await pending
            assert time.monotonic() - started < 1.0
            assert csms.stats["disconnected.Reset"] == 1
            with pytest.raises(NotConnectedError):
                await csms.call("CP-1", "Reset", RESET)

    run(body())


def test_campaign_targets_a_random_share_of_the_connected_charge_points() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            result = await csms.campaign("Reset", RESET, share=0.5, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (5, 5)
            assert result.statuses == {"Accepted": 5}
            assert sum(len(fake.calls) for fake in fakes) == 5
            assert all(len(fake.calls) <= 1 for fake in fakes)
            # At least one when any is connected.
            result = await csms.campaign("Reset", RESET, share=0.01, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (1, 1)
            result = await csms.campaign("Reset", RESET, timeout=TIMEOUT)
            assert (result.targeted, result.answered) == (10, 10)
            assert csms.stats["sent.Reset"] == 16

    run(body())


def test_campaign_counts_every_kind_of_outcome() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            for fake in fakes[6:8]:
                fake.reply = status("Rejected")
            fakes[8].reply = refuse
            fakes[9].reply = never
            started = time.monotonic()
            result = await csms.campaign(
                "ChangeAvailability",
                {"connectorId": 0, "type": "Inoperative"},
                charge_point_ids=[*ids, "CP-gone", "CP-0"],  # a duplicate is called once
                timeout=0.5,
            )
            assert 0.5 <= time.monotonic() - started < 1.5
            assert result.as_dict() == {
                "action": "ChangeAvailability",
                "targeted": 11,
                "answered": 8,
                "callerrors": 1,
                "timed_out": 1,
                "disconnected": 1,
                "statuses": {"Accepted": 6, "Rejected": 2},
                "errors": {"NotSupported": 1},
                "seconds": pytest.approx(0.5, abs=0.3),
            }
            counts = {
                outcome: csms.stats[f"{outcome}.ChangeAvailability"]
                for outcome in ("sent", "answered", "callerror", "timeout", "disconnected")
            }
            assert counts == {
                "sent": 10,
                "answered": 8,
                "callerror": 1,
                "timeout": 1,
                "disconnected": 1,
            }

    run(body())


def test_campaign_at_a_rate_spreads_its_calls_evenly() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(10)]
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ids) as fakes:
            started = time.monotonic()
            result = await csms.campaign("ClearCache", {}, rate=20, timeout=TIMEOUT)
            elapsed = time.monotonic() - started
            assert 0.45 <= elapsed <= 1.5
            assert (result.targeted, result.answered) == (10, 10)
            arrivals = sorted(fake.events[0][2] for fake in fakes)
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            assert min(gaps) > 0.02, gaps
            assert 0.4 <= arrivals[-1] - arrivals[0] <= 1.0

    run(body())


def test_campaign_ends_when_the_csms_stops() -> None:
    async def body() -> None:
        ids = [f"CP-{i}" for i in range(5)]
        csms = Csms(CsmsConfig(port=0))
        await csms.start()
        try:
            async with fleet(csms.url, ids) as fakes:
                campaign = asyncio.create_task(csms.campaign("ClearCache", {}, rate=1))
                await eventually(lambda: any(fake.calls for fake in fakes))
                await csms.stop()
                result = await asyncio.wait_for(campaign, 1.0)
                assert result.targeted == 5
                assert result.answered + result.disconnected == 5
                assert result.disconnected >= 3
        finally:
            await csms.stop()

    run(body())


def test_campaign_without_charge_points_targets_none() -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms:
            result = await csms.campaign("Reset", RESET)
            assert result.as_dict()["targeted"] == 0
            result = await csms.campaign("Reset", RESET, charge_point_ids=["CP-1"], rate=1)
            assert (result.targeted, result.disconnected) == (1, 1)

    run(body())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"share": 0}, "share must be a number in"),
        ({"share": 1.5}, "share must be a number in"),
        ({"share": float("nan")}, "share must be a number in"),
        ({"share": True}, "share must be a number in"),
        ({"rate": 0}, "rate must be positive"),
        ({"rate": -5}, "rate must be positive"),
        ({"timeout": "30"}, "timeout must be a number"),
        ({"share": 0.5, "charge_point_ids": ["CP-1"]}, "not both"),
        ({"charge_point_ids": "CP-1"}, "a list of ids"),
    ],
)
def test_campaign_refuses_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    async def body() -> None:
        async with Csms(CsmsConfig(port=0)) as csms, fleet(csms.url, ["CP-1"]) as [cp]:
            with pytest.raises(ValueError, match=match):
                await csms.campaign("Reset", RESET, **kwargs)
            with pytest.raises(ValueError, match="invalid Reset payload"):
                await csms.campaign("Reset", {"type": "Now"})
            assert cp.calls == []

    run(body())
