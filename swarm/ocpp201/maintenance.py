"""The maintenance of a 2.0.1 station: firmware updates (L01), log uploads (N01) and the security
events of its life (A04).

An update or an upload is a :class:`Request`: the statuses still to report, one timer step
(``config.update_step``, :func:`swarm.station.firmware.step_delay`) apart, each reported with the
CSMS's ``requestId``:

- UpdateFirmware: Downloading at ``retrieveDateTime`` (DownloadScheduled until then),
  Downloaded, SignatureVerified when the request carries a signature (taken as valid, unchecked:
  signed firmware is not verified here), InstallScheduled while ``installDateTime`` is ahead or a
  transaction runs (L01.FR.06: the install waits for the last one to end), Installing,
  InstallRebooting; then the station reboots (the transactions that started meanwhile stop with
  ``stoppedReason`` Reboot), boots with reason FirmwareUpdate and the new ``firmwareVersion``, and
  reports Installed once accepted. ``config.update_failures`` is the share that ends in
  DownloadFailed or InstallationFailed instead, half each. ``retries`` and ``retryInterval`` are
  not honoured: a failure is final. A new request cancels an update not installing yet
  (AcceptedCanceled, L01.FR.24; the cancelled one reports nothing more) and is refused while one
  installs (Rejected, L01.FR.27).
- GetLog: Uploading, then Uploaded or UploadFailure by the same share. A new request cancels an
  upload in progress: AcceptedCanceled, reported for the old ``requestId`` too (N01.FR.12).

A TriggerMessage for FirmwareStatusNotification repeats the last status sent, with its
``requestId`` (L01.FR.26), or Idle when none was or it was Installed (L01.FR.25); one for
LogStatusNotification says Uploading while an upload runs, else Idle. An update or an upload in
progress is gone with the connection, as the station's are (its status is Idle again), but for
the reboot that installs new firmware.

Security events, sent once a boot is accepted: StartupOfTheDevice after power-up and after each
reboot, ResetOrReboot after the reboot of a Reset or of a firmware install, FirmwareUpdated with
Installed (L01.FR.31). A boot after a lost connection is no startup: it sends none.

:class:`Maintenance` is a mixin of the 2.0.1 ChargePoint, which declares its slots, handlers
and timers; it comes first in the bases, before Commands and
Station, whose ``__init__``, ``_booted``, ``_start_clean`` and ``_reset`` it extends (each calls
``super()``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import certificates, firmware, identity, meter
from swarm.station.firmware import Update
from swarm.station.runner import call_quietly
from swarm.station.schedule import Key, Timer, seconds_until

Event = tuple[str, str | None]
"""A security event still to send: its type and when it happened (None: when it is sent)."""

_POWERED_UP: tuple[Event, ...] = (("StartupOfTheDevice", None),)
_INSTALLING = frozenset({"Installing", "InstallRebooting"})
"""Statuses of an update past cancelling (L01.FR.27)."""
_UNDER_WAY = frozenset(
    {
        "DownloadScheduled",
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "InstallScheduled",
        "Installing",
    }
)
"""Statuses of an update still running, which a lost connection ends."""
_WAIT_POLL = 1.0
"""Seconds between two looks of an install waiting for the last transaction to end."""
_ACCEPTED = {"status": "Accepted"}


@dataclass(slots=True)
class Request(Update):
    """A firmware update or a log upload in progress, for the CSMS's request ``request_id``."""

    request_id: int = 0
    download_at: float = 0.0
    """The loop time before which the download waits (retrieveDateTime); 0 once waited for."""
    install_at: float = 0.0
    """The loop time before which the install waits (installDateTime); 0 once waited for."""


class Maintenance:
    """Firmware updates, log uploads and security events of a 2.0.1
    :class:`~swarm.ocpp201.charge_point.ChargePoint`.

    Slots (declared by the concrete class): ``_firmware_report``, the last
    FirmwareStatusNotification sent as (status, requestId), or None; ``_security_events``, the
    events still to send once booted.
    """

    __slots__ = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._firmware_report: tuple[str, int] | None = None
        self._security_events: tuple[Event, ...] = _POWERED_UP

    # L01 Firmware update.

    def _on_update_firmware(self, payload: dict[str, Any]) -> dict[str, Any]:
        current: Request | None = self._firmware
        answer = _ACCEPTED
        if current is not None:
            report = self._firmware_report
            if report is not None and report[1] == current.request_id and report[0] in _INSTALLING:
                # L01.FR.27: an install cannot be cancelled
                return {"status": "Rejected", "statusInfo": {"reasonCode": "InstallOngoing"}}
            answer = {"status": "AcceptedCanceled"}  # L01.FR.24: the new one replaces it
        image = payload["firmware"]
        if "signingCertificate" in image and not self._trusted_signer(image["signingCertificate"]):
            # L01.FR.02, .03: not signed by a manufacturer the station trusts
            self._security_events += (("InvalidFirmwareSigningCertificate", meter.timestamp()),)
            self._soon(self._send_security_events)
            return {"status": "InvalidCertificate"}
        steps = ["Downloading", "Downloaded"]
        if "signature" in image:
            steps.append("SignatureVerified")
        steps.append("Installing")
        if self._outcome():
            steps.append("InstallRebooting")
        elif self._rng.random() < 0.5:
            steps[1:] = ["DownloadFailed"]
        else:
            steps.append("InstallationFailed")
        now = asyncio.get_running_loop().time()
        self._firmware = Request(
            steps,
            firmware.version_of(image["location"]),
            request_id=payload["requestId"],
            download_at=now + seconds_until(image["retrieveDateTime"]),
            install_at=now + seconds_until(image.get("installDateTime")),
        )
        self._timers.pop(Key(Timer.FIRMWARE), None)  # a cancelled update's step must not fire
        self._soon(self._start_timer(Key(Timer.FIRMWARE), 0.0))
        return answer

    def _trusted_signer(self, pem: str) -> bool:
        """Whether a firmware's signing certificate leads to an installed
        ManufacturerRootCertificate (the signature itself, of a file never downloaded, is taken
        as valid)."""
        roots = [c for kind, c in self.certificates if kind == "ManufacturerRootCertificate"]
        try:
            identity.verified_chain(pem, roots)
        except certificates.CertificateError:
            return False
        return True

    async def _on_firmware_timer(self, session: OcppSession | None, key: Key) -> None:
        update: Request | None = self._firmware
        if update is None:
            return
        now = asyncio.get_running_loop().time()
        step = update.steps[0]
        # Waits report their Scheduled status once; a deadline is then spent (set to 0), for a
        # loop's clock may wake a hair before it and must not wait again.
        if step == "Downloading" and update.download_at > now:
            self._timers[key], update.download_at = update.download_at, 0.0
            await self._report_firmware(session, "DownloadScheduled", update.request_id)
            return
        if step == "Installing" and (update.install_at > now or self.transactions):
            if update.install_at > now:
                self._timers[key], update.install_at = update.install_at, 0.0
            else:  # L01.FR.06: the install waits for the last transaction to end
                self._timers[key] = now + max(self.config.update_step, _WAIT_POLL)
            if self._firmware_report != ("InstallScheduled", update.request_id):
                await self._report_firmware(session, "InstallScheduled", update.request_id)
            return
        status = update.steps.pop(0)
        await self._report_firmware(session, status, update.request_id)
        if self._firmware is not update:
            return  # replaced by a new request while this status was on its way
        if update.steps:
            delay = firmware.step_delay(status, self.config.update_step)
            self._timers[key] = asyncio.get_running_loop().time() + delay
            return
        self._firmware = None
        if status == "InstallRebooting":  # the new firmware runs after a reboot
            self.firmware_version = update.version
            self._boot_reason = "FirmwareUpdate"
            self._reboot = "Reboot"  # the stoppedReason of the transactions it stops
            when = meter.timestamp()
            self._security_events += (
                ("ResetOrReboot", when),
                ("StartupOfTheDevice", None),
                ("FirmwareUpdated", when),
            )

    async def _report_firmware(
        self, session: OcppSession | None, status: str, request_id: int
    ) -> None:
        self._firmware_report = (status, request_id)
        payload = {"status": status, "requestId": request_id}
        await call_quietly(session, "FirmwareStatusNotification", payload)

    def _firmware_status(self) -> dict[str, Any]:
        """What a triggered FirmwareStatusNotification says (L01.FR.25, L01.FR.26)."""
        report = self._firmware_report
        if report is None or report[0] == "Installed":
            return {"status": "Idle"}
        return {"status": report[0], "requestId": report[1]}

    # N01 GetLog.

    def _on_get_log(self, payload: dict[str, Any]) -> dict[str, Any]:
        answer = {"status": "Accepted", "filename": f"{self.id}-{payload['logType']}.log"}
        current: Request | None = self._diagnostics
        if current is not None:  # N01.FR.12: the new request cancels the upload in progress
            answer["status"] = "AcceptedCanceled"
            self._send_soon(
                "LogStatusNotification",
                {"status": "AcceptedCanceled", "requestId": current.request_id},
            )
        steps = ["Uploading", "Uploaded" if self._outcome() else "UploadFailure"]
        self._diagnostics = Request(steps, request_id=payload["requestId"])
        self._timers.pop(Key(Timer.DIAGNOSTICS), None)
        self._soon(self._start_timer(Key(Timer.DIAGNOSTICS), 0.0))
        return answer

    async def _on_log_timer(self, session: OcppSession | None, key: Key) -> None:
        upload: Request | None = self._diagnostics
        if upload is None:
            return
        status = upload.steps.pop(0)
        payload = {"status": status, "requestId": upload.request_id}
        await call_quietly(session, "LogStatusNotification", payload)
        if self._diagnostics is not upload:
            return  # cancelled by a new request while this status was on its way
        if upload.steps:
            delay = firmware.step_delay(status, self.config.update_step)
            self._timers[key] = asyncio.get_running_loop().time() + delay
        else:
            self._diagnostics = None

    def _log_status(self) -> dict[str, Any]:
        """What a triggered LogStatusNotification says: Uploading while an upload runs."""
        upload: Request | None = self._diagnostics
        if upload is None:
            return {"status": "Idle"}
        return {"status": "Uploading", "requestId": upload.request_id}

    # F06 TriggerMessage, for the two statuses above; the rest is Commands'.

    # A04 Security events, and the station's life they follow.

    def _booted(self, interval: float) -> None:
        super()._booted(interval)
        report = self._firmware_report
        if report is not None and report[0] == "InstallRebooting":
            self._soon(lambda session: self._report_firmware(session, "Installed", report[1]))
        if self._security_events:
            self._soon(self._send_security_events)

    async def _send_security_events(self, session: OcppSession) -> None:
        while self._security_events and not session.closed:
            (kind, when), *rest = self._security_events
            self._security_events = tuple(rest)
            payload = {"type": kind, "timestamp": when or meter.timestamp()}
            await call_quietly(session, "SecurityEventNotification", payload)

    def _reset(self) -> None:
        """A Reset reboots the station: ResetOrReboot and StartupOfTheDevice once back."""
        if not self._reboot:  # a second Reset before the reboot is the same reboot
            self._security_events += (("ResetOrReboot", meter.timestamp()), *_POWERED_UP)
        super()._reset()

    def _start_clean(self) -> None:
        super()._start_clean()
        report = self._firmware_report
        if report is not None and report[0] in _UNDER_WAY:  # the update is gone: Idle again
            self._firmware_report = None
