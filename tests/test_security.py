"""OCPP 1.6 security profiles 1-3: swarm.protocol.security as plain functions. The embedded
CSMS's side in plain asyncio is in tests/test_security_profiles.py, the swarm in Locust in
tests/test_security_locust.py.

Every certificate is made here by ``trustme``; nothing leaves loopback.
"""

from __future__ import annotations

import argparse
import ast
import base64
import logging
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from swarm.locust.options import (
    MASK,
    PASSWORD_ENV,
    add_arguments,
    security_from_options,
    swarm_options,
)
from swarm.protocol import security
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


def test_a_ca_file_is_the_only_ca_trusted_on_either_side(pki: Pki) -> None:
    """``--ca-file`` and the CSMS's ``--client-ca`` trust their CAs alone, not the system's too;
    ``--insecure`` loads no CA at all."""
    assert client_context(str(pki.ca)).cert_store_stats()["x509_ca"] == 1
    assert client_context(insecure=True).cert_store_stats()["x509_ca"] == 0
    server = server_context(str(pki.server_cert), str(pki.server_key), str(pki.ca))
    assert server.cert_store_stats()["x509_ca"] == 1
    assert server.verify_mode is ssl.CERT_REQUIRED
