"""The CSMS's side of OCPP 2.0.1: its answers to the calls a charging station sends, each valid
per the 2.0.1 response schemas.

:func:`answers` makes the table the embedded CSMS (:mod:`swarm.csms`) dispatches a 2.0.1
connection's CALLs to: action -> handler(charging station id, request payload) -> response
payload. What the handlers need of the CSMS comes in as a :class:`Central`, a protocol, because
the CSMS builds on a version's package and not the reverse: nothing here imports swarm.csms, nor
swarm.ocpp16 (the versions are independent). Its protocols restate the few members of
``swarm.ocpp16.csms``'s that 2.0.1 uses: being structural, each version's names what it needs
(2.0.1 has no CSMS-made transaction ids), and one CSMS object satisfies both.

Most answers are formal: the CSMS takes note of nothing a station reports, and holds neither a
PKI nor an OCSP responder, so the certificate requests it cannot serve are answered Failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Handler = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(charging station id, request payload) -> response payload."""

# Responses are serialized as soon as they are built, so handlers can share these.
_EMPTY: dict[str, Any] = {}
_ACCEPTED = {"status": "Accepted"}
_ID_ACCEPTED = {"idTokenInfo": {"status": "Accepted"}}
_ID_INVALID = {"idTokenInfo": {"status": "Invalid"}}
_NO_PKI = {"reasonCode": "UnsupportedRequest", "additionalInfo": "The CSMS has no PKI"}
_EV_CERTIFICATE_FAILED = {"status": "Failed", "statusInfo": _NO_PKI, "exiResponse": ""}
_CERTIFICATE_STATUS_FAILED = {"status": "Failed", "statusInfo": _NO_PKI}


class Policy(Protocol):
    """How the CSMS answers idTokens (``swarm.csms.CsmsConfig`` is one)."""

    @property
    def reject_id_tags(self) -> frozenset[str]: ...  # idToken values answered Invalid


class Central(Protocol):
    """What the 2.0.1 answers need of the CSMS."""

    @property
    def config(self) -> Policy: ...

    def boot_answer(self, station_id: str) -> dict[str, Any]:
        """The answer to a station's BootNotification, per the CSMS's boot policy."""
        ...

    def now(self) -> str:
        """The current UTC time, ``2024-01-31T12:00:00Z``."""
        ...

    def sign(self, station_id: str, csr: str, extra: dict[str, Any]) -> bool:
        """Whether a CSR is signed (its chain then sent in a CertificateSigned, with ``extra``
        in its payload)."""
        ...


def answers(central: Central) -> dict[str, Handler]:
    """The CSMS's 2.0.1 answers by action, bound to ``central``."""
    return _Answers(central).table()


class _Answers:
    __slots__ = ("_boot_answer", "_now", "_rejected", "_sign")

    def __init__(self, central: Central) -> None:
        # Taken apart once, so that a handler costs what a method of the CSMS did.
        self._boot_answer = central.boot_answer
        self._now = central.now
        self._sign = central.sign
        # 2.0.1 idTokens are case insensitive (IdTokenType): so is the reject list.
        self._rejected = frozenset(tag.casefold() for tag in central.config.reject_id_tags)

    def table(self) -> dict[str, Handler]:
        return {
            "Authorize": self._authorize,
            "BootNotification": self._boot_notification,
            "ClearedChargingLimit": _empty,
            "DataTransfer": _accepted,
            "FirmwareStatusNotification": _empty,
            "Get15118EVCertificate": _ev_certificate_failed,
            "GetCertificateStatus": _certificate_status_failed,
            "Heartbeat": self._heartbeat,
            "LogStatusNotification": _empty,
            "MeterValues": _empty,
            "NotifyChargingLimit": _empty,
            "NotifyCustomerInformation": _empty,
            "NotifyDisplayMessages": _empty,
            "NotifyEVChargingNeeds": _accepted,
            "NotifyEVChargingSchedule": _accepted,
            "NotifyEvent": _empty,
            "NotifyMonitoringReport": _empty,
            "NotifyReport": _empty,
            "PublishFirmwareStatusNotification": _empty,
            "ReportChargingProfiles": _empty,
            "ReservationStatusUpdate": _empty,
            "SecurityEventNotification": _empty,
            "SignCertificate": self._sign_certificate,
            "StatusNotification": _empty,
            "TransactionEvent": self._transaction_event,
        }

    def _id_token_info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        # The reject list holds idToken values, whatever their type (ISO14443, eMAID, ...).
        rejected = id_token.get("idToken", "").casefold() in self._rejected
        return _ID_INVALID if rejected else _ID_ACCEPTED

    def _heartbeat(self, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {"currentTime": self._now()}

    def _authorize(self, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._id_token_info(payload.get("idToken", _EMPTY))

    def _sign_certificate(self, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        kind = payload.get("certificateType")
        extra = {"certificateType": kind} if kind is not None else {}
        return {
            "status": "Accepted" if self._sign(station_id, payload["csr"], extra) else "Rejected"
        }

    def _boot_notification(self, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._boot_answer(station_id)  # as 1.6's (B02 Pending, B03 Rejected)

    def _transaction_event(self, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        # idTokenInfo is required when the event carries an idToken (TransactionEventResponse),
        # and says nothing of an event without one.
        id_token = payload.get("idToken")
        return _EMPTY if id_token is None else self._id_token_info(id_token)


def _empty(station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _EMPTY


def _accepted(station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _ACCEPTED


def _ev_certificate_failed(station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _EV_CERTIFICATE_FAILED


def _certificate_status_failed(station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return _CERTIFICATE_STATUS_FAILED
