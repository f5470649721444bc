"""The CSMS's side of OCPP 1.6: its answers to the calls a charge point sends (and the security
extension's), each valid per the 1.6 response schemas.

:func:`answers` makes the table the embedded CSMS (:mod:`swarm.csms`) dispatches a 1.6
connection's CALLs to: action -> handler(charge point id, request payload) -> response payload.
What the handlers need of the CSMS comes in as a :class:`Central`, a protocol, because the CSMS
builds on a version's package and not the reverse: nothing here imports swarm.csms.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(charge point id, request payload) -> response payload."""

# Responses are serialized as soon as they are built, so handlers can share these.
_EMPTY: dict[str, Any] = {}
_ACCEPTED = {"status": "Accepted"}
_ID_ACCEPTED = {"idTagInfo": {"status": "Accepted"}}
_ID_INVALID = {"idTagInfo": {"status": "Invalid"}}


class Policy(Protocol):
    """How the CSMS answers idTags (``swarm.csms.CsmsConfig`` is one)."""

    @property
    def reject_id_tags(self) -> frozenset[str]: ...


class Central(Protocol):
    """What the answers need of the CSMS; shared by every version it speaks."""

    @property
    def config(self) -> Policy: ...
    @property
    def transaction_ids(self) -> Iterator[int]: ...

    def boot_answer(self, charge_point_id: str) -> dict[str, Any]:
        """The answer to a charge point's BootNotification, per the CSMS's boot policy."""
        ...

    def now(self) -> str:
        """The current UTC time, ``2024-01-31T12:00:00Z``."""
        ...

    def sign(self, charge_point_id: str, csr: str, extra: dict[str, Any]) -> bool:
        """Whether a CSR is signed (its chain then sent in a CertificateSigned, with ``extra``
        in its payload)."""
        ...


def answers(central: Central) -> dict[str, Handler]:
    """The CSMS's 1.6 answers by action, bound to ``central``."""
    return _Answers(central).table()


class _Answers:
    __slots__ = ("_boot_answer", "_config", "_now", "_sign", "_transaction_ids")

    def __init__(self, central: Central) -> None:
        # Taken apart once, so that a handler costs what a method of the CSMS did.
        self._config = central.config
        self._sign = central.sign
        self._boot_answer = central.boot_answer
        self._transaction_ids = central.transaction_ids
        self._now = central.now

    def table(self) -> dict[str, Handler]:
        return {
            "Authorize": self._authorize,
            "BootNotification": self._boot_notification,
            "DataTransfer": _accepted,
            "DiagnosticsStatusNotification": _empty,
            "FirmwareStatusNotification": _empty,
            "Heartbeat": self._heartbeat,
            "MeterValues": _empty,
            "StartTransaction": self._start_transaction,
            "StatusNotification": _empty,
            "StopTransaction": self._stop_transaction,
            "SecurityEventNotification": _empty,
            "SignCertificate": self._sign_certificate,
            "LogStatusNotification": _empty,
            "SignedFirmwareStatusNotification": _empty,
        }

    def _id_tag_info(self, id_tag: str) -> dict[str, Any]:
        return _ID_INVALID if id_tag in self._config.reject_id_tags else _ID_ACCEPTED

    def _heartbeat(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": self._now()}

    def _authorize(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._id_tag_info(payload.get("idTag", ""))

    def _sign_certificate(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        signed = self._sign(charge_point_id, payload.get("csr", ""), {})
        return _ACCEPTED if signed else {"status": "Rejected"}

    def _boot_notification(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._boot_answer(charge_point_id)

    def _start_transaction(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "idTagInfo": self._id_tag_info(payload.get("idTag", ""))["idTagInfo"],
            "transactionId": next(self._transaction_ids),
        }

    def _stop_transaction(self, charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        id_tag = payload.get("idTag")
        return _EMPTY if id_tag is None else self._id_tag_info(id_tag)


def _empty(charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _EMPTY


def _accepted(charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _ACCEPTED
