"""The CSMS's OCPP 1.6 commands to a charge point (chapter 5), answered.

Each handler takes the CALL's payload, already checked against its schema, and returns the
answer's payload. What a command sets off (a triggered message, a session, a reboot, an
update's steps) is a job, run by the charge point's loop after the answer is sent: the CSMS
sees its answer before what it asked for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import firmware
from swarm.station.connector import BUSY, Status
from swarm.station.firmware import Update
from swarm.station.runner import call_quietly
from swarm.station.schedule import DIAGNOSTICS, FIRMWARE, Key, Timer, seconds_until
from swarm.station.state import State


class Commands:
    """The command handlers of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`, but
    for smart charging (:mod:`swarm.ocpp16.smart_charging`)."""

    __slots__ = ()

    def _on_get_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        return self.configuration.get_configuration(payload)

    def _on_change_configuration(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = self._change_security(payload)  # AuthorizationKey, SecurityProfile
        if answer is not None:
            return answer
        answer, key = self.configuration.change_configuration(payload)
        if key == "WebSocketPingInterval" and answer["status"] == "Accepted":
            self._ping_interval_changed()
        return answer

    def _on_trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        message, connector = payload["requestedMessage"], payload.get("connectorId")
        if connector is not None and not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        # Absent, a connector id means every one it applies to (5.17).
        connectors = [connector] if connector is not None else range(len(self.connectors))
        if message == "BootNotification":
            if self.state is State.ACCEPTED:
                self._send_soon(message, self._boot_payload())
            else:
                self._boot_asked = True  # the boot loop sends it, and acts on the answer
                self._soon(_nothing)
        elif message == "Heartbeat":
            self._send_soon(message, {})
        elif message == "StatusNotification":
            for each in connectors:
                self._soon(lambda session, c=each: self._send_statuses(session, [c]))
        elif message == "MeterValues":
            # Read when sent, as a meter is; connector 0's is the main meter, the sum of all.
            for each in connectors:
                self._soon(
                    lambda session, c=each: call_quietly(
                        session, "MeterValues", self._meter_values(c)
                    )
                )
        elif message == "FirmwareStatusNotification":
            self._send_soon(message, {"status": self.firmware_status})
        elif message == "DiagnosticsStatusNotification":
            self._send_soon(message, {"status": self.diagnostics_status})
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def _on_remote_start_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload.get("connectorId")
        if connector is None:  # the charge point picks a free connector
            free = [c.id for c in self.connectors[1:] if c.free]
            connector = free[0] if free else None
        if (
            self.state is not State.ACCEPTED
            or connector is None
            or not 0 < connector < len(self.connectors)
        ):
            return {"status": "Rejected"}
        record = self.connectors[connector]
        reserved_for_this_tag = (
            record.reservation is not None and record.reservation[1] == payload["idTag"]
        )
        if not (record.free or reserved_for_this_tag):
            return {"status": "Rejected"}
        profile = payload.get("chargingProfile")
        refusal = self._start_profile_refusal(profile)
        if refusal is not None:
            return refusal
        if reserved_for_this_tag:  # the reservation is used up by this session
            record.reservation = None
            self._timers.pop(Key(Timer.RESERVATION, connector), None)
        authorize = self.configuration.bool_value("AuthorizeRemoteTxRequests")
        record.status = Status.PREPARING  # taken: a second request is rejected
        if profile is not None:  # the TxProfile of the transaction it starts (5.11)
            self._keep_profile(connector, profile)
        self._soon(
            lambda session: self._charge(session, connector, payload["idTag"], authorize=authorize)
        )
        return {"status": "Accepted"}

    def _on_remote_stop_transaction(self, payload: dict[str, Any]) -> dict[str, Any]:
        for connector, transaction in self.transactions.items():
            if transaction.id == payload["transactionId"]:
                self._soon(
                    lambda session, c=connector: self._stop_transaction(session, c, "Remote")
                )
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def _on_reset(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._reboot_events()
        self._reboot = f"{payload['type']}Reset"  # after the answer: stop sessions, reboot
        self._soon(_nothing)
        return {"status": "Accepted"}

    def _on_change_availability(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        status = Status.AVAILABLE if payload["type"] == "Operative" else Status.UNAVAILABLE
        targets = [self.connectors[connector]] if connector else self.connectors
        scheduled = False
        for record in targets:
            if record.transaction is not None or record.status in BUSY:
                record.availability = status  # applied when its session ends (5.2)
                scheduled = True
            elif record.status is not status:
                record.status = status
                self._status_soon(record.id)
        return {"status": "Scheduled" if scheduled else "Accepted"}

    def _on_unlock_connector(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if not 0 < connector < len(self.connectors):
            return {"status": "NotSupported"}
        if self.connectors[connector].transaction is not None:  # unlocking ends it (5.18)
            self._soon(lambda session: self._stop_transaction(session, connector, "UnlockCommand"))
        return {"status": "Unlocked"}

    # Reservations (3.12, 5.3, 5.13).

    def _on_reserve_now(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector = payload["connectorId"]
        if connector == 0 or not 0 < connector < len(self.connectors):
            return {"status": "Rejected"}  # ReserveConnectorZeroSupported is false
        record = self.connectors[connector]
        if record.status is Status.UNAVAILABLE:
            return {"status": "Unavailable"}
        if record.transaction is not None or record.status not in (
            Status.AVAILABLE,
            Status.RESERVED,
        ):
            return {"status": "Occupied"}
        if record.reservation is not None and record.reservation[0] != payload["reservationId"]:
            return {"status": "Occupied"}
        expiry = seconds_until(payload["expiryDate"])
        if not expiry:
            return {"status": "Rejected"}  # expired already
        record.reservation = (payload["reservationId"], payload["idTag"])
        self._soon(self._start_timer(Key(Timer.RESERVATION, connector), expiry))
        if record.status is not Status.RESERVED:
            record.status = Status.RESERVED
            self._status_soon(connector)
        return {"status": "Accepted"}

    def _on_cancel_reservation(self, payload: dict[str, Any]) -> dict[str, Any]:
        reservation = payload["reservationId"]
        for record in self.connectors:
            if record.reservation is not None and record.reservation[0] == reservation:
                self._end_reservation(record.id)
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def _end_reservation(self, connector: int) -> None:
        """A reservation expired or was cancelled: the connector is free again."""
        record = self.connectors[connector]
        if record.reservation is not None:
            record.reservation = None
            self._timers.pop(Key(Timer.RESERVATION, connector), None)
            if record.status is Status.RESERVED:
                record.status = Status.AVAILABLE
                self._status_soon(connector)

    async def _on_reservation_timer(self, session: OcppSession | None, key: Key) -> None:
        self._end_reservation(key.connector)

    # The local authorization list (3.5.3, 5.10, 5.15).

    def _on_get_local_list_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"listVersion": self.local_list_version}

    def _on_send_local_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        entries = payload.get("localAuthorizationList", [])
        if payload["updateType"] == "Full":
            updated = {e["idTag"]: e["idTagInfo"] for e in entries if "idTagInfo" in e}
        else:  # Differential: an entry without idTagInfo removes its idTag
            updated = dict(self.local_list)
            for entry in entries:
                if "idTagInfo" in entry:
                    updated[entry["idTag"]] = entry["idTagInfo"]
                else:
                    updated.pop(entry["idTag"], None)
        if len(updated) > self.configuration.int_value("LocalAuthListMaxLength"):
            return {"status": "Failed"}
        self.local_list, self.local_list_version = updated, payload["listVersion"]
        return {"status": "Accepted"}

    def _on_clear_cache(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "Accepted"}

    def _on_data_transfer(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}  # no vendor extensions here

    # Firmware updates and diagnostics uploads (4.4, 4.5, 5.8, 5.19): the statuses still to
    # report, one timer step apart. A SignedUpdateFirmware or a GetLog may replace them
    # (swarm.ocpp16.maintenance), and then they report nothing more.

    def _on_update_firmware(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._firmware is None:  # one update at a time; the answer has no status to refuse
            if self._outcome():
                steps = ["Downloading", "Downloaded", "Installing", "Installed"]
            elif self._rng.random() < 0.5:
                steps = ["Downloading", "DownloadFailed"]
            else:
                steps = ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
            self._firmware = Update(steps, firmware.version_of(payload["location"]))
            self._soon(self._start_timer(FIRMWARE, seconds_until(payload["retrieveDate"])))
        return {}

    def _on_get_diagnostics(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._diagnostics is not None:
            return {}  # busy with an upload: no file this time
        self._diagnostics = Update(["Uploading", "Uploaded" if self._outcome() else "UploadFailed"])
        self._soon(self._start_timer(DIAGNOSTICS, 0.0))
        return {"fileName": f"{self.id}-diagnostics.log"}

    async def _on_firmware_timer(self, session: OcppSession | None, key: Key) -> None:
        update = self._firmware
        if update is None:
            return
        status = await self._advance(session, key, update, "FirmwareStatusNotification")
        if self._firmware is not update:
            return  # replaced while this status was on its way
        self.firmware_status = status if update.steps else "Idle"
        if not update.steps:
            if status == "Installed":
                self._reboot_events(firmware_updated=True)
                self.firmware_version = update.version
                self._reboot = "Reboot"  # to run the new firmware; it boots reporting it
            self._firmware = None

    async def _on_diagnostics_timer(self, session: OcppSession | None, key: Key) -> None:
        update = self._diagnostics
        if update is None:
            return
        status = await self._advance(session, key, update, "DiagnosticsStatusNotification")
        if self._diagnostics is not update:
            return  # cancelled while this status was on its way
        self.diagnostics_status = status if update.steps else "Idle"
        if not update.steps:
            self._diagnostics = None

    async def _advance(
        self, session: OcppSession | None, key: Key, update: Update, action: str
    ) -> str:
        status = update.steps.pop(0)
        await call_quietly(session, action, {"status": status})
        if update.steps and (update is self._firmware or update is self._diagnostics):
            delay = firmware.step_delay(status, self.config.update_step)
            self._timers[key] = asyncio.get_running_loop().time() + delay
        return status


async def _nothing(session: OcppSession) -> None:
    """A job that only wakes the loop, to look at what a CSMS call changed."""
