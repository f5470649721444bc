"""The embedded CSMS as a certificate authority, and the firmware manufacturer it plays.

:class:`Authority` signs the certificate signing requests that charge points send in
SignCertificate (OCPP 1.6's security extension A02, 2.0.1's A02/A03); the CSMS sends each its
chain in a CertificateSigned. Its root is made when the CSMS starts (EC P-256, valid ten years)
and is only in memory, or is one given by file (``--ca-cert``, ``--ca-key``: a CA certificate
and its EC or RSA key). A charge point accepts the chains only once the root is installed in it
(InstallCertificate with :attr:`Authority.root_pem`, which ``GET /ca`` of the control API gives).

:class:`Manufacturer` is the other hierarchy OCPP knows (2.0.1 part 2, 1.4.2): a manufacturer
root and its firmware signing certificate, issued by the root itself (the L01 remarks forbid an
intermediate), which signs firmware for SignedUpdateFirmware (1.6) and UpdateFirmware (2.0.1).
A charge point trusts the signing certificate once the manufacturer root is installed in it as a
ManufacturerRootCertificate. Both are made when the CSMS starts, in memory (two EC keys and two
certificates: about a millisecond).

Their certificates follow 2.0.1's certificate properties (A00.FR.501-514): EC P-256 keys, ECDSA
with SHA-256, a serial number, O and CN in the subject, a Key Usage restricting each to what it
does (roots sign certificates, the firmware signing certificate signs firmware, a charge
point's signs its TLS handshakes), and no Extended Key Usage, which A00.FR.514 advises against
for compatibility with ISO 15118.
"""

from __future__ import annotations

import base64
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

ISSUED_FOR = datetime.timedelta(days=365)
"""How long a certificate it signs is valid, the firmware signing certificate too."""
ROOT_FOR = datetime.timedelta(days=3650)
"""How long a root made here is valid."""
ORGANIZATION = "ocpp-swarm"
"""The O of the subjects made here (A00.FR.509)."""
_BACKDATE = datetime.timedelta(minutes=5)
"""How far before now a certificate made here is valid: clocks of charge points may lag."""


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
        """A new root, EC P-256, valid ten years."""
        return cls(*_root(name))

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

    def key_pem(self) -> bytes:
        """Its private key, PEM, unencrypted: for a file only its own processes read."""
        return _private_pem(self.key)

    def sign(
        self, csr_pem: str, charge_point_id: str, lifetime: datetime.timedelta = ISSUED_FOR
    ) -> str:
        """The PEM chain (the new certificate alone: the root is the charge point's already) for
        a CSR of ``charge_point_id``, valid ``lifetime`` from now; ValueError if it does not
        parse, is not signed by its key, or is for another identity (its CN)."""
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
            .not_valid_before(now - min(_BACKDATE, lifetime / 10))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(Encoding.PEM).decode()


class Manufacturer:
    """A manufacturer root, its firmware signing certificate and key, and the signatures of the
    firmware it makes."""

    def __init__(
        self,
        root: x509.Certificate,
        signing_certificate: x509.Certificate,
        signing_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        self.root = root
        self.signing_certificate = signing_certificate
        self._signing_key = signing_key
        self.root_pem = root.public_bytes(Encoding.PEM).decode()
        self.signing_pem = signing_certificate.public_bytes(Encoding.PEM).decode()

    @classmethod
    def make(cls, name: str = "ocpp-swarm manufacturer") -> Manufacturer:
        """A new root (valid ten years) and a firmware signing certificate it issues (valid a
        year), EC P-256 both."""
        root, root_key = _root(f"{name} root")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{name} firmware signing"))
            .issuer_name(root.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + ISSUED_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .sign(root_key, hashes.SHA256())
        )
        return cls(root, certificate, key)

    def to_pem(self) -> bytes:
        """The root, the firmware signing certificate and its private key (unencrypted), PEM,
        in one file's bytes, which :meth:`from_pem` reads."""
        return (self.root_pem + self.signing_pem).encode() + _private_pem(self._signing_key)

    @classmethod
    def from_pem(cls, data: bytes) -> Manufacturer:
        """The manufacturer that :meth:`to_pem` wrote; ValueError if it is not that."""
        try:
            certificates = x509.load_pem_x509_certificates(data)
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not a manufacturer's root, certificate and key: {exc}") from None
        if len(certificates) != 2 or not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not a manufacturer's root, certificate and EC key")
        if _spki(key.public_key()) != _spki(certificates[1].public_key()):
            raise ValueError("the key is not the firmware signing certificate's")
        return cls(certificates[0], certificates[1], key)

    def sign(self, image: bytes) -> str:
        """The signature of a firmware ``image`` by the signing certificate's key: ECDSA with
        SHA-256 (DER), base64, as the signature field of a firmware says (at most 800
        characters; this is about 96). 2.0.1's L01.FR.04 names RSA-PSS or ECSchnorr for
        firmware; ECDSA is what A00.FR.505 names for certificates, and what libraries have."""
        signature = self._signing_key.sign(image, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


def _root(
    common_name: str,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A new self-signed root certificate and its key, EC P-256, valid ten years."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + ROOT_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(key: object) -> bytes:
    return key.public_bytes(Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
