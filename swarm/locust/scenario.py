"""What scenarios are written with, beside :class:`~swarm.locust.user.ChargePointUser`.

- :func:`defaults`: a locustfile's own defaults for Locust's and the swarm's options;
- :func:`every`: an action at set times of each test, on the process that runs the test;
- :func:`drop_connections` and :func:`csms_control`: a reconnect storm from the swarm's side, and
  the embedded CSMS's control API (:mod:`swarm.csms.control`) for the CSMS's side.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from swarm.locust.context import context
from swarm.locust.hooks import DROP_MESSAGE

__all__ = ["csms_control", "defaults", "drop_connections", "every"]

logger = logging.getLogger(__name__)


def defaults(**values: Any) -> None:
    """Make ``values`` this locustfile's defaults, by option name as Locust stores it
    (``num_users``, ``spawn_rate``, ``run_time``, ``heartbeat_interval``, ...).

    The command line, config files, environment variables and the web UI still override them.
    Each value goes through its option's type, as if given on the command line (so ``"1m"``
    for ``run_time`` works, and 600 for a float option is 600.0); an unknown name is refused
    when Locust builds its parser.
    """

    @events.init_command_line_parser.add_listener
    def set_defaults(parser: Any, **_kwargs: Any) -> None:
        actions = {action.dest: action for action in parser._actions}
        unknown = sorted(set(values) - set(actions))
        if unknown:
            raise ValueError(f"scenario defaults: no such option: {', '.join(unknown)}")
        # argparse runs a string default through the option's type: the web UI then converts
        # what it is sent by the type of the default, which must be the option's own.
        parser.set_defaults(
            **{
                name: str(value) if actions[name].type is not None else value
                for name, value in values.items()
            }
        )


def every(
    action: Callable[[Environment], None],
    seconds: float | Callable[[Environment], float],
    *,
    first: float | Callable[[Environment], float] = 0.0,
) -> None:
    """Call ``action(environment)`` ``first`` seconds after each test starts, then every
    ``seconds`` (0: only once) until it stops; on the master, or the process that runs alone.

    Either time may be a function of the environment, to read it from an option.
    """

    def value(setting: float | Callable[[Environment], float], environment: Environment) -> float:
        return setting(environment) if callable(setting) else setting

    def repeat(environment: Environment) -> None:
        gevent.sleep(value(first, environment))
        while True:
            try:
                action(environment)
            except Exception:  # a failed action must not end the test, nor go unseen
                logger.exception("scenario: %s failed", getattr(action, "__name__", action))
            interval = value(seconds, environment)
            if not interval:
                return
            gevent.sleep(interval)

    greenlets: list[gevent.Greenlet] = []

    @events.test_start.add_listener
    def start(environment: Environment, **_kwargs: Any) -> None:
        if not isinstance(environment.runner, WorkerRunner):
            greenlets.append(gevent.spawn(repeat, environment))

    @events.test_stop.add_listener
    def stop(environment: Environment, **_kwargs: Any) -> None:
        gevent.killall(greenlets)
        greenlets.clear()


def drop_connections(environment: Environment, share: float) -> None:
    """Have a random ``share`` (0 to 1) of the fleet lose their connections at once; they
    reconnect after their backoff and boot again. On a master, every worker drops its share."""
    swarm = context(environment).swarm
    if swarm is not None:
        swarm.engine.drop_connections(share)
    elif isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(DROP_MESSAGE, share)


def csms_control(
    environment: Environment, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST ``body`` (without one: GET) to the control API of the embedded CSMS (or of
    ``--csms-control``) and return its JSON answer. Raises RuntimeError if there is none."""
    csms = context(environment).csms
    base = getattr(environment.parsed_options, "csms_control", "") or (
        csms.control_url if csms is not None else None
    )
    method = "GET" if body is None else "POST"
    if not base:
        raise RuntimeError(
            f"no CSMS control API for {method} {path}: run against the embedded CSMS (no --host),"
            " or give --csms-control http://HOST:PORT of `python -m swarm.csms --control-port`"
        )
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={} if body is None else {"Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.load(response)
