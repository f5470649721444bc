"""The checks of the swarm's options and ``--host``: at start-up, and on each start of a run in
the web UI, so that bad input is refused with one line naming the option, before any user
starts.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from swarm import limits
from swarm.locust.host import check_scheme, probe_host, resolve_host
from swarm.locust.options import config_from_options, security_from_options, swarm_options
from swarm.protocol.security import Security
from swarm.report import thresholds


def check(
    options: Any, host: str | None, *, worker: bool = False
) -> tuple[Security, list[thresholds.Threshold]]:
    """Check ``options`` (Locust's parsed ones, or None) and ``host``; raise ValueError saying
    what is wrong. Returns the security settings (their files loaded) and the thresholds.

    A worker's host comes from its master: none to check. Where it is known, something must
    listen there (one TCP connection, opened and closed).
    """
    security = Security()
    if options is not None:
        security = Security(security_from_options(options))
    if host is not None:
        url, _ = resolve_host(host)
        check_scheme(url, security)
    elif not worker:
        check_scheme(None, security)
    checks: list[thresholds.Threshold] = []
    if options is not None:
        config_from_options(options)
        limits.read_source_addresses(options.source_addresses)
        checks = thresholds.thresholds_from_options(options)
    if host is not None and not worker:
        probe_host(host)
    return security, checks


def with_form(options: Any, form: Mapping[str, str]) -> argparse.Namespace:
    """``options`` as the web UI's start form changes them: its host, and the swarm's options
    converted as Locust converts them (by the type of the value in force). A value that does
    not convert raises ValueError naming the option, where Locust would fail the request."""
    values = dict(vars(options)) if options is not None else {}
    ours = swarm_options(options) if options is not None else {}
    for key, text in form.items():
        if key == "host":
            values[key] = text
        elif key in ours:
            current = values.get(key)
            if isinstance(current, bool):
                values[key] = text == "true"
            elif isinstance(current, int | float):
                try:
                    values[key] = type(current)(text)
                except ValueError:
                    kind = "a whole number" if isinstance(current, int) else "a number"
                    raise ValueError(f"--{key.replace('_', '-')}: {text!r} is not {kind}") from None
            else:
                values[key] = text
    return argparse.Namespace(**values)
