"""The ``--host`` URL of the CSMS: checked, resolved and probed before any charge point starts.

Checked where the options are read (at start-up, and again when the web UI changes them), so a
bad URL is refused with one line rather than as one connection error per charge point.
"""

from __future__ import annotations

import socket

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from swarm.locust.results import without_credentials
from swarm.protocol.security import Security

PROBE_TIMEOUT = 3.0
"""Seconds a start-up probe of the CSMS may take to open a TCP connection."""


def resolve_host(host: str | None) -> tuple[str, tuple[str, int]]:
    """Check a ``ws://`` or ``wss://`` CSMS URL; return it without a trailing slash, and the
    first address its host name resolves to (to connect to where the loop cannot resolve)."""
    if not host:
        raise ValueError(
            "no CSMS: give --host ws://HOST:PORT/PATH, or none to use the embedded CSMS"
        )
    url = host.rstrip("/")
    try:
        shown = without_credentials(host)  # an error message is logged: no password in it
    except ValueError:  # a port that is no number
        shown = "a URL that does not parse"
    # Without a scheme a URL's user info does not parse as one: drop all before the last @.
    shown = shown.rpartition("@")[2]
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise ValueError(f"--host must be a ws:// or wss:// URL, got {shown!r}") from None
    if uri.user_info:
        raise ValueError(
            "--host cannot hold a user name or password (URLs reach logs and reports):"
            " give --password or --password-file"
        )
    if uri.query:
        raise ValueError(f"--host cannot hold a query string, got {shown!r}")
    try:
        infos = socket.getaddrinfo(uri.host, uri.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"--host {host!r}: cannot resolve {uri.host}: {exc}") from None
    return url, infos[0][4][:2]


def check_scheme(url: str | None, security: Security) -> None:
    """Refuse TLS options for a ``ws://`` CSMS (None: the embedded one): they would do nothing."""
    if security.config.tls and not (url and is_secure(url)):
        got = f"got {url!r}" if url else "the embedded CSMS serves ws://"
        raise ValueError(f"--ca-file, --insecure and --client-cert need a wss:// --host ({got})")


def is_secure(url: str) -> bool:
    """Whether ``url`` is a ``wss://`` one."""
    return url[:6].lower() == "wss://"


def probe_host(host: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Check that something listens at a ``--host`` URL (checked by :func:`resolve_host`):
    open a TCP connection to it within ``timeout`` seconds, and close it. Raises ValueError
    saying why it cannot connect, so a run against nothing is refused before it starts."""
    uri = parse_uri(host.rstrip("/"))
    try:
        with socket.create_connection((uri.host, uri.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValueError(f"--host {host}: cannot connect: {reason}") from None
