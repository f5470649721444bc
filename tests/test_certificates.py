"""The certificates a charge point holds: its store (hash data as OCSP computes them, a limit,
one parsed copy per process), and InstallCertificate, GetInstalledCertificateIds and
DeleteCertificate in OCPP 1.6's security extension and 2.0.1's block M, over real sockets.

Every certificate is made here by ``trustme``.
"""

from __future__ import annotations

import datetime

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.ocpp201.dialect import OCPP201
from swarm.station import certificates
from tests.scripted import run
from tests.test_commands import CONFIG as CONFIG16
from tests.test_commands import booted, command
from tests.test_reservations201 import station
from tests.test_station201 import CONFIG as CONFIG201
from tests.test_station201 import Csms201

ROOT, OTHER = trustme.CA(), trustme.CA()
INTERMEDIATE = ROOT.create_child_ca()


def pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


def cert_id(ca: trustme.CA, issuer: trustme.CA, algorithm=hashes.SHA256) -> dict[str, str]:
    """The CertificateHashDataType cryptography's own OCSP request computes."""
    subject = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    signer = x509.load_pem_x509_certificate(issuer.cert_pem.bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(subject, signer, algorithm()).build()
    return {
        "hashAlgorithm": algorithm.name.upper(),
        "issuerNameHash": request.issuer_name_hash.hex(),
        "issuerKeyHash": request.issuer_key_hash.hex(),
        "serialNumber": format(request.serial_number, "x"),
    }


def expired_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old root")])
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(long_ago)
        .not_valid_after(long_ago + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.PEM).decode()


# The store.


@pytest.mark.parametrize("algorithm", [hashes.SHA256, hashes.SHA384, hashes.SHA512])
def test_hash_data_are_those_of_ocsp_for_a_root_and_for_a_certificate_whose_issuer_is_held(
    algorithm,
) -> None:
    root, intermediate = certificates.parse(pem(ROOT)), certificates.parse(pem(INTERMEDIATE))
    store = certificates.install(certificates.EMPTY, "A", root, 5)
    store = certificates.install(store, "B", intermediate, 5)
    name = algorithm.name.upper()
    assert certificates.hash_data(store, None, name) == [
        ("A", cert_id(ROOT, ROOT, algorithm)),
        ("B", cert_id(INTERMEDIATE, ROOT, algorithm)),
    ]
    assert certificates.hash_data(store, {"B"}, name) == [
        ("B", cert_id(INTERMEDIATE, ROOT, algorithm))
    ]


def test_one_parsed_copy_per_certificate_however_many_stores_hold_it() -> None:
    first, second = certificates.parse(pem(ROOT)), certificates.parse(pem(ROOT))
    assert first is second
    stores = [certificates.install(certificates.EMPTY, "A", first, 5) for _ in range(3)]
    assert all(store[0][1] is first for store in stores)


def test_what_cannot_be_installed() -> None:
    for bad in ("not a certificate", pem(ROOT).replace("MII", "XII", 1), expired_pem()):
        with pytest.raises(certificates.CertificateError):
            certificates.parse(bad)
    root, other = certificates.parse(pem(ROOT)), certificates.parse(pem(OTHER))
    store = certificates.install(certificates.EMPTY, "A", root, 1)
    assert certificates.install(store, "A", root, 1) == store  # the same again: as it was
    assert certificates.install(store, "A", other, 1) is None  # full


def test_delete_by_hash_data_whatever_the_case_of_its_hexadecimal() -> None:
    root, other = certificates.parse(pem(ROOT)), certificates.parse(pem(OTHER))
    store = certificates.install(
        certificates.install(certificates.EMPTY, "A", root, 5), "B", other, 5
    )
    wanted = {key: value.upper() for key, value in cert_id(OTHER, OTHER).items()}
    wanted["hashAlgorithm"] = "SHA256"
    wanted["serialNumber"] = "00" + wanted["serialNumber"]
    assert certificates.delete(store, wanted) == store[:1]
    assert certificates.delete(store[:1], wanted) is None


# OCPP 1.6's security extension, over a real connection.


def test_16_install_list_and_delete_certificates() -> None:
    async def main():
        async with booted() as (_cp, script, _samples):
            answers = []
            for n, (action, payload) in enumerate(
                [
                    (
                        "GetInstalledCertificateIds",
                        {"certificateType": "ManufacturerRootCertificate"},
                    ),
                    (
                        "InstallCertificate",
                        {
                            "certificateType": "CentralSystemRootCertificate",
                            "certificate": pem(ROOT),
                        },
                    ),
                    (
                        "InstallCertificate",
                        {
                            "certificateType": "ManufacturerRootCertificate",
                            "certificate": pem(OTHER),
                        },
                    ),
                    (
                        "InstallCertificate",
                        {"certificateType": "ManufacturerRootCertificate", "certificate": "junk"},
                    ),
                    (
                        "GetInstalledCertificateIds",
                        {"certificateType": "ManufacturerRootCertificate"},
                    ),
                    ("DeleteCertificate", {"certificateHashData": cert_id(OTHER, OTHER)}),
                    ("DeleteCertificate", {"certificateHashData": cert_id(OTHER, OTHER)}),
                    (
                        "GetInstalledCertificateIds",
                        {"certificateType": "CentralSystemRootCertificate"},
                    ),
                    ("GetConfiguration", {"key": ["CertificateStoreMaxLength"]}),
                ]
            ):
                answers.append(await command(script, action, payload, unique_id=f"c{n}"))
            return answers

    answers = run(main())
    assert [a.get("status") for a in answers[:8]] == [
        "NotFound",
        "Accepted",
        "Accepted",
        "Rejected",
        "Accepted",
        "Accepted",
        "NotFound",
        "Accepted",
    ]
    assert answers[4]["certificateHashData"] == [cert_id(OTHER, OTHER)]
    assert answers[7]["certificateHashData"] == [cert_id(ROOT, ROOT)]
    (key,) = answers[8]["configurationKey"]
    assert (key["value"], key["readonly"]) == ("20", True)


def test_16_a_full_store_rejects_one_more() -> None:
    cp = ChargePoint16("CP-1", "ws://127.0.0.1:9/CP-1", CONFIG16, [].append)
    for ca in (trustme.CA() for _ in range(20)):
        payload = {"certificateType": "CentralSystemRootCertificate", "certificate": pem(ca)}
        assert cp.handle_call("InstallCertificate", payload) == {"status": "Accepted"}
    payload = {"certificateType": "CentralSystemRootCertificate", "certificate": pem(ROOT)}
    answer = cp.handle_call("InstallCertificate", payload)
    OCPP16.schemas.validate("InstallCertificate", answer, response=True)
    assert answer == {"status": "Rejected"}


# OCPP 2.0.1's block M, over a real connection.


def test_201_install_list_and_delete_certificates() -> None:
    def install(kind, ca):
        return "InstallCertificate", {"certificateType": kind, "certificate": pem(ca)}

    commands = [
        install("CSMSRootCertificate", ROOT),  # c0
        install("ManufacturerRootCertificate", OTHER),  # c1
        (
            "InstallCertificate",
            {"certificateType": "MORootCertificate", "certificate": expired_pem()},
        ),  # c2
        ("GetInstalledCertificateIds", {}),  # c3: all
        ("GetInstalledCertificateIds", {"certificateType": ["V2GCertificateChain"]}),  # c4
        ("DeleteCertificate", {"certificateHashData": cert_id(ROOT, ROOT)}),  # c5
        ("GetInstalledCertificateIds", {"certificateType": ["CSMSRootCertificate"]}),  # c6
        (
            "GetVariables",
            {
                "getVariableData": [
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "CertificateEntries"},
                    }
                ]
            },
        ),  # c7
    ]
    csms = Csms201(commands=commands)

    run(station(csms, lambda cp: "c7" in csms.results))
    results = [csms.results[f"c{n}"] for n in range(8)]
    assert [r.get("status") for r in results[:7]] == [
        "Accepted",
        "Accepted",
        "Rejected",
        "Accepted",
        "NotFound",
        "Accepted",
        "NotFound",
    ]
    assert results[2]["statusInfo"]["reasonCode"] == "InvalidCertificate"
    assert results[3]["certificateHashDataChain"] == [
        {"certificateType": "CSMSRootCertificate", "certificateHashData": cert_id(ROOT, ROOT)},
        {
            "certificateType": "ManufacturerRootCertificate",
            "certificateHashData": cert_id(OTHER, OTHER),
        },
    ]
    (value,) = results[7]["getVariableResult"]
    assert value["attributeValue"] == "1"  # one left


def test_201_a_full_store_rejects_one_more_out_of_storage() -> None:
    cp = ChargePoint201("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG201, [].append)
    for ca in (trustme.CA() for _ in range(20)):
        payload = {"certificateType": "CSMSRootCertificate", "certificate": pem(ca)}
        assert cp.handle_call("InstallCertificate", payload) == {"status": "Accepted"}
    payload = {"certificateType": "CSMSRootCertificate", "certificate": pem(ROOT)}
    answer = cp.handle_call("InstallCertificate", payload)
    OCPP201.schemas.validate("InstallCertificate", answer, response=True)
    assert (answer["status"], answer["statusInfo"]["reasonCode"]) == ("Rejected", "OutOfStorage")
