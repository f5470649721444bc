"""Block M's certificates and A's own key and certificate of a 2.0.1 station, in 2.0.1 words:
the station's (:mod:`swarm.station.pki`), with refusals that carry a reason, a store counted in
SecurityCtrlr.CertificateEntries (at most its maxLimit) and OrganizationName in CSRs;
GetInstalledCertificateIds (M03); a CertificateSigned of a V2G certificate refused (the station
has no ISO 15118 certificate); and the password of A01, SecurityCtrlr.BasicAuthPassword, which
the station connects with (:mod:`swarm.station.credentials`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from swarm.ocpp201.dialect import with_reason
from swarm.ocpp201.variables import CERTIFICATE_ENTRIES
from swarm.station import certificates
from swarm.station.pki import Pki

STATION_CERTIFICATE = "ChargingStationCertificate"


class Security(Pki):
    """The certificates and password of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    csms_root: ClassVar[str] = "CSMSRootCertificate"
    invalid_certificate_event: ClassVar[str] = "InvalidChargingStationCertificate"
    failed_authentication_event: ClassVar[str] = "FailedToAuthenticateAtCsms"
    invalid_csms_certificate_event: ClassVar[str] = "InvalidCsmsCertificate"

    def _store_limit(self) -> int:
        return CERTIFICATE_ENTRIES

    def _organization(self) -> str:
        return self.device_model.value("SecurityCtrlr", "OrganizationName")

    def _sign_certificate(self, csr: str) -> dict[str, Any]:
        return {"csr": csr, "certificateType": STATION_CERTIFICATE}

    def _on_get_installed_certificate_ids(self, payload: dict[str, Any]) -> dict[str, Any]:
        kinds = set(payload.get("certificateType", ())) or None  # none named: every type
        found = certificates.hash_data(self.certificates, kinds)
        if not found:
            return {"status": "NotFound"}
        chain = [{"certificateType": kind, "certificateHashData": data} for kind, data in found]
        return {"status": "Accepted", "certificateHashDataChain": chain}

    def _on_certificate_signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """As every station's, but Rejected (NoV2GCertificate) for a V2G certificate."""
        if payload.get("certificateType", STATION_CERTIFICATE) != STATION_CERTIFICATE:
            return with_reason(
                "Rejected", "NoV2GCertificate", "this station has no ISO 15118 certificate"
            )
        return super()._on_certificate_signed(payload)

    def _keep_certificates(self, store: certificates.Store) -> None:
        self.certificates = store
        self.device_model.set("SecurityCtrlr", "CertificateEntries", str(len(store)))

    # A01: the password of the security profiles 1 and 2 (swarm.station.credentials).

    def _password(self) -> str | None:
        return self.device_model.value("SecurityCtrlr", "BasicAuthPassword") or None

    def _password_changed(self) -> None:
        """A SetVariables set BasicAuthPassword: the station reconnects with it (A01)."""
        self._security_event("ReconfigurationOfSecurityParameters")
        if self._sends_password():
            self._reconnect()

    def _security_profile(self) -> int:
        """The fleet's, but 1 for none: 2.0.1's profiles start at 1 (a station without a
        password sends the one its CSMS sets)."""
        return max(1, self.config.security_profile)
