"""The virtual OCPP 1.6J charge point: the station (:mod:`swarm.station`) in 1.6 words.

Its life (connect, boot as section 4.2 says, heartbeat, reconnect with backoff, sessions that go
on offline) is the station's; this class gives it its 1.6 vocabulary: the BootNotification, the
StatusNotifications, the transaction messages (:mod:`~swarm.ocpp16.transactions`), the key store
(:mod:`~swarm.ocpp16.configuration`: a changed HeartbeatInterval takes effect at once), and the
answers to the CSMS's commands (:mod:`~swarm.ocpp16.commands`,
:mod:`~swarm.ocpp16.smart_charging`, the security extension's certificates in
:mod:`~swarm.ocpp16.security`, its signed firmware, logs and security events in
:mod:`~swarm.ocpp16.maintenance`). A command it does not handle gets a NotSupported CALLERROR.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from swarm.ocpp16.commands import Commands
from swarm.ocpp16.configuration import Configuration
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp16.maintenance import Maintenance
from swarm.ocpp16.metering import Metering
from swarm.ocpp16.security import Security
from swarm.ocpp16.smart_charging import SmartCharging
from swarm.ocpp16.transactions import Transactions
from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, OcppSession
from swarm.protocol.samples import SampleSink
from swarm.protocol.trace import FrameTrace
from swarm.station.config import ChargePointConfig
from swarm.station.runner import Station, call_quietly, whole_seconds
from swarm.station.schedule import Key, Timer
from swarm.station.sessions import Sessions
from swarm.station.vocabulary import Handler, TimerAction


class ChargePoint(Maintenance, Transactions, Metering, Commands, SmartCharging, Security, Station):
    """One virtual OCPP 1.6J charge point. :meth:`run` is its whole life; cancel it to stop."""

    dialect = OCPP16
    firmware_report = "SignedFirmwareStatusNotification"

    __slots__ = (
        "_firmware_report",
        "_security_events",
        "charging_profiles",
        "configuration",
        "diagnostics_status",
        "firmware_status",
        "local_list",
        "local_list_version",
    )

    def __init__(
        self,
        charge_point_id: str,
        url: str,
        config: ChargePointConfig,
        sink: SampleSink,
        *,
        rng: random.Random | None = None,
        trace: FrameTrace | None = None,
    ) -> None:
        super().__init__(charge_point_id, url, config, sink, rng=rng, trace=trace)
        self.configuration = Configuration(number_of_connectors=config.connectors)
        ping = whole_seconds(config.ping_interval)
        if ping != self.configuration.int_value("WebSocketPingInterval"):  # a key's default
            self.configuration.set("WebSocketPingInterval", ping)
        if config.security_profile:
            self.configuration.set("SecurityProfile", config.security_profile)
        self.configuration.on_change(
            "HeartbeatInterval", lambda name, value: self._heartbeat_changed(float(value))
        )
        # Set from the station's loop, which it wakes.
        self.configuration.on_change(
            "ClockAlignedDataInterval", lambda name, value: self._soon(self._realign)
        )
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self.local_list: dict[str, dict[str, Any]] = {}
        """The local authorization list: idTagInfo by idTag (3.5.3)."""
        self.local_list_version = 0
        self.charging_profiles: dict[int, list[dict[str, Any]]] = {}
        """Charging profiles by connector, as a CSMS set them (3.13)."""

    def _start_clean(self) -> None:
        super()._start_clean()
        self.firmware_status = self.diagnostics_status = "Idle"

    def _boot_payload(self) -> dict[str, Any]:
        return {
            "chargePointVendor": self.config.vendor,
            "chargePointModel": self.config.model,
            "chargePointSerialNumber": self.id,
            "chargeBoxSerialNumber": self.id,
            "firmwareVersion": self.firmware_version,
        }

    async def _boot_request(self, session: OcppSession) -> dict[str, Any]:
        try:
            return await session.call("BootNotification", self._boot_payload(), check=_boot_answer)
        except (CallRejected, CallTimeout, InvalidAnswer):
            return {}  # reported by the session; boot again after the fallback interval

    def _booted(self, interval: float) -> None:
        # The key holds whole seconds (OCPP); the swarm's override may be a fraction of one.
        super()._booted(interval)
        self.configuration.set("HeartbeatInterval", whole_seconds(interval))
        self._align()

    def _meter_interval(self) -> float:
        return (
            self.config.meter_interval
            or self.configuration.int_value("MeterValueSampleInterval")
            or self.config.fallback_interval
        )

    def _retry_policy(self) -> tuple[int, float]:
        configuration = self.configuration
        return (
            configuration.int_value("TransactionMessageAttempts"),
            configuration.int_value("TransactionMessageRetryInterval"),
        )

    def _ping_setting(self) -> int:
        return self.configuration.int_value("WebSocketPingInterval")

    async def _on_authorize(self, session: OcppSession | None, key: Key) -> None:
        config = self.config
        await call_quietly(session, "Authorize", {"idTag": self._rng.choice(config.id_tags)})
        self._timers[key] = asyncio.get_running_loop().time() + self._rng.expovariate(
            1 / config.authorize_interval
        )

    timer_actions: ClassVar[Mapping[Timer, TimerAction]] = {
        Timer.AUTHORIZE: _on_authorize,
        Timer.ARRIVAL: Sessions._on_arrival,
        Timer.METER: Transactions._on_meter,
        Timer.POWER: Sessions._on_power,
        Timer.FAULT: Transactions._on_fault,
        Timer.RECOVER: Transactions._on_recover,
        Timer.END: Transactions._on_end,
        Timer.ALIGNED: Metering._on_aligned,
        Timer.FIRMWARE: Maintenance._on_update_timer,
        Timer.DIAGNOSTICS: Maintenance._on_upload_timer,
        Timer.RESERVATION: Commands._on_reservation_timer,
        Timer.RENEW: Security._on_renewal,
    }

    handlers: ClassVar[Mapping[str, Handler]] = {
        "CancelReservation": Commands._on_cancel_reservation,
        "CertificateSigned": Security._on_certificate_signed,
        "ChangeAvailability": Commands._on_change_availability,
        "ChangeConfiguration": Commands._on_change_configuration,
        "ClearCache": Commands._on_clear_cache,
        "ClearChargingProfile": SmartCharging._on_clear_charging_profile,
        "DataTransfer": Commands._on_data_transfer,
        "DeleteCertificate": Security._on_delete_certificate,
        "ExtendedTriggerMessage": Security._on_extended_trigger_message,
        "GetCompositeSchedule": SmartCharging._on_get_composite_schedule,
        "GetConfiguration": Commands._on_get_configuration,
        "GetDiagnostics": Commands._on_get_diagnostics,
        "GetInstalledCertificateIds": Security._on_get_installed_certificate_ids,
        "GetLocalListVersion": Commands._on_get_local_list_version,
        "GetLog": Maintenance._on_get_log,
        "InstallCertificate": Security._on_install_certificate,
        "RemoteStartTransaction": Commands._on_remote_start_transaction,
        "RemoteStopTransaction": Commands._on_remote_stop_transaction,
        "ReserveNow": Commands._on_reserve_now,
        "Reset": Commands._on_reset,
        "SendLocalList": Commands._on_send_local_list,
        "SetChargingProfile": SmartCharging._on_set_charging_profile,
        "SignedUpdateFirmware": Maintenance._on_firmware_request,
        "TriggerMessage": Commands._on_trigger_message,
        "UnlockConnector": Commands._on_unlock_connector,
        "UpdateFirmware": Commands._on_update_firmware,
    }


def _boot_answer(payload: dict[str, Any]) -> None:
    OCPP16.schemas.check_answer("BootNotification", payload)
