"""The security extension's firmware, logs and events for a 1.6 charge point (the Security
Whitepaper, edition 3: L01, N01, A04): the station's (:mod:`swarm.station.maintenance`) in 1.6
words, beside the plain UpdateFirmware and GetDiagnostics (:mod:`swarm.ocpp16.commands`).

- SignedUpdateFirmware is the station's firmware request, its statuses reported in
  SignedFirmwareStatusNotification; a refusal has no reason (1.6 answers carry none).
- GetLog is the station's, its statuses in LogStatusNotification; an upload it cancels is not
  reported (1.6's UploadLogStatusEnumType has no AcceptedCanceled).
- Security events are sent with SecurityProfile 1 or more only: a CSMS without the security
  extension answers SecurityEventNotification with CALLERROR NotImplemented, a failure in the
  run's report. At profile 0 none is queued. A Reset and the install of a plain update are
  reboots too: ResetOrReboot and StartupOfTheDevice (and FirmwareUpdated) once booted again.

The plain and the signed requests share the station's two slots and timers: one update and one
upload at a time. A SignedUpdateFirmware replaces a plain update not installing yet
(AcceptedCanceled) as it does a signed one, and is Rejected while either installs; a plain
UpdateFirmware while any update runs is ignored, as it is during a plain one (its answer has no
status to refuse with). A GetLog cancels a GetDiagnostics upload (AcceptedCanceled) as it does
a GetLog's; a GetDiagnostics during any upload gets no fileName, as during one of its own. A
cancelled plain one reports nothing more, and TriggerMessage then says Idle. TriggerMessage
reports the plain ones only (FirmwareStatusNotification, DiagnosticsStatusNotification),
ExtendedTriggerMessage the signed update and GetLog's upload (:mod:`swarm.ocpp16.security`).

The whitepaper has a charge point that does secure firmware updates answer the plain
UpdateFirmware with CALLERROR NotSupported (L01.FR.20); this one answers both, so that one fleet
serves CSMSs with and without the security extension.
"""

from __future__ import annotations

from typing import Any

from swarm.ocpp16.commands import Commands
from swarm.protocol.rpc import OcppSession
from swarm.station import maintenance
from swarm.station.maintenance import Request
from swarm.station.schedule import Key


class Maintenance(maintenance.Maintenance):
    """Signed firmware updates, log uploads and security events of a 1.6
    :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    def _sends_security_events(self) -> bool:
        """With SecurityProfile 1 or more: its CSMS speaks the security extension."""
        return self.configuration.int_value("SecurityProfile") >= 1

    def _on_firmware_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """SignedUpdateFirmware."""
        answer = super()._on_firmware_request(payload)
        if answer["status"] == "AcceptedCanceled":
            self.firmware_status = "Idle"  # a plain update it replaced is gone
        return answer

    def _on_get_log(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = super()._on_get_log(payload)
        if answer["status"] == "AcceptedCanceled":
            self.diagnostics_status = "Idle"  # a GetDiagnostics upload it cancelled is gone
        return answer

    async def _on_update_timer(self, session: OcppSession | None, key: Key) -> None:
        """The FIRMWARE timer: the next step of the update in progress, signed or plain."""
        if isinstance(self._firmware, Request):
            await self._on_firmware_step(session, key)
        else:
            await Commands._on_firmware_timer(self, session, key)

    async def _on_upload_timer(self, session: OcppSession | None, key: Key) -> None:
        """The DIAGNOSTICS timer: the next step of the upload in progress, GetLog's or
        GetDiagnostics'."""
        if isinstance(self._diagnostics, Request):
            await self._on_log_step(session, key)
        else:
            await Commands._on_diagnostics_timer(self, session, key)
