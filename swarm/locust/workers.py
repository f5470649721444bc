"""A master's view of its workers: their fleet reports, summed, and the workers it loses."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import gevent
from locust.runners import STATE_MISSING, MasterRunner

from swarm.report.fleet import REPORT_KEY, FleetStatus

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0
"""Seconds between a master's looks at its workers: Locust's heartbeat interval."""


class Workers:
    """On a master: the workers' last fleet reports, and the workers it lost.

    Locust marks a worker ``missing`` once it has missed its heartbeats for a few seconds (a
    crash, a kill, a cut network) and forgets the users it held. This notices it within
    :data:`WATCH_INTERVAL`, logs which worker was lost with how many charge points, and keeps a
    record for the run's summary. The stats the worker reported stay in Locust's totals; its
    fleet leaves the sum.
    """

    def __init__(self, runner: MasterRunner) -> None:
        self.runner = runner
        self.reports: dict[str, FleetStatus] = {}
        self._users: dict[str, int] = {}
        self.lost: list[dict[str, Any]] = []
        """One entry per worker lost: ``id``, ``index``, ``charge_points`` and ``users`` (as
        it last reported them), ``lost_at`` and ``back_at`` (should it send heartbeats again)."""
        self._missing: dict[str, dict[str, Any]] = {}

    def take(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        """A worker's stats report (``worker_report``): keep its fleet and its user count."""
        if REPORT_KEY in data:
            self.reports[client_id] = FleetStatus.from_dict(data[REPORT_KEY])
        if "user_count" in data:
            self._users[client_id] = data["user_count"]

    def connected(self, client_id: str) -> bool:
        node = self.runner.clients.get(client_id)
        return node is not None and node.state != STATE_MISSING

    def fleet(self) -> FleetStatus:
        """The sum of the last reports of the workers still connected."""
        return FleetStatus.total(
            report for worker, report in self.reports.items() if self.connected(worker)
        )

    def check(self) -> None:
        """Note the workers Locust has marked missing since the last look, and those back."""
        for node in list(self.runner.clients.values()):
            record = self._missing.get(node.id)
            if node.state == STATE_MISSING and record is None:
                report = self.reports.get(node.id, FleetStatus())
                record = {
                    "id": node.id,
                    "index": self.runner.get_worker_index(node.id),
                    "charge_points": sum(report.states.values()),
                    "users": self._users.get(node.id, 0),
                    "lost_at": _now(),
                    "back_at": None,
                }
                self._missing[node.id] = record
                self.lost.append(record)
                left = sum(1 for worker in self.runner.clients if self.connected(worker))
                logger.error(
                    "ocpp-swarm: lost worker %s (index %d): no heartbeat; it held %d charge"
                    " points (%d users) at its last report; %d worker%s left",
                    node.id,
                    record["index"],
                    record["charge_points"],
                    record["users"],
                    left,
                    "" if left == 1 else "s",
                )
            elif node.state != STATE_MISSING and record is not None:
                del self._missing[node.id]
                record["back_at"] = _now()
                logger.warning("ocpp-swarm: worker %s is back", node.id)

    def watch(self) -> None:
        while True:
            gevent.sleep(WATCH_INTERVAL)
            self.check()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
