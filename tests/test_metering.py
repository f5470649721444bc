"""Meter values as configured: every measurand a configured list asks for, with its context,
unit, phase and location, in sampled, clock-aligned, triggered and stop readings, in OCPP 1.6
and 2.0.1; lists with a measurand the charger lacks refused. Against scripted CSMSs, every
payload checked against the version's schemas."""

import asyncio
import itertools
from dataclasses import replace

import pytest

from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp16.configuration import Configuration
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.ocpp201.device_model import DeviceModel
from swarm.ocpp201.dialect import OCPP201
from swarm.station import measurands
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Transaction
from swarm.station.meter import Reading
from swarm.station.schedule import Key, Timer
from tests.scripted import recording_csms, run, scripted_csms, until
from tests.test_commands import command
from tests.test_station201 import CONFIG as CONFIG201
from tests.test_station201 import Csms201

ALL = ",".join(measurands.MEASURANDS)
ALL201 = ALL.replace(",Temperature", "")  # 2.0.1 has no Temperature measurand

CONFIG = ChargePointConfig(
    authorize_interval=0,
    connectors=2,
    session_interval=0.1,
    session_duration=2.6,  # 1.3 s at least: a whole second, and a clock-aligned instant, in it
    meter_interval=0.3,
    single_phase_evs=0,  # three-phase EVs: a current on each phase
)

OUTLET = "Outlet"
IN_SESSION = {
    ("Energy.Active.Import.Register", None, "Wh", OUTLET),
    ("Power.Active.Import", None, "W", OUTLET),
    *(("Current.Import", phase, "A", OUTLET) for phase in ("L1", "L2", "L3")),
    *(("Voltage", phase, "V", OUTLET) for phase in ("L1-N", "L2-N", "L3-N")),
    ("Current.Offered", None, "A", OUTLET),
    ("Power.Offered", None, "W", OUTLET),
    ("SoC", None, "Percent", "EV"),
    ("Temperature", None, "Celsius", "Body"),
}
"""Every measurand of a three-phase session: (measurand, phase, unit, location)."""
IN_SESSION201 = {s for s in IN_SESSION if s[0] != "Temperature"}
IDLE = {s for s in IN_SESSION if s[0] not in ("Power.Active.Import", "Current.Import", "SoC")}
"""Those of an idle connector: nothing drawn, no EV."""


def location(value):
    """A SampledValue's location: Outlet where it names none (1.6 7.31, 2.0.1's default),
    as the swarm writes a sample of the connector's meter."""
    assert value.get("location") != OUTLET  # the default, left unwritten
    return value.get("location", OUTLET)


def shape16(meter_value):
    """A 1.6 MeterValue's samples as (measurand, phase, unit, location), and its contexts."""
    values = meter_value["sampledValue"]
    found = {(v["measurand"], v.get("phase"), v["unit"], location(v)) for v in values}
    return found, {v["context"] for v in values}


def shape201(meter_value):
    values = meter_value["sampledValue"]
    found = {
        (v["measurand"], v.get("phase"), v["unitOfMeasure"]["unit"], location(v)) for v in values
    }
    return found, {v["context"] for v in values}


# Version-neutral readings.


def test_a_reading_gives_each_listed_measurand_and_only_the_phase_asked_for():
    reading = Reading(1, 1200, 6900, "t", 3, 22080, 41, "Sample.Periodic", ALL)
    by_key = {(m, phase): value for m, phase, value, *_ in measurands.samples(reading, 3)}
    assert by_key[("Current.Import", "L2")] == 10.0  # 6900 W on three phases of 230 V
    assert by_key[("Voltage", "L3-N")] == 230
    assert by_key[("Current.Offered", None)] == 32.0
    assert by_key[("Power.Offered", None)] == 22080 and by_key[("SoC", None)] == 41
    assert by_key[("Temperature", None)] == 28  # warmed by the power drawn
    single = reading._replace(phases=1, measurands="Current.Import,Voltage.L2-N")
    assert [s[:3] for s in measurands.samples(single, 3)] == [
        ("Current.Import", "L1", 30.0),
        ("Voltage", "L2-N", 230),
    ]


# OCPP 1.6


def configured16(config=CONFIG):
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint16("CP-1", url + "/CP-1", config, lambda s: None)
            for key in ("MeterValuesSampledData", "MeterValuesAlignedData", "StopTxnSampledData"):
                cp.configuration.set(key, ALL)
            cp.configuration.set("StopTxnAlignedData", "Energy.Active.Import.Register,SoC")
            cp.configuration.set("ClockAlignedDataInterval", 1)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: script.calls("StopTransaction"), timeout=8)
                answer = await command(
                    script, "TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1}
                )
                await until(lambda: _contexts16(script) >= {"Trigger"}, timeout=2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return script, answer

    return run(main())


def _contexts16(script):
    return {
        v["context"]
        for f in script.calls("MeterValues")
        for m in f[3]["meterValue"]
        for v in m["sampledValue"]
    }


def test_16_meter_values_carry_every_configured_measurand_in_each_context():
    script, answer = configured16()
    assert answer == {"status": "Accepted"}
    for _, _, action, payload in script.calls():
        OCPP16.schemas.validate(action, payload)
    seen = set()
    for _, _, _, payload in script.calls("MeterValues"):
        for meter_value in payload["meterValue"]:
            found, contexts = shape16(meter_value)
            [context] = contexts
            seen.add((context, "transactionId" in payload))
            if "transactionId" in payload:
                assert found == IN_SESSION, context
            elif context == "Sample.Clock":  # an idle connector's
                assert found == IDLE
    assert {("Sample.Periodic", True), ("Sample.Clock", True)} <= seen
    assert any(context == "Trigger" for context, _ in seen)
    assert ("Sample.Periodic", False) not in seen  # sampled values only in a transaction

    stop = script.calls("StopTransaction")[0][3]
    data = stop["transactionData"]
    contexts = [shape16(m)[1].pop() for m in data]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    assert "Sample.Periodic" in contexts and "Sample.Clock" in contexts
    for meter_value, context in zip(data, contexts, strict=True):
        found = shape16(meter_value)[0]
        if context == "Sample.Clock":  # StopTxnAlignedData's
            assert found == {
                s for s in IN_SESSION if s[0] in ("Energy.Active.Import.Register", "SoC")
            }
        else:
            assert found == IN_SESSION
    energy = [
        int(v["value"])
        for m in data
        for v in m["sampledValue"]
        if v["measurand"] == "Energy.Active.Import.Register"
    ]
    assert energy == sorted(energy) and energy[-1] == stop["meterStop"]


def test_16_no_meter_values_when_the_lists_are_empty_and_no_aligned_data_at_0():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            cp = ChargePoint16("CP-1", url + "/CP-1", CONFIG, lambda s: None)
            cp.configuration.set("MeterValuesSampledData", "")
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: script.calls("StopTransaction"), timeout=8)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return script

    script = run(main())
    assert not script.calls("MeterValues")  # nothing sampled, ClockAlignedDataInterval 0
    assert "transactionData" not in script.calls("StopTransaction")[0][3]


def test_16_clock_aligned_meter_values_of_idle_connectors():
    async def main():
        async with scripted_csms(recording_csms()) as (url, script):
            config = replace(CONFIG, session_interval=0)  # no sessions
            cp = ChargePoint16("CP-1", url + "/CP-1", config, lambda s: None)
            cp.configuration.set("MeterValuesAlignedData", ALL)
            cp.configuration.set("ClockAlignedDataInterval", 1)
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(script.calls("MeterValues")) >= 2, timeout=3)
                # Turned off: no more of them.
                answer = await command(
                    script, "ChangeConfiguration", {"key": "ClockAlignedDataInterval", "value": "0"}
                )
                count = len(script.calls("MeterValues"))
                await asyncio.sleep(1.2)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return script, answer, count

    script, answer, count = run(main())
    assert answer == {"status": "Accepted"}
    assert len(script.calls("MeterValues")) == count
    calls = script.calls("MeterValues")
    assert sorted(f[3]["connectorId"] for f in calls[:2]) == [1, 2]
    for _, _, _, payload in calls:
        OCPP16.schemas.validate("MeterValues", payload)
        assert "transactionId" not in payload
        [meter_value] = payload["meterValue"]
        assert shape16(meter_value) == (IDLE, {"Sample.Clock"})


@pytest.mark.parametrize(
    "key",
    [
        "MeterValuesSampledData",
        "MeterValuesAlignedData",
        "StopTxnSampledData",
        "StopTxnAlignedData",
    ],
)
@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("SoC,Temperature,Current.Import.L2,Voltage.L1-N", "Accepted"),
        ("Energy.Active.Import.Register,Frequency", "Rejected"),  # no frequency measured
        ("Voltage.N", "Rejected"),
        ("Power.Active.Import.L1", "Rejected"),  # the power is the whole's
        (
            ",".join([*measurands.MEASURANDS, "Current.Import.L1", "Voltage.L1-N", "Voltage.L2-N"]),
            "Rejected",
        ),
    ],
)
def test_16_change_configuration_rejects_a_measurand_the_charger_lacks(key, value, status):
    config = Configuration()
    payload = {"key": key, "value": value}
    OCPP16.schemas.validate("ChangeConfiguration", payload)
    answer, _ = config.change_configuration(payload)
    OCPP16.schemas.validate("ChangeConfiguration", answer, response=True)
    assert answer == {"status": status}  # the last is longer than <key>MaxLength, 10
    assert config.int_value(f"{key}MaxLength") == 10


# OCPP 2.0.1

CONFIG201_METERED = replace(
    CONFIG201,
    session_interval=0.1,
    session_duration=2.6,
    meter_interval=0.3,
    single_phase_evs=0,
)


def test_201_transaction_events_and_meter_values_carry_every_configured_measurand():
    triggered = []

    def react(csms, action, payload):
        if action == "TransactionEvent" and payload["eventType"] == "Ended" and not triggered:
            triggered.append(payload)
            yield "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}}

    csms = Csms201(react=react)

    def done():
        return any(
            v["context"] == "Trigger"
            for p in csms.actions("MeterValues")
            for m in p["meterValue"]
            for v in m["sampledValue"]
        )

    async def main():
        async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, _):
            cp = ChargePoint201("CS-1", url + "/CS-1", CONFIG201_METERED, lambda s: None)
            for variable in ("TxStartedMeasurands", "TxUpdatedMeasurands", "TxEndedMeasurands"):
                cp.device_model.set("SampledDataCtrlr", variable, ALL201)
            cp.device_model.set("AlignedDataCtrlr", "Measurands", ALL201)
            cp.device_model.set("AlignedDataCtrlr", "Interval", 1)
            cp.device_model.set("AlignedDataCtrlr", "TxEndedMeasurands", "SoC")
            cp.device_model.set("AlignedDataCtrlr", "TxEndedInterval", 1)
            cp.device_model.set("SampledDataCtrlr", "TxEndedInterval", 1)
            task = asyncio.create_task(cp.run())
            try:
                await until(done, timeout=8)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    run(main())  # Csms201 validated every payload against the 2.0.1 schemas
    events = csms.actions("TransactionEvent")
    by_trigger = {}
    for event in events:
        for meter_value in event.get("meterValue", []):
            found, contexts = shape201(meter_value)
            [context] = contexts
            if event["eventType"] == "Ended" and context == "Sample.Clock":
                # AlignedDataCtrlr.TxEndedMeasurands
                assert found == {("SoC", None, "Percent", "EV")}
            else:
                assert found == IN_SESSION201, (event["eventType"], context)
            by_trigger.setdefault((event["eventType"], event["triggerReason"]), []).append(context)
    starts = [k for k in by_trigger if k[0] == "Started"]
    assert starts and all(set(by_trigger[k]) == {"Transaction.Begin"} for k in starts)
    assert set(by_trigger[("Updated", "MeterValuePeriodic")]) == {"Sample.Periodic"}
    assert set(by_trigger[("Updated", "MeterValueClock")]) == {"Sample.Clock"}
    ended = next(e for e in events if e["eventType"] == "Ended")
    contexts = [shape201(m)[1].pop() for m in ended["meterValue"]]
    assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
    # A second at least: a clock-aligned instant, and a second from the start, or more.
    assert set(contexts[1:-1]) == {"Sample.Clock", "Sample.Periodic"}
    stamps = [m["timestamp"] for m in ended["meterValue"]]
    assert stamps == sorted(stamps)
    idle, triggered = set(), set()
    for payload in csms.actions("MeterValues"):
        for meter_value in payload["meterValue"]:
            found, contexts = shape201(meter_value)
            (triggered if contexts == {"Trigger"} else idle).add(frozenset(found))
            assert contexts <= {"Trigger", "Sample.Clock"}
    idle201 = IDLE - {("Temperature", None, "Celsius", "Body")}
    assert triggered and all(found in (IN_SESSION201, idle201) for found in triggered)


@pytest.mark.parametrize(
    ("variable", "value", "status"),
    [
        ("SampledDataCtrlr.TxUpdatedMeasurands", "SoC,Current.Import,Voltage", "Accepted"),
        ("SampledDataCtrlr.TxUpdatedMeasurands", "Current.Import.L3", "Rejected"),  # 1.6's
        ("SampledDataCtrlr.TxUpdatedMeasurands", "Temperature", "Rejected"),  # not 2.0.1's
        (
            "SampledDataCtrlr.TxStartedMeasurands",
            "Energy.Active.Import.Register,Frequency",
            "Rejected",
        ),
        ("SampledDataCtrlr.TxEndedMeasurands", "RPM", "Rejected"),
        ("AlignedDataCtrlr.Measurands", "Power.Reactive.Import", "Rejected"),
        ("AlignedDataCtrlr.TxEndedMeasurands", "Current.Export", "Rejected"),
    ],
)
def test_201_set_variables_rejects_a_measurand_the_station_lacks(variable, value, status):
    component, name = variable.split(".")
    payload = {
        "setVariableData": [
            {"component": {"name": component}, "variable": {"name": name}, "attributeValue": value}
        ]
    }
    OCPP201.schemas.validate("SetVariables", payload)
    answer, _ = DeviceModel(2).set_variables(payload)
    OCPP201.schemas.validate("SetVariables", answer, response=True)
    assert answer["setVariableResult"][0]["attributeStatus"] == status


def test_kept_readings_are_thinned_past_the_limit_and_still_span_the_transaction():
    transaction = Transaction(7, 1, "T", 11000.0, 0.0)
    readings = [Reading(1, wh, None, f"{wh:06d}") for wh in range(200)]
    read = []
    for reading in readings:
        measurands.keep(transaction, lambda reading=reading: read.append(reading) or reading)
        assert len(transaction.readings) <= measurands.KEPT_READINGS
    kept = list(transaction.readings)
    assert kept[0] is readings[0]  # the start's
    gaps = {b.energy_wh - a.energy_wh for a, b in itertools.pairwise(kept)}
    assert gaps == {8}  # spaced alike: one in eight kept, after three halvings
    assert kept[-1].energy_wh >= 200 - 8  # up to the latest turn
    assert len(read) < 100  # a reading whose turn does not come is not taken


def test_201_a_new_tx_ended_interval_applies_to_running_transactions_at_once():
    set_interval = {
        "setVariableData": [
            {
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxEndedInterval"},
                "attributeValue": "5",
            }
        ]
    }
    OCPP201.schemas.validate("SetVariables", set_interval)

    async def main():
        cp = ChargePoint201("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG201_METERED, lambda s: None)
        transaction = cp._plug_in("tx-1", 1, "T")
        cp.connectors[1].transaction = transaction
        cp._keep_begin(transaction)
        sample = Key(Timer.SAMPLE, 1)
        assert sample not in cp._timers  # TxEndedInterval 0: no periodic readings for Ended
        cp._on_set_variables(set_interval)
        for job in cp._jobs:  # as the station's loop runs them
            await job(None)
        now = asyncio.get_running_loop().time()
        assert 4.9 < cp._timers[sample] - now <= 5  # one new interval from the change
        cp.device_model.set("SampledDataCtrlr", "TxEndedInterval", 0)
        await cp._on_sample(None, sample)
        assert sample not in cp._timers  # back to 0: none, once the reading due is kept
        assert [r.context for r in transaction.readings] == ["Transaction.Begin", "Sample.Periodic"]

    run(main())
