"""The certificates a charge point holds: its store (hash data as OCSP computes them, a limit,
one parsed copy per process), and InstallCertificate, GetInstalledCertificateIds and
DeleteCertificate in OCPP 1.6's security extension and 2.0.1's block M, over real sockets.

Every certificate is made here by ``trustme``.
"""

from __future__ import annotations

import asyncio
import datetime

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from swarm.csms import Csms, CsmsConfig
from swarm.csms.authority import Authority
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.ocpp201.dialect import OCPP201
from swarm.station import certificates, identity, pki
from swarm.station.state import State
from tests.scripted import run, until
from tests.test_commands import CONFIG as CONFIG16
from tests.test_commands import booted, command
from tests.test_credentials import renew
from tests.test_credentials import station as charge_point
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


@pytest.mark.parametrize(
    ("make", "config", "root_type", "schemas", "refusal"),
    [
        (ChargePoint16, CONFIG16, "CentralSystemRootCertificate", OCPP16.schemas, None),
        (ChargePoint201, CONFIG201, "CSMSRootCertificate", OCPP201.schemas, "OutOfStorage"),
    ],
    ids=["1.6", "2.0.1"],
)
def test_a_full_store_rejects_one_more(make, config, root_type, schemas, refusal) -> None:
    cp = make("CP-1", "ws://127.0.0.1:9/CP-1", config, [].append)
    for ca in (trustme.CA() for _ in range(20)):
        payload = {"certificateType": root_type, "certificate": pem(ca)}
        assert cp.handle_call("InstallCertificate", payload)["status"] == "Accepted"
    answer = cp.handle_call(
        "InstallCertificate", {"certificateType": root_type, "certificate": pem(ROOT)}
    )
    schemas.validate("InstallCertificate", answer, response=True)
    assert answer["status"] == "Rejected"
    assert answer.get("statusInfo", {}).get("reasonCode") == refusal


# The charge point's own key and certificate, signed by the embedded CSMS's authority.


async def fleet_on(csms, *stations):
    tasks = [asyncio.create_task(station.run()) for station in stations]
    await until(lambda: all(s.state is State.ACCEPTED for s in stations))
    return tasks


async def stop(tasks):
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def signed_by(chain, root_pem: str) -> bool:
    root = x509.load_pem_x509_certificate(root_pem.encode())
    chain[-1].verify_directly_issued_by(root)  # raises if not
    return True


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_charge_point_gets_its_certificate_signed_by_the_csms(version) -> None:
    """A02: the CSMS installs its root, asks for a CSR, signs it; the charge point checks the
    chain and keeps it. Every message both ways checked against its version's schemas."""
    if version == "1.6":
        make, config, ident = ChargePoint16, CONFIG16, "CP-1"
        root_type, trigger = (
            "CentralSystemRootCertificate",
            (
                "ExtendedTriggerMessage",
                {"requestedMessage": "SignChargePointCertificate"},
            ),
        )
    else:
        make, config, ident = ChargePoint201, CONFIG201, "CS-1"
        root_type, trigger = (
            "CSMSRootCertificate",
            (
                "TriggerMessage",
                {"requestedMessage": "SignChargingStationCertificate"},
            ),
        )

    async def main():
        async with Csms(CsmsConfig(port=0)) as csms:
            cp = make(ident, f"{csms.url}/{ident}", config, [].append)
            tasks = await fleet_on(csms, cp)
            try:
                root = csms.central.authority.root_pem
                install = {"certificateType": root_type, "certificate": root}
                assert (await csms.call(ident, "InstallCertificate", install)).payload == {
                    "status": "Accepted"
                }
                answer = await csms.call(ident, *trigger)
                assert answer.payload == {"status": "Accepted"}
                await until(lambda: cp.identity is not None and cp.identity.chain)
                await until(lambda: csms.stats["answered.CertificateSigned"] == 1)
            finally:
                await stop(tasks)
            return cp, csms.stats, root

    cp, stats, root = run(main())
    (leaf,) = cp.identity.chain
    names = leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    assert [name.value for name in names] == [ident]
    assert signed_by(cp.identity.chain, root)
    assert cp.identity.pending is None and cp.identity.key is not None
    assert stats["SignCertificate"] == 1 and stats["received.invalid"] == 0


@pytest.mark.parametrize(
    ("version", "event"),
    [("1.6", "InvalidChargePointCertificate"), ("2.0.1", "InvalidChargingStationCertificate")],
)
def test_a_chain_to_no_installed_root_is_rejected_and_reported(version, event) -> None:
    if version == "1.6":
        make, config, ident, subprotocol = ChargePoint16, CONFIG16, "CP-1", "ocpp1.6"
        trigger = ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"})
    else:
        make, config, ident, subprotocol = ChargePoint201, CONFIG201, "CS-1", "ocpp2.0.1"
        trigger = ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"})
    events = []

    async def main():
        async with Csms(CsmsConfig(port=0)) as csms:
            # The CSMS's answers are a table by action: note the events as they are answered.
            answers = csms._versions[subprotocol].handlers
            answer_event = answers["SecurityEventNotification"]
            answers["SecurityEventNotification"] = lambda cp, payload: (
                events.append(payload["type"]) or answer_event(cp, payload)
            )
            cp = make(ident, f"{csms.url}/{ident}", config, [].append)
            if version == "1.6":  # a 1.6 charge point sends security events from profile 1
                cp.configuration.set("SecurityProfile", 1)
            tasks = await fleet_on(csms, cp)
            try:
                await csms.call(ident, *trigger)  # no root installed
                await until(lambda: csms.stats["answered.CertificateSigned"] == 1)
                await until(lambda: event in events)
            finally:
                await stop(tasks)
            return cp

    cp = run(main())
    assert cp.identity is not None and cp.identity.chain == ()


def test_a_certificate_signed_with_no_request_or_for_another_key_is_rejected() -> None:
    cp = ChargePoint201("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG201, [].append)
    authority = Authority.make()
    chain = authority.sign(identity.request("org", "CS-1")[1], "CS-1")
    answer = cp.handle_call("CertificateSigned", {"certificateChain": chain})
    OCPP201.schemas.validate("CertificateSigned", answer, response=True)
    assert answer["statusInfo"]["reasonCode"] == "NoRequest"
    key, _ = identity.request("org", "CS-1")
    with pytest.raises(certificates.CertificateError, match="not for the key"):
        identity.check_chain(chain, key, "CS-1", [certificates.parse(authority.root_pem)])
    _, csr = identity.request("org", "CS-2")
    with pytest.raises(ValueError, match="not for CS-1"):
        authority.sign(csr, "CS-1")  # the CSMS signs a charge point's own identity only


def test_extended_trigger_message_accepts_every_message_it_names() -> None:
    cp = ChargePoint16("CP-1", "ws://127.0.0.1:9/CP-1", CONFIG16, [].append)
    cp.state = State.ACCEPTED
    for message in (
        "Heartbeat",
        "StatusNotification",
        "SignChargePointCertificate",
        "FirmwareStatusNotification",  # a SignedFirmwareStatusNotification: test_maintenance16
        "LogStatusNotification",
    ):
        answer = cp.handle_call("ExtendedTriggerMessage", {"requestedMessage": message})
        OCPP16.schemas.validate("ExtendedTriggerMessage", answer, response=True)
        assert answer == {"status": "Accepted"}, message


def test_a_201_firmware_signed_by_an_untrusted_manufacturer_is_refused_and_reported() -> None:
    """L01.FR.02, .03: the signing certificate must lead to an installed manufacturer root."""
    cp = ChargePoint201("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG201, [].append)
    signer = ROOT.issue_cert("firmware-signer.example").cert_chain_pems[0].bytes().decode()

    def update(request_id):
        image = {
            "location": "ftp://fw.example/cs-2.1.0.bin",
            "retrieveDateTime": "2026-01-01T00:00:00Z",
            "signingCertificate": signer,
            "signature": "c2lnbmF0dXJl",
        }
        answer = cp.handle_call("UpdateFirmware", {"requestId": request_id, "firmware": image})
        OCPP201.schemas.validate("UpdateFirmware", answer, response=True)
        return answer["status"]

    async def main():
        assert update(1) == "InvalidCertificate"  # no manufacturer root installed
        assert cp._security_events[-1][0] == "InvalidFirmwareSigningCertificate"
        install = {"certificateType": "CSMSRootCertificate", "certificate": pem(ROOT)}
        assert cp.handle_call("InstallCertificate", install)["status"] == "Accepted"
        assert update(2) == "InvalidCertificate"  # a CSMS root is not a manufacturer's
        install["certificateType"] = "ManufacturerRootCertificate"
        assert cp.handle_call("InstallCertificate", install)["status"] == "Accepted"
        assert update(3) == "Accepted"

    run(main())


def test_the_csms_signs_with_a_ca_given_by_file(tmp_path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ca.private_key_pem.write_to_path(str(tmp_path / "ca.key"))
    OTHER.private_key_pem.write_to_path(str(tmp_path / "other.key"))
    leaf = ca.issue_cert("csms.example")
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "leaf.pem"))
    leaf.private_key_pem.write_to_path(str(tmp_path / "leaf.key"))
    config = CsmsConfig(port=0, ca_cert=str(tmp_path / "ca.pem"), ca_key=str(tmp_path / "ca.key"))
    assert config.authority is not None and config.authority.root_pem == pem(ca)
    _, csr = identity.request("org", "CP-7")
    chain = config.authority.sign(csr, "CP-7")
    assert signed_by(identity.verified_chain(chain, [certificates.parse(pem(ca))]), pem(ca))
    for cert, key, message in (
        ("ca.pem", None, "go together"),
        ("ca.pem", "other.key", "not the certificate's"),
        ("leaf.pem", "leaf.key", "not a CA's"),
        ("missing.pem", "ca.key", "cannot read"),
    ):
        with pytest.raises(ValueError, match=message):
            CsmsConfig(
                port=0,
                ca_cert=str(tmp_path / cert),
                ca_key=None if key is None else str(tmp_path / key),
            )

    async def main():
        async with Csms(config) as csms:
            return csms.central.authority.root_pem

    assert run(main()) == pem(ca)  # what GET /ca gives


@pytest.mark.timeout(30)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_certificate_near_expiry_is_renewed_by_the_station(version: str) -> None:
    """A03: a CSMS that signs certificates valid 3 s sees the station ask for a new one about
    every 2 s (a third of the lifetime before it expires), each checked and taken."""
    ident = "CP-1" if version == "1.6" else "CS-1"

    async def main():
        async with Csms(CsmsConfig(port=0, certificate_lifetime=3)) as csms:
            cp = charge_point(version, ident, csms.url, [])
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and ident in csms.connections)
                first = await renew(csms, version, cp)
                serials = {first}

                def renewed_twice() -> bool:
                    serials.add(cp.identity.chain[0].serial_number)
                    return len(serials) >= 3

                await until(renewed_twice, timeout=10)
                return csms.stats
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    stats = run(main())
    assert stats["SignCertificate"] >= 3 and stats["received.invalid"] == 0
    assert stats["answered.CertificateSigned"] >= stats["SignCertificate"] - 1


@pytest.mark.timeout(30)
def test_a_renewal_the_csms_leaves_unanswered_is_asked_again_a_few_times(monkeypatch) -> None:
    """2.0.1 A02.FR.17-19's way: without a CertificateSigned, the renewal is asked again after a
    wait that doubles, RENEW_REPEATS times, then no more (until the next boot)."""
    monkeypatch.setattr(pki, "RENEW_WAIT", 0.1)

    async def main():
        async with Csms(CsmsConfig(port=0, certificate_lifetime=3)) as csms:
            cp = charge_point("2.0.1", "CS-1", csms.url, [])
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and "CS-1" in csms.connections)
                await renew(csms, "2.0.1", cp)
                csms.central.send = lambda *call: None  # signs, but sends no chain back
                asked = 2 + pki.RENEW_REPEATS  # the first, the renewal, the repeats
                await until(lambda: csms.stats["SignCertificate"] == asked, timeout=10)
                await asyncio.sleep(1.0)
                return csms.stats["SignCertificate"], asked
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    sent, asked = run(main())
    assert sent == asked
