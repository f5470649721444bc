"""Firmware updates and diagnostics or log uploads: the statuses still to report, a step apart.

The runner keeps one :class:`Update` of each kind at most; its timer reports the next status,
then waits :func:`step_delay` before the one after. The statuses are the version's words.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Update:
    """A firmware update or an upload in progress."""

    steps: list[str]
    """Statuses still to report, in order."""
    version: str = ""
    """The firmware version an update installs."""


_STEP_WEIGHT = {"Downloading": 1.0, "Installing": 1.0, "Uploading": 1.0}
"""How many steps each status lasts before the next is reported; 0 for the rest."""


def step_delay(status: str, step: float) -> float:
    """Seconds from reporting ``status`` to the next status, with steps of ``step`` seconds."""
    return step * _STEP_WEIGHT.get(status, 0)


def version_of(location: str) -> str:
    """A firmware version from its file's name: ``ftp://fw/vc-2.1.0.bin`` is ``vc-2.1.0``."""
    name = location.rstrip("/").rsplit("/", 1)[-1]
    return (name.rsplit(".", 1)[0] if "." in name else name)[:50] or "updated"
