"""The certificates of OCPP 1.6's security extension (the Security Whitepaper, edition 3):
InstallCertificate, DeleteCertificate and GetInstalledCertificateIds (use cases M03 to M05) on
the store every station has (:mod:`swarm.station.certificates`); the charge point's own key and
certificate (A02: ExtendedTriggerMessage SignChargePointCertificate, SignCertificate,
CertificateSigned; :mod:`swarm.station.identity`); ExtendedTriggerMessage, which also asks for
the statuses of signed firmware and of log uploads (:mod:`swarm.ocpp16.maintenance`).

The roots it installs are kept and reported, and check the chains the CSMS signs for it; a
``wss://`` CSMS is verified against ``--ca-file`` (or the system's CAs), which is the swarm's,
not each charge point's. Its own certificate is not used to connect yet.
"""

from __future__ import annotations

from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import certificates, credentials, identity

CSMS_ROOT = "CentralSystemRootCertificate"
"""The type of the roots that the chains the CSMS signs lead to."""

TRIGGERED = frozenset({"BootNotification", "Heartbeat", "MeterValues", "StatusNotification"})
"""What ExtendedTriggerMessage asks for as TriggerMessage does."""

_ACCEPTED = {"status": "Accepted"}
_REJECTED = {"status": "Rejected"}


class Security:
    """The certificate handlers of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    def _on_install_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted; Rejected for a certificate that does not parse or is not valid now, or
        with the store full (CertificateStoreMaxLength)."""
        try:
            certificate = certificates.parse(payload["certificate"])
        except certificates.CertificateError:
            return _REJECTED
        limit = self.configuration.int_value("CertificateStoreMaxLength")
        store = certificates.install(
            self.certificates, payload["certificateType"], certificate, limit
        )
        if store is None:
            return _REJECTED
        self.certificates = store
        return _ACCEPTED

    def _on_delete_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        store = certificates.delete(self.certificates, payload["certificateHashData"])
        if store is None:
            return {"status": "NotFound"}
        self.certificates = store
        return _ACCEPTED

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

    async def _request_certificate(self, session: OcppSession) -> None:
        organization = self.configuration.value("CpoName")
        key, csr = identity.request(organization, self.id)
        await identity.ask(self, key, self._call_or_none(session, "SignCertificate", {"csr": csr}))

    def _on_certificate_signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted once the chain is checked (for the key of the pending request, this charge
        point's identity, valid, leading to an installed Central System root); else Rejected,
        and a security event InvalidChargePointCertificate."""
        pending = self.identity.pending if self.identity is not None else None
        if pending is None:
            return _REJECTED  # no request waits for a chain
        roots = [certificate for kind, certificate in self.certificates if kind == CSMS_ROOT]
        try:
            chain = identity.check_chain(payload["certificateChain"], pending, self.id, roots)
        except certificates.CertificateError as exc:
            self._security_event("InvalidChargePointCertificate", str(exc))
            return _REJECTED
        self.identity.take(chain)
        return _ACCEPTED

    # The security profiles (the whitepaper's A01 and A05), which the runner connects with
    # (swarm.station.credentials).

    def _change_security(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """ChangeConfiguration of AuthorizationKey (A01) or SecurityProfile (A05); None for
        any other key.

        An AuthorizationKey of 16 to 20 bytes in hexadecimal digits is Accepted and is the
        password of the next connection, to which a charge point at profile 1 or 2 goes at once.
        A SecurityProfile is Accepted when higher and its prerequisites are met
        (:func:`~swarm.station.credentials.raise_refusal`); the charge point then reconnects
        with it, and goes back to the old one should that connect fail (A05.FR.08). Anything
        else is Rejected.
        """
        key, value = payload["key"].lower(), payload["value"]
        if key == "authorizationkey":
            if not credentials.AUTHORIZATION_KEY.fullmatch(value):
                return _REJECTED
            self.configuration.set("AuthorizationKey", value)
            if self._security_profile() in credentials.PASSWORD_PROFILES:
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
            # The fleet's password travels in the connect options' Authorization header.
            password=bool(self._password()) or "additional_headers" in self.config.connect_options,
            csms_root=any(kind == CSMS_ROOT for kind, _ in self.certificates),
            certificate=own,
        )
        if refusal is not None:
            return _REJECTED
        if self.identity is None:
            self.identity = identity.Identity()
        self.identity.fallback = current
        self.configuration.set("SecurityProfile", new)
        self._reconnect()
        return _ACCEPTED

    def _password(self) -> str | None:
        return self.configuration.value("AuthorizationKey") or None

    def _security_profile(self) -> int:
        return self.configuration.int_value("SecurityProfile")

    def _set_security_profile(self, profile: int) -> None:
        self.configuration.set("SecurityProfile", profile)
