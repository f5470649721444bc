"""OCPP 1.6 security profiles 1-3 end to end: the embedded CSMS and a charge point, in asyncio."""

from __future__ import annotations

from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from swarm.csms import Csms, CsmsConfig, main
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.rpc import OcppSession, open_session
from swarm.protocol.samples import Sample
from swarm.protocol.security import Security, SecurityConfig, authorization
from tests.scripted import run
from tests.test_security import Pki
from tests.test_security import pki as pki  # a fixture: the alias marks it as used

# The embedded CSMS and a charge point's connect, in plain asyncio.


async def connect(url: str, charge_point_id: str, fleet: Security) -> tuple[OcppSession, Sample]:
    samples: list[Sample] = []
    secure = url.startswith("wss://")
    session = await open_session(
        f"{url}/{charge_point_id}",
        samples.append,
        dialect=OCPP16,
        call_timeout=5,
        connect_timeout=5,
        **fleet.fleet_options(secure),
        **fleet.connect_options(charge_point_id, secure),
    )
    return session, samples[0]


async def outcome(url: str, charge_point_id: str, fleet: Security) -> str:
    """``ok`` after a BootNotification round trip, else the failed connect's description."""
    try:
        session, sample = await connect(url, charge_point_id, fleet)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        assert sample.error is None
        answer = await session.call(
            "BootNotification", {"chargePointVendor": "v", "chargePointModel": "m"}
        )
        return "ok" if answer["status"] == "Accepted" else repr(answer)
    finally:
        await session.close()


def outcomes(config: CsmsConfig, attempts: list[tuple[str, Security]]) -> list[str]:
    async def attempt() -> list[str]:
        async with Csms(config) as csms:
            return [await outcome(csms.url, cp, fleet) for cp, fleet in attempts]

    return run(attempt(), timeout=30)


@pytest.mark.timeout(30)
def test_profile_1_basic_auth_accepts_the_right_password_only(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text("CP-1 file-password\n")
    config = CsmsConfig(port=0, password_file=str(path), password="pw-{id}")
    right = Security(SecurityConfig(password_file=str(path), password="pw-{id}"))
    results = outcomes(
        config,
        [
            ("CP-1", right),  # from the file
            ("CP-2", right),  # from the template
            ("CP-1", Security(SecurityConfig(password="pw-{id}"))),  # not CP-1's password
            ("CP-2", Security(SecurityConfig(password="wrong"))),
            ("CP-2", Security()),  # no Authorization header
        ],
    )
    assert results[:2] == ["ok", "ok"]
    assert results[2:] == ["InvalidStatus: server rejected WebSocket connection: HTTP 401"] * 3


@pytest.mark.timeout(30)
def test_profile_1_the_user_name_must_be_the_charge_point_id_of_the_url() -> None:
    async def attempt() -> InvalidStatus:
        async with Csms(CsmsConfig(port=0, password="pw-{id}")) as csms:
            with pytest.raises(InvalidStatus) as refused:
                await open_session(
                    f"{csms.url}/CP-1",
                    lambda sample: None,
                    dialect=OCPP16,
                    call_timeout=5,
                    connect_timeout=5,
                    # CP-2's own, right password, on CP-1's URL.
                    additional_headers={"Authorization": authorization("CP-2", "pw-CP-2")},
                )
            return refused.value

    refused = run(attempt())
    assert refused.response.status_code == 401
    assert refused.response.body == b"The user name must be the charge point id\n"


@pytest.mark.timeout(30)
def test_profile_2_wss_verifies_the_csms_against_the_ca_file(pki: Pki) -> None:
    config = CsmsConfig(port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    results = outcomes(
        config,
        [
            ("CP-1", Security(SecurityConfig(ca_file=str(pki.ca)))),
            ("CP-1", Security(SecurityConfig(ca_file=str(pki.other_ca)))),
            ("CP-1", Security()),  # the system's CAs do not know trustme's
            ("CP-1", Security(SecurityConfig(insecure=True))),
        ],
    )
    assert results[0] == "ok"
    for failed in results[1:3]:
        assert failed.startswith("SSLCertVerificationError:"), failed
        assert "certificate verify failed: unable to get local issuer certificate" in failed
    assert results[3] == "ok"


@pytest.mark.timeout(30)
def test_profile_2_with_basic_auth(pki: Pki) -> None:
    config = CsmsConfig(
        port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), password="pw-{id}"
    )
    right = Security(SecurityConfig(ca_file=str(pki.ca), password="pw-{id}"))
    wrong = Security(SecurityConfig(ca_file=str(pki.ca), password="nope"))
    results = outcomes(config, [("CP-1", right), ("CP-1", wrong)])
    assert results == ["ok", "InvalidStatus: server rejected WebSocket connection: HTTP 401"]


@pytest.mark.timeout(30)
def test_profile_3_mutual_tls_needs_a_client_certificate_with_the_id_as_cn(pki: Pki) -> None:
    config = CsmsConfig(
        port=0,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        client_ca=str(pki.ca),
    )
    ca = str(pki.ca)

    def shared(cert: str, key: str) -> Security:
        return Security(SecurityConfig(ca_file=ca, client_cert=cert, client_key=key))

    per_cp = Security(
        SecurityConfig(ca_file=ca, client_cert=pki.cert_template, client_key=pki.key_template)
    )
    stranger = shared(str(pki.root / "stranger.crt"), str(pki.root / "stranger.key"))
    results = outcomes(
        config,
        [
            ("CP-1", shared(str(pki.cert("CP-1")), str(pki.key("CP-1")))),
            ("CP-1", per_cp),
            ("CP-2", per_cp),
            ("CP-1", Security(SecurityConfig(ca_file=ca))),  # no client certificate
            ("CP-2", shared(str(pki.cert("CP-1")), str(pki.key("CP-1")))),  # CP-1's on CP-2
            ("CP-1", stranger),  # issued by a CA the CSMS does not trust
        ],
    )
    assert results[:3] == ["ok", "ok", "ok"]
    # TLS 1.3: the client's handshake is done before the server refuses its certificate, so
    # the refusal arrives as an alert, or as the connection's end, while the client waits.
    for refused in (results[3], results[5]):
        assert refused.split(":")[0] in {"SSLError", "ConnectionResetError", "InvalidMessage"}, (
            refused
        )
    assert results[4] == "InvalidStatus: server rejected WebSocket connection: HTTP 403"


@pytest.mark.timeout(30)
def test_2_0_1_stations_take_the_same_security_profiles(pki: Pki) -> None:
    config = CsmsConfig(
        port=0,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        client_ca=str(pki.ca),
        password="pw-{id}",
    )
    boot = {
        "reason": "PowerUp",
        "chargingStation": {"model": "m", "vendorName": "v", "serialNumber": "CP-1"},
    }

    async def attempt(password: str) -> str:
        fleet = Security(
            SecurityConfig(
                ca_file=str(pki.ca),
                client_cert=pki.cert_template,
                client_key=pki.key_template,
                password=password,
            )
        )
        async with Csms(config) as csms:
            try:
                session = await open_session(
                    f"{csms.url}/CP-1",
                    lambda sample: None,
                    dialect=OCPP201,
                    call_timeout=5,
                    connect_timeout=5,
                    **fleet.fleet_options(True),
                    **fleet.connect_options("CP-1", True),
                )
            except InvalidStatus as exc:
                return f"HTTP {exc.response.status_code}"
            try:
                assert session.connection.subprotocol == "ocpp2.0.1"
                return (await session.call("BootNotification", boot))["status"]
            finally:
                await session.close()

    # Profile 3's certificate and profile 2's password together, on the 2.0.1 subprotocol.
    assert run(attempt("pw-{id}"), timeout=30) == "Accepted"
    assert run(attempt("wrong"), timeout=30) == "HTTP 401"


def test_the_csms_refuses_security_files_that_do_not_load(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        CsmsConfig(tls_cert=str(pki.server_cert))
    with pytest.raises(ValueError, match=r"--tls-cert/--tls-key: cannot load .*KEY_VALUES_MISM"):
        CsmsConfig(tls_cert=str(pki.server_cert), tls_key=str(pki.key("CP-1")))
    assert "secret" not in repr(CsmsConfig(password="secret-{id}"))
    missing = str(tmp_path / "missing.pem")
    for argv, error in [
        (["--tls-cert", str(pki.server_cert)], "--tls-cert and --tls-key go together"),
        (["--client-ca", str(pki.ca)], "--client-ca needs --tls-cert and --tls-key"),
        (
            ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--client-ca"],
            f"--client-ca: cannot read {missing}",
        ),
        (["--password-file", missing], f"--password-file: cannot read {missing}"),
        (["--password", "pw-{nope}"], "--password: a template may only hold {id}"),
        (["--ca-cert", str(pki.ca)], "--ca-cert and --ca-key go together"),
        (
            ["--ca-cert", str(pki.ca), "--ca-key", str(pki.server_key)],
            "--ca-cert, --ca-key: the key is not the certificate's",
        ),
    ]:
        with pytest.raises(SystemExit) as exited:
            main(["--port", "0", *argv, *([missing] if argv[-1] == "--client-ca" else [])])
        assert exited.value.code == 2
        assert error in capsys.readouterr().err


def test_the_csms_url_is_wss_with_tls(pki: Pki) -> None:
    async def url() -> str:
        config = CsmsConfig(port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
        async with Csms(config) as csms:
            return csms.url

    assert run(url()).startswith("wss://127.0.0.1:")
