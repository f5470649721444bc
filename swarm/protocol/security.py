"""OCPP 1.6 security profiles 1 to 3 (the OCPP 1.6 security whitepaper), on the charge point side.

- Profile 1: HTTP Basic authentication on the WebSocket handshake. The user name is the charge
  point id, the password comes from a password file or a template such as ``secret-{id}``.
- Profile 2: TLS (``wss://``), the CSMS's certificate verified against a CA file or the
  system's CAs, plus the password of profile 1.
- Profile 3: TLS with a client certificate (mutual TLS), one for the fleet or one per charge
  point from a path template.

A :class:`SecurityConfig` says what to do; :class:`Security` is what it loads to, once at start:
the passwords and the TLS contexts. Everything a charge point needs ends up in the keyword
arguments of websockets' ``connect()`` (:meth:`Security.connect_options`), so the charge point
and the hot path know nothing of it. Nothing here knows Locust.

Secrets stay out of logs: the password is sent in an ``Authorization`` header, never in the
URL, the handshake is logged by a logger that never logs at DEBUG (websockets logs every
request header there), and neither a password nor a key appears in a ``repr`` or an error.
"""

from __future__ import annotations

import logging
import ssl
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from websockets.headers import build_authorization_basic

PLACEHOLDER = "id"
"""The one field a template may hold: ``{id}``, replaced by the charge point id."""

HANDSHAKE_LOGGER = logging.getLogger("swarm.protocol.security.handshake")
"""The logger of connections that send a password: websockets logs every header of the opening
handshake at DEBUG, ``Authorization`` too, so this one is held at INFO."""
HANDSHAKE_LOGGER.setLevel(logging.INFO)


class SecurityError(ValueError):
    """A security option is unusable; the message names the option and never holds a secret."""


def check_template(template: str, option: str) -> None:
    """Check that ``template`` holds no field but ``{id}`` (``{{`` and ``}}`` are braces).

    Raises :class:`SecurityError` naming ``option``; the template itself is not repeated, as it
    may be a password.
    """
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise SecurityError(f"{option}: a malformed template ({exc})") from None
    for _, name, spec, conversion in fields:
        if name is not None and (name != PLACEHOLDER or spec or conversion):
            raise SecurityError(
                f"{option}: a template may only hold {{{PLACEHOLDER}}} (write {{{{ and }}}} for"
                " braces)"
            )


def is_template(template: str) -> bool:
    """Whether ``template`` (a checked one) holds ``{id}``."""
    return any(name is not None for _, name, _, _ in string.Formatter().parse(template))


def expand(template: str, charge_point_id: str) -> str:
    """``template`` with ``{id}`` replaced by ``charge_point_id``."""
    return template.format_map({PLACEHOLDER: charge_point_id})


def read_passwords(path: str | Path, option: str = "--password-file") -> dict[str, str]:
    """Passwords by charge point id from a file of ``<chargePointId> <password>`` lines.

    Blank lines and lines starting with ``#`` are skipped; the password is the rest of the line
    after the id and the blanks that follow it (it may hold blanks, not at its ends). Raises
    :class:`SecurityError` for a file that cannot be read, a line without a password, an id
    given twice, or a file with no password at all; errors name lines by number, not content.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SecurityError(f"{option}: {path} is not UTF-8 text") from None
    passwords: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2:
            raise SecurityError(
                f"{option}: {path} line {number}: expected '<chargePointId> <password>'"
            )
        charge_point_id, password = parts
        if ":" in charge_point_id:  # Basic authentication splits user and password at ':'
            raise SecurityError(f"{option}: {path} line {number}: a charge point id has no ':'")
        if charge_point_id in passwords:
            raise SecurityError(
                f"{option}: {path} line {number}: {charge_point_id} is listed twice"
            )
        passwords[charge_point_id] = password
    if not passwords:
        raise SecurityError(f"{option}: {path} holds no password")
    return passwords


class Passwords:
    """Each charge point's password: from a file, else from a template, else none.

    Both are optional; with neither, no charge point has a password.
    """

    def __init__(
        self, template: str | None = None, file: str | None = None, *, option: str = "--password"
    ) -> None:
        if template is not None:
            check_template(template, option)
        self._template = template
        self._by_id: Mapping[str, str] = read_passwords(file, f"{option}-file") if file else {}
        self.file = file

    def __repr__(self) -> str:
        return f"Passwords(file={self.file!r}, template={'set' if self._template else None})"

    @property
    def enabled(self) -> bool:
        """Whether any charge point has a password."""
        return self._template is not None or bool(self._by_id)

    def get(self, charge_point_id: str) -> str | None:
        """The password of ``charge_point_id``, or None if neither file nor template gives one."""
        password = self._by_id.get(charge_point_id)
        if password is None and self._template is not None:
            password = expand(self._template, charge_point_id)
        return password


@dataclass(frozen=True, slots=True)
class SecurityConfig:
    """How a fleet authenticates to its CSMS and verifies it.

    Paths and templates are strings as given; :class:`Security` loads them. A template holds
    ``{id}``, the charge point id.
    """

    password: str | None = field(default=None, repr=False)
    """Password template (profile 1): ``secret-{id}``, or one password for every charge point.
    Used for the charge points that ``password_file`` does not list."""
    password_file: str | None = None
    """A file of ``<chargePointId> <password>`` lines (see :func:`read_passwords`)."""
    ca_file: str | None = None
    """CA certificates (PEM) to verify the CSMS's certificate with; None: the system's CAs."""
    insecure: bool = False
    """Do not verify the CSMS's certificate at all (its name neither)."""
    client_cert: str | None = None
    """Client certificate (PEM, may hold its chain) for mutual TLS (profile 3): a path, or a
    path template with ``{id}`` for one certificate per charge point."""
    client_key: str | None = None
    """The private key (PEM, unencrypted) of ``client_cert``: a path or a path template."""

    def __post_init__(self) -> None:
        if self.insecure and self.ca_file:
            raise SecurityError("--insecure and --ca-file exclude each other")
        if (self.client_cert is None) != (self.client_key is None):
            raise SecurityError("--client-cert and --client-key go together")
        for option, value in (
            ("--password", self.password),
            ("--client-cert", self.client_cert),
            ("--client-key", self.client_key),
        ):
            if value is not None:
                check_template(value, option)
        if self.per_charge_point_tls and not (self.ca_file or self.insecure):
            # Each context would load the system's CAs: 46 times the memory and 75 times the
            # time of one with a CA file of one CA (python -m bench.state).
            raise SecurityError(
                "--client-cert with {id} needs --ca-file (or --insecure): each charge point gets"
                " its own TLS context, and one with the system's CAs costs 830 KiB"
            )

    @property
    def tls(self) -> bool:
        """Whether an option applies to TLS only (a ``wss://`` CSMS)."""
        return bool(self.ca_file or self.insecure or self.client_cert)

    @property
    def per_charge_point_tls(self) -> bool:
        """Whether each charge point has its own client certificate (a path template)."""
        return bool(
            (self.client_cert and is_template(self.client_cert))
            or (self.client_key and is_template(self.client_key))
        )


class Security:
    """A :class:`SecurityConfig` loaded: passwords read, TLS contexts built, once at start.

    Raises :class:`SecurityError` for a file that does not load. Per-charge-point certificates
    are loaded when their charge point starts, by :meth:`connect_options`.
    """

    def __init__(self, config: SecurityConfig | None = None) -> None:
        self.config = config = config or SecurityConfig()
        self.passwords = Passwords(config.password, config.password_file)
        # One context for the fleet (every wss:// connect would build its own otherwise). With
        # TLS options it is built now, to refuse their files at start (with per-charge-point
        # certificates, to check the CA file); without, when a wss:// CSMS first needs it:
        # the system's CAs take 27 ms and 830 KiB to load.
        self._context: ssl.SSLContext | None = None
        if config.tls:
            self._context = client_context(config.ca_file, insecure=config.insecure)
            if config.client_cert and config.client_key and not config.per_charge_point_tls:
                load_cert_chain(self._context, config.client_cert, config.client_key)

    @property
    def per_charge_point(self) -> bool:
        """Whether :meth:`connect_options` has anything to add for a charge point."""
        return self.passwords.enabled or self.config.per_charge_point_tls

    def profile(self, secure: bool) -> int:
        """The security profile a charge point connects with to a ``wss://`` CSMS (``secure``)
        or a ``ws://`` one: 3 with a client certificate, 2 with TLS, 1 with a password, else 0."""
        if secure:
            return 3 if self.config.client_cert else 2
        return 1 if self.passwords.enabled else 0

    def fleet_options(self, secure: bool) -> dict[str, Any]:
        """Keyword arguments of ``connect()`` that every charge point shares: the TLS context
        for a ``wss://`` CSMS (``secure``), unless each charge point has its own."""
        if not secure or self.config.per_charge_point_tls:
            return {}
        if self._context is None:
            self._context = client_context()
        return {"ssl": self._context}

    def connect_options(self, charge_point_id: str, secure: bool) -> dict[str, Any]:
        """Keyword arguments of ``connect()`` for one charge point: its ``Authorization``
        header, and with per-charge-point certificates its own TLS context.

        Raises :class:`SecurityError` if it has no password (neither the file nor a template
        gives one) or its certificate does not load.
        """
        options: dict[str, Any] = {}
        if self.passwords.enabled:
            password = self.passwords.get(charge_point_id)
            if password is None:
                raise SecurityError(
                    f"--password-file {self.config.password_file} has no password for"
                    f" {charge_point_id}, and no --password template is given"
                )
            options["additional_headers"] = (
                ("Authorization", authorization(charge_point_id, password)),
            )
            options["logger"] = HANDSHAKE_LOGGER
        if secure and self.config.per_charge_point_tls:
            assert self.config.client_cert is not None and self.config.client_key is not None
            context = client_context(self.config.ca_file, insecure=self.config.insecure)
            load_cert_chain(
                context,
                expand(self.config.client_cert, charge_point_id),
                expand(self.config.client_key, charge_point_id),
            )
            options["ssl"] = context
        return options


def authorization(charge_point_id: str, password: str) -> str:
    """The ``Authorization`` header value of HTTP Basic authentication (RFC 7617)."""
    if ":" in charge_point_id:
        raise SecurityError(f"a charge point id with ':' cannot authenticate: {charge_point_id!r}")
    return build_authorization_basic(charge_point_id, password)


def client_context(ca_file: str | None = None, *, insecure: bool = False) -> ssl.SSLContext:
    """A TLS client context that verifies the server against ``ca_file`` (PEM) alone, or else
    the system's CAs; with ``insecure``, one that verifies nothing (and loads no CA)."""
    # Not ssl.create_default_context(): it loads the system's CAs whatever is added after.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file:
        load_verify_locations(context, ca_file, "--ca-file")
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return context


def server_context(
    cert: str,
    key: str,
    client_ca: str | None = None,
    *,
    options: tuple[str, str, str] | None = None,
) -> ssl.SSLContext:
    """A TLS server context with ``cert`` and ``key``; with ``client_ca``, one that requires a
    client certificate issued by it. ``options`` names the three for error messages."""
    cert_option, key_option, ca_option = options or ("--tls-cert", "--tls-key", "--client-ca")
    # Not ssl.create_default_context(): it would trust clients of every system CA too.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_cert_chain(context, cert, key, (cert_option, key_option))
    if client_ca:
        load_verify_locations(context, client_ca, ca_option)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def load_verify_locations(context: ssl.SSLContext, ca_file: str, option: str) -> None:
    """Load CA certificates into ``context``; a :class:`SecurityError` naming ``option``."""
    _check_pem(ca_file, option, b"CERTIFICATE-----", "PEM certificate")
    try:
        context.load_verify_locations(cafile=ca_file)
    except OSError as exc:  # ssl.SSLError is one
        _refuse(option, ca_file, exc)


def load_cert_chain(
    context: ssl.SSLContext,
    cert: str,
    key: str,
    options: tuple[str, str] = ("--client-cert", "--client-key"),
) -> None:
    """Load a certificate (with its chain) and its private key into ``context``.

    An encrypted key is refused rather than asked for: OpenSSL would prompt on the terminal.
    """
    # Looked at first, for errors that say which file is wrong: OpenSSL says "PEM lib".
    _check_pem(cert, options[0], b"CERTIFICATE-----", "PEM certificate")
    _check_pem(key, options[1], b"PRIVATE KEY-----", "PEM private key")

    def no_passphrase() -> NoReturn:
        raise SecurityError(f"{options[1]}: {key} is encrypted; give an unencrypted key")

    try:
        context.load_cert_chain(cert, key, password=no_passphrase)
    except OSError as exc:  # ssl.SSLError is one; SecurityError passes
        _refuse(f"{options[0]}/{options[1]}", f"{cert} with {key}", exc)


def _check_pem(path: str, option: str, marker: bytes, what: str) -> None:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SecurityError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN " not in data or marker not in data:
        raise SecurityError(f"{option}: {path} holds no {what}")


def _refuse(option: str, what: str, exc: OSError) -> NoReturn:
    # OpenSSL's reason (KEY_VALUES_MISMATCH, ...) names what went wrong without any content.
    reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
    raise SecurityError(f"{option}: cannot load {what}: {reason}") from None
