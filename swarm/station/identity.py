"""A charge point's own key and certificate (OCPP 1.6's security extension, use case A02, and
2.0.1's A02, A03): made when the CSMS asks, as a key and a certificate signing request (CSR)
that the CSMS signs, and taken when it sends the signed chain back, once checked. At security
profile 3 it connects with them (:mod:`swarm.station.credentials`).

A key and its CSR take 0.08 to 0.13 ms (EC P-256: ``python -m bench.certificates``), about what
one message costs, and only when the CSMS asks: they are made on the event loop, in the job the
CSMS's call set off, never on the path of the charge point's messages. (A worker thread would
be a greenlet in a Locust process, where gevent patches threading, and would never run.)
Nothing exists per charge point until the CSMS asks.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import ssl
import tempfile
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import NameOID

from swarm.station.certificates import CertificateError, Installed

logger = logging.getLogger(__name__)

PEM_END = "-----END CERTIFICATE-----"

RENEW_BEFORE = timedelta(days=30)
"""A certificate is renewed when it expires within this (A03.FR.02: one month)."""


@dataclass(slots=True)
class Identity:
    """A charge point's own credentials: the key of its certificate chain, the one of a request
    the CSMS has yet to answer (the chain in use stays until the new one comes), and the
    security profile to fall back to should the first connection on a raised one fail
    (A05.FR.08)."""

    pending: ec.EllipticCurvePrivateKey | None = None
    key: ec.EllipticCurvePrivateKey | None = None
    chain: tuple[x509.Certificate, ...] = ()
    fallback: int | None = None
    renewals: int = 0
    """Renewals asked since the chain in use came (:mod:`swarm.station.pki`)."""
    context: ssl.SSLContext | None = None
    """The TLS context that presents ``chain``, once a connection needed it."""

    def take(self, chain: tuple[x509.Certificate, ...]) -> None:
        """The CSMS signed the pending request: its key and ``chain`` are in use from now (the
        next connection presents them, A02.FR.08)."""
        self.key, self.chain, self.pending, self.context = self.pending, chain, None, None
        self.renewals = 0

    def tls_context(self, fleet: ssl.SSLContext) -> ssl.SSLContext:
        """A TLS client context that trusts what the fleet's context ``fleet`` trusts and
        presents this chain and its key; made once per chain (1.3 ms, no longer than one made
        from files: ``python -m bench.certificates``)."""
        if self.context is None:
            assert self.key is not None and self.chain
            self.context = _client_context(fleet, self.key, self.chain)
        return self.context

    def renew_at(self) -> datetime | None:
        """When the certificate in use is due for renewal (A03.FR.02: a month before it
        expires; one third of its lifetime before, for one that lives less than three months),
        None without one."""
        if not self.chain:
            return None
        leaf = self.chain[0]
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        return leaf.not_valid_after_utc - min(RENEW_BEFORE, lifetime / 3)


async def ask(
    station: Any,
    key: ec.EllipticCurvePrivateKey,
    sign_certificate: Awaitable[dict[str, Any] | None],
) -> None:
    """Send a SignCertificate for ``key`` (``sign_certificate``, the call; its answer or None).
    The request waits for its chain from when it is sent: a CSMS may send the CertificateSigned
    right behind its answer, before the station has read it. Refused, it waits no more."""
    if station.identity is None:
        station.identity = Identity()
    station.identity.pending = key
    answer = await sign_certificate
    accepted = answer is not None and answer["status"] == "Accepted"
    if not accepted and station.identity.pending is key:
        station.identity.pending = None


def request(organization: str, common_name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A new key and the PEM of its CSR: O ``organization`` (1.6's CpoName, 2.0.1's
    OrganizationName), CN ``common_name`` (the charge point's identity)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return key, csr.public_bytes(Encoding.PEM).decode()


def check_chain(
    chain_pem: str,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    roots: Iterable[Installed],
) -> tuple[x509.Certificate, ...]:
    """The certificates of a CertificateSigned's chain (the charge point's first), checked: its
    first is for ``key`` and ``common_name``, each is valid now and signed by the next, and the
    last by one of ``roots``. CertificateError says what is wrong."""
    chain = verified_chain(chain_pem, roots)
    leaf = chain[0]
    if _public(leaf.public_key()) != _public(key.public_key()):
        raise CertificateError("the certificate is not for the key of the request")
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if [name.value for name in names] != [common_name]:
        raise CertificateError(f"the certificate is not for {common_name}")
    return chain


def verified_chain(chain_pem: str, roots: Iterable[Installed]) -> tuple[x509.Certificate, ...]:
    """The certificates of a PEM chain, each valid now and signed by the next, the last by one
    of ``roots`` (or one of them); CertificateError says what is wrong."""
    try:
        chain = tuple(x509.load_pem_x509_certificates(chain_pem.encode()))
    except ValueError:
        raise CertificateError("not PEM X.509 certificates") from None
    now = datetime.now(UTC)
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise CertificateError("a certificate of the chain is not valid now")
    for certificate, issuer in itertools.pairwise(chain):
        if not _signed_by(certificate, issuer):
            raise CertificateError("the chain is broken")
    last = chain[-1]
    if not any(last == root.certificate or _signed_by(last, root.certificate) for root in roots):
        raise CertificateError("the chain leads to no installed root")
    return chain


def _client_context(
    fleet: ssl.SSLContext, key: ec.EllipticCurvePrivateKey, chain: tuple[x509.Certificate, ...]
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = fleet.check_hostname, fleet.verify_mode
    if fleet.verify_mode != ssl.CERT_NONE:
        authorities = fleet.get_ca_certs(binary_form=True)
        if authorities:
            context.load_verify_locations(cadata=b"".join(authorities))
        else:  # the system's CAs, which a directory of them loads only when one is needed
            _warn_of_system_cas()
            context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()) + b"".join(
        certificate.public_bytes(Encoding.PEM) for certificate in chain
    )
    _load_chain(context, pem)
    return context


def _load_chain(context: ssl.SSLContext, pem: bytes) -> None:
    """Load a PEM of a key and its chain into ``context``. ssl reads them from a file only: on
    Linux one in memory alone (memfd); elsewhere a private temporary one, gone once read."""
    if hasattr(os, "memfd_create"):
        descriptor = os.memfd_create("ocpp-swarm-identity")
        try:
            with open(descriptor, "wb", closefd=False) as file:
                file.write(pem)
            context.load_cert_chain(f"/proc/self/fd/{descriptor}")
        finally:
            os.close(descriptor)
        return
    descriptor, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


@functools.cache
def _warn_of_system_cas() -> None:
    logger.warning(
        "ocpp-swarm: the charge points' own TLS contexts trust the system's CAs, about 830 KiB"
        " each: give --ca-file (the CAs of the CSMS) to keep them small"
    )


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _public(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
