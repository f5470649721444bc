"""Meter values in OCPP 2.0.1 words (part 2 block J; the SampledDataCtrlr and AlignedDataCtrlr
variables): the measurands the device model asks for, when it asks for them.

A transaction's TransactionEvent Started carries SampledDataCtrlr.TxStartedMeasurands (context
Transaction.Begin); an Updated every TxUpdatedInterval seconds (0: none), TxUpdatedMeasurands
(Sample.Periodic); its Ended, TxEndedMeasurands at its start (Transaction.Begin), every
TxEndedInterval seconds from then (Sample.Periodic; 0: none) and at its end (Transaction.End),
and AlignedDataCtrlr.TxEndedMeasurands at each multiple of AlignedDataCtrlr.TxEndedInterval
seconds from midnight (UTC; 0 for none) while it ran (Sample.Clock), these thinned out past
:data:`~swarm.station.measurands.KEPT_READINGS` (see
:class:`~swarm.station.measurands.KeptReadings`). At each multiple of AlignedDataCtrlr.Interval
seconds (0 for none), each EVSE's AlignedDataCtrlr.Measurands (Sample.Clock): in a
TransactionEvent Updated while a transaction runs there, else in a MeterValues (J01, J02). A
TriggerMessage's reading carries TxUpdatedMeasurands (Trigger).

Each measurand is one the station meters (:data:`~swarm.station.measurands.MEASURANDS`) that
2.0.1 names (not Temperature), without 1.6's phase suffixes: the device model refuses others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import measurands, meter
from swarm.station.connector import Transaction
from swarm.station.meter import Reading
from swarm.station.runner import call_quietly
from swarm.station.schedule import ALIGNED, Key, Timer

SAMPLED, ALIGNED_DATA = "SampledDataCtrlr", "AlignedDataCtrlr"


class Metering:
    """The meter values of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargingStation`."""

    __slots__ = ()

    def _read(
        self,
        connector: int,
        context: str = "Sample.Periodic",
        variable: str = "TxUpdatedMeasurands",
        component: str = SAMPLED,
    ) -> Reading:
        """A reading of EVSE ``connector`` now, of the measurands ``component.variable``
        lists."""
        listed = self.device_model.value(component, variable)
        return measurands.read(self, connector, listed, context)

    def _sampling(self) -> bool:
        """Whether a transaction sends periodic meter values: TxUpdatedMeasurands lists some,
        and TxUpdatedInterval (or the swarm's ``meter_interval``) is not 0 (none)."""
        model = self.device_model
        return bool(
            model.value(SAMPLED, "TxUpdatedMeasurands")
            and (self.config.meter_interval or model.int_value(SAMPLED, "TxUpdatedInterval"))
        )

    def _meter_values(self, readings: Iterable[Reading]) -> list[dict[str, Any]]:
        """The MeterValueTypes of ``readings``; none of a reading without samples (a
        MeterValueType has one at least)."""
        phases = self.config.connector_phases
        values = []
        for reading in readings:
            sampled = [
                _sampled(sample, reading.context) for sample in measurands.samples(reading, phases)
            ]
            if sampled:
                values.append({"timestamp": reading.timestamp, "sampledValue": sampled})
        return values

    def _keep_begin(self, transaction: Transaction) -> None:
        """Keep the TxEndedMeasurands reading of a transaction's start for its Ended, and
        another every TxEndedInterval seconds from then (0: none)."""
        self._keep(transaction, "Transaction.Begin", "TxEndedMeasurands", SAMPLED)
        self._sample_later(transaction.connector)

    def _sample_later(self, connector: int) -> None:
        """Set the next TxEndedInterval reading of the transaction on ``connector`` one
        interval from now; none while it is 0."""
        key = Key(Timer.SAMPLE, connector)
        interval = self.device_model.int_value(SAMPLED, "TxEndedInterval")
        if interval:
            self._timers[key] = asyncio.get_running_loop().time() + interval
        else:
            self._timers.pop(key, None)

    async def _resample(self, session: OcppSession) -> None:
        """A job: running transactions follow a new TxEndedInterval from now."""
        for connector in self.transactions:
            self._sample_later(connector)

    async def _on_sample(self, session: OcppSession | None, key: Key) -> None:
        """A transaction's TxEndedMeasurands reading every TxEndedInterval seconds from its
        start (Sample.Periodic), kept for its Ended (J02)."""
        transaction = self.connectors[key.connector].transaction
        if transaction is not None:
            self._keep(transaction, "Sample.Periodic", "TxEndedMeasurands", SAMPLED)
            self._sample_later(key.connector)

    def _ended_readings(self, transaction: Transaction) -> list[Reading]:
        """A transaction's readings for its Ended: its start's, the periodic and clock-aligned
        ones kept, in the order of their timestamps (a clock-aligned one bears its instant,
        which may follow the time a periodic one was read), and its end's now."""
        readings, transaction.readings = transaction.readings or [], None
        readings.sort(key=lambda r: (r.context != "Transaction.Begin", r.timestamp))
        end = self._read(transaction.connector, "Transaction.End", "TxEndedMeasurands")
        return [*readings, end]

    # Clock-aligned meter values (J01).

    def _aligned_intervals(self) -> tuple[int, int]:
        """AlignedDataCtrlr's Interval and TxEndedInterval."""
        model = self.device_model
        return (
            model.int_value(ALIGNED_DATA, "Interval"),
            model.int_value(ALIGNED_DATA, "TxEndedInterval"),
        )

    def _align(self, after: float | None = None) -> None:
        """Set the next clock-aligned instant, of either interval, after now or after the
        instant just read, ``after``; none while both are 0."""
        intervals = [interval for interval in self._aligned_intervals() if interval]
        if not intervals:
            self._timers.pop(ALIGNED, None)
            return
        now = time.time()
        base = now if after is None else after
        boundary = min(measurands.next_boundary(base, interval) for interval in intervals)
        self._timers[ALIGNED] = asyncio.get_running_loop().time() + boundary - now

    async def _realign(self, session: OcppSession) -> None:
        """A job: the clock-aligned readings follow a new interval."""
        self._align()

    async def _on_aligned(self, session: OcppSession | None, key: Key) -> None:
        """At an Interval's instant, each EVSE's clock-aligned reading: in its transaction's
        TransactionEvent (Updated, MeterValueClock) while one runs, else in a MeterValues
        (J01.FR.14, .FR.17). At a TxEndedInterval's, each transaction's reading kept for its
        Ended."""
        interval, ended = self._aligned_intervals()
        now = time.time()
        instants = [measurands.nearest_boundary(now, i) for i in (interval, ended) if i]
        if not instants:
            return
        boundary = min(instants, key=lambda instant: abs(instant - now))  # the one due
        stamp = meter.timestamp(boundary)
        for connector in range(1, len(self.connectors)):
            transaction = self.connectors[connector].transaction
            if ended and transaction is not None and _multiple(boundary, ended):
                self._keep(transaction, "Sample.Clock", "TxEndedMeasurands", ALIGNED_DATA, stamp)
            if not (interval and _multiple(boundary, interval)):
                continue
            reading = self._read(connector, "Sample.Clock", "Measurands", ALIGNED_DATA)
            values = self._meter_values([reading._replace(timestamp=stamp)])
            if not values:
                continue
            if transaction is not None:
                event = self._event(session, transaction, "Updated", "MeterValueClock", {})
                event["meterValue"] = values
                await self._send_event(session, transaction, event)
            else:
                payload = {"evseId": connector, "meterValue": values}
                await call_quietly(session, "MeterValues", payload)
        self._align(after=boundary)

    def _keep(
        self,
        transaction: Transaction,
        context: str,
        variable: str,
        component: str,
        stamp: str | None = None,
    ) -> None:
        """Keep a reading of ``component.variable``'s measurands for the transaction's Ended,
        timestamped ``stamp`` (a clock-aligned instant) or now."""
        if self.device_model.value(component, variable):
            read = partial(self._read, transaction.connector, context, variable, component)
            measurands.keep(transaction, read, stamp)

    async def _send_meter_values(self, session: OcppSession, evse: int) -> None:
        """A triggered MeterValues of EVSE ``evse`` (F06)."""
        values = self._meter_values([self._read(evse, "Trigger")])
        if values:
            await call_quietly(session, "MeterValues", {"evseId": evse, "meterValue": values})


def _multiple(instant: float, interval: int) -> bool:
    """Whether a clock-aligned ``instant`` is one of ``interval``'s."""
    return round(instant) % 86400 % interval == 0


def _sampled(sample: measurands.Sample, context: str) -> dict[str, Any]:
    """A SampledValueType: its value a number."""
    measurand, phase, number, unit, location = sample
    value: dict[str, Any] = {
        "value": number,
        "context": context,
        "measurand": measurand,
        "unitOfMeasure": {"unit": unit},
    }
    if phase is not None:
        value["phase"] = phase
    if location is not None:
        value["location"] = location
    return value
