"""The named campaigns of OCPP security that the control API runs (``POST /campaigns/<name>``):
each is one campaign in each version's words (:meth:`Campaigns.versioned_campaign
<swarm.csms.campaigns.Campaigns.versioned_campaign>`), made here as an :class:`Order` per version.

``install-root``, option ``root``: ``"csms"`` (the default) or ``"manufacturer"``
    InstallCertificate of the root of the CSMS's certificate authority (certificateType
    CentralSystemRootCertificate in 1.6, CSMSRootCertificate in 2.0.1), or of the manufacturer
    root (ManufacturerRootCertificate in both), which a charge point needs to trust signed
    firmware.
``renew-certificates``
    1.6 ExtendedTriggerMessage SignChargePointCertificate, 2.0.1 TriggerMessage
    SignChargingStationCertificate: the charge point makes a key and a CSR and sends
    SignCertificate; the CSMS signs it and sends CertificateSigned.
``signed-firmware``, options ``version`` (letters, digits, ``.``, ``_`` and ``-``, up to 50;
by default ``signed-<UTC time>``) and ``install_at`` (a date-time with its zone)
    1.6 SignedUpdateFirmware, 2.0.1 UpdateFirmware with a signature: location
    ``https://firmware.invalid/<version>.bin`` (never downloaded: the charge points take the
    version from the file's name), retrieveDateTime the campaign's start, installDateTime
    ``install_at``, the manufacturer's firmware signing certificate, and its signature of the
    location's bytes (which stand for the file: ECDSA with SHA-256, base64). The charge points
    report the update with SignedFirmwareStatusNotification (1.6) or FirmwareStatusNotification
    (2.0.1); one without the manufacturer root installed answers InvalidCertificate.
``fetch-logs``, option ``log``: ``"DiagnosticsLog"`` (the default) or ``"SecurityLog"``
    GetLog of that log to ``https://logs.invalid/``; the charge points report the upload with
    LogStatusNotification.

Each call of signed-firmware and fetch-logs has its own requestId, unique in the process.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from swarm.csms.campaigns import Order
from swarm.csms.versions import Central
from swarm.ocpp16.dialect import OCPP16
from swarm.ocpp201.dialect import OCPP201
from swarm.protocol.dialect import Dialect

ROOTS = {
    "csms": {OCPP16: "CentralSystemRootCertificate", OCPP201: "CSMSRootCertificate"},
    "manufacturer": {OCPP16: "ManufacturerRootCertificate", OCPP201: "ManufacturerRootCertificate"},
}
"""Each root kind of install-root, and its certificateType in each version."""
LOGS = ("DiagnosticsLog", "SecurityLog")
FIRMWARE_SERVER = "https://firmware.invalid/"
LOG_SERVER = "https://logs.invalid/"
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,49}")
"""A firmware version: as BootNotification's firmwareVersion holds it (50 characters at most),
and plain in a URL."""

_request_ids = itertools.count(1)

Maker = Callable[[Mapping[str, Any], Central], dict[Dialect, Order]]


def orders(name: str, options: Mapping[str, Any], central: Central) -> dict[Dialect, Order]:
    """The orders of the campaign ``name`` with its ``options``, for the CSMS ``central``;
    ValueError says what is wrong with them."""
    known = OPTIONS.get(name)
    if known is None:
        raise ValueError(f"no campaign {name!r}; there are {', '.join(OPTIONS)}")
    unknown = options.keys() - known
    if unknown:
        takes = f"takes {', '.join(sorted(known))}" if known else "takes no option"
        raise ValueError(f"{name} {takes}, not {', '.join(sorted(unknown)[:10])}")
    return _MAKERS[name](options, central)


def _install_root(options: Mapping[str, Any], central: Central) -> dict[Dialect, Order]:
    kind = options.get("root", "csms")
    types = ROOTS.get(kind) if isinstance(kind, str) else None
    if types is None:
        raise ValueError(f"root must be one of {', '.join(ROOTS)}, not {kind!r}")
    pem = central.authority.root_pem if kind == "csms" else central.manufacturer.root_pem
    return {
        dialect: Order.same("InstallCertificate", {"certificateType": kind, "certificate": pem})
        for dialect, kind in types.items()
    }


def _renew_certificates(options: Mapping[str, Any], central: Central) -> dict[Dialect, Order]:
    return {
        OCPP16: Order.same(
            "ExtendedTriggerMessage", {"requestedMessage": "SignChargePointCertificate"}
        ),
        OCPP201: Order.same(
            "TriggerMessage", {"requestedMessage": "SignChargingStationCertificate"}
        ),
    }


def _signed_firmware(options: Mapping[str, Any], central: Central) -> dict[Dialect, Order]:
    version = options.get("version", time.strftime("signed-%Y%m%d-%H%M%S", time.gmtime()))
    if not (isinstance(version, str) and _VERSION.fullmatch(version)):
        raise ValueError(
            "version must be 1 to 50 letters, digits, '.', '_' or '-', from a letter or digit,"
            f" not {version!r}"
        )
    location = f"{FIRMWARE_SERVER}{version}.bin"
    manufacturer = central.manufacturer
    firmware = {
        "location": location,
        "retrieveDateTime": central.now(),
        "signingCertificate": manufacturer.signing_pem,
        "signature": manufacturer.sign(location.encode()),
    }
    if "install_at" in options:
        firmware["installDateTime"] = _date_time("install_at", options["install_at"])

    def payload() -> dict[str, Any]:
        return {"requestId": next(_request_ids), "firmware": firmware}

    return {
        OCPP16: Order("SignedUpdateFirmware", payload),
        OCPP201: Order("UpdateFirmware", payload),
    }


def _fetch_logs(options: Mapping[str, Any], central: Central) -> dict[Dialect, Order]:
    log = options.get("log", LOGS[0])
    if log not in LOGS:
        raise ValueError(f"log must be one of {', '.join(LOGS)}, not {log!r}")
    remote = {"remoteLocation": LOG_SERVER}

    def payload() -> dict[str, Any]:
        return {"logType": log, "requestId": next(_request_ids), "log": remote}

    order = Order("GetLog", payload)
    return {OCPP16: order, OCPP201: order}


def _date_time(key: str, value: Any) -> str:
    """``value``, an ISO 8601 date-time with its zone, as OCPP writes one (UTC, ``Z``)."""
    when = None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            when = datetime.datetime.fromisoformat(value)
    if when is None or when.tzinfo is None:
        raise ValueError(f'{key} must be a date-time with its zone, e.g. "2030-01-31T02:00:00Z"')
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


OPTIONS: dict[str, frozenset[str]] = {
    "install-root": frozenset({"root"}),
    "renew-certificates": frozenset(),
    "signed-firmware": frozenset({"version", "install_at"}),
    "fetch-logs": frozenset({"log"}),
}
"""Each campaign's name and the options it takes."""
_MAKERS: dict[str, Maker] = {
    "install-root": _install_root,
    "renew-certificates": _renew_certificates,
    "signed-firmware": _signed_firmware,
    "fetch-logs": _fetch_logs,
}
