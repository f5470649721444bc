"""The virtual OCPP 2.0.1J charging station: the station (:mod:`swarm.station`) in 2.0.1 words.

Its life (connect, boot as B01-B03 say, heartbeat, reconnect with backoff and come back without
a boot (B04), sessions that go on offline) is the station's; this class gives it its 2.0.1
vocabulary: the BootNotification with its reason, StatusNotifications per EVSE and connector,
TransactionEvents (:mod:`~swarm.ocpp201.transactions`), the device model
(:mod:`~swarm.ocpp201.device_model`: a changed HeartbeatInterval or WebSocketPingInterval
takes effect at once), and the answers to the CSMS's commands: provisioning, remote control and
availability (:mod:`~swarm.ocpp201.commands`), reservations and the local list
(:mod:`~swarm.ocpp201.reservations`), charging profiles (:mod:`~swarm.ocpp201.smart_charging`),
firmware, logs and security events (:mod:`~swarm.station.maintenance`, in 2.0.1 words by
:mod:`~swarm.ocpp201.maintenance`), installed certificates
(:mod:`~swarm.ocpp201.security`). A CSMS command it does
not handle gets a NotSupported CALLERROR; an action of no 2.0.1 side a NotImplemented one.

Each EVSE has one connector: EVSE ``n`` is the station's connector ``n``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from typing import Any, ClassVar

from swarm.ocpp201.commands import Commands
from swarm.ocpp201.device_model import DeviceModel
from swarm.ocpp201.dialect import OCPP201, with_reason
from swarm.ocpp201.maintenance import Maintenance
from swarm.ocpp201.metering import Metering
from swarm.ocpp201.reservations import Reservations
from swarm.ocpp201.security import Security
from swarm.ocpp201.smart_charging import SmartCharging
from swarm.ocpp201.transactions import ID_TOKEN_TYPE, Transactions
from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, OcppSession
from swarm.protocol.samples import SampleSink
from swarm.protocol.trace import FrameTrace
from swarm.station.config import ChargePointConfig
from swarm.station.runner import Station, call_quietly, whole_seconds
from swarm.station.schedule import Key, Timer
from swarm.station.sessions import Sessions
from swarm.station.vocabulary import Handler, TimerAction


class ChargePoint(
    Maintenance, Reservations, SmartCharging, Transactions, Metering, Commands, Security, Station
):
    """One virtual OCPP 2.0.1J charging station. :meth:`run` is its whole life; cancel it to
    stop."""

    dialect = OCPP201
    resumes = True
    firmware_report = "FirmwareStatusNotification"
    reports_cancelled_uploads = True

    __slots__ = (
        "_boot_reason",
        "_csms_backoff",
        "_firmware_report",
        "_idle_resets",
        "_offline_changes",
        "_security_events",
        "charging_profiles",
        "device_model",
        "local_list",
        "reservation_groups",
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
        self.device_model = DeviceModel(evses=config.connectors)
        ping = whole_seconds(config.ping_interval)
        if ping != self.device_model.int_value("OCPPCommCtrlr", "WebSocketPingInterval"):
            self.device_model.set("OCPPCommCtrlr", "WebSocketPingInterval", str(ping))
        if config.security_profile > 1:  # profile 0 is none of 2.0.1's: they start at 1
            self.device_model.set("SecurityCtrlr", "SecurityProfile", config.security_profile)
        self._boot_reason = "PowerUp"
        """The BootNotification's reason: PowerUp, RemoteReset after a Reset, Triggered."""
        self._offline_changes: set[int] | None = None
        """EVSEs whose status changed while the station was offline (B04)."""
        self._idle_resets: frozenset[int] = frozenset()
        """What a Reset OnIdle waits for: the EVSEs whose transaction is to end, 0 for the
        station, which waits for the last one."""
        self._csms_backoff = False
        """Whether the CSMS has set a RetryBackOff variable: its backoff, not the swarm's."""
        self.charging_profiles = None
        """``[(evseId, profile)]`` while the CSMS has set any (K01)."""
        self.local_list = None
        """The local authorization list, once the CSMS has sent one (D01)."""
        self.reservation_groups = None
        """``{evseId: groupIdToken}`` while a reservation has one (H01)."""

    def _with_reason(self, status: str, reason: str, info: str) -> dict[str, Any]:
        return with_reason(status, reason, info)

    async def _boot_request(self, session: OcppSession) -> dict[str, Any]:
        payload = {
            "reason": self._boot_reason,
            "chargingStation": {
                "model": self.config.model,
                "vendorName": self.config.vendor,
                "serialNumber": self.id,
                "firmwareVersion": self.firmware_version,
            },
        }
        try:
            answer = await session.call("BootNotification", payload, check=_boot_answer)
        except (CallRejected, CallTimeout, InvalidAnswer):
            return {}  # reported by the session; boot again after the fallback interval
        if answer["status"] == "Accepted":
            self._boot_reason = "PowerUp"
        return answer

    def _booted(self, interval: float) -> None:
        # The variable holds whole seconds; the swarm's override may be a fraction of one.
        super()._booted(interval)
        self._offline_changes = None  # every status is reported after a boot
        self.device_model.set("OCPPCommCtrlr", "HeartbeatInterval", str(whole_seconds(interval)))
        self._align()

    def _backoff(self, failures: int) -> float:
        """The swarm's backoff (``--reconnect-min``, ``--reconnect-max``), until the CSMS sets
        the RetryBackOff variables; then theirs: RetryBackOffWaitMinimum, doubled after each
        failure up to RetryBackOffRepeatTimes times, plus a random part of up to
        RetryBackOffRandomRange seconds (part 4, 5.3)."""
        if not self._csms_backoff:
            return super()._backoff(failures)
        model = self.device_model
        wait = model.int_value("OCPPCommCtrlr", "RetryBackOffWaitMinimum")
        doublings = min(failures - 1, model.int_value("OCPPCommCtrlr", "RetryBackOffRepeatTimes"))
        spread = model.int_value("OCPPCommCtrlr", "RetryBackOffRandomRange")
        return wait * 2.0 ** max(0, doublings) + self._rng.uniform(0, spread)

    def _meter_interval(self) -> float:
        return (
            self.config.meter_interval
            or self.device_model.int_value("SampledDataCtrlr", "TxUpdatedInterval")
            or self.config.fallback_interval
        )

    def _retry_policy(self) -> tuple[int, float]:
        model = self.device_model
        return (
            model.int_value(
                "OCPPCommCtrlr", "MessageAttempts", variable_instance="TransactionEvent"
            ),
            model.int_value(
                "OCPPCommCtrlr", "MessageAttemptInterval", variable_instance="TransactionEvent"
            ),
        )

    def _ping_setting(self) -> int:
        return self.device_model.int_value("OCPPCommCtrlr", "WebSocketPingInterval")

    async def _on_authorize(self, session: OcppSession | None, key: Key) -> None:
        config = self.config
        id_token = {"idToken": self._rng.choice(config.id_tags), "type": ID_TOKEN_TYPE}
        await call_quietly(session, "Authorize", {"idToken": id_token})
        self._timers[key] = asyncio.get_running_loop().time() + self._rng.expovariate(
            1 / config.authorize_interval
        )

    timer_actions: ClassVar[Mapping[Timer, TimerAction]] = {
        Timer.AUTHORIZE: _on_authorize,
        Timer.ARRIVAL: Sessions._on_arrival,
        Timer.METER: Transactions._on_meter,
        Timer.SAMPLE: Metering._on_sample,
        Timer.POWER: Sessions._on_power,
        Timer.FAULT: Transactions._on_fault,
        Timer.RECOVER: Transactions._on_recover,
        Timer.REBOOTED: Transactions._on_rebooted,
        Timer.END: Transactions._on_end,
        Timer.RESERVATION: Reservations._on_reservation_timer,
        Timer.ALIGNED: Metering._on_aligned,
        Timer.FIRMWARE: Maintenance._on_firmware_step,
        Timer.DIAGNOSTICS: Maintenance._on_log_step,
        Timer.RENEW: Security._on_renewal,
    }

    handlers: ClassVar[Mapping[str, Handler]] = {
        "CancelReservation": Reservations._on_cancel_reservation,
        "CertificateSigned": Security._on_certificate_signed,
        "ChangeAvailability": Commands._on_change_availability,
        "ClearCache": Commands._on_clear_cache,
        "ClearChargingProfile": SmartCharging._on_clear_charging_profile,
        "DataTransfer": Commands._on_data_transfer,
        "DeleteCertificate": Security._on_delete_certificate,
        "GetBaseReport": Commands._on_get_base_report,
        "GetChargingProfiles": SmartCharging._on_get_charging_profiles,
        "GetCompositeSchedule": SmartCharging._on_get_composite_schedule,
        "GetInstalledCertificateIds": Security._on_get_installed_certificate_ids,
        "GetLocalListVersion": Reservations._on_get_local_list_version,
        "GetLog": Maintenance._on_get_log,
        "GetReport": Commands._on_get_report,
        "GetTransactionStatus": Commands._on_get_transaction_status,
        "InstallCertificate": Security._on_install_certificate,
        "GetVariables": Commands._on_get_variables,
        "RequestStartTransaction": Commands._on_request_start_transaction,
        "RequestStopTransaction": Commands._on_request_stop_transaction,
        "ReserveNow": Reservations._on_reserve_now,
        "Reset": Commands._on_reset,
        "SendLocalList": Reservations._on_send_local_list,
        "SetChargingProfile": SmartCharging._on_set_charging_profile,
        "SetVariables": Commands._on_set_variables,
        "TriggerMessage": Commands._on_trigger_message,
        "UnlockConnector": Commands._on_unlock_connector,
        "UpdateFirmware": Maintenance._on_firmware_request,
    }


def _boot_answer(payload: dict[str, Any]) -> None:
    OCPP201.schemas.check_answer("BootNotification", payload)
