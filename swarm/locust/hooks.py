"""The swarm's listeners on Locust's events, registered when this module is imported (as
:mod:`swarm.locust.user` does, so that a locustfile needs only the user class):

- ``init_command_line_parser``: the swarm's options and the thresholds;
- ``init``: refuse bad options, and a ``--host`` where nothing listens, with one line (exit
  code 2); serve live metrics (:mod:`swarm.locust.metrics`, :mod:`swarm.locust.otel`); take
  over Ctrl-C (:mod:`swarm.locust.interrupts`); then set up this process for its
  role, one function each: a lone process (:func:`start_alone`), a master
  (:func:`start_master`) or a worker (:func:`start_worker`);
- ``report_to_master`` and ``worker_report``: workers send their fleet's status and their
  timeline's seconds to the master, which sums the statuses of the workers still connected,
  adds their seconds together, and logs and records each worker it loses; workers send the
  frame traces of their charge points that failed in messages of their own (``TRACES_MESSAGE``);
- ``test_stop`` and ``quitting``: report what is left; ``quitting`` also closes every
  connection, closes the timeline's last seconds, stops the embedded CSMS and finishes the
  run's folder.

What each role holds goes into the process's :class:`~swarm.locust.context.SwarmContext`.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import gevent
import gevent.event
from locust import events
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from swarm.csms.process import CsmsProcess
from swarm.locust import metrics, otel, webui
from swarm.locust.checks import check
from swarm.locust.context import context
from swarm.locust.interrupts import Interrupts
from swarm.locust.options import add_arguments, embedded_csms_workers
from swarm.locust.results import RunFolder
from swarm.locust.swarm import Swarm
from swarm.locust.traces import TRACES_MESSAGE, from_message, to_message
from swarm.locust.workers import WATCH_INTERVAL, Workers
from swarm.protocol.security import Security
from swarm.report import thresholds
from swarm.report.fleet import REPORT_KEY
from swarm.report.timeline import REPORT_KEY as TIMELINE_KEY

logger = logging.getLogger(__name__)

DROP_MESSAGE = "ocpp_swarm_drop"
"""The message a master sends its workers to have each drop a share of its connections."""

RUNNING = (STATE_SPAWNING, STATE_RUNNING)
"""The states of a runner whose test has not stopped."""

MASTER_LAG = 6.0
"""Seconds after its end that a master closes a second: its workers' samples come with their
stats reports, every 3 s."""

TICK_INTERVAL = 1.0
"""Seconds between the timeline's ticks."""

QUIT_WAIT = 60.0
"""Seconds a second ``quitting`` waits for the first to finish writing the run's folder."""

_LAUNCHER = os.getpid()
"""The process that imported the locustfile: with ``--processes``, the parent of the workers
it forks afterwards (taken now, for a worker that starts after its parent has gone)."""


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)
    thresholds.add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    """Once the options pass, set this process up for its role (the runner's kind)."""
    security, checks = check_options(environment)
    Interrupts(environment).install()
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        start_worker(environment, runner, security)
    elif isinstance(runner, MasterRunner):
        start_master(environment, runner, checks)
    else:
        start_alone(environment, security, checks)


def check_options(environment: Environment) -> tuple[Security, list[thresholds.Threshold]]:
    """Refuse bad command-line input before any user starts, with one line and exit code 2.

    Returns the security settings (their files loaded, once: a certificate that does not load
    stops the run now) and the thresholds to check at the end. With ``--prometheus-port``, the
    master or a process on its own starts serving ``/metrics``: a port it cannot listen on is
    refused the same way.
    """
    runner = environment.runner
    options = environment.parsed_options
    try:
        checked = check(options, environment.host, worker=isinstance(runner, WorkerRunner))
        if not isinstance(runner, WorkerRunner):
            metrics.serve(environment, master=isinstance(runner, MasterRunner))
        return checked
    except ValueError as exc:
        logger.error("ocpp-swarm: %s", exc)
        # Workers connected so far quit too, rather than wait out Locust's 60 s timeout. Not
        # those --processes forks: they quit with their parent, and one told to quit while
        # Locust is still making its runner reports to the master without its user counts.
        if isinstance(runner, MasterRunner) and not getattr(options, "processes", None):
            runner.quit()
        sys.exit(2)


def start_alone(
    environment: Environment, security: Security, checks: list[thresholds.Threshold]
) -> None:
    """A process on its own runs the charge points and writes the run's folder."""
    start_embedded_csms(environment)
    swarm = start_swarm(environment, security)
    otel.export_fleet(environment)
    open_run_folder(environment, checks)
    run = context(environment).run
    if run is not None:
        swarm.on_traces = run.traces.take
    gevent.spawn(keep_time, environment)
    add_web_ui_tab(environment)


def start_master(
    environment: Environment, runner: MasterRunner, checks: list[thresholds.Threshold]
) -> None:
    """A master runs no charge points: it sums its workers' fleets and writes the run's folder,
    with the workers it loses."""
    start_embedded_csms(environment)
    state = context(environment)
    workers = state.workers = Workers(runner)
    environment.events.worker_report.add_listener(workers.take)
    runner.greenlet.spawn(workers.watch)  # the runner's group: it ends with the runner
    # A worker's seconds come with its stats report, every 3 s: close each after that.
    state.timeline.lag = MASTER_LAG
    environment.events.worker_report.add_listener(
        lambda data, **_: state.timeline.take(data.get(TIMELINE_KEY, ()))
    )
    otel.export_fleet(environment)
    open_run_folder(environment, checks, workers.lost)
    run = state.run
    runner.register_message(
        TRACES_MESSAGE,
        lambda msg, **_: run.traces.take(from_message(msg.data)) if run is not None else None,
    )
    gevent.spawn(keep_time, environment)
    add_web_ui_tab(environment)


def start_worker(environment: Environment, runner: WorkerRunner, security: Security) -> None:
    """A worker runs charge points for its master: it reports its fleet with its stats, drops
    connections when the master says so, and quits with the process that forked it."""
    swarm = start_swarm(environment, security)
    metrics.report_from_worker(environment)
    if getattr(environment.parsed_options, "processes", None):
        gevent.spawn(_quit_with_parent, runner, _LAUNCHER)
    # Locust calls a message's listener with keywords: environment= and msg=.
    runner.register_message(DROP_MESSAGE, lambda msg, **_: swarm.engine.drop_connections(msg.data))
    swarm.on_traces = lambda handed: runner.send_message(TRACES_MESSAGE, to_message(handed))

    timeline = context(environment).timeline

    def report(data: dict[str, Any], **_kwargs: Any) -> None:
        data[REPORT_KEY] = swarm.status().as_dict()
        # The seconds that are over; once the test stops, the current one too: this report
        # may be the last.
        stopping = runner.state not in RUNNING
        data[TIMELINE_KEY] = timeline.drain(before=math.inf if stopping else time.time())

    environment.events.report_to_master.add_listener(report)


def start_embedded_csms(environment: Environment) -> None:
    """Without ``--host``, start the embedded CSMS as a child process and make it the host: in
    as many processes as :func:`~swarm.locust.options.embedded_csms_workers` says."""
    if environment.host is not None:
        return
    workers = embedded_csms_workers(environment.parsed_options)
    args = ["--control-port", "0"] + (["--workers", str(workers)] if workers > 1 else [])
    csms = context(environment).csms = CsmsProcess.start(args, timeout=30.0)
    environment.host = csms.url
    if environment.parsed_options is not None:
        environment.parsed_options.host = csms.url
    logger.info(
        "ocpp-swarm: no --host given, started the embedded CSMS at %s (processes: %d,"
        " control API: %s)",
        csms.url,
        workers,
        csms.control_url,
    )


def start_swarm(environment: Environment, security: Security) -> Swarm:
    """Start this process's engine and sample pump (on every process that runs users)."""
    swarm = context(environment).swarm = Swarm(environment, security)
    swarm.start()
    environment.events.reset_stats.add_listener(swarm.counters.reset)
    return swarm


def open_run_folder(
    environment: Environment,
    checks: list[thresholds.Threshold],
    workers_lost: Sequence[dict[str, Any]] = (),
) -> None:
    """Open the run's folder under ``--results-dir`` (exit code 2 if it cannot be made);
    ``workers_lost`` is a master's record of lost workers, filled in as they are lost."""
    state = context(environment)
    try:
        run = RunFolder.create(environment, state.fleet, checks, workers_lost)
    except (OSError, ValueError) as exc:
        logger.error("ocpp-swarm: --results-dir: %s", exc)
        sys.exit(2)
    state.run = run
    if run is not None:
        environment.events.test_stopping.add_listener(lambda **_: run.note_stop())


def keep_time(environment: Environment) -> None:
    """Every second, note the fleet in the timeline and close the seconds that are due; the
    run's folder writes them. Until the process quits (``quitting`` closes the rest)."""
    state = context(environment)
    while state.quitting is None:
        gevent.sleep(TICK_INTERVAL)
        try:
            closed = state.timeline.tick(time.time(), state.fleet())
            if state.run is not None:
                state.run.add_seconds(closed)
        except Exception:  # a full disk, say: the seconds must still close, not pile up
            logger.exception("ocpp-swarm: the timeline could not close its seconds")


def add_web_ui_tab(environment: Environment) -> None:
    """Check the web UI's start form and add the fleet's tab, where there is a web UI."""
    if environment.web_ui is not None:
        state = context(environment)
        base_path = getattr(environment.parsed_options, "web_base_path", None) or ""
        webui.check_start_form(environment.web_ui, environment)
        traced = lambda: state.run.traces.traced if state.run is not None else {}  # noqa: E731
        webui.add_fleet_tab(environment.web_ui, state.fleet, traced)
        webui.add_dashboard(environment.web_ui, state.timeline, base_path)


def _quit_with_parent(runner: WorkerRunner, parent: int) -> None:
    # A worker that --processes forked: once its parent is gone (killed, or refused to start
    # before it told this worker anything), quit and close the charge points, rather than hold
    # them until Locust's 60 s master heartbeat timeout, or forever if no heartbeat came yet.
    while os.getppid() == parent:
        gevent.sleep(WATCH_INTERVAL)
    held = len(Swarm.of(runner.environment).engine)
    # Quiet when it held nothing: its master refused to start and said why.
    logger.log(
        logging.WARNING if held else logging.DEBUG,
        "ocpp-swarm: the process that started this worker is gone; it quits, closing its %d"
        " charge points",
        held,
    )
    runner.quit()


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    swarm = context(environment).swarm
    if swarm is not None:
        # A worker's last report to its master follows: what a test's last failures left
        # in the traces goes with it.
        swarm.engine.end_traces(sleep=gevent.sleep)
        swarm.flush()


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    state = context(environment)
    if state.quitting is not None:
        # On SIGTERM, Locust shuts down in the signal's greenlet; once it quits the runner,
        # its main greenlet wakes and shuts down too. Let the first finish, before either exits.
        state.quitting.wait(QUIT_WAIT)
        return
    state.quitting = done = gevent.event.Event()
    try:
        runner = environment.runner
        if state.run is not None and runner is not None and runner.state in RUNNING:
            # Quit mid-test (Ctrl-C, SIGTERM): no test_stopping came. The fleet as it is now
            # is the summary's final one, not the one left once its connections are closed.
            state.run.note_stop()
        if state.swarm is not None or state.run is not None:
            logger.info("ocpp-swarm: closing the charge points and writing the run's folder")
        if isinstance(runner, MasterRunner) and len(runner.greenlet):
            # On SIGINT or SIGTERM Locust quits its runner only after this event: have the
            # workers stop and send their last stats now, for the run's folder to count them.
            runner.quit()
        if state.swarm is not None:
            state.swarm.stop()
        closed = state.timeline.tick(math.inf)  # every second left: no sample comes any more
        if state.timeline.late:
            logger.warning(
                "ocpp-swarm: %d samples came after their second was closed (a worker's clock"
                " off, or its reports late): timeline.csv and latency.png leave them out",
                state.timeline.late,
            )
        if state.run is not None:
            state.run.add_seconds(closed)
            state.run.finish()
    finally:
        if state.csms is not None:
            state.csms.stop()
        done.set()
