"""What the swarm measures: one :class:`Sample` per round trip or connection event, in the shape
of a Locust request, and the request types and error texts they carry.

Reporting reads these without loading the protocol's I/O (websockets): keep this module plain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

OCPP = "OCPP"
"""Request type of charge-point-initiated round trips (OCPP 1.6)."""
CSMS = "CSMS"
"""Request type of CSMS-initiated calls the charge point handled (OCPP 1.6)."""
OCPP201 = "OCPP201"
"""Request type of OCPP 2.0.1 stations' round trips."""
CSMS201 = "CSMS201"
"""Request type of CSMS-initiated calls an OCPP 2.0.1 station handled."""
CALL_TYPES = (OCPP, OCPP201)
"""The request types of round trips, a version's each."""
CSMS_TYPES = (CSMS, CSMS201)
"""The request types of CSMS-initiated calls, a version's each."""
WEBSOCKET = "WebSocket"
"""Request type of connection events: connect time, lost connections, stray frames."""
OUTBOX = "Outbox"
"""Request type of transaction messages dropped after the CSMS failed to process them as often
as their version allows (a failure each, named by its action)."""


class Sample(NamedTuple):
    """One measurement, in the shape of a Locust request."""

    request_type: str
    name: str
    response_time: float
    """Milliseconds."""
    error: str | None = None


SampleSink = Callable[[Sample], None]


CALLERROR_PREFIX = "CALLERROR "
"""Start of the error text of a round trip answered with a CALLERROR; its code follows."""

NOT_AN_OCPP_CODE = "<not an OCPP code>"
"""The code reported for a CALLERROR whose errorCode is none of its version's: Locust keeps a
row per distinct error, and what a CSMS puts in a frame has no bound."""

UNKNOWN_ACTION = "<unknown action>"
"""The name reported for a CSMS's CALL of an action its version does not define."""


def callerror_code(error: str) -> str | None:
    """The OCPP error code in a sample's error text, if a CALLERROR made it."""
    return error[len(CALLERROR_PREFIX) :] if error.startswith(CALLERROR_PREFIX) else None
