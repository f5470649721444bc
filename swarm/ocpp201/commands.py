"""The answers of a 2.0.1 station to the CSMS's commands (blocks B, C, F, G, P).

Each handler takes a payload valid per its 2.0.1 request schema and returns the response payload
at once; what a command sets off (a report, a transaction, a reboot) runs as a job of the
station's loop, after the answer is sent, as the spec requires.
"""

from __future__ import annotations

from typing import Any

from swarm.ocpp201.device_model import notify_reports
from swarm.protocol import ocppj
from swarm.protocol.rpc import OcppSession
from swarm.station import meter
from swarm.station.connector import BUSY, Status
from swarm.station.schedule import Key, Timer
from swarm.station.state import State

_ACCEPTED = {"status": "Accepted"}
_REJECTED = {"status": "Rejected"}


class Commands:
    """The command handlers of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    # B Provisioning: the device model and its reports, Reset.

    def _on_get_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_size("GetVariables", payload, payload["getVariableData"])
        return self.device_model.get_variables(payload)

    def _on_set_variables(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._check_size("SetVariables", payload, payload["setVariableData"])
        answer, changed = self.device_model.set_variables(payload)
        for component, variable in changed:  # what acts at once
            if (component, variable) == ("OCPPCommCtrlr", "HeartbeatInterval"):
                heartbeat = self.device_model.int_value("OCPPCommCtrlr", "HeartbeatInterval")
                self._heartbeat_changed(float(heartbeat))
            elif (component, variable) == ("OCPPCommCtrlr", "WebSocketPingInterval"):
                self._ping_interval_changed()
            elif component == "AlignedDataCtrlr" and variable in ("Interval", "TxEndedInterval"):
                self._soon(self._realign)  # set from the station's loop, which it wakes
            elif (component, variable) == ("SampledDataCtrlr", "TxEndedInterval"):
                self._soon(self._resample)
            elif component == "OCPPCommCtrlr" and variable.startswith("RetryBackOff"):
                self._csms_backoff = True  # the CSMS's reconnect backoff from now on
            elif (component, variable) == ("SecurityCtrlr", "BasicAuthPassword"):
                self._password_changed()
        return answer

    def _check_size(self, action: str, payload: dict[str, Any], items: list[Any]) -> None:
        """Refuse a request of more items than ItemsPerMessage[action] allows, or longer than
        BytesPerMessage[action] (B05.FR.04, B06.FR.04): a CALLERROR, as the spec says."""
        model = self.device_model
        most = model.int_value("DeviceDataCtrlr", "ItemsPerMessage", variable_instance=action)
        if len(items) > most:
            raise ocppj.FrameError(
                ocppj.OCCURENCE_CONSTRAINT_VIOLATION, f"more than {most} items in one request"
            )
        limit = model.int_value("DeviceDataCtrlr", "BytesPerMessage", variable_instance=action)
        if len(ocppj.call_frame("", action, payload).encode()) > limit:
            raise ocppj.FrameError(ocppj.FORMATION_VIOLATION, f"longer than {limit} bytes")

    def _on_get_base_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        items = self.device_model.report(payload["reportBase"])
        if not items:
            return {"status": "NotSupported"}
        self._report_soon(payload["requestId"], items)
        return _ACCEPTED

    def _on_get_report(self, payload: dict[str, Any]) -> dict[str, Any]:
        items = self.device_model.report_for(payload)
        if not items:
            return {"status": "EmptyResultSet"}
        self._report_soon(payload["requestId"], items)
        return _ACCEPTED

    def _report_soon(self, request_id: int, items: list[dict[str, Any]]) -> None:
        """Send ``items`` in NotifyReports of ItemsPerMessage[GetReport] each, after the answer."""
        per_message = self.device_model.int_value(
            "DeviceDataCtrlr", "ItemsPerMessage", variable_instance="GetReport"
        )
        for report in notify_reports(request_id, items, per_message, meter.timestamp()):
            self._send_soon("NotifyReport", report)

    def _on_reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse = payload.get("evseId", 0)
        if not 0 <= evse < len(self.connectors):
            return _REJECTED
        busy = self.connectors[evse].transaction is not None if evse else self.transactions
        if payload["type"] == "OnIdle" and busy:
            self._idle_resets |= {evse}  # once its (the last) transaction has ended (B12)
            return {"status": "Scheduled"}
        if evse:
            self._soon(lambda session: self._reset_evse(session, evse))
        else:
            self._reset()
        return _ACCEPTED

    def _reset(self) -> None:
        """Reboot after the answer: end the transactions (ImmediateReset), boot again with
        reason RemoteReset."""
        self._reboot = "ImmediateReset"
        self._boot_reason = "RemoteReset"
        self._idle_resets = frozenset()
        self._soon(_nothing)

    async def _reset_evse(self, session: OcppSession, evse: int) -> None:
        """Reboot one EVSE (B11, B12): its transaction ends (ResetCommand, ImmediateReset), its
        reservation goes (Removed), and it is Unavailable for a reboot's pause. An EVSE made
        inoperative stays so."""
        record = self.connectors[evse]
        if record.transaction is not None:
            after = self._rebooting(evse)
            await self._stop_transaction(session, evse, "ResetCommand", "ImmediateReset", after)
        elif record.status is not Status.UNAVAILABLE:
            if record.reservation is not None:
                self._remove_reservation(evse)
            await self._set_status(session, evse, self._rebooting(evse))

    # C Authorization, P DataTransfer.

    def _on_clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        return _ACCEPTED  # the station keeps no authorization cache: it is always clear

    def _on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    # F Remote control.

    def _on_request_start_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        id_tag, remote_start_id = payload["idToken"]["idToken"], payload["remoteStartId"]
        group = payload.get("groupIdToken", {}).get("idToken")
        evse = payload.get("evseId")
        if evse is None:  # the station picks an EVSE free for this idToken
            free = [c.id for c in self.connectors[1:] if self._may_start_at(c.id, id_tag, group)]
            evse = free[0] if free else None
        if self.state is not State.ACCEPTED or evse is None or not 0 < evse < len(self.connectors):
            return _REJECTED
        if not self._may_start_at(evse, id_tag, group):
            return _REJECTED
        profile = payload.get("chargingProfile")
        refusal = None if profile is None else self._start_profile_refusal(evse, profile)
        if refusal is not None:
            return refusal
        reservation_id = self._use_reservation(evse)
        self.connectors[evse].status = Status.PREPARING  # taken: a second request is rejected
        self._status_soon(evse)
        authorize = self.device_model.bool_value("AuthCtrlr", "AuthorizeRemoteStart")
        self._soon(
            lambda session: self._charge(
                session,
                evse,
                id_tag,
                authorize=authorize,
                remote_start_id=remote_start_id,
                reservation_id=reservation_id,
                charging_profile=profile,
            )
        )
        return _ACCEPTED

    def _on_request_stop_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        for connector, transaction in self.transactions.items():
            if transaction.id == payload["transactionId"]:
                self._soon(
                    lambda session, c=connector: self._stop_transaction(
                        session, c, "RemoteStop", "Remote"
                    )
                )
                return _ACCEPTED
        return _REJECTED

    def _on_get_transaction_status(self, payload: dict[str, Any]) -> dict[str, Any]:
        wanted = payload.get("transactionId")
        queued = any(wanted is None or message.transaction.id == wanted for message in self.outbox)
        answer: dict[str, Any] = {"messagesInQueue": queued}
        if wanted is not None:
            answer["ongoingIndicator"] = any(t.id == wanted for t in self.transactions.values())
        return answer

    def _on_unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse, connector = payload["evseId"], payload["connectorId"]
        if not 0 < evse < len(self.connectors) or connector != 1:
            return {"status": "UnknownConnector"}
        if self.connectors[evse].transaction is not None:  # F05.FR.02
            return {"status": "OngoingAuthorizedTransaction"}
        return {"status": "Unlocked"}

    def _on_trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        message = payload["requestedMessage"]
        evse = payload.get("evse", {}).get("id")
        if evse is not None and not 0 < evse < len(self.connectors):
            return _REJECTED
        evses = [evse] if evse is not None else range(1, len(self.connectors))
        if message == "BootNotification":
            if self.state is State.ACCEPTED:  # F06.FR.17: Rejected once accepted
                return _REJECTED
            self._boot_reason = "Triggered"
            self._boot_asked = True
            self._soon(_nothing)
        elif message == "Heartbeat":
            self._send_soon(message, {})
        elif message == "StatusNotification":
            for each in evses:
                self._soon(lambda session, c=each: self._send_statuses(session, [c]))
        elif message == "MeterValues":
            for each in evses:
                self._soon(lambda session, c=each: self._send_meter_values(session, c))
        elif message == "TransactionEvent":
            for each in evses:
                self._soon(lambda session, c=each: self._send_triggered_event(session, c))
        elif message == "FirmwareStatusNotification":
            self._send_soon(message, self._firmware_status())
        elif message == "LogStatusNotification":
            self._send_soon(message, self._log_status())
        elif message == "SignChargingStationCertificate":
            self._soon(self._request_certificate)
        else:
            return {"status": "NotImplemented"}
        return _ACCEPTED

    async def _send_triggered_event(self, session: OcppSession, evse: int) -> None:
        transaction = self.connectors[evse].transaction
        if transaction is not None:
            event = self._event(
                session,
                transaction,
                "Updated",
                "Trigger",
                {},
                readings=[self._read(evse, "Trigger")],
            )
            await self._send_event(session, transaction, event)

    # G Availability.

    def _on_change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse = payload.get("evse", {}).get("id", 0)
        if not 0 <= evse < len(self.connectors):
            return _REJECTED
        status = (
            Status.AVAILABLE if payload["operationalStatus"] == "Operative" else Status.UNAVAILABLE
        )
        targets = [self.connectors[evse]] if evse else self.connectors
        scheduled = False
        for record in targets:
            if status is Status.UNAVAILABLE and record.reservation is not None:
                self._remove_reservation(record.id)  # H01.FR.17: Removed
            elif record.status is Status.RESERVED and status is Status.AVAILABLE:
                continue  # Operative: still Reserved
            rebooting = Key(Timer.REBOOTED, record.id) in self._timers
            if record.transaction is not None or record.status in BUSY or rebooting:
                # Applied when its session ends (G03.FR.05), or once it is back from a reset.
                record.availability = status
                scheduled = True
            elif record.status is not status:
                record.status = status
                self._status_soon(record.id)
        return {"status": "Scheduled" if scheduled else "Accepted"}


async def _nothing(session: OcppSession) -> None:
    pass
