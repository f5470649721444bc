"""The certificates of a 2.0.1 station: InstallCertificate (M05), DeleteCertificate (M04) and
GetInstalledCertificateIds (M03) on the store every station has
(:mod:`swarm.station.certificates`), counted in SecurityCtrlr.CertificateEntries; and its own
key and certificate (A02, A03: TriggerMessage SignChargingStationCertificate, SignCertificate,
CertificateSigned; :mod:`swarm.station.identity`).

The roots it installs are kept and reported, and check the chains the CSMS signs for it; a
``wss://`` CSMS is verified against ``--ca-file`` (or the system's CAs), which is the swarm's,
not each station's. Its own certificate is not used to connect yet, and it has no V2G
certificate.
"""

from __future__ import annotations

from typing import Any

from swarm.ocpp201.dialect import with_reason
from swarm.ocpp201.variables import CERTIFICATE_ENTRIES
from swarm.protocol.rpc import OcppSession
from swarm.station import certificates, credentials, identity, meter

_ACCEPTED = {"status": "Accepted"}

CSMS_ROOT = "CSMSRootCertificate"
"""The type of the roots that the chains the CSMS signs lead to."""

STATION_CERTIFICATE = "ChargingStationCertificate"


class Security:
    """The certificate handlers of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    def _on_install_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted; Rejected for a certificate that does not parse or is not valid now, or
        with the store full (CertificateEntries at its maxLimit)."""
        try:
            certificate = certificates.parse(payload["certificate"])
        except certificates.CertificateError as exc:
            return with_reason("Rejected", "InvalidCertificate", str(exc))
        store = certificates.install(
            self.certificates, payload["certificateType"], certificate, CERTIFICATE_ENTRIES
        )
        if store is None:
            return with_reason(
                "Rejected", "OutOfStorage", f"at most {CERTIFICATE_ENTRIES} certificates"
            )
        self._keep_certificates(store)
        return _ACCEPTED

    def _on_delete_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        store = certificates.delete(self.certificates, payload["certificateHashData"])
        if store is None:
            return {"status": "NotFound"}
        self._keep_certificates(store)
        return _ACCEPTED

    def _on_get_installed_certificate_ids(self, payload: dict[str, Any]) -> dict[str, Any]:
        kinds = set(payload.get("certificateType", ())) or None  # none named: every type
        found = certificates.hash_data(self.certificates, kinds)
        if not found:
            return {"status": "NotFound"}
        chain = [{"certificateType": kind, "certificateHashData": data} for kind, data in found]
        return {"status": "Accepted", "certificateHashDataChain": chain}

    async def _request_certificate(self, session: OcppSession) -> None:
        """A new key and its CSR, in a SignCertificate (A02, A03)."""
        organization = self.device_model.value("SecurityCtrlr", "OrganizationName")
        key, csr = identity.request(organization, self.id)
        payload = {"csr": csr, "certificateType": STATION_CERTIFICATE}
        await identity.ask(self, key, self._call_or_none(session, "SignCertificate", payload))

    def _on_certificate_signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted once the chain is checked (for the key of the pending request, this
        station's identity, valid, leading to an installed CSMS root); else Rejected, and a
        SecurityEventNotification InvalidChargingStationCertificate."""
        if payload.get("certificateType", STATION_CERTIFICATE) != STATION_CERTIFICATE:
            return with_reason(
                "Rejected", "NoV2GCertificate", "this station has no ISO 15118 certificate"
            )
        pending = self.identity.pending if self.identity is not None else None
        if pending is None:
            return with_reason("Rejected", "NoRequest", "no SignCertificate waits for a chain")
        roots = [certificate for kind, certificate in self.certificates if kind == CSMS_ROOT]
        try:
            chain = identity.check_chain(payload["certificateChain"], pending, self.id, roots)
        except certificates.CertificateError as exc:
            self._security_events += (("InvalidChargingStationCertificate", meter.timestamp()),)
            self._soon(self._send_security_events)
            return with_reason("Rejected", "InvalidCertificate", str(exc))
        self.identity.take(chain)
        return _ACCEPTED

    def _keep_certificates(self, store: certificates.Store) -> None:
        self.certificates = store
        self.device_model.set("SecurityCtrlr", "CertificateEntries", str(len(store)))

    # A01: the password of the security profiles 1 and 2 (swarm.station.credentials).

    def _password(self) -> str | None:
        return self.device_model.value("SecurityCtrlr", "BasicAuthPassword") or None

    def _password_changed(self) -> None:
        """A SetVariables set BasicAuthPassword: the station reconnects with it (A01)."""
        if self._security_profile() in credentials.PASSWORD_PROFILES:
            self._reconnect()
