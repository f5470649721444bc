"""Firmware updates, log uploads and security events, in every OCPP version that has them: 2.0.1's
use cases L01, N01 and A04, which OCPP 1.6's security extension (the Security Whitepaper, edition
3) takes over under the same names. Requirement numbers are 2.0.1's; the whitepaper's follow
where they differ.

An update or an upload is a :class:`Request`: the statuses still to report, one timer step
(``config.update_step``, :func:`swarm.station.firmware.step_delay`) apart, each reported with the
CSMS's ``requestId``:

- a firmware request (2.0.1 UpdateFirmware, 1.6 SignedUpdateFirmware): a signingCertificate
  that leads to no installed ManufacturerRootCertificate is refused, InvalidCertificate, with a
  security event InvalidFirmwareSigningCertificate (L01.FR.02; 1.6 L01.FR.02, .24). Else
  Downloading at ``retrieveDateTime`` (DownloadScheduled until then), Downloaded,
  SignatureVerified when the request carries a signature (1.6's always does; taken as valid,
  unchecked: the file is never downloaded), InstallScheduled while ``installDateTime`` is
  ahead or a transaction runs (L01.FR.06: the install waits for the last one to end),
  Installing, InstallRebooting; then the station reboots (the transactions that started
  meanwhile stop with reason Reboot), boots with the new firmware version, and reports
  Installed once accepted. ``config.update_failures`` is the share that ends in DownloadFailed
  or InstallationFailed instead, half each. ``retries`` and ``retryInterval`` are not
  honoured: a failure is final. A new request cancels an update not installing yet
  (AcceptedCanceled, L01.FR.24, 1.6 L01.FR.26; the cancelled one reports nothing more) and is
  refused while one installs (Rejected, L01.FR.27).
- GetLog: Uploading, then Uploaded or UploadFailure by the same share. A new request cancels an
  upload in progress: AcceptedCanceled (N01.FR.12, 1.6 N01.FR.11), which 2.0.1 also reports for
  the old ``requestId`` (:attr:`Maintenance.reports_cancelled_uploads`).

A trigger for the firmware report repeats the last status sent, with its ``requestId``
(L01.FR.26, 1.6 L01.FR.29), or is Idle when none was or it was Installed (L01.FR.25, 1.6
L01.FR.28); one for LogStatusNotification says Uploading while an upload runs, else Idle. An
update or an upload in progress is gone when the station boots again, as its jobs are (its
status is Idle again), but for the reboot that installs new firmware; it goes on when the
station comes back without a boot (2.0.1, B04).

Security events (A04) wait in a queue, sent in order at once while the station is booted, else
once a boot is accepted or the station is back without one; they outlive a lost connection
(A04.FR.02):
StartupOfTheDevice after power-up and after each reboot, ResetOrReboot after the reboot of a
Reset or of a firmware install (:meth:`Maintenance._reboot_events`), FirmwareUpdated after the
latter (L01.FR.31), and those raised by :meth:`Maintenance._security_event`. A boot after a
lost connection is no startup: it adds none. A version may send none
(:meth:`Maintenance._sends_security_events`: a 1.6 charge point whose CSMS may not know the
message); then none is queued, and the power-up's, queued before such a version knows its
settings, is dropped at the boot.

What differs between the versions is words, which each version gives (class attributes of its
charge point, methods of its mixin): the action of firmware statuses
(:attr:`Maintenance.firmware_report`), how a refusal gives its reason
(``_with_reason``), whether a cancelled upload is reported, whether events are sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from websockets.exceptions import ConnectionClosed

from swarm.protocol.rpc import CallRejected, CallTimeout, InvalidAnswer, OcppSession
from swarm.station import certificates, firmware, identity, meter
from swarm.station.firmware import Update
from swarm.station.runner import call_quietly
from swarm.station.schedule import Key, Timer, seconds_until
from swarm.station.state import State

Event = tuple[str, str | None] | tuple[str, str | None, str]
"""A security event still to send: its type, when it happened (None: when it is sent), and
maybe its techInfo."""

_POWERED_UP: tuple[Event, ...] = (("StartupOfTheDevice", None),)
_INSTALLED_NEXT = frozenset({"InstallRebooting", "InstallationFailed", "Installed"})
"""Statuses that follow Installing: an update whose next status is one is past cancelling."""
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
EVENTS_KEPT = 100
"""Security events queued at most; the oldest go first."""
_TECH_INFO = 255
"""The longest techInfo of a SecurityEventNotification."""
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
    """Firmware requests, log uploads and security events of a charge point.

    A mixin of the version's charge point, before the station in its bases: it extends
    ``__init__``, ``_booted`` and ``_start_clean`` (each calls ``super()``). Slots (declared by
    the concrete class): ``_firmware_report``, the last firmware status sent as (status,
    requestId), or None; ``_security_events``, the events still to send.
    """

    __slots__ = ()

    firmware_report: ClassVar[str]
    """The action that reports a firmware request's statuses: FirmwareStatusNotification
    (2.0.1), SignedFirmwareStatusNotification (1.6, whose FirmwareStatusNotification is the
    plain update's)."""
    reports_cancelled_uploads: ClassVar[bool] = False
    """Whether an upload a new GetLog cancels is reported, LogStatusNotification
    AcceptedCanceled (2.0.1; 1.6's LogStatusNotification has no such status)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._firmware_report: tuple[str, int] | None = None
        self._security_events: tuple[Event, ...] = _POWERED_UP

    def _sends_security_events(self) -> bool:
        """Whether the charge point sends SecurityEventNotifications now."""
        return True

    # L01 Firmware update.

    def _on_firmware_request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a firmware request (2.0.1 UpdateFirmware, 1.6 SignedUpdateFirmware), and
        start it. It replaces any update in ``_firmware`` not installing yet, a 1.6 plain one
        too."""
        current: Update | None = self._firmware
        answer = _ACCEPTED
        if current is not None:
            # Past cancelling: it reported Installing, or its last status is on its way.
            if not current.steps or current.steps[0] in _INSTALLED_NEXT:
                refusal = "an install cannot be cancelled"
                return self._with_reason("Rejected", "InstallOngoing", refusal)
            answer = {"status": "AcceptedCanceled"}
        image = payload["firmware"]
        if "signingCertificate" in image:
            refusal = self._untrusted_signer(image["signingCertificate"])
            if refusal is not None:
                self._security_event("InvalidFirmwareSigningCertificate", refusal)
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

    def _untrusted_signer(self, pem: str) -> str | None:
        """Why a firmware's signing certificate leads to no installed
        ManufacturerRootCertificate, or None when it does (the signature itself, of a file
        never downloaded, is taken as valid)."""
        roots = [c for kind, c in self.certificates if kind == "ManufacturerRootCertificate"]
        try:
            identity.verified_chain(pem, roots)
        except certificates.CertificateError as exc:
            return str(exc)
        return None

    async def _on_firmware_step(self, session: OcppSession | None, key: Key) -> None:
        """The FIRMWARE timer of a :class:`Request`: report its next status, or its wait."""
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
            self._reboot_events(firmware_updated=True)
            self.firmware_version = update.version
            self._reboot = "Reboot"  # the stoppedReason of the transactions it stops
            self._rebooting_into(update)

    def _rebooting_into(self, update: Request) -> None:
        """The station is about to reboot to run the firmware ``update`` installed."""

    async def _report_firmware(
        self, session: OcppSession | None, status: str, request_id: int
    ) -> None:
        self._firmware_report = (status, request_id)
        payload = {"status": status, "requestId": request_id}
        await call_quietly(session, self.firmware_report, payload)

    def _firmware_status(self) -> dict[str, Any]:
        """What a triggered firmware report says (L01.FR.25, .26; 1.6 L01.FR.28, .29)."""
        report = self._firmware_report
        if report is None or report[0] == "Installed":
            return {"status": "Idle"}
        return {"status": report[0], "requestId": report[1]}

    # N01 GetLog.

    def _on_get_log(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Answer a GetLog, and start its upload. It cancels any upload in ``_diagnostics``,
        a 1.6 GetDiagnostics' too."""
        answer = {"status": "Accepted", "filename": f"{self.id}-{payload['logType']}.log"}
        current: Update | None = self._diagnostics
        if current is not None:  # the new request cancels the upload in progress
            answer["status"] = "AcceptedCanceled"
            if isinstance(current, Request) and self.reports_cancelled_uploads:
                self._send_soon(
                    "LogStatusNotification",
                    {"status": "AcceptedCanceled", "requestId": current.request_id},
                )
        steps = ["Uploading", "Uploaded" if self._outcome() else "UploadFailure"]
        self._diagnostics = Request(steps, request_id=payload["requestId"])
        self._timers.pop(Key(Timer.DIAGNOSTICS), None)
        self._soon(self._start_timer(Key(Timer.DIAGNOSTICS), 0.0))
        return answer

    async def _on_log_step(self, session: OcppSession | None, key: Key) -> None:
        """The DIAGNOSTICS timer of a GetLog's :class:`Request`: report its next status."""
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
        """What a triggered LogStatusNotification says: Uploading while a GetLog's upload
        runs, else Idle."""
        upload: Update | None = self._diagnostics
        if not isinstance(upload, Request):
            return {"status": "Idle"}
        return {"status": "Uploading", "requestId": upload.request_id}

    # A04 Security events, and the station's life they follow.

    def _security_event(
        self, kind: str, tech_info: str | None = None, *, once: bool = False
    ) -> None:
        """Report security event ``kind`` (a type of the specs' lists, such as
        FailedToAuthenticateAtCentralSystem), which happened now: queued, and sent soon if
        the charge point is booted, else once it is. ``tech_info``, if given, is the
        notification's techInfo (cut to 255 characters). Nothing while the charge point sends
        no events (a 1.6 one below SecurityProfile 1); with ``once``, nothing while one of
        ``kind`` waits in the queue (a charge point refused at every reconnect reports that
        once per outage)."""
        if not self._sends_security_events():
            return
        if once and any(event[0] == kind for event in self._security_events):
            return
        when = meter.timestamp()
        event: Event = (kind, when) if tech_info is None else (kind, when, tech_info[:_TECH_INFO])
        self._queue_events(event)
        if self.state is State.ACCEPTED:
            self._soon(self._send_security_events)

    def _reboot_events(self, *, firmware_updated: bool = False) -> None:
        """Queue what a reboot about to happen reports once the charge point is back:
        ResetOrReboot (now) and StartupOfTheDevice, once however often the reboot is asked for
        before it comes; and FirmwareUpdated (now) when it runs new firmware."""
        if not self._sends_security_events():
            return
        when = meter.timestamp()
        if not self._reboot:
            self._queue_events(("ResetOrReboot", when), *_POWERED_UP)
        if firmware_updated:
            self._queue_events(("FirmwareUpdated", when))

    def _queue_events(self, *events: Event) -> None:
        """Queue ``events``, keeping the last :data:`EVENTS_KEPT`: a charge point that cannot
        send them (refused, Pending) must not grow without end."""
        self._security_events = (*self._security_events, *events)[-EVENTS_KEPT:]

    async def _send_security_events(self, session: OcppSession) -> None:
        """Send the queued events in order, while booted. One whose CALL a lost connection cut
        short stays queued: sent again once back, rather than lost."""
        while self._security_events and self.state is State.ACCEPTED and not session.closed:
            kind, when, *info = self._security_events[0]
            payload = {"type": kind, "timestamp": when or meter.timestamp()}
            if info:
                payload["techInfo"] = info[0]
            try:
                await session.call("SecurityEventNotification", payload)
            except ConnectionClosed:
                return
            except (CallRejected, CallTimeout, InvalidAnswer):
                pass  # reported by the session; the CSMS had its chance
            self._security_events = self._security_events[1:]

    def _booted(self, interval: float) -> None:
        super()._booted(interval)
        if not self._sends_security_events():
            self._security_events = ()
        report = self._firmware_report
        if report is not None and report[0] == "InstallRebooting":
            self._soon(lambda session: self._report_firmware(session, "Installed", report[1]))
        if self._security_events:
            self._soon(self._send_security_events)

    def _start_clean(self) -> None:
        super()._start_clean()
        report = self._firmware_report
        if report is not None and report[0] in _UNDER_WAY:  # the update is gone: Idle again
            self._firmware_report = None
