"""An OCPP 2.0.1 station against a scripted CSMS, as plain asyncio: every frame both ways checked
against the 2.0.1 schemas, and the state machines (nothing but a boot before Accepted, Started
before Updated and Ended, seqNo rising from 0, energy never down, one CALL in flight)."""

import asyncio
import json
import random
from dataclasses import replace

import pytest

from swarm.ocpp201.charge_point import ChargePoint
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.samples import CSMS201
from swarm.protocol.samples import OCPP201 as OCPP201_TYPE
from swarm.station.config import ChargePointConfig
from swarm.station.state import State
from tests.scripted import answer, run, scripted_csms, until

CONFIG = ChargePointConfig(
    heartbeat_interval=0.2,
    authorize_interval=0,
    meter_interval=0.2,
    call_timeout=2.0,
    ping_interval=0,
    reconnect_min=0.2,
    reconnect_max=0.2,
    session_duration=3600,
    connectors=2,
)
NOW = "2026-01-01T00:00:00Z"


class Csms201:
    """A 2.0.1 CSMS that checks every frame it gets against the 2.0.1 schemas (a violation fails
    the test), answers every CALL validly, and sends ``commands`` (action, payload) once the
    first boot is accepted, and those ``react(csms, action, payload)`` returns after each CALL
    it answered. It records every CALL, and the answers to its commands."""

    def __init__(self, commands=(), boot_status="Accepted", react=lambda csms, a, p: ()):
        self.commands = list(commands)
        self.boot_status = boot_status
        self.react = react
        self.calls: list[list] = []
        self.results: dict[str, dict] = {}
        self.errors: dict[str, list] = {}
        self.sent = 0

    def actions(self, action):
        return [f[3] for f in self.calls if f[2] == action]

    async def handler(self, ws, script):
        while True:
            frame = await script.receive(ws)
            if frame[0] == 3:
                self.results[frame[1]] = frame[2]
                continue
            if frame[0] == 4:
                self.errors[frame[1]] = frame
                continue
            action, payload = frame[2], frame[3]
            OCPP201.schemas.validate(action, payload)  # raises on a violation
            self.calls.append(frame)
            booted = any(f[2] == "BootNotification" for f in self.calls[:-1])
            assert booted or action == "BootNotification", f"{action} before a boot"
            reply = self.reply(action, payload)
            OCPP201.schemas.validate(action, reply, response=True)
            await ws.send(answer(frame, reply))
            commands = list(self.react(self, action, payload))
            if action == "BootNotification" and reply["status"] == "Accepted":
                commands, self.commands = self.commands + commands, []
            for command, body in commands:
                OCPP201.schemas.validate(command, body)
                await ws.send(json.dumps([2, f"c{self.sent}", command, body]))
                self.sent += 1

    def reply(self, action, payload):
        if action == "BootNotification":
            return {"status": self.boot_status, "currentTime": NOW, "interval": 60}
        if action == "Heartbeat":
            return {"currentTime": NOW}
        if action == "Authorize":
            return {"idTokenInfo": {"status": "Accepted"}}
        if action == "TransactionEvent" and "idToken" in payload:
            return {"idTokenInfo": {"status": "Accepted"}}
        return {}


async def station(
    csms, config=CONFIG, until_done=lambda cp: False, timeout=10.0, linger=0.0, rng=None
):
    """Run one station against ``csms`` until ``until_done(station)``, and ``linger`` seconds
    more; the station and its samples."""
    samples = []
    async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, _):
        cp = ChargePoint("CS-1", url + "/CS-1", config, samples.append, rng=rng)
        task = asyncio.create_task(cp.run())
        try:
            await until(lambda: until_done(cp), timeout=timeout)
            await asyncio.sleep(linger)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return cp, samples


def check_transactions(events):
    """The E block's state machine over every TransactionEvent the CSMS got."""
    by_id: dict[str, list[dict]] = {}
    for event in events:
        by_id.setdefault(event["transactionInfo"]["transactionId"], []).append(event)
    for transaction, its in by_id.items():
        assert [e["seqNo"] for e in its] == list(range(len(its))), transaction
        kinds = [e["eventType"] for e in its]
        assert kinds[0] == "Started" and "Started" not in kinds[1:], kinds
        assert "Ended" not in kinds[:-1], kinds
        assert "evse" in its[0]
        energy = [
            v["value"]
            for e in its
            for m in e.get("meterValue", [])
            for v in m["sampledValue"]
            if v["measurand"] == "Energy.Active.Import.Register"
            # An Ended's TxEndedMeasurands begin with the start's (TxEndedInterval 0).
            and not (e["eventType"] == "Ended" and v["context"] == "Transaction.Begin")
        ]
        assert energy == sorted(energy), energy
    return by_id


def test_a_station_boots_reports_its_connectors_and_heartbeats():
    csms = Csms201()

    async def main():
        return await station(csms, until_done=lambda cp: len(csms.actions("Heartbeat")) >= 2)

    _, samples = run(main())
    boot = csms.actions("BootNotification")[0]
    assert boot["reason"] == "PowerUp"
    assert boot["chargingStation"]["serialNumber"] == "CS-1"
    statuses = csms.actions("StatusNotification")
    assert sorted((s["evseId"], s["connectorId"], s["connectorStatus"]) for s in statuses) == [
        (1, 1, "Available"),
        (2, 1, "Available"),
    ]
    assert {s.request_type for s in samples if s.name != "connect"} == {OCPP201_TYPE}
    assert not [s for s in samples if s.error]


def test_a_remote_start_and_stop_make_one_transaction_numbered_from_0():
    def stop_after_two_updates(csms, action, payload):
        if action == "TransactionEvent" and payload["seqNo"] == 2:
            yield (
                "RequestStopTransaction",
                {"transactionId": payload["transactionInfo"]["transactionId"]},
            )

    start = {"idToken": {"idToken": "T1", "type": "Local"}, "remoteStartId": 7, "evseId": 2}
    csms = Csms201(commands=[("RequestStartTransaction", start)], react=stop_after_two_updates)

    def evse_2(csms):
        statuses = csms.actions("StatusNotification")
        return [s["connectorStatus"] for s in statuses if s["evseId"] == 2]

    async def main():
        def done(cp):
            # The Ended event, and the status that follows it (it may come a moment later).
            ended = any(e["eventType"] == "Ended" for e in csms.actions("TransactionEvent"))
            return ended and evse_2(csms)[-1:] == ["Available"]

        return await station(csms, until_done=done)

    _, samples = run(main())
    events = csms.actions("TransactionEvent")
    (transaction,) = check_transactions(events).values()
    started, ended = transaction[0], transaction[-1]
    assert started["triggerReason"] == "RemoteStart"
    assert started["transactionInfo"]["remoteStartId"] == 7
    assert started["evse"] == {"id": 2, "connectorId": 1}
    # Two, or three if one more fell due before the stop was read.
    updates = [e["triggerReason"] for e in transaction[1:-1]]
    assert updates in (["MeterValuePeriodic"] * 2, ["MeterValuePeriodic"] * 3), updates
    assert ended["triggerReason"] == "RemoteStop"
    assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert csms.results["c0"]["status"] == "Accepted"
    assert csms.results["c1"]["status"] == "Accepted"
    statuses = evse_2(csms)
    # Taken when the start came, with the boot's answer: Occupied from the first report (and
    # once more as the start is accepted), Available once the transaction ended.
    assert statuses[-1] == "Available" and set(statuses[:-1]) == {"Occupied"}, statuses
    assert [s for s in samples if s.request_type == CSMS201 and s.error] == []


def test_sessions_arrive_authorize_and_end_as_the_e_block_says():
    csms = Csms201()
    config = replace(CONFIG, session_interval=0.1, session_duration=0.6, connectors=1)

    async def main():
        def done(cp):
            events = csms.actions("TransactionEvent")
            return sum(e["eventType"] == "Ended" for e in events) >= 2

        return await station(csms, config, until_done=done)

    run(main())
    by_id = check_transactions(csms.actions("TransactionEvent"))
    ended = [its for its in by_id.values() if its[-1]["eventType"] == "Ended"]
    assert len(ended) >= 2
    for its in ended:
        assert its[0]["idToken"]["type"] == "Local"
        assert its[-1]["transactionInfo"]["stoppedReason"] in ("EVDisconnected", "Other")
    assert len(csms.actions("Authorize")) >= 2


def test_get_and_set_variables_and_a_new_heartbeat_interval_at_once():
    variable = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    csms = Csms201(
        commands=[
            ("SetVariables", {"setVariableData": [{**variable, "attributeValue": "1"}]}),
            ("GetVariables", {"getVariableData": [variable]}),
        ]
    )
    config = replace(CONFIG, heartbeat_interval=0)  # the CSMS's interval, then the variable's

    async def main():
        return await station(
            csms, config, until_done=lambda cp: len(csms.actions("Heartbeat")) >= 2, timeout=8
        )

    cp, _ = run(main())
    assert csms.results["c0"]["setVariableResult"][0]["attributeStatus"] == "Accepted"
    got = csms.results["c1"]["getVariableResult"][0]
    assert (got["attributeStatus"], got["attributeValue"]) == ("Accepted", "1")
    assert cp.heartbeat_interval == 1.0


def test_a_base_report_comes_in_pages_numbered_from_0():
    csms = Csms201(commands=[("GetBaseReport", {"requestId": 5, "reportBase": "FullInventory"})])

    async def main():
        def done(cp):
            reports = csms.actions("NotifyReport")
            return bool(reports) and not reports[-1].get("tbc", False)

        return await station(csms, until_done=done)

    run(main())
    reports = csms.actions("NotifyReport")
    assert csms.results["c0"] == {"status": "Accepted"}
    assert [r["seqNo"] for r in reports] == list(range(len(reports)))
    assert {r["requestId"] for r in reports} == {5}
    names = {
        (i["component"]["name"], i["variable"]["name"]) for r in reports for i in r["reportData"]
    }
    assert ("OCPPCommCtrlr", "HeartbeatInterval") in names


def test_a_reset_reboots_with_reason_remote_reset_and_ends_transactions_first():
    def reset_once_started(csms, action, payload):
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            yield "Reset", {"type": "Immediate"}

    start = {"idToken": {"idToken": "T1", "type": "Local"}, "remoteStartId": 1}
    csms = Csms201(commands=[("RequestStartTransaction", start)], react=reset_once_started)

    async def main():
        return await station(csms, until_done=lambda cp: len(csms.actions("BootNotification")) >= 2)

    run(main())
    boots = csms.actions("BootNotification")
    assert [b["reason"] for b in boots] == ["PowerUp", "RemoteReset"]
    (transaction,) = check_transactions(csms.actions("TransactionEvent")).values()
    assert transaction[-1]["eventType"] == "Ended"
    assert transaction[-1]["transactionInfo"]["stoppedReason"] == "ImmediateReset"


@pytest.mark.parametrize("kind", ["Immediate", "OnIdle"])
def test_an_evse_reset_reboots_that_evse_alone(kind):
    """B11, B12: Immediate ends the EVSE's transaction (ResetCommand, ImmediateReset); OnIdle
    is Scheduled until it ends. Either way the EVSE is Unavailable for its reboot, then back,
    and the station does not boot again. EVSE 2, idle, is reset at once; 3 does not exist."""

    def react(csms, action, payload):
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            yield "Reset", {"type": kind, "evseId": 1}
            yield "Reset", {"type": "OnIdle", "evseId": 2}
            yield "Reset", {"type": kind, "evseId": 3}
            if kind == "OnIdle":
                transaction = payload["transactionInfo"]["transactionId"]
                yield "RequestStopTransaction", {"transactionId": transaction}

    start = {"idToken": {"idToken": "T1", "type": "Local"}, "remoteStartId": 1, "evseId": 1}
    csms = Csms201(commands=[("RequestStartTransaction", start)], react=react)

    def statuses(evse):
        return [
            s["connectorStatus"] for s in csms.actions("StatusNotification") if s["evseId"] == evse
        ]

    async def main():
        def back(cp):
            return statuses(1)[-1:] == ["Available"] and statuses(2)[-1:] == ["Available"]

        return await station(
            csms, until_done=lambda cp: "Unavailable" in statuses(1) and back(cp), linger=0.3
        )

    run(main())
    answers = [csms.results[f"c{n}"]["status"] for n in range(1, 4)]
    assert answers == ["Accepted" if kind == "Immediate" else "Scheduled", "Accepted", "Rejected"]
    (transaction,) = check_transactions(csms.actions("TransactionEvent")).values()
    ended = transaction[-1]
    if kind == "Immediate":
        assert ended["triggerReason"] == "ResetCommand"
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
    else:
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"  # the EV is plugged in
    assert statuses(1)[-3:] == ["Occupied", "Unavailable", "Available"]
    assert statuses(2) == ["Available", "Unavailable", "Available"]
    assert len(csms.actions("BootNotification")) == 1


def test_pending_boot_sends_nothing_of_its_own_but_answers_the_csms():
    csms = Csms201(boot_status="Pending")

    async def main():
        return await station(
            csms, until_done=lambda cp: cp.state is State.PENDING, timeout=5, linger=0.6
        )

    run(main())
    # 0.6 s pending, three heartbeat intervals: no CALL of its own but the boot (B02).
    assert [f[2] for f in csms.calls] == ["BootNotification"]


def test_unknown_and_unsupported_commands_get_2_0_1_callerrors():
    csms = Csms201(commands=[("ClearDisplayMessage", {"id": 1})])

    async def main():
        return await station(csms, until_done=lambda cp: "c0" in csms.errors, timeout=5)

    run(main())
    assert csms.errors["c0"][2] == "NotSupported"


def test_get_and_set_variables_past_items_or_bytes_per_message_get_callerrors():
    variable = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    many = {"getVariableData": [variable] * 51}  # ItemsPerMessage[GetVariables] is 50
    # customData may carry anything: 70,000 bytes of it make the request too long (65,536).
    long = {
        "setVariableData": [{**variable, "attributeValue": "1"}],
        "customData": {"vendorId": "v", "padding": "x" * 70_000},
    }
    csms = Csms201(
        commands=[
            ("GetVariables", many),
            ("SetVariables", long),
            ("GetVariables", {"getVariableData": [variable] * 50}),
        ]
    )

    async def main():
        return await station(csms, until_done=lambda cp: "c2" in csms.results, timeout=5)

    run(main())
    assert csms.errors["c0"][2] == "OccurrenceConstraintViolation"  # 2.0.1's spelling
    assert csms.errors["c1"][2] == "FormatViolation"
    assert len(csms.results["c2"]["getVariableResult"]) == 50


def test_the_csms_s_retry_backoff_variables_replace_the_swarm_s_backoff():
    cp = ChargePoint("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG, lambda sample: None)
    # The swarm's own: --reconnect-min and --reconnect-max, 0.2 s here.
    assert [cp._backoff(n) for n in (1, 5)] == [0.2, 0.2]

    def set_variables(**values):
        data = [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": name},
                "attributeValue": str(value),
            }
            for name, value in values.items()
        ]
        answer = cp.handle_call("SetVariables", {"setVariableData": data})
        assert {r["attributeStatus"] for r in answer["setVariableResult"]} == {"Accepted"}

    set_variables(RetryBackOffWaitMinimum=10, RetryBackOffRepeatTimes=3, RetryBackOffRandomRange=0)
    # Doubled after each failure, three times at most.
    assert [cp._backoff(n) for n in range(1, 7)] == [10, 20, 40, 80, 80, 80]
    set_variables(RetryBackOffRandomRange=5)
    assert all(10 <= cp._backoff(1) <= 15 for _ in range(50))


def test_clock_aligned_meter_values_go_in_meter_values_or_the_transaction_s_events():
    aligned = {"component": {"name": "AlignedDataCtrlr"}, "variable": {"name": "Interval"}}
    start = {"idToken": {"idToken": "T1", "type": "Local"}, "remoteStartId": 3, "evseId": 1}
    csms = Csms201(
        commands=[
            ("SetVariables", {"setVariableData": [{**aligned, "attributeValue": "1"}]}),
            ("RequestStartTransaction", start),
        ]
    )
    config = replace(CONFIG, meter_interval=3600)  # no periodic values: only the aligned ones

    def done(cp):
        clock = [
            e for e in csms.actions("TransactionEvent") if e["triggerReason"] == "MeterValueClock"
        ]
        return len(clock) >= 2 and len(csms.actions("MeterValues")) >= 2

    async def main():
        return await station(csms, config, until_done=done, timeout=6)

    run(main())
    # EVSE 2 is idle: MeterValues; EVSE 1 charges: its TransactionEvents carry them.
    assert {m["evseId"] for m in csms.actions("MeterValues")} == {2}
    for payload in csms.actions("MeterValues"):
        assert payload["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    events = csms.actions("TransactionEvent")
    check_transactions(events)
    clock = [e for e in events if e["triggerReason"] == "MeterValueClock"]
    # One reading a second, each of its own second.
    stamps = [e["meterValue"][0]["timestamp"] for e in clock]
    assert len(set(stamps)) == len(stamps)


@pytest.mark.parametrize(
    ("start_point", "started", "updates"),
    [
        # Plugged in first: Started, then the driver's authorization, then energy.
        ("EVConnected", ("CablePluggedIn", "EVConnected"), ["Authorized", "ChargingStateChanged"]),
        (
            "ParkingBayOccupancy",
            ("EVDetected", "EVConnected"),
            ["Authorized", "ChargingStateChanged"],
        ),
        ("Authorized", ("Authorized", "EVConnected"), ["ChargingStateChanged"]),
        ("PowerPathClosed", ("ChargingStateChanged", "Charging"), []),
        ("EnergyTransfer", ("ChargingStateChanged", "Charging"), []),
        (
            "Authorized,EVConnected",
            ("CablePluggedIn", "EVConnected"),
            ["Authorized", "ChargingStateChanged"],
        ),
    ],
)
def test_a_transaction_starts_at_its_tx_start_point(start_point, started, updates):
    point = {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}}
    csms = Csms201(
        commands=[("SetVariables", {"setVariableData": [{**point, "attributeValue": start_point}]})]
    )
    config = replace(CONFIG, connectors=1, session_interval=0.3, meter_interval=3600)

    def done(cp):
        return any(e["eventType"] == "Started" for e in csms.actions("TransactionEvent"))

    async def main():
        return await station(csms, config, until_done=done, linger=0.3)

    run(main())
    assert csms.results["c0"]["setVariableResult"][0]["attributeStatus"] == "Accepted"
    events = csms.actions("TransactionEvent")
    check_transactions(events)
    first = events[0]
    assert (first["triggerReason"], first["transactionInfo"]["chargingState"]) == started
    assert [e["triggerReason"] for e in events[1 : 1 + len(updates)]] == updates
    # The idToken goes with the event of the authorization, whichever it is.
    with_token = [e for e in events if "idToken" in e]
    assert len(with_token) == 1
    assert with_token[0]["triggerReason"] in ("Authorized", "ChargingStateChanged")


def test_with_tx_stop_point_energy_transfer_a_full_ev_ends_its_transaction():
    point = {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStopPoint"}}
    csms = Csms201(
        commands=[
            ("SetVariables", {"setVariableData": [{**point, "attributeValue": "EnergyTransfer"}]})
        ]
    )
    config = replace(
        CONFIG,
        connectors=1,
        session_interval=0.1,
        session_duration=0.6,
        battery_kwh=(0.001, 0.001),  # 1 Wh: from 50 to 60 % in a fraction of a second
        arrival_soc=(50, 50),
        target_soc=(60, 60),
    )

    def done(cp):
        ended = [e for e in csms.actions("TransactionEvent") if e["eventType"] == "Ended"]
        return any(e["transactionInfo"]["stoppedReason"] == "StoppedByEV" for e in ended)

    async def main():
        return await station(csms, config, until_done=done, rng=random.Random(3))

    run(main())
    events = csms.actions("TransactionEvent")
    check_transactions(events)
    by_ev = [e for e in events if e["transactionInfo"].get("stoppedReason") == "StoppedByEV"]
    assert by_ev[0]["triggerReason"] == "ChargingStateChanged"
    # No transaction stays open while its EV draws nothing.
    assert "SuspendedEV" not in {e["transactionInfo"].get("chargingState") for e in events}
