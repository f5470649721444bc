"""Where a charge point is in its life: what a fleet overview counts, whatever its OCPP version."""

from __future__ import annotations

import enum


class State(enum.Enum):
    """Where a charge point is in its life; what a fleet overview counts."""

    CONNECTING = "connecting"
    BOOTING = "booting"
    PENDING = "pending"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    BOOT_FAILED = "boot failed"
    """The boot was answered with a CALLERROR or an invalid answer, or not at all."""
    OFFLINE = "offline"
    STOPPED = "stopped"
