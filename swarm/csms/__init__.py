"""The embedded CSMS: the default target of the swarm, and a server of its own.

Its parts load on first use, so that a Locust process, which only starts the CSMS as a child
(:class:`~swarm.csms.process.CsmsProcess`), never loads the server.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "Csms": "server",
    "CsmsConfig": "config",
    "NotConnectedError": "connection",
    "CampaignResult": "campaigns",
    "CONNECTIONS_TOTAL": "config",
    "main": "cli",
    "CsmsProcess": "process",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


__all__ = sorted(_HOMES)
