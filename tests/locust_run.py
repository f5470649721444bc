"""Run the swarm inside Locust, as a library, and print what Locust saw as one JSON line.

    python -m tests.locust_run --users 50 --spawn-rate 50 --seconds 6 --heartbeat-interval 0.5

Without ``--host`` the embedded CSMS is the target. Every argument this module does not know is
handed to Locust's own parser, so the swarm's options (``--heartbeat-interval``,
``--authorize-interval``, ``--id-tags``, ...) work as on the ``locust`` command line.

The last line of stdout is a JSON object:

- ``stats``: ``{"<type> <name>": {"requests", "failures", "median", "max"}}``;
- ``errors``: Locust's error table, a list of ``{"method", "name", "error", "occurrences"}``;
- ``host``: the CSMS URL used; ``csms_pid``: the embedded CSMS's pid (or null); ``pid``: ours;
- ``states``: charge points per state (``"accepted"``, ...) just before stopping, and
  ``charging``;
- ``versions``: charge points per OCPP version (``"1.6"``, ...) then.

Set ``OCPP_SWARM_NO_UVLOOP=1`` to run as if uvloop were not installed (as on Windows).

The run is bounded: a watchdog on a real OS thread ends the process (exit code 3) if it is still
alive ``--seconds`` + 25 s after it started, whatever the gevent hub is doing.
"""

from __future__ import annotations

import os
import sys

if os.environ.get("OCPP_SWARM_NO_UVLOOP"):
    # Before anything imports it: ``import uvloop`` now raises ImportError.
    sys.modules["uvloop"] = None  # type: ignore[assignment]

import argparse
import json
import time
from typing import Any

import gevent
from gevent import monkey
from locust import constant, events, task
from locust.argument_parser import get_parser
from locust.env import Environment
from locust.log import setup_logging

from swarm.engine import VERSION_PREFIX
from swarm.locust.context import context
from swarm.locust.user import ChargePointUser, Swarm

WATCHDOG_MARGIN = 25.0
"""Seconds past ``--seconds`` after which the watchdog ends the process."""


class RunChargePoint(ChargePointUser):
    pass


class TaskChargePoint(ChargePointUser):
    """A user with a task of its own: it runs in a greenlet."""

    wait_time = constant(0.5)

    @task
    def transfer(self) -> None:
        self.data_transfer("swarm-test", "ping")


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m tests.locust_run", description=__doc__)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--spawn-rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--host", default=None, help="ws:// URL; absent = the embedded CSMS")
    parser.add_argument("--with-task", action="store_true", help="users with a task of their own")
    parser.add_argument(
        "--down-to", type=int, help="after --seconds, stop users down to this many; report"
    )
    return parser.parse_known_args(argv)


def _start_watchdog(seconds: float) -> None:
    """Exit hard if the run outlives its bound (a real thread: it works if the hub is stuck)."""
    sleep = monkey.get_original("time", "sleep")
    start_new_thread = monkey.get_original("_thread", "start_new_thread")

    def watch() -> None:
        sleep(seconds)
        sys.stderr.write(f"locust_run: watchdog: still running after {seconds:g} s, exiting\n")
        sys.stderr.flush()
        os._exit(3)

    start_new_thread(watch, ())


def _stats(environment: Environment) -> dict[str, dict[str, Any]]:
    return {
        f"{entry.method} {entry.name}": {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "median": entry.median_response_time,
            "max": entry.max_response_time,
        }
        for entry in environment.stats.entries.values()
    }


def _errors(environment: Environment) -> list[dict[str, Any]]:
    return [
        {
            "method": error.method,
            "name": error.name,
            "error": error.parse_error(error.error),
            "occurrences": error.occurrences,
        }
        for error in environment.stats.errors.values()
    ]


def main(argv: list[str] | None = None) -> int:
    args, locust_argv = _arguments(sys.argv[1:] if argv is None else argv)
    _start_watchdog(args.seconds + WATCHDOG_MARGIN)
    # locust.argument_parser.parse_options without its deprecation notice on stdout: Locust's
    # parser, with the swarm's options (added by its init_command_line_parser listener).
    # No run folder in the checkout's results/ unless a test asks for one.
    options = get_parser().parse_args(["--results-dir", "", *locust_argv])
    setup_logging(options.loglevel, options.logfile)
    options.host = args.host
    environment = Environment(
        user_classes=[TaskChargePoint if args.with_task else RunChargePoint],
        events=events,
        host=args.host,
        parsed_options=options,
    )
    runner = environment.create_local_runner()
    events.init.fire(environment=environment, runner=runner, web_ui=None)
    csms = context(environment).csms
    started = time.monotonic()
    census: dict[str, int] = {}
    users: dict[str, int] = {}
    try:
        runner.start(args.users, spawn_rate=args.spawn_rate)
        gevent.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        swarm = Swarm.of(environment)
        swarm.flush()
        census = swarm.engine.census()
        users["users"] = runner.user_count
        users["running greenlets"] = sum(1 for greenlet in runner.user_greenlets if greenlet)
        if args.down_to is not None:
            runner.start(args.down_to, spawn_rate=1000)
            deadline = time.monotonic() + 10
            while len(swarm.engine) > args.down_to and time.monotonic() < deadline:
                gevent.sleep(0.05)
            users["users after"] = runner.user_count
            users["charge points after"] = len(swarm.engine)
    finally:
        runner.quit()
        events.quitting.fire(environment=environment, reverse=True)
    result = {
        "host": environment.host,
        "csms_pid": csms.pid if csms is not None else None,
        "pid": os.getpid(),
        "states": {k: n for k, n in census.items() if not k.startswith(VERSION_PREFIX)},
        "versions": {
            k[len(VERSION_PREFIX) :]: n for k, n in census.items() if k.startswith(VERSION_PREFIX)
        },
        "stats": _stats(environment),
        "errors": _errors(environment),
        "users": users,
    }
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
