"""Charging sessions in OCPP 1.6 words (4.7 to 4.10, 5.11, 5.12): Authorize, StartTransaction,
MeterValues, StopTransaction, and the StatusNotifications around them.

Transaction messages reach the CSMS, all and in order (3.7): offline, or behind older ones, they
wait in the station's outbox, which goes first once a boot is accepted. A message the CSMS fails
to process (a CALLERROR, no answer in time) is sent again after TransactionMessageRetryInterval
times its failures, up to TransactionMessageAttempts in all, then dropped (3.7.1). A
StartTransaction answered after its timeout still gives its transaction the CSMS's id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from websockets.exceptions import ConnectionClosed

from swarm.ocpp16.metering import meter_values
from swarm.protocol import ocppj
from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, LateAnswer, OcppSession
from swarm.station import meter
from swarm.station.connector import Status, Transaction
from swarm.station.meter import Reading
from swarm.station.outbox import Queued
from swarm.station.runner import call_quietly
from swarm.station.schedule import RETRY, Key, Timer
from swarm.station.state import State

FAULT_RECOVERY = 5.0
"""Seconds a faulted connector takes to be Available again."""

FAULT_CODE = "GroundFailure"
"""The ChargePointErrorCode of a connector that faults mid-session."""


class Transactions:
    """The charging sessions of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    async def _charge(
        self, session: OcppSession | None, connector: int, id_tag: str, *, authorize: bool = True
    ) -> None:
        """An EV plugs in: authorize, start the transaction, charge until its end is due.

        Offline (no session), the idTag is authorized locally, and the StartTransaction waits
        in the outbox; so it does when the connection is lost while it is in flight, or when
        the CSMS fails to process it and it waits for a retry: the session goes on meanwhile.
        """
        record = self.connectors[connector]
        if record.transaction is not None or (
            session is None and not self._authorized_offline(id_tag)
        ):
            return
        await self._set_status(session, connector, Status.PREPARING)
        if authorize and session is not None:
            answer = await self._call_or_none(session, "Authorize", {"idTag": id_tag})
            if _id_status(answer) != "Accepted":  # Blocked, Invalid, Expired: no session
                await self._set_status(session, connector, record.release())
                return
        start = {
            "connectorId": connector,
            "idTag": id_tag,
            "meterStart": int(record.energy_wh),
            "timestamp": meter.timestamp(),
        }
        transaction = self._plug_in(None, connector, id_tag)
        record.transaction = transaction
        self._keep(transaction, "Transaction.Begin", "StopTxnSampledData")
        self.outbox.add(Queued("StartTransaction", start, transaction))
        if session is not None and len(self.outbox) == 1:
            try:
                await self._flush_outbox(session)
            except ConnectionClosed:
                session = None  # the session has begun: it goes on offline
        if record.transaction is not transaction:  # refused for good, or its idTag invalid
            return
        await self._set_status(session, connector, Status.CHARGING)
        self._begin_session(transaction)

    async def _stop_if_invalid(
        self, session: OcppSession, connector: int, answer: dict[str, Any]
    ) -> bool:
        """Stop the session if the StartTransaction's answer refused its idTag and the
        configuration says so (StopTransactionOnInvalidId); return whether it stopped."""
        if _id_status(answer) == "Accepted" or not self.configuration.bool_value(
            "StopTransactionOnInvalidId"
        ):
            return False
        await self._stop_transaction(session, connector, "DeAuthorized")
        return True

    async def _stop_transaction(
        self, session: OcppSession | None, connector: int, reason: str
    ) -> None:
        record = self.connectors[connector]
        transaction = record.transaction
        if transaction is None:
            return
        await self._set_status(session, connector, Status.FINISHING)
        await self._send_stop(session, transaction, reason, Status.FINISHING)
        await self._set_status(session, connector, record.release())

    async def _send_stop(
        self, session: OcppSession | None, transaction: Transaction, reason: str, holding: Status
    ) -> None:
        """End the transaction here, then report it with the energy register's reading. The
        connector keeps status ``holding`` meanwhile: not free for a new session yet."""
        record = self.connectors[transaction.connector]
        meter.bring_up_to_date(record, transaction, asyncio.get_running_loop().time())
        data = self._transaction_data(transaction)  # its end's reading, before it is over
        self._end_locally(transaction.connector)
        record.status = holding
        stop = {
            "transactionId": transaction.id,
            "idTag": transaction.id_tag,
            "meterStop": int(record.energy_wh),
            "timestamp": meter.timestamp(),
            "reason": reason,
        }
        if data:
            stop["transactionData"] = data
        await self._send_transaction_message(session, transaction, "StopTransaction", stop)

    async def _stop_transactions(self, session: OcppSession, reason: str | None) -> None:
        for connector in list(self.transactions):
            await self._stop_transaction(session, connector, reason or "Other")

    async def _send_transaction_message(
        self,
        session: OcppSession | None,
        transaction: Transaction,
        action: str,
        payload: dict[str, Any] | Reading,
    ) -> None:
        """Send a MeterValues or StopTransaction of ``transaction`` now if nothing older waits,
        else queue it."""
        self.outbox.add(Queued(action, payload, transaction))
        if session is not None and len(self.outbox) == 1:
            # A lost connection: it may not have arrived, it is sent again once connected.
            with contextlib.suppress(ConnectionClosed):
                await self._flush_outbox(session)

    async def _flush_outbox(self, session: OcppSession) -> None:
        """Send the queued transaction messages, oldest first, until none is left or the
        first waits for a retry. Raises ``ConnectionClosed``, the message still first.

        A StartTransaction dropped unanswered ends its session here: what else the session
        queued is dropped, for the CSMS has no transaction to take it.
        """
        outbox = self.outbox
        while outbox and RETRY not in self._timers:
            message = outbox[0]
            transaction = message.transaction
            start = message.action == "StartTransaction"
            if not start and transaction.id is None:
                del outbox[0]
                continue
            answer = await self._attempt(session, message)
            if answer is None:
                if not self._failed_to_process(message) and start:
                    self._start_dropped(transaction)
                continue
            outbox.discard(message)  # first still, unless a late answer took it meanwhile
            if start and transaction.id is None:
                transaction.id = answer["transactionId"]
                if self.connectors[transaction.connector].transaction is transaction:
                    await self._stop_if_invalid(session, transaction.connector, answer)

    async def _attempt(self, session: OcppSession, message: Queued) -> dict[str, Any] | None:
        """Send ``message`` once: its answer, or None if the CSMS failed to process it."""
        if message.action != "StartTransaction":
            try:
                return await session.call(message.action, _ready(message, self._phases()))
            except (CallRejected, CallTimeout):
                return None
            except InvalidAnswer:
                return {}  # an answer: the CSMS has it
        try:
            return await session.call(
                message.action,
                _ready(message, self._phases()),
                check=self._answer_check(message.action),
                late=self._late_start(message),
            )
        except (CallRejected, CallTimeout, InvalidAnswer):  # no transactionId to go on with
            return None

    def _late_start(self, message: Queued) -> LateAnswer:
        """What takes a StartTransaction's answer that came after its timeout: the CSMS opened
        the transaction after all, and its id is the one to go on with."""

        check = self._answer_check("StartTransaction")

        def take(answer: dict[str, Any]) -> None:
            transaction = message.transaction
            try:
                check(answer)
            except ocppj.FrameError:
                return
            if transaction.id is not None:
                return
            transaction.id = answer["transactionId"]
            if self.outbox and self.outbox[0] is message:
                self._timers.pop(RETRY, None)  # what waited behind it may go
            self.outbox.discard(message)
            connector = transaction.connector
            if self.connectors[connector].transaction is transaction:
                self._soon(lambda session: self._stop_if_invalid(session, connector, answer))

        return take

    def _start_dropped(self, transaction: Transaction) -> None:
        """The CSMS never took the StartTransaction: the session ends here, unbilled."""
        record = self.connectors[transaction.connector]
        if record.transaction is transaction:
            self._end_locally(transaction.connector)
            record.status = record.release()
            self._status_soon(transaction.connector)

    def _authorized_offline(self, id_tag: str) -> bool:
        """Whether a session may start offline (3.5): an idTag Accepted in the local list,
        with LocalAuthorizeOffline, or any idTag with AllowOfflineTxForUnknownId."""
        configuration = self.configuration
        if configuration.bool_value("AllowOfflineTxForUnknownId"):
            return True
        entry = self.local_list.get(id_tag)
        return (
            configuration.bool_value("LocalAuthorizeOffline")
            and configuration.bool_value("LocalAuthListEnabled")
            and entry is not None
            and entry.get("status") == "Accepted"
        )

    # The actions of a session's timers.

    async def _on_meter(self, session: OcppSession | None, key: Key) -> None:
        """A session's sampled meter values, and its StopTxnSampledData reading kept for the
        stop."""
        transaction = self.connectors[key.connector].transaction
        if transaction is not None:
            if self._sampling():
                reading = self._read(key.connector)
                await self._send_transaction_message(session, transaction, "MeterValues", reading)
            self._keep(transaction, "Sample.Periodic", "StopTxnSampledData")
            self._timers[key] = asyncio.get_running_loop().time() + self._meter_interval()

    async def _report_charging(
        self, session: OcppSession | None, transaction: Transaction, status: Status
    ) -> None:
        """A session's EV goes Charging, SuspendedEV or SuspendedEVSE: its connector's status."""
        payload = self._status(transaction.connector)
        payload["status"] = status
        await call_quietly(session, "StatusNotification", payload)

    async def _on_fault(self, session: OcppSession | None, key: Key) -> None:
        """The connector faults mid-session: Faulted, the session stops, and a while later the
        connector is Available again."""
        record = self.connectors[key.connector]
        transaction = record.transaction
        if transaction is None:
            return
        record.error = FAULT_CODE
        await self._set_status(session, key.connector, Status.FAULTED)
        await self._send_stop(session, transaction, "Other", Status.FAULTED)
        recover = Key(Timer.RECOVER, key.connector)
        self._timers[recover] = asyncio.get_running_loop().time() + FAULT_RECOVERY
        record.status = Status.FAULTED  # not free until it recovers

    async def _on_recover(self, session: OcppSession | None, key: Key) -> None:
        record = self.connectors[key.connector]
        record.error = None
        if record.status is Status.FAULTED:
            await self._set_status(session, key.connector, record.release())

    async def _on_end(self, session: OcppSession | None, key: Key) -> None:
        await self._stop_transaction(session, key.connector, "EVDisconnected")

    # Statuses.

    async def _set_status(
        self, session: OcppSession | None, connector: int, status: Status
    ) -> None:
        self.connectors[connector].status = status
        await call_quietly(session, "StatusNotification", self._status(connector))

    async def _send_statuses(self, session: OcppSession, connectors: Iterable[int]) -> None:
        for connector in connectors:
            await call_quietly(session, "StatusNotification", self._status(connector))

    def _status_soon(self, connector: int) -> None:
        """Report a connector's status as it is now, once booted (the boot's report covers it
        before). Taken now, not when sent: each change is reported, even one undone before
        its StatusNotification goes."""
        if self.state is State.ACCEPTED:
            self._send_soon("StatusNotification", self._status(connector))

    def _status(self, connector: int) -> dict[str, Any]:
        record = self.connectors[connector]
        return {
            "connectorId": connector,
            "errorCode": record.error or "NoError",
            "status": record.status,
        }


def _ready(message: Queued, phases: int) -> dict[str, Any]:
    """The payload to send, with the transactionId the CSMS gave (set by now, or None); a
    reading's on connectors supplying ``phases``."""
    if isinstance(message.payload, Reading):
        return meter_values(message.payload, message.transaction.id, phases)
    if message.action != "StartTransaction":
        message.payload["transactionId"] = message.transaction.id
    return message.payload


def _id_status(answer: dict[str, Any] | None) -> str | None:
    return answer["idTagInfo"]["status"] if answer else None
