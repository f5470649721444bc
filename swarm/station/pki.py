"""A station's part in its CSMS's public key infrastructure, in every version: the store of root
certificates (InstallCertificate, DeleteCertificate: M04, M05; :mod:`swarm.station.certificates`)
and its own key and certificate (A02, A03: SignCertificate, CertificateSigned, and a renewal when
the certificate nears expiry; :mod:`swarm.station.identity`).

The roots it installs are kept and reported, and check the chains the CSMS signs for it and the
certificates that sign firmware; a ``wss://`` CSMS is verified against ``--ca-file`` (or the
system's CAs), which are the fleet's. Its own certificate is what it connects with at security
profile 3 (:mod:`swarm.station.credentials`).

:class:`Pki` is a mixin of each version's charge point, which gives its words: the type of the
roots that CSMS chains lead to, the security event of a chain that does not check, where the
store's limit and the CSR's organization come from, how a refusal is worded (``_with_reason``), and
the SignCertificate it sends.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from swarm.protocol.rpc import OcppSession
from swarm.station import certificates, identity
from swarm.station.schedule import Key, Timer

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

RENEW = Key(Timer.RENEW)

RENEW_WAIT = 60.0
"""Seconds before a renewal the CSMS has not answered with a certificate is asked again, twice
as long each time (2.0.1's CertSigningWaitMinimum)."""
RENEW_REPEATS = 3
"""How often it is asked again (CertSigningRepeatTimes); then not before the next boot."""

_ACCEPTED = {"status": "Accepted"}


class Pki:
    """Root certificates and the station's own, for a version's charge point.

    A mixin before the station in the charge point's bases: it extends ``_booted`` (and calls
    ``super()``), and needs the version's ``_with_reason`` and ``_security_event``.
    """

    __slots__ = ()

    csms_root: ClassVar[str]
    """The type of the roots that the chains the CSMS signs lead to."""
    invalid_certificate_event: ClassVar[str]
    """The security event of a CertificateSigned whose chain does not check."""

    # The version's words.

    def _store_limit(self) -> int:
        """How many certificates the store holds at most."""
        raise NotImplementedError

    def _organization(self) -> str:
        """The O of the station's CSRs: 1.6's CpoName, 2.0.1's OrganizationName."""
        raise NotImplementedError

    def _sign_certificate(self, csr: str) -> dict[str, Any]:
        """The SignCertificate payload of ``csr``."""
        return {"csr": csr}

    def _keep_certificates(self, store: certificates.Store) -> None:
        """Hold ``store`` from now on."""
        self.certificates = store

    # M05, M04: the store.

    def _on_install_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted; Rejected for a certificate that does not parse or is not valid now, or with
        the store full."""
        try:
            certificate = certificates.parse(payload["certificate"])
        except certificates.CertificateError as exc:
            return self._with_reason("Rejected", "InvalidCertificate", str(exc))
        limit = self._store_limit()
        store = certificates.install(
            self.certificates, payload["certificateType"], certificate, limit
        )
        if store is None:
            return self._with_reason("Rejected", "OutOfStorage", f"at most {limit} certificates")
        self._keep_certificates(store)
        return _ACCEPTED

    def _on_delete_certificate(self, payload: dict[str, Any]) -> dict[str, Any]:
        store = certificates.delete(self.certificates, payload["certificateHashData"])
        if store is None:
            return {"status": "NotFound"}
        self._keep_certificates(store)
        return _ACCEPTED

    def _installed(self, kind: str) -> list[certificates.Installed]:
        """The installed certificates of type ``kind``."""
        return [certificate for each, certificate in self.certificates if each == kind]

    # A02, A03: the station's own key and certificate.

    async def _request_certificate(self, session: OcppSession) -> None:
        """A new key and its CSR (O the organization, CN the station's id), in a SignCertificate."""
        key, csr = identity.request(self._organization(), self.id)
        call = self._call_or_none(session, "SignCertificate", self._sign_certificate(csr))
        await identity.ask(self, key, call)

    def _on_certificate_signed(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Accepted once the chain is checked (for the key of the pending request, this
        station's identity, valid, leading to an installed CSMS root); its renewal is then due
        as :meth:`~swarm.station.identity.Identity.renew_at` says (A03). Else Rejected
        (NoRequest without a pending request, InvalidCertificate), and a security event for a
        chain that does not check."""
        pending = self.identity.pending if self.identity is not None else None
        if pending is None:
            refusal = "no SignCertificate waits for a chain"
            return self._with_reason("Rejected", "NoRequest", refusal)
        key: ec.EllipticCurvePrivateKey = pending
        try:
            chain = identity.check_chain(
                payload["certificateChain"], key, self.id, self._installed(self.csms_root)
            )
        except certificates.CertificateError as exc:
            self._security_event(self.invalid_certificate_event, str(exc))
            return self._with_reason("Rejected", "InvalidCertificate", str(exc))
        self.identity.take(chain)
        self._soon(self._start_timer(RENEW, self._until_renewal()))
        return _ACCEPTED

    def _until_renewal(self) -> float:
        """Seconds until the certificate in use is due for renewal (0 if it is)."""
        assert self.identity is not None
        when = self.identity.renew_at()
        assert when is not None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())

    async def _on_renewal(self, session: OcppSession | None, key: Key) -> None:
        """The certificate nears expiry: a new key and CSR. Asked again after
        :data:`RENEW_WAIT`, doubling, until a CertificateSigned re-arms it for the new one."""
        identity = self.identity
        if session is None or identity is None or identity.renewals > RENEW_REPEATS:
            return
        identity.renewals += 1
        await self._request_certificate(session)
        wait = RENEW_WAIT * 2 ** (identity.renewals - 1)
        self._timers[key] = asyncio.get_running_loop().time() + wait

    def _booted(self, interval: float) -> None:
        super()._booted(interval)
        if self.identity is not None and self.identity.chain:  # a boot clears the timers
            self.identity.renewals = 0
            self._timers[RENEW] = asyncio.get_running_loop().time() + self._until_renewal()
