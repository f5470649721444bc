"""OCPP 1.6's security extension (the Security Whitepaper, edition 3) in 1.6 words: the store
of roots and the charge point's own certificate (M03 to M05, A02, A03) are the station's
(:mod:`swarm.station.pki`), with CertificateStoreMaxLength, CpoName and refusals without a
reason; GetInstalledCertificateIds; ExtendedTriggerMessage, which also asks for the statuses of
signed firmware and of log uploads (:mod:`swarm.ocpp16.maintenance`); and the security
profiles' keys, AuthorizationKey and SecurityProfile (A01, A05), which the station connects
with (:mod:`swarm.station.credentials`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from swarm.station import certificates, credentials, identity
from swarm.station.pki import Pki

TRIGGERED = frozenset({"BootNotification", "Heartbeat", "MeterValues", "StatusNotification"})
"""What ExtendedTriggerMessage asks for as TriggerMessage does."""

RECONFIGURED = "ReconfigurationOfSecurityParameters"
"""The security event of a new AuthorizationKey or SecurityProfile."""

_ACCEPTED = {"status": "Accepted"}
_REJECTED = {"status": "Rejected"}


class Security(Pki):
    """The security extension of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    csms_root: ClassVar[str] = "CentralSystemRootCertificate"
    invalid_certificate_event: ClassVar[str] = "InvalidChargePointCertificate"
    failed_authentication_event: ClassVar[str] = "FailedToAuthenticateAtCentralSystem"
    invalid_csms_certificate_event: ClassVar[str] = "InvalidCentralSystemCertificate"

    def _store_limit(self) -> int:
        return self.configuration.int_value("CertificateStoreMaxLength")

    def _organization(self) -> str:
        return self.configuration.value("CpoName")

    def _on_get_installed_certificate_ids(self, payload: dict[str, Any]) -> dict[str, Any]:
        found = certificates.hash_data(self.certificates, {payload["certificateType"]})
        if not found:
            return {"status": "NotFound"}
        return {"status": "Accepted", "certificateHashData": [data for _, data in found]}

    def _on_extended_trigger_message(self, payload: dict[str, Any]) -> dict[str, Any]:
        """SignChargePointCertificate: a new key and its CSR, sent in a SignCertificate;
        FirmwareStatusNotification: a SignedFirmwareStatusNotification of the signed update
        (the last status sent, or Idle; L01.FR.28, .29); LogStatusNotification: GetLog's
        upload, Uploading or Idle (:mod:`swarm.ocpp16.maintenance`); the messages
        TriggerMessage has: as it sends them."""
        message = payload["requestedMessage"]
        if message == "SignChargePointCertificate":
            self._soon(self._request_certificate)
            return _ACCEPTED
        if message == "FirmwareStatusNotification":
            self._send_soon(self.firmware_report, self._firmware_status())
            return _ACCEPTED
        if message == "LogStatusNotification":
            self._send_soon(message, self._log_status())
            return _ACCEPTED
        if message in TRIGGERED:
            return self._on_trigger_message(payload)
        return {"status": "NotImplemented"}

    # The security profiles (the whitepaper's A01 and A05), which the runner connects with
    # (swarm.station.credentials).

    def _change_security(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """ChangeConfiguration of AuthorizationKey (A01) or SecurityProfile (A05); None for
        any other key.

        An AuthorizationKey of 16 to 20 bytes in hexadecimal digits is Accepted, and is the
        password of every connection that carries one (profiles 1 and 2, or wherever the fleet
        sends a password): the charge point then reconnects with it at once.
        A SecurityProfile is Accepted when higher and its prerequisites are met
        (:func:`~swarm.station.credentials.raise_refusal`); the charge point then reconnects
        with it, and goes back to the old one should that connect fail (A05.FR.08). Either
        change is a security event, ReconfigurationOfSecurityParameters. Anything else is
        Rejected.
        """
        key, value = payload["key"].lower(), payload["value"]
        if key == "authorizationkey":
            if not credentials.AUTHORIZATION_KEY.fullmatch(value):
                return _REJECTED
            self.configuration.set("AuthorizationKey", value)
            self._security_event(RECONFIGURED)
            if self._sends_password():
                self._reconnect()
            return _ACCEPTED
        if key != "securityprofile":
            return None
        text = value.strip()
        if not (text.isascii() and text.isdigit() and len(text) < 3):
            return _REJECTED
        current, new = self._security_profile(), int(text)
        own = self.identity is not None and bool(self.identity.chain)
        refusal = credentials.raise_refusal(
            current,
            new,
            secure=self.url.startswith("wss:"),
            password=self._has_password(),
            csms_root=bool(self._installed(self.csms_root)),
            certificate=own,
        )
        if refusal is not None:
            return _REJECTED
        if self.identity is None:
            self.identity = identity.Identity()
        self.identity.fallback = current
        self.configuration.set("SecurityProfile", new)
        self._security_event(RECONFIGURED)
        self._reconnect()
        return _ACCEPTED

    def _password(self) -> str | None:
        return self.configuration.value("AuthorizationKey") or None

    def _security_profile(self) -> int:
        return self.configuration.int_value("SecurityProfile")

    def _set_security_profile(self, profile: int) -> None:
        self.configuration.set("SecurityProfile", profile)
