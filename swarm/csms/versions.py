"""The OCPP versions the embedded CSMS speaks: per WebSocket subprotocol, a dialect and its answers.

A version is a :class:`~swarm.protocol.dialect.Dialect` and the table of the CSMS's answers to
its charge-point calls, which its own package makes (``swarm.ocpp16.csms.answers``,
``swarm.ocpp201.csms.answers``). Another version is one more entry in :data:`ANSWERS`; the server
offers every subprotocol listed here, in this order of preference, and dispatches each connection
on the one it negotiated.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from swarm.csms.authority import Authority, Manufacturer
from swarm.csms.config import CsmsConfig
from swarm.ocpp16 import csms as ocpp16_csms
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201 import csms as ocpp201_csms
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.dialect import Dialect
from swarm.station.meter import timestamp

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(charge point id, request payload) -> response payload."""


class Version(NamedTuple):
    """What a connection speaks: its dialect, and the CSMS's answers by action."""

    dialect: Dialect
    handlers: Mapping[str, Handler]


_BASIC_AUTH_PASSWORD = ("SecurityCtrlr", "BasicAuthPassword")


@dataclass(eq=False, slots=True)
class Central:
    """What every version's answers share of the CSMS: its config, the charge points whose first
    boot was answered, its transaction ids, its clock, its certificate authority, the firmware
    manufacturer it plays, and how it sends a call of its own after an answer (``send``, set by
    the server)."""

    config: CsmsConfig
    booted: set[str] = field(default_factory=set)
    transaction_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    authority: Authority = field(default_factory=Authority.make)
    manufacturer: Manufacturer = field(default_factory=Manufacturer.make)
    send: Callable[[str, str, dict[str, Any]], None] = lambda cp, action, payload: None
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    """Passwords the CSMS set (A01), by charge point id: from then on the only ones it takes
    from them (A01.FR.03)."""
    learned: dict[str, str] | None = field(default=None, repr=False)
    """In a worker of several processes (:mod:`swarm.csms.front`), the passwords it set since
    the front last took them to the others; None, not kept, in a CSMS of its own."""

    def boot_answer(self, charge_point_id: str) -> dict[str, Any]:
        """The answer to a BootNotification, the same in 1.6 and 2.0.1: Accepted with the
        heartbeat interval, but a charge point's first boot as the boot policy says (Pending or
        Rejected, 1.6 4.2 and 2.0.1 B02, B03) with the interval after which to boot again."""
        config = self.config
        status, interval = "Accepted", config.heartbeat_interval
        if config.boot != "accept" and charge_point_id not in self.booted:
            status = "Pending" if config.boot == "pending" else "Rejected"
            interval = config.boot_retry_interval
            self.booted.add(charge_point_id)
        return {"status": status, "currentTime": self.now(), "interval": interval}

    def sign(self, charge_point_id: str, csr: str, extra: dict[str, Any]) -> bool:
        """Whether a SignCertificate's CSR is Accepted: it is then signed, and its chain sent
        in a CertificateSigned (with ``extra`` in its payload) once the answer has gone."""
        try:
            lifetime = datetime.timedelta(seconds=self.config.certificate_lifetime)
            chain = self.authority.sign(csr, charge_point_id, lifetime)
        except ValueError:
            return False
        self.send(charge_point_id, "CertificateSigned", {"certificateChain": chain, **extra})
        return True

    def answered(
        self, charge_point_id: str, action: str, payload: dict[str, Any], answer: dict[str, Any]
    ) -> None:
        """A charge point answered a call of the CSMS's own: a password it Accepted is its
        password from now on (1.6 ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables
        SecurityCtrlr.BasicAuthPassword). An answer that does not say so clearly (one that
        breaks its schema) changes nothing."""
        try:
            password = _accepted_password(action, payload, answer)
        except (KeyError, TypeError, AttributeError):
            return
        if password is not None:
            self.passwords[charge_point_id] = password
            if self.learned is not None:
                self.learned[charge_point_id] = password

    def now(self) -> str:
        """The current UTC time, ``2024-01-31T12:00:00Z`` (formatted once a second)."""
        return timestamp()


ANSWERS: tuple[tuple[Dialect, Callable[[Central], Mapping[str, Handler]]], ...] = (
    (OCPP16, ocpp16_csms.answers),
    (OCPP201, ocpp201_csms.answers),
)
"""Each version's dialect, and what makes the CSMS's answers to its charge points' calls. The
order is the server's preference: a client that offers several gets the first of them listed
here (websockets' default selection), so a client that offers both speaks 1.6."""

PRIMARY = ANSWERS[0][0]
"""The dialect of what the CSMS says of itself, not in answer: the CALLERROR codes of its faults
are its (each connection's dialect spells them on the wire), and so is the refusal of a call of
its own that fits no version (one that fits goes to the charge points of the versions it fits:
:mod:`swarm.csms.campaigns`)."""


def primary_error_code(code: str) -> str:
    """``code`` as :data:`PRIMARY` spells it, if it is another version's spelling of one of its
    codes (``FormatViolation`` is 1.6's ``FormationViolation``); else ``code`` unchanged."""
    for dialect, _ in ANSWERS:
        for name, spelling in dialect.renamed.items():
            if code == spelling:
                return PRIMARY.error_code(name)
    return code


def by_subprotocol(central: Central) -> dict[str, Version]:
    """Every version of :data:`ANSWERS` by its subprotocol, its answers bound to ``central``."""
    return {dialect.subprotocol: Version(dialect, answers(central)) for dialect, answers in ANSWERS}


def _accepted_password(action: str, payload: dict[str, Any], answer: dict[str, Any]) -> str | None:
    """The password a charge point's ``answer`` to the CSMS's ``action`` Accepted, if any."""
    password = None
    if action == "ChangeConfiguration":
        if payload["key"].lower() == "authorizationkey" and answer["status"] == "Accepted":
            password = payload["value"]
    elif action == "SetVariables":
        for asked, result in zip(
            payload["setVariableData"], answer["setVariableResult"], strict=False
        ):
            where = (asked["component"]["name"], asked["variable"]["name"])
            if where == _BASIC_AUTH_PASSWORD and result["attributeStatus"] == "Accepted":
                password = asked["attributeValue"]
    return password if isinstance(password, str) else None
