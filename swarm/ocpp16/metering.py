"""Meter values in OCPP 1.6 words (3.16, 4.7, 6.34, 7.31 to 7.33, 9.1): the measurands the
configuration asks for, when it asks for them.

Sampled: during a transaction, every MeterValueSampleInterval seconds (0: none), a MeterValues
of the MeterValuesSampledData measurands (context Sample.Periodic). Clock-aligned: at each
multiple of ClockAlignedDataInterval seconds from midnight (UTC; 0 for none), a MeterValues of
each connector's MeterValuesAlignedData (Sample.Clock), with its transaction's id while one
runs. A TriggerMessage(MeterValues) reads MeterValuesSampledData (Trigger). A StopTransaction's
transactionData carries the StopTxnSampledData readings of the transaction, from its start
(Transaction.Begin) every sample interval to its end (Transaction.End), and its
StopTxnAlignedData readings at each clock-aligned instant (Sample.Clock): kept as readings
until the stop, thinned out past :data:`~swarm.station.measurands.KEPT_READINGS` (see
:class:`~swarm.station.measurands.KeptReadings`), and the end's.

Each measurand is one the charger has (:data:`~swarm.station.measurands.SUPPORTED`): the
configuration refuses others.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import measurands, meter
from swarm.station.connector import Transaction
from swarm.station.meter import Reading
from swarm.station.runner import call_quietly
from swarm.station.schedule import ALIGNED, Key


class Metering:
    """The meter values of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    def _read(
        self, connector: int, context: str = "Sample.Periodic", key: str = "MeterValuesSampledData"
    ) -> Reading:
        """A reading of ``connector`` now, of the measurands configuration key ``key`` lists."""
        return measurands.read(self, connector, self.configuration.value(key), context)

    def _sampling(self) -> bool:
        """Whether a session sends sampled meter values: MeterValuesSampledData lists some, and
        MeterValueSampleInterval (or the swarm's ``meter_interval``) is not 0 (9.1: none)."""
        configuration = self.configuration
        return bool(
            configuration.value("MeterValuesSampledData")
            and (self.config.meter_interval or configuration.int_value("MeterValueSampleInterval"))
        )

    def _meter_values(self, connector: int) -> dict[str, Any]:
        """A triggered MeterValues payload; connector 0 reads the main meter."""
        transaction = self.connectors[connector].transaction if connector else None
        reading = self._read(connector, "Trigger")
        return meter_values(reading, transaction.id if transaction else None, self._phases())

    def _phases(self) -> int:
        """Phases the connectors supply."""
        return self.config.connector_phases

    # Readings kept for a StopTransaction.

    def _keep(
        self, transaction: Transaction, context: str, key: str, stamp: str | None = None
    ) -> None:
        """Keep a reading of configuration key ``key``'s measurands for the StopTransaction,
        timestamped ``stamp`` (a clock-aligned instant) or now."""
        if self.configuration.value(key):
            read = partial(self._read, transaction.connector, context, key)
            measurands.keep(transaction, read, stamp)

    def _transaction_data(self, transaction: Transaction) -> list[dict[str, Any]] | None:
        """A stopping transaction's transactionData: its readings kept, and its end's."""
        readings, transaction.readings = transaction.readings or [], None
        if self.configuration.value("StopTxnSampledData"):  # the end's, past the limit too
            end = self._read(transaction.connector, "Transaction.End", "StopTxnSampledData")
            readings.append(end)
        if not readings:
            return None
        phases = self._phases()
        return [_meter_value(reading, phases) for reading in readings]

    # Clock-aligned meter values.

    def _align(self, after: float | None = None) -> None:
        """Set the next clock-aligned reading after now, or after the instant just read,
        ``after``; none while ClockAlignedDataInterval is 0."""
        interval = self.configuration.int_value("ClockAlignedDataInterval")
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
        """Each connector's clock-aligned reading: a MeterValues of MeterValuesAlignedData,
        in its transaction's messages while one runs; and the StopTxnAlignedData reading
        kept for its StopTransaction."""
        interval = self.configuration.int_value("ClockAlignedDataInterval")
        if not interval:
            return
        boundary = measurands.nearest_boundary(time.time(), interval)
        stamp = meter.timestamp(boundary)
        for connector in range(1, len(self.connectors)):
            transaction = self.connectors[connector].transaction
            if self.configuration.value("MeterValuesAlignedData"):
                reading = self._read(connector, "Sample.Clock", "MeterValuesAlignedData")
                reading = reading._replace(timestamp=stamp)
                if transaction is not None:
                    await self._send_transaction_message(
                        session, transaction, "MeterValues", reading
                    )
                else:
                    payload = meter_values(reading, None, self._phases())
                    await call_quietly(session, "MeterValues", payload)
            if transaction is not None:
                self._keep(transaction, "Sample.Clock", "StopTxnAlignedData", stamp)
        self._align(after=boundary)


def meter_values(reading: Reading, transaction_id: int | None, phases: int) -> dict[str, Any]:
    """The MeterValues payload of ``reading``, on connectors supplying ``phases``."""
    payload: dict[str, Any] = {"connectorId": reading.connector}
    if transaction_id is not None:
        payload["transactionId"] = transaction_id
    payload["meterValue"] = [_meter_value(reading, phases)]
    return payload


def _meter_value(reading: Reading, phases: int) -> dict[str, Any]:
    """A MeterValue of ``reading``: its samples as SampledValues, values as strings."""
    values = []
    context = reading.context
    for measurand, phase, number, unit, location in measurands.samples(reading, phases):
        value = {"value": str(number), "context": context, "measurand": measurand, "unit": unit}
        if phase is not None:
            value["phase"] = phase
        if location is not None:
            value["location"] = location
        values.append(value)
    return {"timestamp": reading.timestamp, "sampledValue": values}
