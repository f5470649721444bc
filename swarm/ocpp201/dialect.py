"""OCPP 2.0.1J as a :class:`~swarm.protocol.dialect.Dialect`."""

from __future__ import annotations

from typing import Any

from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect
from swarm.protocol.samples import CSMS201, OCPP201
from swarm.protocol.schemas import Schemas

CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    }
)
"""OCPP 2.0.1 actions only a CSMS sends (part 2, every functional block)."""

RENAMED = {
    ocppj.FORMATION_VIOLATION: "FormatViolation",
    ocppj.OCCURENCE_CONSTRAINT_VIOLATION: "OccurrenceConstraintViolation",
}
"""The 1.6 error codes OCPP-J 2.0.1 spells otherwise (part 4, 4.3)."""

ERROR_CODES = frozenset(
    {
        "FormatViolation",
        ocppj.GENERIC_ERROR,
        ocppj.INTERNAL_ERROR,
        "MessageTypeNotSupported",
        ocppj.NOT_IMPLEMENTED,
        ocppj.NOT_SUPPORTED,
        "OccurrenceConstraintViolation",
        ocppj.PROPERTY_CONSTRAINT_VIOLATION,
        ocppj.PROTOCOL_ERROR,
        "RpcFrameworkError",
        ocppj.SECURITY_ERROR,
        ocppj.TYPE_CONSTRAINT_VIOLATION,
    }
)
"""The error codes of OCPP-J 2.0.1 (part 4, 4.3): what a CALLERROR may carry."""

OCPP201 = Dialect(
    version="2.0.1",
    subprotocol="ocpp2.0.1",
    error_codes=ERROR_CODES,
    csms_actions=CSMS_ACTIONS,
    schemas=Schemas("2.0.1"),
    call_type=OCPP201,
    csms_type=CSMS201,
    renamed=RENAMED,
)


def with_reason(status: str, reason: str, info: str) -> dict[str, Any]:
    """An answer of ``status`` and why: a StatusInfoType, its reasonCode at most 20 characters
    (``UnknownEvse``), its additionalInfo a text."""
    return {"status": status, "statusInfo": {"reasonCode": reason, "additionalInfo": info}}
