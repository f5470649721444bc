"""What a station connects with once its CSMS changed it (swarm.station.credentials): a new
password (A01), a higher security profile (A05), and at profile 3 the certificate it was just
issued (A02), against the embedded CSMS over TLS and against a scripted one.

The CSMS's authority and every certificate are made here; nothing leaves loopback.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from swarm.csms import Csms, CsmsConfig
from swarm.csms.authority import Authority
from swarm.csms.versions import Central
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.rpc import open_session
from swarm.protocol.samples import WEBSOCKET
from swarm.protocol.security import (
    HANDSHAKE_LOGGER,
    Security,
    SecurityConfig,
    authorization,
    client_context,
    load_cert_chain,
)
from swarm.station import certificates, credentials, identity
from swarm.station.state import State
from tests.scripted import answer_everything, run, scripted_csms, until
from tests.test_commands import CONFIG as CONFIG16
from tests.test_commands import command
from tests.test_station201 import CONFIG as CONFIG201

ROOT_TYPES = {"1.6": "CentralSystemRootCertificate", "2.0.1": "CSMSRootCertificate"}
RENEWALS = {
    "1.6": ("ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}),
    "2.0.1": ("TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}),
}
KEY = "4F43415F4F4354545F61646D696E5F74657374AB"
"""An AuthorizationKey: 20 bytes in hexadecimal digits."""
PASSWORD = "a-new-password-of-24-chr"
"""A BasicAuthPassword: 16 to 40 characters."""


def set_password(version: str) -> tuple[str, dict, str]:
    """The CSMS's call that sets a new password in ``version``, and that password."""
    if version == "1.6":
        return "ChangeConfiguration", {"key": "AuthorizationKey", "value": KEY}, KEY
    item = {
        "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
        "attributeValue": PASSWORD,
    }
    return "SetVariables", {"setVariableData": [item]}, PASSWORD


def asking_for_client_certificates(config: CsmsConfig, pki: Pki) -> CsmsConfig:
    """``config``, its CSMS asking for a client certificate of ``pki``'s authority, and taking
    a connection without one."""
    config.ssl_context.load_verify_locations(cadata=pki.authority.root_pem)
    config.ssl_context.verify_mode = ssl.CERT_OPTIONAL
    return config


# The rules, as plain functions.


@pytest.mark.parametrize(
    ("current", "new", "have", "refused"),
    [
        (1, 1, {}, "only ever raised"),
        (2, 1, {}, "only ever raised"),
        (0, 4, {}, "1 to 3"),
        (0, 1, {"password": False}, "AuthorizationKey"),
        (1, 2, {"secure": False}, "wss://"),
        (1, 2, {"csms_root": False}, "root"),
        (2, 3, {"certificate": False}, "certificate of its own"),
        (2, 3, {"password": False}, None),  # profile 3 needs no password
        (0, 1, {}, None),
        (1, 3, {}, None),
    ],
)
def test_a_profile_is_raised_only_with_its_prerequisites(current, new, have, refused) -> None:
    """A05.FR.01 to 04, and TLS, which a ws:// CSMS cannot give."""
    prerequisites = {
        "secure": True,
        "password": True,
        "csms_root": True,
        "certificate": True,
        **have,
    }
    refusal = credentials.raise_refusal(current, new, **prerequisites)
    assert (refusal is None) if refused is None else (refused in refusal)


def test_connect_options_are_the_fleets_but_for_what_the_csms_changed() -> None:
    fleet = {"ssl": object(), "additional_headers": (("Authorization", "Basic x"),), "logger": 1}
    same = credentials.connect_options(
        fleet, "CP-1", password=None, profile=2, fleet_profile=2, identity=None
    )
    assert same == fleet
    changed = credentials.connect_options(
        fleet, "CP-1", password="new-one", profile=2, fleet_profile=2, identity=None
    )
    assert changed["additional_headers"] == (("Authorization", authorization("CP-1", "new-one")),)
    assert changed["logger"] is HANDSHAKE_LOGGER and changed["ssl"] is fleet["ssl"]
    raised = credentials.connect_options(
        fleet, "CP-1", password="new-one", profile=3, fleet_profile=2, identity=None
    )
    assert "additional_headers" not in raised and "logger" not in raised
    unsecured = credentials.connect_options(
        {}, "CP-1", password="new-one", profile=0, fleet_profile=0, identity=None
    )
    assert unsecured == {}  # a password is for profiles 1 and 2


# The embedded CSMS over TLS, its authority given by file, and its client CA that authority.


def private_pem(key) -> bytes:
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


class Pki:
    """A CSMS's server certificate (from a test CA), its authority's files, and client
    certificates the authority issued."""

    def __init__(self, root: Path) -> None:
        self.root = root
        server_ca = trustme.CA()
        self.server_ca = root / "server-ca.pem"
        server_ca.cert_pem.write_to_path(str(self.server_ca))
        server = server_ca.issue_cert("127.0.0.1")
        self.server_cert, self.server_key = root / "server.crt", root / "server.key"
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        server.private_key_pem.write_to_path(str(self.server_key))
        self.authority = Authority.make()
        self.ca_cert, self.ca_key = root / "ca.crt", root / "ca.key"
        self.ca_cert.write_text(self.authority.root_pem)
        self.ca_key.write_bytes(private_pem(self.authority.key))

    def csms(self, *, client_ca: bool = True, **options) -> CsmsConfig:
        return CsmsConfig(
            port=0,
            tls_cert=str(self.server_cert),
            tls_key=str(self.server_key),
            client_ca=str(self.ca_cert) if client_ca else None,
            ca_cert=str(self.ca_cert),
            ca_key=str(self.ca_key),
            **options,
        )

    def fleet_context(self, charge_point_id: str | None = None) -> ssl.SSLContext:
        """The fleet's TLS context: the CSMS verified, and with an id, a certificate the
        authority issued to it (profile 3)."""
        context = client_context(str(self.server_ca))
        if charge_point_id is not None:
            key, csr = identity.request("fleet", charge_point_id)
            cert = self.root / f"{charge_point_id}.crt"
            key_file = self.root / f"{charge_point_id}.key"
            cert.write_text(self.authority.sign(csr, charge_point_id))
            key_file.write_bytes(private_pem(key))
            load_cert_chain(context, str(cert), str(key_file))
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("credentials"))


def station(version, ident, url, samples, **config):
    make, base = (ChargePoint16, CONFIG16) if version == "1.6" else (ChargePoint201, CONFIG201)
    return make(ident, f"{url}/{ident}", replace(base, **config), samples.append)


def peer_serial(csms: Csms, ident: str) -> int:
    """The serial number of the client certificate of ``ident``'s connection to ``csms``."""
    transport = csms.connections[ident].websocket.transport
    return int(transport.get_extra_info("peercert")["serialNumber"], 16)


async def install_root(csms: Csms, version: str, cp) -> None:
    """Install the root of ``csms``'s authority in ``cp``."""
    root = csms.central.authority.root_pem
    install = {"certificateType": ROOT_TYPES[version], "certificate": root}
    assert (await csms.call(cp.id, "InstallCertificate", install)).payload["status"] == "Accepted"


async def renew(csms: Csms, version: str, cp) -> int:
    """Have ``cp`` renew its certificate through the CSMS; return the new one's serial."""
    await install_root(csms, version, cp)
    assert (await csms.call(cp.id, *RENEWALS[version])).payload["status"] == "Accepted"
    await until(lambda: cp.identity is not None and cp.identity.chain)
    return cp.identity.chain[0].serial_number


async def reconnected(csms: Csms, cp, before) -> None:
    """Wait until ``cp`` is connected to ``csms`` again, on a connection other than ``before``."""
    await until(
        lambda: csms.connections.get(cp.id) not in (None, before) and cp.state is State.ACCEPTED,
        timeout=10,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_at_profile_3_a_station_reconnects_with_the_certificate_it_was_just_issued(
    pki: Pki, version: str
) -> None:
    """Mutual TLS with the CSMS's authority as the client CA: the station connects with the
    fleet's certificate, renews it (A02), and its next connection presents the new one."""
    ident = "CP-1" if version == "1.6" else "CS-1"

    async def main():
        async with Csms(pki.csms()) as csms:
            cp = station(
                version,
                ident,
                csms.url,
                samples := [],
                security_profile=3,
                connect_options={"ssl": pki.fleet_context(ident)},
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and ident in csms.connections)
                first = peer_serial(csms, ident)
                issued = await renew(csms, version, cp)
                before = csms.connections[ident]
                assert await csms.disconnect(charge_point_ids=[ident]) == 1
                await reconnected(csms, cp, before)
                return first, issued, peer_serial(csms, ident), csms.stats, samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    first, issued, presented, stats, samples = run(main(), timeout=50)
    assert presented == issued != first
    assert stats["received.invalid"] == 0 and stats["answered.CertificateSigned"] == 1
    connects = [s for s in samples if s.request_type == WEBSOCKET and s.name == "connect"]
    assert len(connects) == 2 and not any(s.error for s in connects)


@pytest.mark.timeout(60)
def test_a_raised_profile_3_presents_the_certificate_and_a_lower_one_is_rejected(
    pki: Pki,
) -> None:
    """A05 at profile 2 (TLS, no password): 3 is Rejected until a CSMS root is installed and
    the station has a certificate of its own, 2 always; Accepted, the station reconnects at once
    and presents it."""

    async def main():
        async with Csms(asking_for_client_certificates(pki.csms(client_ca=False), pki)) as csms:
            cp = station(
                "1.6",
                "CP-1",
                csms.url,
                samples := [],
                security_profile=2,
                connect_options={"ssl": pki.fleet_context()},
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and "CP-1" in csms.connections)
                change = lambda value: csms.call(  # noqa: E731
                    "CP-1", "ChangeConfiguration", {"key": "SecurityProfile", "value": value}
                )
                without_root = (await change("3")).payload["status"]
                await install_root(csms, "1.6", cp)
                without_certificate = (await change("3")).payload["status"]
                issued = await renew(csms, "1.6", cp)
                lower = (await change("2")).payload["status"]
                before = csms.connections["CP-1"]
                raised = (await change("3")).payload["status"]
                await reconnected(csms, cp, before)
                got = await csms.call("CP-1", "GetConfiguration", {"key": ["SecurityProfile"]})
                early = (without_root, without_certificate)
                return early, lower, raised, issued, peer_serial(csms, "CP-1"), got, samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    early, lower, raised, issued, presented, got, samples = run(main(), timeout=50)
    assert (*early, lower, raised) == ("Rejected", "Rejected", "Rejected", "Accepted")
    assert presented == issued
    assert got.payload["configurationKey"] == [
        {"key": "SecurityProfile", "readonly": False, "value": "3"}
    ]
    assert [s.name for s in samples if s.request_type == WEBSOCKET and s.name == "reconnect"] == [
        "reconnect"
    ]


@pytest.mark.timeout(60)
def test_a_raised_profile_that_cannot_connect_falls_back_to_the_old_one(pki: Pki) -> None:
    """A05.FR.08: at profile 3 the station sends no password, which this CSMS wants: that
    connect fails, and the station connects at profile 2 again."""

    async def main():
        config = asking_for_client_certificates(
            pki.csms(client_ca=False, password="secret-{id}"), pki
        )
        fleet = Security(SecurityConfig(password="secret-{id}", ca_file=str(pki.server_ca)))
        async with Csms(config) as csms:
            cp = station(
                "1.6",
                "CP-1",
                csms.url,
                samples := [],
                security_profile=2,
                connect_options={
                    **fleet.fleet_options(True),
                    **fleet.connect_options("CP-1", True),
                },
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and "CP-1" in csms.connections)
                await renew(csms, "1.6", cp)
                before = csms.connections["CP-1"]
                change = {"key": "SecurityProfile", "value": "3"}
                raised = await csms.call("CP-1", "ChangeConfiguration", change)
                await reconnected(csms, cp, before)
                return raised.payload["status"], cp.configuration.value("SecurityProfile"), samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    raised, profile, samples = run(main(), timeout=50)
    assert (raised, profile) == ("Accepted", "2")
    refused = [s.error for s in samples if s.request_type == WEBSOCKET and s.error]
    assert refused == ["InvalidStatus: HTTP 401"]


# A01: a new password, seen in the handshakes a scripted CSMS records.


def basic_password(connection) -> str:
    header = connection.request.headers["Authorization"]
    return base64.b64decode(header.removeprefix("Basic ")).decode().split(":", 1)[1]


@pytest.mark.timeout(30)
def test_1_6_a_new_authorization_key_is_the_password_of_the_next_connection() -> None:
    fleet = Security(SecurityConfig(password="fleet-{id}"))

    async def main():
        samples = []
        async with scripted_csms(answer_everything) as (url, script):
            cp = station(
                "1.6",
                "CP-1",
                url,
                samples,
                security_profile=1,
                connect_options=fleet.connect_options("CP-1", False),
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED)
                change = lambda value, unique_id: command(  # noqa: E731
                    script,
                    "ChangeConfiguration",
                    {"key": "AuthorizationKey", "value": value},
                    unique_id,
                )
                refusals = [
                    (await change("not-hexadecimal-digits-at-all", "c1"))["status"],
                    (await change("ABCDEF0123456789", "c2"))["status"],  # 8 bytes: too short
                ]
                accepted = (await change(KEY, "c3"))["status"]
                await until(lambda: len(script.connections) == 2 and cp.state is State.ACCEPTED)
                listed = await command(
                    script, "GetConfiguration", {"key": ["AuthorizationKey"]}, "c4"
                )
                return refusals, accepted, [basic_password(c) for c in script.connections], listed
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    refusals, accepted, passwords, listed = run(main())
    assert refusals == ["Rejected", "Rejected"] and accepted == "Accepted"
    assert passwords == ["fleet-CP-1", KEY]
    assert listed["configurationKey"] == [{"key": "AuthorizationKey", "readonly": False}]


@pytest.mark.timeout(30)
def test_2_0_1_a_new_basic_auth_password_is_the_password_of_the_next_connection() -> None:
    fleet = Security(SecurityConfig(password="fleet-{id}"))

    async def main():
        async with scripted_csms(answer_everything, protocol="ocpp2.0.1") as (url, script):
            cp = station(
                "2.0.1",
                "CS-1",
                url,
                [],
                security_profile=1,
                connect_options=fleet.connect_options("CS-1", False),
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED)
                action, payload, _ = set_password("2.0.1")
                await script.connections[-1].send(json.dumps([2, "s1", action, payload]))
                await until(lambda: len(script.connections) == 2 and cp.state is State.ACCEPTED)
                return [basic_password(c) for c in script.connections]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    assert run(main()) == ["fleet-CS-1", PASSWORD]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_embedded_csms_takes_the_password_it_set_and_no_longer_the_old_one(
    version: str,
) -> None:
    """A01.FR.03: once a charge point accepted a new password, the CSMS takes that one only."""
    ident = "CP-1" if version == "1.6" else "CS-1"
    fleet = Security(SecurityConfig(password="fleet-{id}"))
    *change, new = set_password(version)

    async def main():
        async with Csms(CsmsConfig(port=0, password="fleet-{id}")) as csms:
            cp = station(
                version,
                ident,
                csms.url,
                samples := [],
                security_profile=1,
                connect_options=fleet.connect_options(ident, False),
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and ident in csms.connections)
                before = csms.connections[ident]
                await csms.call(ident, *change)
                await reconnected(csms, cp, before)
                old = Security(SecurityConfig(password="fleet-{id}"))
                refused = await outcome(csms.url, ident, old, version)
                return refused, csms.central.passwords, samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    refused, passwords, samples = run(main())
    assert passwords == {ident: new} and "401" in refused
    assert not [s for s in samples if s.request_type == WEBSOCKET and s.error]


async def outcome(url: str, ident: str, fleet: Security, version: str) -> str:
    """How a connect of ``ident`` with ``fleet``'s password ends: ``ok``, or its error."""
    dialect = OCPP16 if version == "1.6" else OCPP201
    try:
        session = await open_session(
            f"{url}/{ident}",
            [].append,
            dialect=dialect,
            call_timeout=5,
            connect_timeout=5,
            **fleet.connect_options(ident, False),
        )
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await session.close()
    return "ok"


@pytest.mark.timeout(30)
def test_a_fleet_with_certificates_and_passwords_takes_a_new_password_too(pki: Pki) -> None:
    """Profile 3 with the fleet's password as well (a CSMS that checks both): a new
    AuthorizationKey replaces that password, and the charge point reconnects with it."""
    fleet = Security(SecurityConfig(password="fleet-{id}"))

    async def main():
        async with Csms(pki.csms(password="fleet-{id}")) as csms:
            cp = station(
                "1.6",
                "CP-1",
                csms.url,
                samples := [],
                security_profile=3,
                connect_options={
                    "ssl": pki.fleet_context("CP-1"),
                    **fleet.connect_options("CP-1", False),
                },
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: cp.state is State.ACCEPTED and "CP-1" in csms.connections)
                before = csms.connections["CP-1"]
                change = {"key": "AuthorizationKey", "value": KEY}
                answer = await csms.call("CP-1", "ChangeConfiguration", change)
                await reconnected(csms, cp, before)
                return answer.payload, csms.central.passwords, samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    answer, passwords, samples = run(main())
    assert answer == {"status": "Accepted"} and passwords == {"CP-1": KEY}
    assert not [s for s in samples if s.request_type == WEBSOCKET and s.error]
    assert [s.name for s in samples if s.request_type == WEBSOCKET].count("reconnect") == 1


def test_without_memfd_the_key_goes_through_a_private_file_that_is_then_gone(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where os.memfd_create is missing (Windows, macOS), a temporary file carries the key."""
    key, csr = identity.request("fleet", "CP-9")
    chain = identity.verified_chain(
        pki.authority.sign(csr, "CP-9"), [certificates.parse(pki.authority.root_pem)]
    )
    monkeypatch.delattr(os, "memfd_create", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    context = identity.Identity(key=key, chain=chain).tls_context(pki.fleet_context())
    assert isinstance(context, ssl.SSLContext) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("action", "payload", "answer"),
    [
        (*set_password("1.6")[:2], {}),
        (*set_password("1.6")[:2], {"status": 7}),
        (*set_password("2.0.1")[:2], {"setVariableResult": ["junk"]}),
    ],
)
def test_an_answer_that_breaks_its_schema_changes_no_password(action, payload, answer) -> None:
    """The CSMS learns a password only from an answer that clearly Accepted it, and a broken
    one raises nothing (it would fail a whole campaign)."""
    central = Central(CsmsConfig())
    central.answered("CP-1", action, payload, answer)
    assert central.passwords == {}
