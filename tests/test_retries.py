"""Transaction messages against a CSMS that fails to process them, answers late or goes silent:
retried as OCPP 1.6 3.7.1 says, in order, across reconnects, and dropped only when it says."""

import asyncio
import json
from dataclasses import replace

from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol.samples import OUTBOX, WEBSOCKET
from swarm.station.config import ChargePointConfig
from tests.scripted import BOOT_ACCEPTED, answer, run, scripted_csms, until

CONFIG = ChargePointConfig(
    heartbeat_interval=0.2,
    authorize_interval=0,
    meter_interval=0.3,
    call_timeout=1.0,
    ping_interval=0,
    reconnect_min=0.2,
    reconnect_max=0.2,
    session_duration=3600,
)
TRANSACTION_MESSAGES = ("StartTransaction", "MeterValues", "StopTransaction")


class Csms:
    """A CSMS that starts a session remotely on each of ``connectors`` after the first boot's
    first Heartbeat (and with ``remote_stop`` stops each once started), and answers every CALL,
    but as ``reply(frame, csms)`` says when it returns something other than None: ``"silent"``
    for no answer, ``"freeze"`` to keep the socket but read and write nothing more, else the
    frame to send. It records ``(loop time, frame)`` of every CALL, per connection."""

    def __init__(self, reply=lambda frame, csms: None, connectors=(1,), remote_stop=False):
        self.reply = reply
        self.connectors = connectors
        self.remote_stop = remote_stop
        self.connections: list[list[tuple[float, list]]] = []
        self.transaction_ids = iter(range(100, 1000))
        self.frozen_at: float | None = None
        self.ws = None

    def calls(self, action=None, connection=None):
        connections = self.connections if connection is None else [self.connections[connection]]
        return [(t, f) for frames in connections for t, f in frames if action in (None, f[2])]

    async def handler(self, ws, script):
        loop = asyncio.get_running_loop()
        frames: list[tuple[float, list]] = []
        self.connections.append(frames)
        self.ws = ws
        started = len(self.connections) > 1
        while True:
            frame = await script.receive(ws)
            if frame[0] != 2:
                continue
            frames.append((loop.time(), frame))
            custom = self.reply(frame, self)
            if custom == "freeze":
                # Keep the socket, read and write nothing more, for longer than the test waits.
                self.frozen_at = loop.time()
                ws.transport.pause_reading()
                await asyncio.sleep(10)
                ws.transport.resume_reading()
                await ws.wait_closed()
                return
            if custom == "silent":
                continue
            if custom is not None:
                await ws.send(custom)
                continue
            action = frame[2]
            if action == "BootNotification":
                reply = BOOT_ACCEPTED
            elif action == "Heartbeat":
                reply = {"currentTime": "2026-01-01T00:00:00Z"}
            elif action == "StartTransaction":
                reply = {"idTagInfo": {"status": "Accepted"}, "transactionId": self.next_id()}
            elif action == "Authorize":
                reply = {"idTagInfo": {"status": "Accepted"}}
            else:
                reply = {}
            await ws.send(answer(frame, reply))
            if action == "StartTransaction" and self.remote_stop:
                stop = {"transactionId": reply["transactionId"]}
                await ws.send(json.dumps([2, "stop", "RemoteStopTransaction", stop]))
            if action == "Heartbeat" and not started:
                started = True
                for connector in self.connectors:
                    start = {"idTag": "T1", "connectorId": connector}
                    await ws.send(
                        json.dumps([2, f"rs{connector}", "RemoteStartTransaction", start])
                    )

    def next_id(self):
        return next(self.transaction_ids)


def callerror(frame):
    return json.dumps([4, frame[1], "InternalError", "cannot store it now", {}])


async def charge(csms, config=CONFIG, until_done=None, timeout=15.0, **keys):
    """Run one charge point against ``csms`` until ``until_done()``; it and its samples, each
    as ``(loop time, sample)``."""
    samples = []
    loop = asyncio.get_running_loop()
    async with scripted_csms(csms.handler) as (url, _):
        cp = ChargePoint(
            "CP-1", url + "/CP-1", config, lambda sample: samples.append((loop.time(), sample))
        )
        for key, value in keys.items():
            cp.configuration.set(key, value)
        task = asyncio.create_task(cp.run())
        try:
            await until(until_done, timeout=timeout)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return cp, samples


def test_a_message_the_csms_fails_to_process_is_sent_again_after_growing_waits_in_order():
    def refuse_the_first_meter_values_twice(frame, csms):
        if frame[2] == "MeterValues" and len(csms.calls("MeterValues")) <= 2:
            return callerror(frame)
        return None

    csms = Csms(refuse_the_first_meter_values_twice)

    async def main():
        await charge(
            csms,
            until_done=lambda: len(csms.calls("MeterValues")) >= 6,
            TransactionMessageAttempts=3,
            TransactionMessageRetryInterval=1,
        )

    run(main())
    meter_values = csms.calls("MeterValues")
    first = meter_values[0][1][3]
    # Sent three times (two failures, then processed), then those that waited, in order.
    assert [f[3] for _, f in meter_values[:3]] == [first] * 3
    times = [t for t, _ in meter_values[:3]]
    assert 0.9 <= times[1] - times[0] < 1.6, times  # the interval times one failure
    assert 1.9 <= times[2] - times[1] < 2.6, times  # times two
    # In the order taken: the register only grows.
    energy = [float(f[3]["meterValue"][0]["sampledValue"][0]["value"]) for _, f in meter_values]
    assert energy == sorted(energy) and energy[-1] > energy[0], energy
    # Meanwhile the charge point went on with what is not a transaction message.
    heartbeats = [t for t, _ in csms.calls("Heartbeat") if times[0] < t < times[2]]
    assert len(heartbeats) >= 5


def test_a_message_that_fails_as_often_as_allowed_is_dropped_counted_and_the_next_goes():
    csms = Csms(
        lambda frame, csms: callerror(frame) if frame[2] == "StopTransaction" else None,
        remote_stop=True,
    )

    def dropped_and_gone_on():
        stops = csms.calls("StopTransaction")
        return len(stops) == 2 and csms.calls("Heartbeat")[-1][0] > stops[1][0] + 0.3

    async def main():
        return await charge(
            csms,
            until_done=dropped_and_gone_on,
            TransactionMessageAttempts=2,
            TransactionMessageRetryInterval=1,
        )

    cp, samples = run(main())
    stops = csms.calls("StopTransaction")
    assert 0.9 <= stops[1][0] - stops[0][0] < 1.6
    dropped = [s for _, s in samples if s.request_type == OUTBOX]
    assert [(s.name, s.error) for s in dropped] == [
        ("StopTransaction", "dropped: the CSMS failed to process it")
    ]
    assert not cp.outbox and not cp.transactions
    assert csms.calls("StatusNotification")[-1][1][3]["status"] == "Available"


def test_a_start_answered_after_its_timeout_keeps_its_session_and_the_csms_id():
    def answer_the_start_late(frame, csms):
        if frame[2] == "StartTransaction":
            reply = answer(frame, {"idTagInfo": {"status": "Accepted"}, "transactionId": 42})

            async def later():
                await asyncio.sleep(0.6)  # past the call timeout of 0.3 s
                await csms.ws.send(reply)

            csms.pending = asyncio.ensure_future(later())
            return "silent"
        return None

    csms = Csms(answer_the_start_late)
    config = replace(CONFIG, call_timeout=0.3)

    async def main():
        return await charge(
            csms,
            config,
            until_done=lambda: len(csms.calls("MeterValues")) >= 3,
            TransactionMessageRetryInterval=5,
        )

    cp, samples = run(main())
    assert len(csms.calls("StartTransaction")) == 1  # not sent again: the late answer came
    assert [s.error for _, s in samples if s.name == "StartTransaction"] == ["CallTimeout"]
    assert {f[3].get("transactionId") for _, f in csms.calls("MeterValues")} == {42}
    assert cp.connectors[1].transaction.id == 42


def test_a_half_open_connection_is_dropped_in_time_and_every_transaction_is_stopped_after():
    def freeze_once_both_started(frame, csms):
        both_started = len(csms.calls("StartTransaction")) == 2
        if len(csms.connections) == 1 and both_started and frame[2] != "StartTransaction":
            return "freeze"
        return None

    csms = Csms(freeze_once_both_started, connectors=(1, 2))
    # Sessions of 0.5 to 1.5 s: they end while the CSMS is frozen, or after the reconnect.
    config = replace(
        CONFIG, connectors=2, session_duration=1.0, ping_interval=0.3, call_timeout=0.5
    )

    def all_stopped():
        started = {f[3]["connectorId"] for _, f in csms.calls("StartTransaction")}
        stopped = {f[3]["transactionId"] for _, f in csms.calls("StopTransaction")}
        return len(started) == 2 and stopped >= {100, 101}

    async def main():
        return await charge(csms, config, until_done=all_stopped, timeout=15)

    cp, samples = run(main())
    lost = [(t, s) for t, s in samples if s.request_type == WEBSOCKET and s.error]
    # Within the ping interval and the pong's timeout of the freeze (0.8 s), and a margin.
    assert [s.error for _, s in lost] == ["dead: no pong in time"]
    assert lost[0][0] - csms.frozen_at < 0.3 + 0.5 + 0.7, lost[0][0] - csms.frozen_at
    # Every stop reached the CSMS after the reconnect, each once, and nothing is left behind.
    stops = [f[3]["transactionId"] for _, f in csms.calls("StopTransaction", connection=1)]
    assert sorted(stops) == [100, 101]
    assert not cp.outbox
