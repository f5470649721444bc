"""OCPP 1.6 security profiles 1-3: swarm.protocol.security as plain functions, the embedded
CSMS's side in plain asyncio, and the swarm in Locust (subprocesses, as in tests/test_locust.py).

Every certificate is made here by ``trustme``; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import json
import logging
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from websockets.exceptions import InvalidStatus

from swarm.csms import Csms, CsmsConfig, main
from swarm.locust.options import (
    MASK,
    PASSWORD_ENV,
    add_arguments,
    security_from_options,
    swarm_options,
)
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol import security
from swarm.protocol.rpc import OcppSession, open_session
from swarm.protocol.samples import Sample
from swarm.protocol.security import (
    Passwords,
    Security,
    SecurityConfig,
    SecurityError,
    authorization,
    check_template,
    client_context,
    expand,
    read_passwords,
    server_context,
)
from tests.scripted import call_in, free_port, in_thread, run
from tests.test_locust import LOCUST, LOCUST_RUN, ROOT, Child, child, finished

IDS = tuple(f"CP-0-{n:06d}" for n in range(1, 4))
"""The ids of the first three charge points of a Locust process (worker index 0)."""

SECURITY_OPTIONS = ("password", "password_file", "ca_file", "insecure", "client_cert", "client_key")


@dataclass(frozen=True)
class Pki:
    """Files of a CA, a server certificate for 127.0.0.1 and client certificates by id."""

    root: Path
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path
    keys: dict[str, bytes]
    """Each private key's PEM, to look for in what a run leaves."""

    def cert(self, charge_point_id: str) -> Path:
        return self.root / f"{charge_point_id}.crt"

    def key(self, charge_point_id: str) -> Path:
        return self.root / f"{charge_point_id}.key"

    @property
    def cert_template(self) -> str:
        return str(self.root / "{id}.crt")

    @property
    def key_template(self) -> str:
        return str(self.root / "{id}.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    other.cert_pem.write_to_path(str(root / "other-ca.pem"))
    server = ca.issue_cert("127.0.0.1", "localhost")
    server.cert_chain_pems[0].write_to_path(str(root / "server.crt"))
    server.private_key_pem.write_to_path(str(root / "server.key"))
    keys = {}
    for charge_point_id in ("CP-1", "CP-2", *IDS):
        leaf = ca.issue_cert(charge_point_id, common_name=charge_point_id)
        leaf.cert_chain_pems[0].write_to_path(str(root / f"{charge_point_id}.crt"))
        leaf.private_key_pem.write_to_path(str(root / f"{charge_point_id}.key"))
        keys[charge_point_id] = leaf.private_key_pem.bytes()
    stranger = other.issue_cert("CP-1", common_name="CP-1")  # the right CN, the wrong issuer
    stranger.cert_chain_pems[0].write_to_path(str(root / "stranger.crt"))
    stranger.private_key_pem.write_to_path(str(root / "stranger.key"))
    return Pki(
        root, root / "ca.pem", root / "other-ca.pem", root / "server.crt", root / "server.key", keys
    )


# swarm.protocol.security as plain functions.


@pytest.mark.parametrize("template", ["secret-{id}", "same-for-all", "{{braces}}-{id}-{id}"])
def test_templates_that_hold_only_id_are_good(template: str) -> None:
    check_template(template, "--password")
    assert expand(template, "CP-7") == template.replace("{{", "{").replace("}}", "}").replace(
        "{id}", "CP-7"
    )


@pytest.mark.parametrize("template", ["pw-{", "pw-}", "pw-{name}", "pw-{id!r}", "pw-{id:>9}", "{}"])
def test_malformed_templates_are_refused_without_repeating_them(template: str) -> None:
    with pytest.raises(SecurityError) as refused:
        check_template(template, "--password")
    assert str(refused.value).startswith("--password: ")
    assert "pw-" not in str(refused.value)  # a template may be a password


def test_a_password_file_has_comments_blank_lines_and_passwords_with_blanks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "passwords"
    path.write_text("# id password\n\nCP-1 first\n  CP-2\tsecond one  \n#CP-3 gone\n")
    assert read_passwords(path) == {"CP-1": "first", "CP-2": "second one"}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("CP-1 a\nCP-2\n", "line 2: expected '<chargePointId> <password>'"),
        ("CP-1 a\nCP-1 b\n", "line 2: CP-1 is listed twice"),
        ("CP:1 a\n", "line 1: a charge point id has no ':'"),
        ("# nothing\n\n", "holds no password"),
    ],
)
def test_a_malformed_password_file_is_refused_by_line(
    tmp_path: Path, text: str, error: str
) -> None:
    path = tmp_path / "passwords"
    path.write_text(text)
    with pytest.raises(SecurityError, match=r"^--password-file: ") as refused:
        read_passwords(path)
    assert error in str(refused.value)
    assert "a\n" not in str(refused.value) and " b" not in str(refused.value)


def test_an_unreadable_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"cannot read .*: No such file or directory"):
        read_passwords(tmp_path / "missing")
    (tmp_path / "latin1").write_bytes(b"CP-1 caf\xe9\n")
    with pytest.raises(SecurityError, match="is not UTF-8 text"):
        read_passwords(tmp_path / "latin1")


def test_passwords_come_from_the_file_then_the_template(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text("CP-1 from-file\n")
    both = Passwords("tpl-{id}", str(path))
    assert (both.get("CP-1"), both.get("CP-2")) == ("from-file", "tpl-CP-2")
    file_only = Passwords(file=str(path))
    assert (file_only.get("CP-1"), file_only.get("CP-2")) == ("from-file", None)
    assert not Passwords().enabled and Passwords().get("CP-1") is None
    assert "tpl-" not in repr(both) and "from-file" not in repr(both)


def test_the_authorization_header_is_basic_auth_of_id_and_password() -> None:
    header = authorization("CP-1", "pä ss:word")
    scheme, _, credentials = header.partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(credentials).decode() == "CP-1:pä ss:word"
    with pytest.raises(SecurityError):
        authorization("CP:1", "x")


def test_a_security_config_hides_its_password_and_refuses_contradictions(pki: Pki) -> None:
    config = SecurityConfig(password="hunter2-{id}", ca_file=str(pki.ca))
    assert "hunter2" not in repr(config) and str(pki.ca) in repr(config)
    assert config.tls and not SecurityConfig(password="x").tls
    for kwargs, error in [
        ({"insecure": True, "ca_file": str(pki.ca)}, "--insecure and --ca-file exclude"),
        ({"client_cert": str(pki.cert("CP-1"))}, "--client-cert and --client-key go together"),
        ({"client_key": str(pki.key("CP-1"))}, "--client-cert and --client-key go together"),
        ({"client_cert": "{id", "client_key": "k"}, "--client-cert: a malformed template"),
        ({"password": "{user}"}, "--password: a template may only hold {id}"),
        (
            {"client_cert": pki.cert_template, "client_key": pki.key_template},
            "--client-cert with {id} needs --ca-file (or --insecure)",
        ),
    ]:
        with pytest.raises(SecurityError, match=error.replace("(", r"\(").replace(")", r"\)")):
            SecurityConfig(**kwargs)


def test_the_fleet_shares_one_tls_context_built_at_start(pki: Pki) -> None:
    fleet = Security(SecurityConfig(ca_file=str(pki.ca)))
    first, second = fleet.fleet_options(True), fleet.fleet_options(True)
    assert isinstance(first["ssl"], ssl.SSLContext) and first["ssl"] is second["ssl"]
    assert first["ssl"].verify_mode == ssl.CERT_REQUIRED and first["ssl"].check_hostname
    assert fleet.fleet_options(False) == {}
    assert not fleet.per_charge_point and fleet.connect_options("CP-1", True) == {}
    # Without options, a wss:// CSMS is still verified, against the system's CAs.
    default = Security().fleet_options(True)["ssl"]
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    insecure = Security(SecurityConfig(insecure=True)).fleet_options(True)["ssl"]
    assert insecure.verify_mode == ssl.CERT_NONE and not insecure.check_hostname


def test_per_charge_point_options_hold_the_header_and_a_quiet_logger(pki: Pki) -> None:
    fleet = Security(
        SecurityConfig(
            password="pw-{id}",
            ca_file=str(pki.ca),
            client_cert=pki.cert_template,
            client_key=pki.key_template,
        )
    )
    assert fleet.per_charge_point and fleet.fleet_options(True) == {}
    one, two = fleet.connect_options("CP-1", True), fleet.connect_options("CP-2", True)
    assert one["additional_headers"] == (("Authorization", authorization("CP-1", "pw-CP-1")),)
    assert one["ssl"] is not two["ssl"]  # each charge point its own certificate
    # websockets logs every handshake header at DEBUG: not with this logger, whatever the root.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        assert not one["logger"].isEnabledFor(logging.DEBUG)
    finally:
        root.setLevel(level)
    assert "ssl" not in fleet.connect_options("CP-1", False)  # ws://: no TLS


def test_a_charge_point_without_password_or_certificate_is_refused(
    pki: Pki, tmp_path: Path
) -> None:
    path = tmp_path / "passwords"
    path.write_text("CP-1 only-one\n")
    fleet = Security(SecurityConfig(password_file=str(path)))
    header = fleet.connect_options("CP-1", False)["additional_headers"]
    assert header == (("Authorization", authorization("CP-1", "only-one")),)
    with pytest.raises(SecurityError, match="has no password for CP-9, and no --password"):
        fleet.connect_options("CP-9", False)
    per_cp = Security(
        SecurityConfig(
            ca_file=str(pki.ca), client_cert=pki.cert_template, client_key=pki.key_template
        )
    )
    with pytest.raises(SecurityError, match=r"--client-cert: cannot read .*CP-9\.crt"):
        per_cp.connect_options("CP-9", True)


def test_files_that_do_not_load_are_refused_naming_the_option(pki: Pki, tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    encrypted = tmp_path / "encrypted.key"
    key = serialization.load_pem_private_key(pki.keys["CP-1"], password=None)
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    cert, other_key = str(pki.cert("CP-1")), str(pki.key("CP-2"))
    for kwargs, error in [
        ({"ca_file": str(tmp_path / "missing")}, "--ca-file: cannot read"),
        ({"ca_file": str(not_pem)}, "--ca-file: .*not.pem holds no PEM certificate"),
        ({"client_cert": str(not_pem), "client_key": other_key}, "--client-cert: .* holds no"),
        ({"client_cert": cert, "client_key": str(not_pem)}, "--client-key: .* holds no PEM priv"),
        ({"client_cert": cert, "client_key": other_key}, "cannot load .*: KEY_VALUES_MISMATCH"),
        ({"client_cert": cert, "client_key": str(encrypted)}, "--client-key: .* is encrypted"),
    ]:
        with pytest.raises(SecurityError, match=error) as refused:
            Security(SecurityConfig(**kwargs))
        assert "PRIVATE KEY" not in str(refused.value) and "\n" not in str(refused.value)


def test_the_options_make_a_security_config_and_the_summary_masks_the_password(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    # Locust's web UI shows an option's command-line value as its field's default: not these.
    marks = {action.dest: getattr(action, "include_in_web_ui", None) for action in parser._actions}
    assert all(marks[name] is False for name in SECURITY_OPTIONS), marks
    argv = ["--password", "pw-{id}", "--ca-file", str(pki.ca), "--client-cert", "c", "--client-key"]
    options = parser.parse_args([*argv, "k"])
    config = security_from_options(options)
    assert (config.password, config.ca_file, config.client_key) == ("pw-{id}", str(pki.ca), "k")
    shown = swarm_options(options)
    assert shown["password"] == MASK and shown["ca_file"] == str(pki.ca)
    assert swarm_options(parser.parse_args([]))["password"] == ""
    monkeypatch.setenv(PASSWORD_ENV, "from-env-{id}")
    assert security_from_options(parser.parse_args([])).password == "from-env-{id}"


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


# The swarm in Locust.


def csms_in_thread(config: CsmsConfig) -> Any:
    """The embedded CSMS in this process, on a thread; yields it and its loop."""
    return in_thread(lambda: Csms(config))


def locust_runs(*runs: list[str], seconds: float) -> list[tuple[Child, dict[str, Any]]]:
    """tests/locust_run.py with each list of arguments, at once; each child and its JSON."""
    commands = [[*LOCUST_RUN, "--seconds", str(seconds), *args] for args in runs]
    children = [Child(command) for command in commands]
    try:
        results = []
        for proc in children:
            finished(proc, timeout=seconds + 30)
            assert proc.returncode == 0, proc.stderr[-3000:]
            results.append((proc, json.loads(proc.stdout.strip().splitlines()[-1])))
        return results
    finally:
        for proc in children:
            proc.close()


@pytest.mark.timeout(90)
def test_in_locust_a_wrong_password_is_a_failed_websocket_connect(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text("".join(f"{cp} right-{cp}\n" for cp in IDS))
    with csms_in_thread(CsmsConfig(port=0, password_file=str(path))) as (csms, _):
        common = ["--users", "3", "--spawn-rate", "3", "--host", csms.url]
        (_, right), (_, wrong) = locust_runs(
            [*common, "--password-file", str(path)],
            [*common, "--password", "wrong-{id}"],
            seconds=3,
        )
    assert right["errors"] == [], right["errors"]
    assert right["stats"]["WebSocket connect"]["failures"] == 0
    assert right["stats"]["OCPP BootNotification"]["requests"] == 3
    assert right["states"]["accepted"] == 3, right["states"]
    connects = wrong["stats"]["WebSocket connect"]
    assert connects["failures"] == connects["requests"] >= 3, connects
    assert "OCPP BootNotification" not in wrong["stats"]
    assert [(e["name"], e["error"]) for e in wrong["errors"]] == [
        ("connect", "InvalidStatus: HTTP 401")
    ]


@pytest.mark.timeout(90)
def test_in_locust_insecure_connects_to_an_unknown_ca_and_warns_once(pki: Pki) -> None:
    config = CsmsConfig(port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    with csms_in_thread(config) as (csms, _):
        common = ["--users", "3", "--spawn-rate", "3", "--host", csms.url]
        (insecure_run, insecure), (_, verified), (_, unverified) = locust_runs(
            [*common, "--insecure"],
            [*common, "--ca-file", str(pki.ca)],
            [*common],  # the system's CAs
            seconds=3,
        )
    for result in (insecure, verified):
        assert result["errors"] == [], result["errors"]
        assert result["states"]["accepted"] == 3, result["states"]
    assert insecure_run.stderr.count("--insecure: the CSMS's TLS certificate is not verified") == 1
    connects = unverified["stats"]["WebSocket connect"]
    assert connects["failures"] == connects["requests"] >= 3, connects
    assert "CERTIFICATE_VERIFY_FAILED" in unverified["errors"][0]["error"]


@pytest.mark.timeout(60)
def test_bad_security_options_exit_2_with_one_line_before_any_user(
    pki: Pki, tmp_path: Path
) -> None:
    malformed = tmp_path / "passwords"
    malformed.write_text("CP-0-000001 secret\nCP-0-000002\n")
    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("not a certificate\n")
    base = [LOCUST, "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s", "--results-dir", ""]
    wss = ["--host", "wss://127.0.0.1:1"]
    cases = {
        "--client-cert: ": [*wss, "--client-cert", str(not_pem), "--client-key", str(not_pem)],
        "--ca-file: cannot read": [*wss, "--ca-file", str(tmp_path / "missing.pem")],
        "--password-file: ": ["--password-file", str(malformed)],
        "--password: a malformed template": ["--password", "secret-{id"],
        "need a wss:// --host (got 'ws://127.0.0.1:1')": [
            "--host",
            "ws://127.0.0.1:1",
            "--ca-file",
            str(pki.ca),
        ],
        "need a wss:// --host (the embedded CSMS serves ws://)": ["--insecure"],
        "--host cannot hold a user name or password": ["--host", "ws://cp:secret@127.0.0.1:1"],
    }
    procs = {}
    with contextlib.ExitStack() as stack:
        for error, args in cases.items():
            procs[error] = stack.enter_context(child([*base, *args]))
        for proc in procs.values():
            finished(proc, timeout=30)
    for error, proc in procs.items():
        assert proc.returncode == 2, (error, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if "ocpp-swarm:" in line]
        assert len(lines) == 1 and error in lines[0], (error, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        assert "Ramping to" not in proc.stderr, "a user started"
        assert proc.descendants == {}, "no embedded CSMS for refused options"
        assert "secret" not in proc.stderr, proc.stderr  # the password, in the file or the URL
    assert "line 2: expected '<chargePointId> <password>'" in procs["--password-file: "].stderr


@pytest.mark.timeout(90)
def test_a_run_with_a_password_and_client_keys_leaves_no_secret_behind(
    pki: Pki, tmp_path: Path
) -> None:
    password = "Zq7-{id}-unguessable"
    config = CsmsConfig(
        port=0,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        client_ca=str(pki.ca),
        password=password,
    )
    results = tmp_path / "results"
    with csms_in_thread(config) as (csms, loop):
        command = [
            LOCUST,
            "-f",
            "locustfile.py",
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "4s",
            "--loglevel",
            "DEBUG",  # websockets logs every handshake header at DEBUG
            "--results-dir",
            str(results),
            "--host",
            csms.url,
            "--ca-file",
            str(pki.ca),
            "--client-cert",
            pki.cert_template,
            "--client-key",
            pki.key_template,
            "--password",
            password,
        ]
        with child(command) as proc:
            finished(proc, timeout=40)
        booted = call_in(loop, lambda: csms.stats["BootNotification"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert booted == 3, "every charge point got through TLS, its certificate and its password"
    # What must not be anywhere: the template, each password, each Authorization header, and
    # any line of a private key's PEM body.
    secrets = {password, "unguessable"}
    for cp in IDS:
        secrets.add(expand(password, cp))
        secrets.add(authorization(cp, expand(password, cp)).split()[1])
        body = pki.keys[cp].decode().splitlines()[1:-1]
        secrets.update(line for line in body if len(line) >= 16)
    files = [path for path in results.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"report.html", "summary.json", "locust_stats.csv", "fleet.csv"} <= names, names
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    texts.update({str(path): path.read_bytes().decode(errors="replace") for path in files})
    assert "DEBUG" in proc.stderr  # the run logged at DEBUG indeed
    for where, text in texts.items():
        found = [secret for secret in secrets if secret in text]
        assert found == [], f"{where} holds {found}"
    summary = json.loads(next(results.rglob("summary.json")).read_text())
    assert summary["options"]["password"] == MASK
    assert summary["options"]["client_key"] == pki.key_template  # a path may show


@pytest.mark.timeout(60)
def test_the_web_ui_is_given_no_security_option() -> None:
    # What Locust's web UI puts in its page: each option's command-line value as its default.
    script = (
        "import json, sys\n"
        "import swarm.locust.user\n"
        "from locust.argument_parser import ui_extra_args_dict\n"
        "print(json.dumps(ui_extra_args_dict(sys.argv[1:])))\n"
    )
    argv = ["-f", "locustfile.py", "--password", "pw-web-{id}", "--ca-file", "ca.pem"]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert "heartbeat_interval" in shown  # the swarm's other options are there
    assert not set(SECURITY_OPTIONS) & set(shown), shown
    assert "pw-web" not in done.stdout


def test_security_imports_neither_locust_nor_gevent() -> None:
    tree = ast.parse(Path(security.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported and not {name.split(".")[0] for name in imported} & {"locust", "gevent"}


@pytest.mark.timeout(90)
def test_a_worker_takes_the_security_options_of_its_master(pki: Pki) -> None:
    """Locust hands a master's own options to its workers when users spawn: a worker connects
    as its master says, with the master's password, over TLS to the host the master names."""
    password = "m-{id}"
    config = CsmsConfig(
        port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), password=password
    )
    port = free_port()
    with csms_in_thread(config) as (csms, loop):
        master = [
            LOCUST, "-f", "locustfile.py", "--master", "--master-bind-port", str(port),
            "--headless", "--expect-workers", "1", "-u", "4", "-r", "4", "-t", "6s",
            "--results-dir", "", "--host", csms.url,
            "--ca-file", str(pki.ca), "--password", password,
        ]  # fmt: skip
        worker = [
            LOCUST, "-f", "locustfile.py", "--worker", "--master-port", str(port),
            "--results-dir", "", "--ca-file", str(pki.ca),  # no --host: its master names it
        ]  # fmt: skip
        with child(master) as boss, child(worker) as hand:
            finished(boss, timeout=60)
            finished(hand, timeout=20)
        booted = call_in(loop, lambda: csms.stats["BootNotification"])
    assert hand.returncode == 0, hand.stderr[-3000:]
    assert boss.returncode == 0, boss.stderr[-3000:]
    assert booted == 4, (booted, boss.stderr[-2000:], hand.stderr[-2000:])


def test_a_ca_file_is_the_only_ca_trusted_on_either_side(pki: Pki) -> None:
    """``--ca-file`` and the CSMS's ``--client-ca`` trust their CAs alone, not the system's too;
    ``--insecure`` loads no CA at all."""
    assert client_context(str(pki.ca)).cert_store_stats()["x509_ca"] == 1
    assert client_context(insecure=True).cert_store_stats()["x509_ca"] == 0
    server = server_context(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    assert server.cert_store_stats()["x509_ca"] == 1
    assert server.verify_mode is ssl.CERT_REQUIRED
