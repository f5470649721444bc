"""One version of OCPP-J as a value: what framing, the RPC session and the CSMS need to know of it.

Framing (:mod:`swarm.protocol.ocppj`) and the session (:mod:`swarm.protocol.rpc`) serve every
version; each version's package defines its :class:`Dialect` (``swarm.ocpp16.dialect.OCPP16``)
and passes it down, so no layer below a version's package names a version's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from swarm.protocol.schemas import Schemas


@dataclass(frozen=True, eq=False, slots=True)
class Dialect:
    """An OCPP-J version: its subprotocol, error codes, actions and schemas."""

    version: str
    """As the ``ocpp`` package names it: ``1.6``, ``2.0.1``."""
    subprotocol: str
    """The WebSocket subprotocol a connection of this version negotiates."""
    error_codes: frozenset[str]
    """The errorCodes a CALLERROR of this version may carry."""
    csms_actions: frozenset[str]
    """Actions only a CSMS sends: a charge point that does not handle one answers NotSupported,
    an action of neither side NotImplemented."""
    schemas: Schemas
    call_type: str
    """The request type of its round trips in Locust (:mod:`~swarm.protocol.samples`)."""
    csms_type: str
    """The request type of the CSMS-initiated calls it handles."""
    renamed: Mapping[str, str] = field(default_factory=dict)
    """Error codes this version spells otherwise than :mod:`~swarm.protocol.ocppj`'s (the 1.6
    names), by those names."""

    def error_code(self, code: str) -> str:
        """``code``, one of :mod:`~swarm.protocol.ocppj`'s, as this version spells it."""
        return self.renamed.get(code, code)
