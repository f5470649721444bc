"""The certificates of OCPP 1.6's security extension (the Security Whitepaper, edition 3):
InstallCertificate, DeleteCertificate and GetInstalledCertificateIds (use cases M03 to M05),
on the store every station has (:mod:`swarm.station.certificates`).

The roots it installs are kept and reported, not used: a ``wss://`` CSMS is verified against
``--ca-file`` (or the system's CAs), which is the swarm's, not each charge point's.
"""

from __future__ import annotations

from typing import Any

from swarm.station import certificates

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
