"""The swarm in Locust's web UI: its start form checked, and the "Charge points" tab.

A start form whose swarm options or host are bad is refused as Locust refuses its own bad
fields: the form shows the message, and nothing starts. The options are listed in the order
the swarm adds them (those users change most first), not sorted by name.

The tab is the fleet's live dashboard. Above its table (the fleet's states, the power it draws,
versions, CALLERRORs and CSMS calls, now, and the charge points whose frames were traced) it draws
the last 15 minutes second by second: charge points per state, failures and CSMS calls per second,
and each action's latency percentiles at the samples' own resolution
(:mod:`swarm.report.timeline`). The table uses Locust's own extension points: a tab and its table
go into the page's template arguments, and the rows ride along in the ``extended_stats`` of the
``/stats/requests`` answer that the page polls every few seconds. The charts are
``static/dashboard.js``, which the page loads (a script tag added to it) and which polls
``ocpp-swarm/timeline``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Response, jsonify, request, send_from_directory
from flask_login import current_user
from locust.env import Environment
from locust.web import WebUI

from swarm.locust.checks import check, with_form
from swarm.locust.traces import tab_rows
from swarm.report.fleet import PREFIXED_TYPES, FleetStatus
from swarm.report.timeline import Timeline

logger = logging.getLogger(__name__)

TAB = "charge-points"

STATIC = Path(__file__).parent / "static"

SCRIPT = b'<script src="ocpp-swarm/dashboard.js" defer></script>'
"""Added to the page: relative, so that it follows ``--web-base-path``."""

# Not "name": Locust's table sorts rows by a "name" key, and these come in their own order.
TABLE = [
    {"key": "what", "title": "What"},
    {"key": "item", "title": "Name"},
    {"key": "count", "title": "Count"},
]


def _by_version(item: tuple[str, Any]) -> tuple[bool, str]:
    """Sort key of an action's counts: OCPP 1.6's (bare names) first, then ``OCPP201 ...``."""
    return item[0].partition(" ")[0] in PREFIXED_TYPES, item[0]


def rows(status: FleetStatus) -> list[dict[str, Any]]:
    """The tab's rows: states (and charging), the power the sessions draw in kW, charge points
    per OCPP version, then CALLERRORs by action and code, then CSMS calls by action (each OCPP
    1.6's, then 2.0.1's)."""
    result = [{"what": "state", "item": state, "count": n} for state, n in status.states.items()]
    result.append({"what": "state", "item": "charging", "count": status.charging})
    result.append({"what": "power", "item": "kW drawn", "count": round(status.power_w / 1000, 1)})
    result += [
        {"what": "version", "item": f"OCPP {version}", "count": n}
        for version, n in status.versions.items()
    ]
    result += [
        {"what": "CALLERROR", "item": f"{action} {code}", "count": n}
        for action, codes in sorted(status.callerrors.items(), key=_by_version)
        for code, n in sorted(codes.items())
    ]
    result += [
        {"what": "CSMS call", "item": action, "count": n}
        for action, n in sorted(status.csms_calls.items(), key=_by_version)
    ]
    return result


def add_fleet_tab(
    web_ui: WebUI,
    fleet: Callable[[], FleetStatus],
    traced: Callable[[], dict[str, int]] = dict,
) -> None:
    """Add the tab to ``web_ui``; ``fleet`` gives the fleet's current status, ``traced`` the
    charge points traced so far with their failures (:mod:`swarm.locust.traces`)."""
    web_ui.template_args["extended_tabs"] = [{"title": "Charge points", "key": TAB}]
    web_ui.template_args["extended_tables"] = [{"key": TAB, "structure": TABLE}]

    @web_ui.app.after_request
    def add_rows(response: Response) -> Response:
        if request.path.endswith("/stats/requests") and response.is_json:
            body = response.get_json()
            body["extended_stats"] = [{"key": TAB, "data": rows(fleet()) + tab_rows(traced())}]
            response.set_data(json.dumps(body))
        return response


def check_start_form(web_ui: WebUI, environment: Environment) -> None:
    """Refuse a start form with a bad swarm option or host, before Locust starts anything."""
    # The page lists the options in the order of its arguments' JSON: the parser's, unsorted.
    web_ui.app.jinja_env.policies["json.dumps_kwargs"] = {"sort_keys": False}

    @web_ui.app.before_request
    def refuse_bad_form() -> Response | None:
        if request.method != "POST" or not request.path.endswith("/swarm"):
            return None
        if web_ui.web_login and not current_user.is_authenticated:
            return None  # Locust's login comes first: no probe of a host for a stranger
        try:
            options = with_form(environment.parsed_options, request.form)
            check(options, options.host if "host" in request.form else environment.host)
        except ValueError as exc:
            logger.error("ocpp-swarm: %s", exc)
            body = {"success": False, "message": f"ocpp-swarm: {exc}", "host": environment.host}
            return jsonify(body)
        return None


def add_dashboard(web_ui: WebUI, timeline: Timeline, base_path: str = "") -> None:
    """Serve the dashboard's script and the timeline's closed seconds, and have the page load
    the script. ``base_path`` is Locust's ``--web-base-path``."""
    base = base_path.rstrip("/")

    @web_ui.app.route(f"{base}/ocpp-swarm/dashboard.js")
    @web_ui.auth_required_if_enabled
    def dashboard_script() -> Response:
        return send_from_directory(STATIC, "dashboard.js", mimetype="text/javascript")

    @web_ui.app.route(f"{base}/ocpp-swarm/timeline")
    @web_ui.auth_required_if_enabled
    def closed_seconds() -> Response:
        try:
            after = int(request.args.get("after", 0))
        except ValueError:
            after = 0
        return jsonify({"seconds": [second.as_dict() for second in timeline.recent(after)]})

    @web_ui.app.after_request
    def load_script(response: Response) -> Response:
        page = request.path.rstrip("/") == base and response.mimetype == "text/html"
        if page and response.status_code == 200 and not response.direct_passthrough:
            body = response.get_data()
            if SCRIPT not in body:
                response.set_data(body.replace(b"</body>", SCRIPT + b"</body>", 1))
        return response
