"""How the embedded CSMS listens and answers (:class:`CsmsConfig`), and the names it counts under.

Loaded by the server and by the command line; it needs neither websockets nor the server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from swarm.protocol.security import Passwords, server_context

if TYPE_CHECKING:
    from swarm.csms.authority import Authority, Manufacturer

BOOT_POLICIES = ("accept", "pending", "reject")

# Counter keys besides the action names (which never contain a dot). The CSMS's own calls are
# counted as "<outcome>.<Action>" too (see swarm.csms.server.Csms).
CONNECTIONS_CURRENT = "connections.current"
CONNECTIONS_TOTAL = "connections.total"
RECEIVED_RESULTS = "received.callresult"
RECEIVED_ERRORS = "received.callerror"
SENT_ERRORS = "sent.callerror"
RECEIVED_IGNORED = "received.ignored"  # malformed answers, frames of an unknown type
DISCONNECTED = "connections.closed_by_csms"
RESTARTS = "restarts"
FAULT_DELAYED = "faults.delayed"
FAULT_CALLERRORS = "faults.callerror"
FAULT_FRAMES = "faults.frames"  # followed by ".<kind>"


@dataclass(frozen=True)
class CsmsConfig:
    """How the CSMS listens and answers."""

    host: str = "127.0.0.1"
    port: int = 9000  # 0 picks a free port
    heartbeat_interval: int = 60  # seconds, sent in an accepted BootNotification
    # "pending"/"reject": the first BootNotification of each charge point id gets that status,
    # later ones are accepted.
    boot: Literal["accept", "pending", "reject"] = "accept"
    boot_retry_interval: int = 10  # seconds, sent with Pending and Rejected
    reject_id_tags: frozenset[str] = frozenset()  # answered "Invalid"; any other is "Accepted"
    validate: bool = True  # check every incoming CALL payload against its schema
    # OCPP 1.6 security profiles. TLS (wss://) with tls_cert and tls_key (PEM files); with
    # client_ca, a client certificate it issued is required, and its CN must be the charge
    # point id in the URL. HTTP Basic auth when password_file or password is set: the user
    # name must be the charge point id, the password the file's for it, else the template's
    # (``{id}`` replaced by the id); anything else is answered 401.
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    password_file: str | None = None
    password: str | None = field(default=None, repr=False)
    # The certificate authority that signs the charge points' CSRs: a CA certificate and its
    # key (PEM files), or none given: one made at start.
    ca_cert: str | None = None
    ca_key: str | None = None
    # Seconds a certificate it signs is valid: short ones make the fleet renew them (a month
    # before they expire, a third of their life before for those that live less than three).
    certificate_lifetime: float = 365 * 86400.0
    # The firmware manufacturer it plays, from a file Manufacturer.to_pem wrote (the front of
    # several processes shares its own so), or none given: one made at start.
    manufacturer_file: str | None = None
    # Listen with SO_REUSEPORT: one of several processes sharing the port (swarm.csms.front).
    reuse_port: bool = False
    # Loaded by __post_init__, so that a file that does not load is refused at once.
    ssl_context: ssl.SSLContext | None = field(default=None, init=False, repr=False, compare=False)
    passwords: Passwords = field(default_factory=Passwords, init=False, repr=False, compare=False)
    authority: Authority | None = field(default=None, init=False, repr=False, compare=False)
    manufacturer: Manufacturer | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, not {self.port!r}")
        if not 1 <= self.certificate_lifetime <= 3650 * 86400:
            raise ValueError(
                f"certificate_lifetime must be 1 s to ten years, not {self.certificate_lifetime!r}"
            )
        for name in ("heartbeat_interval", "boot_retry_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer of seconds, not {value!r}")
        if self.boot not in BOOT_POLICIES:
            raise ValueError(f"boot must be one of {', '.join(BOOT_POLICIES)}, not {self.boot!r}")
        if isinstance(self.reject_id_tags, str):
            raise ValueError("reject_id_tags must be a collection of idTags, not one string")
        # Accept any iterable of tags (a list from the CLI) but keep the field hashable.
        object.__setattr__(self, "reject_id_tags", frozenset(self.reject_id_tags))
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.client_ca and not self.tls_cert:
            raise ValueError("client_ca needs tls_cert and tls_key: client certificates need TLS")
        if self.tls_cert and self.tls_key:
            context = server_context(self.tls_cert, self.tls_key, self.client_ca)
            object.__setattr__(self, "ssl_context", context)
        passwords = Passwords(self.password, self.password_file)
        object.__setattr__(self, "passwords", passwords)
        if (self.ca_cert is None) != (self.ca_key is None):
            raise ValueError("ca_cert and ca_key go together")
        if self.ca_cert and self.ca_key:
            from swarm.csms.authority import Authority  # cryptography: only when given

            try:
                authority = Authority.load(self.ca_cert, self.ca_key)
            except ValueError as exc:
                raise ValueError(f"ca_cert, ca_key: {exc}") from None
            object.__setattr__(self, "authority", authority)
        if self.manufacturer_file:
            from swarm.csms.authority import Manufacturer

            try:
                with open(self.manufacturer_file, "rb") as file:
                    manufacturer = Manufacturer.from_pem(file.read())
            except OSError as exc:
                raise ValueError(f"manufacturer_file: cannot read it: {exc.strerror}") from None
            except ValueError as exc:
                raise ValueError(f"manufacturer_file: {exc}") from None
            object.__setattr__(self, "manufacturer", manufacturer)
