"""The certificates a charge point trusts: the roots its CSMS installs (InstallCertificate),
lists (GetInstalledCertificateIds) and deletes (DeleteCertificate), in OCPP 1.6's security
extension and 2.0.1's block M alike; each version only names the types and words the answers.

A fleet's charge points mostly hold the same few roots. A certificate is parsed once, the first
time any charge point of the process is given it, and every store that holds it refers to that
one :class:`Installed` (its PEM text and its hash data by algorithm), kept while some store does.
A store is a tuple of ``(type, Installed)``, empty until the CSMS installs one: nothing per
charge point until then.

The hash data identify a certificate as OCSP does (RFC 6960, CertID): the hash of its issuer's
name (DER) and of its issuer's public key (the key's bits, without tag and length), and its
serial number in hexadecimal without leading zeroes.
"""

from __future__ import annotations

import hashlib
import weakref
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_ALGORITHMS = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}

Store = tuple[tuple[str, "Installed"], ...]
"""A charge point's installed certificates: ``(type, certificate)``, in the order installed."""

EMPTY: Store = ()

_parsed: weakref.WeakValueDictionary[str, Installed] = weakref.WeakValueDictionary()
"""Every certificate some store holds, by its PEM text."""


class Installed:
    """A certificate as installed: parsed once per process, shared by the stores that hold it."""

    __slots__ = ("__weakref__", "_hashes", "certificate", "pem")

    def __init__(self, pem: str, certificate: x509.Certificate) -> None:
        self.pem = pem
        self.certificate = certificate
        self._hashes: dict[tuple[str, bytes], dict[str, str]] = {}

    @property
    def self_signed(self) -> bool:
        return self.certificate.issuer == self.certificate.subject

    def hash_data(self, algorithm: str, issuer_key: bytes) -> dict[str, str]:
        """Its CertificateHashDataType with ``algorithm``, given its issuer's key bits."""
        key = (algorithm, issuer_key)
        found = self._hashes.get(key)
        if found is None:
            digest = HASH_ALGORITHMS[algorithm]
            issuer_name = self.certificate.issuer.public_bytes()
            found = self._hashes[key] = {
                "hashAlgorithm": algorithm,
                "issuerNameHash": digest(issuer_name).hexdigest(),
                "issuerKeyHash": digest(issuer_key).hexdigest(),
                "serialNumber": format(self.certificate.serial_number, "x"),
            }
        return found


class CertificateError(ValueError):
    """A certificate that cannot be installed: it does not parse, or is not valid now."""


def parse(pem: str) -> Installed:
    """The one :class:`Installed` of a PEM certificate; CertificateError if it does not parse
    or is not valid now."""
    found = _parsed.get(pem)
    if found is None:
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            raise CertificateError("not a PEM X.509 certificate") from None
        found = Installed(pem, certificate)
        _parsed[pem] = found
    now = datetime.now(UTC)
    certificate = found.certificate
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise CertificateError("not valid now")
    return found


def install(store: Store, kind: str, certificate: Installed, limit: int) -> Store | None:
    """``store`` with ``certificate`` installed as ``kind`` (again: as it was); None if the
    store already holds ``limit`` certificates."""
    if (kind, certificate) in store:
        return store
    if len(store) >= limit:
        return None
    return (*store, (kind, certificate))


def hash_data(store: Store, kinds: set[str] | None, algorithm: str = "SHA256") -> list[Any]:
    """``[(type, hash data)]`` of the certificates of ``kinds`` (None: all), as installed."""
    return [
        (kind, certificate.hash_data(algorithm, _issuer_key(store, certificate)))
        for kind, certificate in store
        if kinds is None or kind in kinds
    ]


def delete(store: Store, wanted: dict[str, Any]) -> Store | None:
    """``store`` without the certificates that ``wanted`` (a CertificateHashDataType) names;
    None if it names none of them. Hexadecimal compares whatever its case."""
    algorithm = wanted["hashAlgorithm"]
    fields = ("issuerNameHash", "issuerKeyHash", "serialNumber")
    target = tuple(str(wanted[field]).lower().lstrip("0") for field in fields)

    def named(certificate: Installed) -> bool:
        found = certificate.hash_data(algorithm, _issuer_key(store, certificate))
        return tuple(found[field].lstrip("0") for field in fields) == target

    kept = tuple(entry for entry in store if not named(entry[1]))
    return kept if len(kept) < len(store) else None


def _issuer_key(store: Store, certificate: Installed) -> bytes:
    """The bits of the public key of ``certificate``'s issuer: its own for a root; the key of
    an installed certificate whose subject is its issuer; else (an issuer it does not hold) its
    own too, which is all it can tell."""
    issuer = certificate
    if not certificate.self_signed:
        for _, other in store:
            if other.certificate.subject == certificate.certificate.issuer:
                issuer = other
                break
    return _key_bits(issuer.certificate)


def _key_bits(certificate: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits of a certificate (RFC 6960's issuerKeyHash is of
    these): read from its SubjectPublicKeyInfo, DER, past the algorithm."""
    spki = certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    _, body = _tlv(spki, 0)  # SEQUENCE
    algorithm_end, _ = _tlv(spki, body)  # AlgorithmIdentifier
    _, bits = _tlv(spki, algorithm_end)  # BIT STRING
    return spki[bits + 1 :]  # past its count of unused bits


def _tlv(der: bytes, at: int) -> tuple[int, int]:
    """Where the DER element at ``at`` ends, and where its content starts."""
    length = der[at + 1]
    start = at + 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[start : start + size], "big")
        start += size
    return start + length, start
