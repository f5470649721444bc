"""The embedded CSMS as a certificate authority: it signs the certificate signing requests that
charge points send in SignCertificate (OCPP 1.6's security extension A02, 2.0.1's A02/A03) and
sends each its chain in a CertificateSigned.

Its root is made when the CSMS starts (EC P-256, valid ten years) and is only in memory, or is
one given by file (``--ca-cert``, ``--ca-key``: a CA certificate and its EC or RSA key). A
charge point accepts the chains only once the root is installed in it (InstallCertificate with
:attr:`Authority.root_pem`, which ``GET /ca`` of the control API gives).
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

ISSUED_FOR = datetime.timedelta(days=365)
"""How long a certificate it signs is valid."""


class Authority:
    """A root key and certificate, and the certificates they sign."""

    def __init__(
        self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    ) -> None:
        self.certificate = certificate
        self.key = key
        self.root_pem = certificate.public_bytes(Encoding.PEM).decode()

    @classmethod
    def make(cls, name: str = "ocpp-swarm CSMS root") -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, certificate_path: str, key_path: str) -> Authority:
        """The authority of a CA certificate and its key, PEM files; ValueError says what is
        wrong with them."""
        try:
            with open(certificate_path, "rb") as file:
                certificate = x509.load_pem_x509_certificate(file.read())
            with open(key_path, "rb") as file:
                key = serialization.load_pem_private_key(file.read(), password=None)
        except OSError as exc:
            raise ValueError(f"cannot read {exc.filename}: {exc.strerror}") from None
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a PEM certificate and unencrypted key: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError("the key must be an EC or RSA key")
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise ValueError("the key is not the certificate's")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.value.ca:
            raise ValueError("the certificate is not a CA's (BasicConstraints ca)")
        return cls(certificate, key)

    def sign(self, csr_pem: str, charge_point_id: str) -> str:
        """The PEM chain (the new certificate alone: the root is the charge point's already) for
        a CSR of ``charge_point_id``; ValueError if it does not parse, is not signed by its
        key, or is for another identity (its CN)."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise ValueError("the CSR is not PEM") from None
        if not csr.is_signature_valid:
            raise ValueError("the CSR is not signed by its key")
        names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if names != [charge_point_id]:
            raise ValueError(f"the CSR is not for {charge_point_id}")
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + ISSUED_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(Encoding.PEM).decode()


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
