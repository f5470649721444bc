"""Meter values in OCPP 2.0.1 words (part 2 block J; the SampledDataCtrlr and AlignedDataCtrlr
variables): the measurands the device model asks for, when it asks for them.

A transaction's TransactionEvent Started carries SampledDataCtrlr.TxStartedMeasurands (context
Transaction.Begin); an Updated every TxUpdatedInterval seconds (0: none), TxUpdatedMeasurands
(Sample.Periodic); its Ended, TxEndedMeasurands at its start and its end (Transaction.Begin,
Transaction.End: TxEndedInterval 0's values). At each multiple of AlignedDataCtrlr.Interval
seconds from midnight (UTC; 0 for none), each EVSE's AlignedDataCtrlr.Measurands (Sample.Clock):
in a TransactionEvent Updated while a transaction runs there, else in a MeterValues (J01, J02).
A TriggerMessage's reading carries TxUpdatedMeasurands (Trigger).

Each measurand is one the station meters (:data:`~swarm.station.measurands.MEASURANDS`) that
2.0.1 names (not Temperature), without 1.6's phase suffixes: the device model refuses others.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import measurands, meter
from swarm.station.connector import Transaction
from swarm.station.meter import Reading
from swarm.station.runner import call_quietly
from swarm.station.schedule import ALIGNED, Key

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
        """Keep the TxEndedMeasurands reading of a transaction's start, for its Ended."""
        if self.device_model.value(SAMPLED, "TxEndedMeasurands"):
            begin = self._read(transaction.connector, "Transaction.Begin", "TxEndedMeasurands")
            transaction.readings = [begin]

    def _ended_readings(self, transaction: Transaction) -> list[Reading]:
        """A transaction's TxEndedMeasurands readings: its start's, kept, and its end's now."""
        readings, transaction.readings = transaction.readings or [], None
        end = self._read(transaction.connector, "Transaction.End", "TxEndedMeasurands")
        return [*readings, end]

    # Clock-aligned meter values (J01).

    def _align(self, after: float | None = None) -> None:
        """Set the next clock-aligned reading after now, or after the instant just read,
        ``after``; none while AlignedDataCtrlr.Interval is 0."""
        interval = self.device_model.int_value(ALIGNED_DATA, "Interval")
        if not interval:
            self._timers.pop(ALIGNED, None)
            return
        now = time.time()
        boundary = measurands.next_boundary(now if after is None else after, interval)
        self._timers[ALIGNED] = asyncio.get_running_loop().time() + boundary - now

    async def _realign(self, session: OcppSession) -> None:
        """A job: the clock-aligned readings follow a new interval."""
        self._align()

    async def _on_aligned(self, session: OcppSession | None, key: Key) -> None:
        """Each EVSE's clock-aligned reading: in its transaction's TransactionEvent (Updated,
        MeterValueClock) while one runs, else in a MeterValues (J01.FR.14, .FR.17)."""
        interval = self.device_model.int_value(ALIGNED_DATA, "Interval")
        if not interval:
            return
        boundary = measurands.nearest_boundary(time.time(), interval)
        stamp = meter.timestamp(boundary)
        for connector in range(1, len(self.connectors)):
            reading = self._read(connector, "Sample.Clock", "Measurands", ALIGNED_DATA)
            values = self._meter_values([reading._replace(timestamp=stamp)])
            if not values:
                continue
            transaction = self.connectors[connector].transaction
            if transaction is not None:
                event = self._event(session, transaction, "Updated", "MeterValueClock", {})
                event["meterValue"] = values
                await self._send_event(session, transaction, event)
            else:
                payload = {"evseId": connector, "meterValue": values}
                await call_quietly(session, "MeterValues", payload)
        self._align(after=boundary)

    async def _send_meter_values(self, session: OcppSession, evse: int) -> None:
        """A triggered MeterValues of EVSE ``evse`` (F06)."""
        values = self._meter_values([self._read(evse, "Trigger")])
        if values:
            await call_quietly(session, "MeterValues", {"evseId": evse, "meterValue": values})


def _sampled(sample: measurands.Sample, context: str) -> dict[str, Any]:
    """A SampledValueType: its value a number."""
    value: dict[str, Any] = {
        "value": sample.value,
        "context": context,
        "measurand": sample.measurand,
        "location": sample.location,
        "unitOfMeasure": {"unit": sample.unit},
    }
    if sample.phase is not None:
        value["phase"] = sample.phase
    return value
