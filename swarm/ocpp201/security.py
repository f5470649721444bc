"""The certificates of a 2.0.1 station (block M): InstallCertificate (M05), DeleteCertificate
(M04) and GetInstalledCertificateIds (M03), on the store every station has
(:mod:`swarm.station.certificates`), counted in SecurityCtrlr.CertificateEntries.

The roots it installs are kept and reported, not used: a ``wss://`` CSMS is verified against
``--ca-file`` (or the system's CAs), which is the swarm's, not each station's. The station holds
no certificate chain of its own (V2GCertificateChain) yet.
"""

from __future__ import annotations

from typing import Any

from swarm.ocpp201.variables import CERTIFICATE_ENTRIES
from swarm.station import certificates

_ACCEPTED = {"status": "Accepted"}


class Security:
    """The certificate handlers of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    def _on_install_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted; Rejected for a certificate that does not parse or is not valid now, or
        with the store full (CertificateEntries at its maxLimit)."""
        try:
            certificate = certificates.parse(payload["certificate"])
        except certificates.CertificateError as exc:
            return _rejected("InvalidCertificate", str(exc))
        store = certificates.install(
            self.certificates, payload["certificateType"], certificate, CERTIFICATE_ENTRIES
        )
        if store is None:
            return _rejected("OutOfStorage", f"at most {CERTIFICATE_ENTRIES} certificates")
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

    def _keep_certificates(self, store: certificates.Store) -> None:
        self.certificates = store
        self.device_model.set("SecurityCtrlr", "CertificateEntries", str(len(store)))


def _rejected(reason: str, info: str) -> dict[str, Any]:
    return {"status": "Rejected", "statusInfo": {"reasonCode": reason, "additionalInfo": info}}
