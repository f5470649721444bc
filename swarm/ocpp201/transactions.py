"""Charging sessions in OCPP 2.0.1 words (blocks C, E, G): Authorize with an idToken,
TransactionEvent Started / Updated / Ended, and the StatusNotifications around them.

A transaction's id is the station's own, so every event can be made, numbered (``seqNo`` from 0)
and queued when it happens, online or not; the station's outbox keeps them in order and sends
them once a boot is accepted, with ``offline`` set on those made offline (E04). An event the
CSMS fails to process (a CALLERROR, no answer in time) is sent again after
MessageAttemptInterval[TransactionEvent] times its failures, up to
MessageAttempts[TransactionEvent] in all, then dropped (E13).

A transaction starts when the EV draws power after its driver is authorized and stops when the
EV leaves: TxStartPoint PowerPathClosed and TxStopPoint EVConnected,Authorized, the device
model's defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any, NamedTuple

from websockets.exceptions import ConnectionClosed

from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, OcppSession
from swarm.station import meter
from swarm.station.connector import Status, Transaction
from swarm.station.meter import Reading
from swarm.station.outbox import Queued
from swarm.station.runner import call_quietly
from swarm.station.schedule import RETRY, Key, Timer
from swarm.station.state import State

FAULT_RECOVERY = 5.0
"""Seconds a faulted connector takes to be Available again."""

ID_TOKEN_TYPE = "Local"
"""The IdTokenEnumType of the swarm's idTokens: plain strings, not an RFID card's UID."""

_WORDS = {
    Status.AVAILABLE: "Available",
    Status.RESERVED: "Reserved",
    Status.UNAVAILABLE: "Unavailable",
    Status.FAULTED: "Faulted",
}
"""ConnectorStatusEnumType by the station's status; every other status is Occupied."""


def connector_status(status: Status) -> str:
    """A connector's status as 2.0.1 words it: Preparing to Finishing are all Occupied."""
    return _WORDS.get(status, "Occupied")


class Transactions:
    """The charging sessions of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`.

    Each EVSE has one connector: EVSE ``n`` is the station's connector ``n``.
    """

    __slots__ = ()

    async def _charge(
        self,
        session: OcppSession | None,
        connector: int,
        id_tag: str,
        *,
        authorize: bool = True,
        remote_start_id: int | None = None,
        reservation_id: int | None = None,
        charging_profile: dict[str, Any] | None = None,
    ) -> None:
        """An EV plugs in, its driver is authorized, the power path closes and energy flows; the
        transaction starts at the first of these TxStartPoint names (E01-E03), and the EV
        charges until its end is due.

        Offline (no session), the idToken is authorized as the local list and
        OfflineTxForUnknownIdEnabled say, and the events wait in the outbox.
        """
        record = self.connectors[connector]
        if record.transaction is not None or (
            session is None and not self._may_start_offline(id_tag)
        ):
            return
        await self._set_status(session, connector, Status.PREPARING)
        starts = self.device_model.value("TxCtrlr", "TxStartPoint").split(",")
        start = _Start(connector, id_tag, remote_start_id, reservation_id, charging_profile)
        transaction = None
        if "ParkingBayOccupancy" in starts or "EVConnected" in starts:  # the EV is there first
            trigger = "EVDetected" if "ParkingBayOccupancy" in starts else "CablePluggedIn"
            transaction = await self._open(session, start, trigger, "EVConnected")
        if authorize and session is not None and not self._pre_authorized(id_tag):
            answer = await self._call_or_none(
                session, "Authorize", {"idToken": {"idToken": id_tag, "type": ID_TOKEN_TYPE}}
            )
            if answer is None or answer["idTokenInfo"]["status"] != "Accepted":
                if transaction is not None:
                    await self._stop_transaction(session, connector, "Deauthorized", "DeAuthorized")
                else:
                    await self._set_status(session, connector, record.release())
                return
        authorized = "RemoteStart" if remote_start_id is not None else "Authorized"
        if transaction is None and "Authorized" in starts:
            transaction = await self._open(session, start, authorized, "EVConnected", token=True)
        elif transaction is not None:
            updated = self._event(session, transaction, "Updated", authorized, {})
            updated["idToken"] = _id_token(id_tag)
            await self._send_event(session, transaction, updated)
        # The power path closes, energy flows (PowerPathClosed, EnergyTransfer).
        if transaction is None:
            trigger = "RemoteStart" if remote_start_id is not None else "ChargingStateChanged"
            transaction = await self._open(session, start, trigger, "Charging", token=True)
        else:
            charging = {"chargingState": "Charging"}
            updated = self._event(session, transaction, "Updated", "ChargingStateChanged", charging)
            await self._send_event(session, transaction, updated)
        transaction.metered_at = asyncio.get_running_loop().time()  # it draws from now
        record.status = Status.CHARGING  # Occupied still: nothing to notify
        self._begin_session(transaction)

    async def _open(
        self,
        session: OcppSession | None,
        start: _Start,
        trigger: str,
        charging_state: str,
        *,
        token: bool = False,
    ) -> Transaction:
        """Start a transaction: its TransactionEvent Started, with the EVSE, the reservation
        and the remote start that led to it, and the idToken once ``token`` (authorized)."""
        connector = start.connector
        transaction = self._plug_in(self._new_transaction_id(), connector, start.id_tag)
        self.connectors[connector].transaction = transaction
        profile = start.charging_profile
        if profile is not None:  # the remote start's TxProfile (F01.FR.08)
            self._keep_profile(connector, {**profile, "transactionId": transaction.id})
        info: dict[str, Any] = {"chargingState": charging_state}
        if start.remote_start_id is not None:
            info["remoteStartId"] = start.remote_start_id
        self._keep_begin(transaction)
        begin = self._read(connector, "Transaction.Begin", "TxStartedMeasurands")
        started = self._event(session, transaction, "Started", trigger, info, readings=[begin])
        started["evse"] = {"id": connector, "connectorId": 1}
        if token:
            started["idToken"] = _id_token(start.id_tag)
        if start.reservation_id is not None:
            started["reservationId"] = start.reservation_id
        await self._send_event(session, transaction, started)
        return transaction

    def _new_transaction_id(self) -> str:
        # Unique for the station's lifetime (E01): its id and 64 random bits.
        return f"{self.id}-{self._rng.getrandbits(64):016x}"

    async def _stop_transaction(
        self,
        session: OcppSession | None,
        connector: int,
        trigger: str,
        reason: str,
        after: Status | None = None,
    ) -> None:
        """End the session on ``connector`` here, then report it: TransactionEvent Ended with
        ``triggerReason`` ``trigger`` and ``stoppedReason`` ``reason``. The connector is left
        ``after`` (by default, free: Available, or the availability asked for meanwhile)."""
        record = self.connectors[connector]
        transaction = record.transaction
        if transaction is None:
            return
        if connector in self._idle_resets:  # a Reset OnIdle of this EVSE waited for this
            self._idle_resets -= {connector}
            after = self._rebooting(connector)
        # The EV is still plugged in (EVConnected) unless its leaving ends the transaction.
        state = "Idle" if trigger == "EVDeparted" else "EVConnected"
        readings = self._ended_readings(transaction)
        self._end_locally(connector)
        record.status = Status.FINISHING
        info = {"chargingState": state, "stoppedReason": reason}
        ended = self._event(session, transaction, "Ended", trigger, info, readings=readings)
        await self._send_event(session, transaction, ended)
        await self._set_status(session, connector, after or record.release())
        if 0 in self._idle_resets and not self.transactions:  # a Reset OnIdle waited for this
            self._reset()

    async def _stop_transactions(self, session: OcppSession, reason: str | None) -> None:
        for connector in list(self.transactions):
            if reason:  # a reboot
                await self._stop_transaction(session, connector, "ResetCommand", reason)
            else:  # the station stops
                await self._stop_transaction(session, connector, "AbnormalCondition", "Other")

    def _event(
        self,
        session: OcppSession | None,
        transaction: Transaction,
        event_type: str,
        trigger: str,
        info: dict[str, Any],
        *,
        readings: Iterable[Reading] = (),
    ) -> dict[str, Any]:
        """A TransactionEvent payload, numbered now: events are made when they happen; with
        the meter values of ``readings`` that have samples."""
        info["transactionId"] = transaction.id
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": meter.timestamp(),
            "triggerReason": trigger,
            "seqNo": transaction.seq_no,
            "transactionInfo": info,
        }
        transaction.seq_no += 1
        if session is None:
            payload["offline"] = True
        values = self._meter_values(readings)
        if values:
            payload["meterValue"] = values
        return payload

    async def _send_event(
        self, session: OcppSession | None, transaction: Transaction, payload: dict[str, Any]
    ) -> None:
        """Send a TransactionEvent now if nothing older waits, else queue it."""
        self.outbox.add(Queued("TransactionEvent", payload, transaction))
        if session is not None and len(self.outbox) == 1:
            # A lost connection: it may not have arrived, it is sent again once connected.
            with contextlib.suppress(ConnectionClosed):
                await self._flush_outbox(session)

    async def _flush_outbox(self, session: OcppSession) -> None:
        """Send the queued events, oldest first, until none is left or the first waits for a
        retry. Raises ``ConnectionClosed``, the event still first."""
        outbox = self.outbox
        while outbox and RETRY not in self._timers:
            message = outbox[0]
            assert isinstance(message.payload, dict)
            try:
                await session.call(message.action, message.payload)
            except (CallRejected, CallTimeout):
                self._failed_to_process(message)
                continue
            except InvalidAnswer:
                pass  # an answer: the CSMS has it
            outbox.discard(message)

    # The actions of a session's timers.

    async def _on_meter(self, session: OcppSession | None, key: Key) -> None:
        transaction = self.connectors[key.connector].transaction
        if transaction is not None and self._sampling():
            updated = self._event(
                session,
                transaction,
                "Updated",
                "MeterValuePeriodic",
                {},
                readings=[self._read(key.connector)],
            )
            await self._send_event(session, transaction, updated)
        if transaction is not None:
            self._timers[key] = asyncio.get_running_loop().time() + self._meter_interval()

    async def _report_charging(
        self, session: OcppSession | None, transaction: Transaction, status: Status
    ) -> None:
        """A session's EV goes Charging, SuspendedEV or SuspendedEVSE: a TransactionEvent
        Updated with that chargingState."""
        stop_points = self.device_model.value("TxCtrlr", "TxStopPoint")
        if status is Status.SUSPENDED_EV and "EnergyTransfer" in stop_points:
            # A full EV: no more energy flows, the transaction ends, and the EV leaves with it.
            await self._stop_transaction(
                session, transaction.connector, "ChargingStateChanged", "StoppedByEV"
            )
            return
        info = {"chargingState": status.value}
        updated = self._event(session, transaction, "Updated", "ChargingStateChanged", info)
        await self._send_event(session, transaction, updated)

    async def _on_fault(self, session: OcppSession | None, key: Key) -> None:
        """The connector faults mid-session: Faulted, the transaction ends, and a while later
        the connector is Available again."""
        record = self.connectors[key.connector]
        if record.transaction is None:
            return
        await self._set_status(session, key.connector, Status.FAULTED)
        await self._stop_transaction(
            session, key.connector, "AbnormalCondition", "Other", after=Status.FAULTED
        )
        self._timers[Key(Timer.RECOVER, key.connector)] = (
            asyncio.get_running_loop().time() + FAULT_RECOVERY
        )

    async def _on_recover(self, session: OcppSession | None, key: Key) -> None:
        record = self.connectors[key.connector]
        if record.status is Status.FAULTED:
            await self._set_status(session, key.connector, record.release())

    def _rebooting(self, connector: int) -> Status:
        """A connector (an EVSE) reboots on its own: Unavailable, and back after a reboot's
        pause (``reconnect_min``)."""
        loop = asyncio.get_running_loop()
        self._timers[Key(Timer.REBOOTED, connector)] = loop.time() + self.config.reconnect_min
        return Status.UNAVAILABLE

    async def _on_rebooted(self, session: OcppSession | None, key: Key) -> None:
        record = self.connectors[key.connector]
        if record.status is Status.UNAVAILABLE:
            await self._set_status(session, key.connector, record.release())

    async def _on_end(self, session: OcppSession | None, key: Key) -> None:
        await self._stop_transaction(session, key.connector, "EVDeparted", "EVDisconnected")

    # Statuses.

    async def _set_status(
        self, session: OcppSession | None, connector: int, status: Status
    ) -> None:
        """Set a connector's status; notify the CSMS when its 2.0.1 word changes."""
        record = self.connectors[connector]
        before, record.status = connector_status(record.status), status
        if not connector or connector_status(status) == before:
            return
        if session is not None and not session.closed:
            await call_quietly(session, "StatusNotification", self._status(connector))
            if not session.closed:
                return
        # Offline, or the connection lost as it was sent: reported when the station is back.
        self._offline_changes = {*(self._offline_changes or ()), connector}

    async def _resume(self, session: OcppSession, offline_for: float) -> None:
        """Back without a boot (B04): report the connectors whose status changed offline, or
        all of them after more than OfflineThreshold seconds offline. A connector left taken
        by a start the lost connection cut short (its Authorize unanswered) is free again."""
        changed = set(self._offline_changes or ())
        for record in self.connectors[1:]:
            if record.transaction is None and record.status is Status.PREPARING:
                record.status = record.release()
                changed.add(record.id)
        if offline_for > self.device_model.int_value("OCPPCommCtrlr", "OfflineThreshold"):
            changed = set(range(1, len(self.connectors)))
        self._offline_changes = None
        await self._send_statuses(session, sorted(changed))
        if session.closed:  # lost again meanwhile: still to be reported
            self._offline_changes = {*(self._offline_changes or ()), *changed}

    async def _send_statuses(self, session: OcppSession, connectors: Iterable[int]) -> None:
        for connector in connectors:
            if connector:  # 2.0.1 reports connectors of EVSEs only (G01)
                await call_quietly(session, "StatusNotification", self._status(connector))

    def _status_soon(self, connector: int) -> None:
        """Report a connector's status as it is now, once booted."""
        if connector and self.state is State.ACCEPTED:
            self._send_soon("StatusNotification", self._status(connector))

    def _status(self, connector: int) -> dict[str, Any]:
        return {
            "timestamp": meter.timestamp(),
            "connectorStatus": connector_status(self.connectors[connector].status),
            "evseId": connector,
            "connectorId": 1,
        }


class _Start(NamedTuple):
    """What a transaction starts with."""

    connector: int
    id_tag: str
    remote_start_id: int | None
    reservation_id: int | None
    charging_profile: dict[str, Any] | None


def _id_token(id_tag: str) -> dict[str, str]:
    return {"idToken": id_tag, "type": ID_TOKEN_TYPE}
