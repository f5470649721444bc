"""--validate: every answer of the CSMS checked against the OCPP 1.6 response schemas."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from swarm.locust.options import config_from_options
from swarm.ocpp16.charge_point import ChargePoint
from swarm.ocpp16.dialect import OCPP16
from swarm.protocol import ocppj
from swarm.protocol.rpc import InvalidAnswer, open_session
from swarm.protocol.samples import OCPP
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import BOOT_ACCEPTED, answer, answer_everything, run, scripted_csms, until
from tests.test_options import parse

VALID = {
    "Heartbeat": {"currentTime": "2026-01-01T00:00:00Z"},
    "Authorize": {"idTagInfo": {"status": "Accepted"}},
}
"""Valid answers, by action."""

HEARTBEAT_TEXT = "invalid answer: currentTime: not of type string"
AUTHORIZE_TEXT = "invalid answer: payload: 'idTagInfo' is a required property"


def answering(answers: dict[str, dict[str, Any]]):
    """A CSMS that accepts the boot and answers each action with ``answers``' payload
    (valid ones for the rest)."""

    async def handler(ws, script):
        while True:
            frame = await script.receive(ws)
            if frame[0] != ocppj.CALL:
                continue
            action = frame[2]
            if action == "BootNotification":
                reply = BOOT_ACCEPTED
            else:
                reply = answers.get(action, VALID.get(action, {}))
            await ws.send(answer(frame, reply))

    return handler


async def fleet_of_one(answers: dict[str, dict[str, Any]], *, validate: bool):
    """Run one charge point for a second, heartbeating and authorizing every 0.1 s; return its
    OCPP samples and whether it was still booted and working at the end."""
    samples = []
    config = ChargePointConfig(
        heartbeat_interval=0.1, authorize_interval=0.1, call_timeout=2, validate=validate
    )
    async with scripted_csms(answering(answers)) as (url, script):
        cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append, rng=random.Random(3))
        task = asyncio.create_task(cp.run())
        await until(lambda: cp.state is State.ACCEPTED)
        await asyncio.sleep(1.0)
        working = cp.state is State.ACCEPTED and not task.done()
        beats = len(script.calls("Heartbeat"))
        await asyncio.sleep(0.3)
        working = working and len(script.calls("Heartbeat")) > beats
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return [s for s in samples if s.request_type == OCPP], working


def outcomes(samples, action):
    return [s.error for s in samples if s.name == action]


@pytest.mark.parametrize(
    ("action", "bad", "text"),
    [
        ("Heartbeat", {"currentTime": 5}, HEARTBEAT_TEXT),
        ("Authorize", {}, AUTHORIZE_TEXT),
    ],
)
def test_with_validate_a_bad_answer_is_a_failure_and_the_charge_point_goes_on(action, bad, text):
    samples, working = run(fleet_of_one({action: bad}, validate=True))
    errors = outcomes(samples, action)
    assert len(errors) >= 5 and set(errors) == {text}, errors
    assert working
    other = "Authorize" if action == "Heartbeat" else "Heartbeat"
    assert outcomes(samples, other) and set(outcomes(samples, other)) == {None}
    assert outcomes(samples, "BootNotification") == [None]


@pytest.mark.parametrize(("action", "bad"), [("Heartbeat", {"currentTime": 5}), ("Authorize", {})])
def test_without_validate_the_same_answers_are_successes(action, bad):
    samples, working = run(fleet_of_one({action: bad}, validate=False))
    errors = outcomes(samples, action)
    assert len(errors) >= 5 and set(errors) == {None}, errors
    assert working


@pytest.mark.parametrize("validate", [False, True])
def test_valid_answers_pass_in_both_modes(validate):
    samples, working = run(fleet_of_one({}, validate=validate))
    assert working
    assert len(outcomes(samples, "Heartbeat")) >= 5
    assert len(outcomes(samples, "Authorize")) >= 5
    assert {s.error for s in samples} == {None}


def test_error_texts_name_nothing_from_the_payload():
    # Whatever properties and values a CSMS makes up, the failures keep one text each.
    answers = iter(
        [{"currentTime": "2026-01-01T00:00:00Z", f"made-up-{n}": n} for n in range(1000)]
    )

    async def inventive(ws, script):
        while True:
            frame = await script.receive(ws)
            reply = BOOT_ACCEPTED if frame[2] == "BootNotification" else next(answers)
            await ws.send(answer(frame, reply))

    async def main():
        samples = []
        async with scripted_csms(inventive) as (url, _):
            session = await open_session(
                url + "/CP-1",
                samples.append,
                dialect=OCPP16,
                call_timeout=2,
                connect_timeout=2,
                check_answers=OCPP16.schemas.check_answer,
            )
            await session.call(
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            for _ in range(5):
                with pytest.raises(InvalidAnswer):
                    await session.call("Heartbeat", {})
            await session.close()
        return [s.error for s in samples if s.name == "Heartbeat"]

    errors = run(main())
    assert errors == ["invalid answer: payload: a property the schema does not have"] * 5


def test_the_boot_answer_is_checked_in_both_modes():
    async def main(validate):
        samples = []
        config = ChargePointConfig(authorize_interval=0, fallback_interval=0.1, validate=validate)

        async def bad_boot(ws, script):
            await answer_everything(ws, script, {**BOOT_ACCEPTED, "interval": "60"})

        async with scripted_csms(bad_boot) as (url, script):
            cp = ChargePoint("CP-1", url + "/CP-1", config, samples.append)
            task = asyncio.create_task(cp.run())
            await until(lambda: len(script.calls("BootNotification")) >= 2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert not script.calls("Heartbeat")
        return {s.error for s in samples if s.name == "BootNotification"}

    for validate in (False, True):
        assert run(main(validate)) == {"invalid answer: interval: not of type integer"}


def test_the_option():
    assert config_from_options(parse()).validate is False
    assert config_from_options(parse("--validate")).validate is True
    options = parse()
    for sent, meant in (("true", True), ("false", False), (True, True), (False, False)):
        options.validate = sent  # the web UI sends "true" or "false"
        assert config_from_options(options).validate is meant


def test_check_answer_is_validate_with_bounded_texts():
    OCPP16.schemas.check_answer("Heartbeat", {"currentTime": "2026-01-01T00:00:00Z"})
    with pytest.raises(ocppj.FrameError) as info:
        OCPP16.schemas.check_answer("Heartbeat", {"currentTime": 5})
    assert info.value.code == ocppj.TYPE_CONSTRAINT_VIOLATION
    with pytest.raises(ocppj.FrameError) as info:
        OCPP16.schemas.check_answer("StatusNotification", {"secret": 1})
    assert info.value.code == ocppj.FORMATION_VIOLATION
    assert "secret" not in info.value.description
    with pytest.raises(ocppj.FrameError) as info:
        OCPP16.schemas.validate("StatusNotification", {"secret": 1}, response=True)
    assert "secret" in info.value.description  # a CALLERROR's description may name it


def test_a_call_s_own_check_stands_in_for_the_session_s():
    async def main():
        samples = []
        async with scripted_csms(answering({"Heartbeat": {"currentTime": 5}})) as (url, _):
            session = await open_session(
                url + "/CP-1",
                samples.append,
                dialect=OCPP16,
                call_timeout=2,
                connect_timeout=2,
                check_answers=OCPP16.schemas.check_answer,
            )
            assert await session.call("Heartbeat", {}, check=lambda payload: None)
            with pytest.raises(InvalidAnswer):
                await session.call("Heartbeat", {})
            await session.close()
        return [s.error for s in samples if s.name == "Heartbeat"]

    assert run(main()) == [None, HEARTBEAT_TEXT]
