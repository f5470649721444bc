"""OCPP 1.6J as a :class:`~swarm.protocol.dialect.Dialect`."""

from __future__ import annotations

from swarm.protocol import ocppj
from swarm.protocol.dialect import Dialect
from swarm.protocol.samples import CSMS, OCPP
from swarm.protocol.schemas import Schemas

CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)
"""OCPP 1.6 actions only a CSMS sends (Core, the optional profiles and the security extension)."""

ERROR_CODES = frozenset(
    {
        ocppj.NOT_IMPLEMENTED,
        ocppj.NOT_SUPPORTED,
        ocppj.INTERNAL_ERROR,
        ocppj.PROTOCOL_ERROR,
        ocppj.SECURITY_ERROR,
        ocppj.FORMATION_VIOLATION,
        ocppj.PROPERTY_CONSTRAINT_VIOLATION,
        ocppj.OCCURENCE_CONSTRAINT_VIOLATION,
        ocppj.TYPE_CONSTRAINT_VIOLATION,
        ocppj.GENERIC_ERROR,
    }
)
"""The error codes of OCPP-J 1.6 (section 4.2.3, table 7): what a CALLERROR may carry."""

OCPP16 = Dialect(
    version="1.6",
    subprotocol="ocpp1.6",
    error_codes=ERROR_CODES,
    csms_actions=CSMS_ACTIONS,
    call_type=OCPP,
    csms_type=CSMS,
    schemas=Schemas(
        "1.6",
        decimal=frozenset(
            {
                (ocppj.CALL, "RemoteStartTransaction"),
                (ocppj.CALL, "SetChargingProfile"),
                (ocppj.CALLRESULT, "GetCompositeSchedule"),
            }
        ),
    ),
)
