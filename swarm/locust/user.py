"""Charge points as Locust users.

Importing this module (``from swarm import ChargePointUser`` in a locustfile) adds the swarm's
options to Locust and hooks its events:

- ``init``: refuse bad options, and a ``--host`` where nothing listens, with one line (exit
  code 2); on every process that runs users, start the :class:`~swarm.engine.Engine` and a
  greenlet that reports its samples to Locust in batches; on the process that holds the web UI
  or runs alone (the master, with workers), start the embedded CSMS when no ``--host`` is
  given, open the run's folder (:mod:`swarm.locust.results`) and add the web UI's fleet tab;
- ``report_to_master`` and ``worker_report``: workers send their fleet's status to the master,
  which sums those of the workers still connected and logs and records each one it loses;
- ``test_stop`` and ``quitting``: report what is left; ``quitting`` also closes every
  connection, stops the embedded CSMS and finishes the run's folder.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sys
from dataclasses import replace
from typing import Any

import gevent
import gevent.event
from locust import User, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner
from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from swarm import limits
from swarm.csms import CsmsProcess
from swarm.engine import Engine
from swarm.locust import webui
from swarm.locust.options import add_arguments, config_from_options, security_from_options
from swarm.locust.results import RunFolder, without_credentials
from swarm.locust.workers import WATCH_INTERVAL, Workers
from swarm.ocpp16.charge_point import ChargePointConfig
from swarm.protocol.security import Security, SecurityConfig, SecurityError
from swarm.report import thresholds
from swarm.report.fleet import REPORT_KEY, FleetCounters, FleetStatus

logger = logging.getLogger(__name__)

PUMP_INTERVAL = 0.1
"""Seconds between batches of samples handed to Locust: the hub wakes ten times a second, not
once per message (it still fires Locust's request event once per sample)."""


Prepared = tuple[str, tuple[ChargePointConfig, ...]]
"""The CSMS URL and the fleet's configs, one per source address."""


class ChargePointUser(User):
    """One virtual OCPP 1.6J charge point.

    The charge point lives in the engine's event loop: it connects to ``<host>/<id>``, boots,
    heartbeats and authorizes there, and each OCPP round trip is a Locust request of type
    ``OCPP`` named after the action. This greenlet only holds the user's place: starting the
    user starts the charge point, stopping it closes the charge point's WebSocket.
    """

    abstract = True
    wait_time = constant(3600)

    charge_point_id: str

    def on_start(self) -> None:
        swarm = Swarm.of(self.environment)
        prepared = swarm.prepare(self.environment.host or self.host)
        if prepared is None:
            return  # refused and said so; hold() stops this user
        url, configs = prepared
        serial = next(swarm.serials)
        charge_point_id = swarm.charge_point_id(serial)
        config = swarm.secure(charge_point_id, url, configs[serial % len(configs)])
        if config is None:
            return  # refused and said so; hold() stops this user
        self.charge_point_id = charge_point_id
        swarm.engine.start_charge_point(charge_point_id, f"{url}/{charge_point_id}", config)
        swarm.check_capacity()

    def on_stop(self) -> None:
        if hasattr(self, "charge_point_id"):
            Swarm.of(self.environment).engine.stop_charge_point(self.charge_point_id)

    def data_transfer(
        self, vendor_id: str, message_id: str | None = None, data: str | None = None
    ) -> None:
        """Have this charge point send a DataTransfer; its round trip shows in Locust."""
        Swarm.of(self.environment).engine.data_transfer(
            self.charge_point_id, vendor_id, message_id, data
        )

    @task
    def hold(self) -> None:
        """Nothing to do here: the charge point works in the event loop."""
        if not hasattr(self, "charge_point_id"):
            raise StopUser()  # from a task, Locust stops a user quietly; from on_start, it logs


class Swarm:
    """The swarm's state in one Locust process: engine, sample pump, serial numbers."""

    def __init__(self, environment: Environment, security: Security | None = None) -> None:
        self.environment = environment
        self.security = Security()
        if security is not None:
            self._use(security)
        self._refused_charge_point = False
        self.engine = Engine()
        self.serials = itertools.count(1)
        """Serial numbers of this process's charge points."""
        self.capacity = limits.capacity()
        self._past_capacity = False
        self._prepared: tuple[tuple[Any, ...], Prepared] | None = None
        self._refusal: str | None = None
        self._pump: gevent.Greenlet | None = None
        self.counters = FleetCounters()

    @staticmethod
    def of(environment: Environment) -> Swarm:
        swarm = getattr(environment, "ocpp_swarm", None)
        if swarm is None:
            raise RuntimeError("ocpp-swarm is not started in this process (was events.init fired?)")
        return swarm

    def start(self) -> None:
        logger.info("ocpp-swarm: %s", self.capacity)
        self.engine.start()
        self._pump = gevent.spawn(self._run_pump)

    def check_capacity(self) -> None:
        """Warn once when this process holds more charge points than its limits allow."""
        if not self._past_capacity and len(self.engine) >= self.capacity.charge_points:
            self._past_capacity = True
            logger.warning(
                "ocpp-swarm: %d charge points in this process, past its %s",
                len(self.engine),
                self.capacity,
            )

    def charge_point_id(self, serial: int) -> str:
        """``<prefix><worker index>-<serial>``: unique across the workers of a master."""
        options = self.environment.parsed_options
        prefix = options.serial_prefix if options else "CP-"
        runner = self.environment.runner
        worker_index = max(runner.worker_index, 0) if runner else 0
        return f"{prefix}{worker_index}-{serial:06d}"

    def prepare(self, host: str | None) -> Prepared | None:
        """The CSMS URL and fleet configs for the options in force, checked once per change:
        one config per source address (charge points take them in turn), or one.

        The web UI can change the host and the options between runs, so they are read when
        users start. A bad one is logged once, sets exit code 2, and returns None.
        """
        options = self.environment.parsed_options
        key = (host, *(sorted(vars(options).items()) if options else ()))
        if self._prepared is not None and self._prepared[0] == key:
            return self._prepared[1]
        try:
            url, address = resolve_host(host)
            # A worker takes its master's options when users spawn, the security ones too.
            security = security_from_options(options) if options else SecurityConfig()
            if security != self.security.config:
                self._use(Security(security))
            check_scheme(url, self.security)
            config = config_from_options(options) if options else ChargePointConfig()
            sources = limits.read_source_addresses(options.source_addresses if options else "")
        except ValueError as exc:
            if self._refusal != str(exc):
                self._refusal = str(exc)
                logger.error("ocpp-swarm: %s", exc)
            self.environment.process_exit_code = 2
            return None
        self._refusal = None
        config = _with_connect_options(config, self.security.fleet_options(_secure(url)))
        if not self.engine.resolves_names:
            config = _with_connect_options(config, {"host": address[0], "port": address[1]})
        configs = tuple(
            _with_connect_options(config, {"local_addr": (source, 0)}) for source in sources
        ) or (config,)
        if len(configs) != self.capacity.source_addresses:
            self.capacity = limits.capacity(len(configs))
            logger.info("ocpp-swarm: %s", self.capacity)
        self._prepared = (key, (url, configs))
        return url, configs

    def _use(self, security: Security) -> None:
        if security.config.insecure and not self.security.config.insecure:
            logger.warning(
                "ocpp-swarm: --insecure: the CSMS's TLS certificate is not verified;"
                " anyone in between can read and change the traffic"
            )
        self.security = security

    def secure(
        self, charge_point_id: str, url: str, config: ChargePointConfig
    ) -> ChargePointConfig | None:
        """``config`` with what is this charge point's own: its password, its certificate.

        Only then does a charge point get a config of its own (a few hundred bytes). One that
        has no password or whose certificate does not load is not started: the first is
        logged, and the exit code is 2.
        """
        if not self.security.per_charge_point:
            return config
        try:
            options = self.security.connect_options(charge_point_id, _secure(url))
        except SecurityError as exc:
            if not self._refused_charge_point:
                self._refused_charge_point = True
                logger.error("ocpp-swarm: %s (such charge points do not start)", exc)
            self.environment.process_exit_code = 2
            return None
        return _with_connect_options(config, options)

    def _run_pump(self) -> None:
        while True:
            gevent.sleep(PUMP_INTERVAL)
            self.flush()

    def status(self) -> FleetStatus:
        """This process's fleet: states, CALLERRORs, CSMS calls."""
        return self.counters.status(self.engine.census())

    def flush(self) -> None:
        """Report every sample the engine holds to Locust."""
        fire = self.environment.events.request.fire
        count = self.counters.count
        for sample in self.engine.drain():
            count(sample)
            fire(
                request_type=sample.request_type,
                name=sample.name,
                response_time=sample.response_time,
                response_length=0,
                exception=sample.error,
                context={},
            )

    def stop(self) -> None:
        """Close every charge point's WebSocket, stop the engine, report the last samples."""
        if self._pump is not None:
            self._pump.kill(block=False)
        self.engine.shutdown(timeout=10.0, sleep=gevent.sleep)
        self.flush()


_LAUNCHER = os.getpid()
"""The process that imported the locustfile: with ``--processes``, the parent of the workers
it forks afterwards (taken now, for a worker that starts after its parent has gone)."""


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


def fleet_status(environment: Environment) -> FleetStatus:
    """The whole fleet's status: this process's, or on a master the sum of the last reports of
    its workers still connected (one that stopped or went missing counts no more)."""
    swarm = getattr(environment, "ocpp_swarm", None)
    if swarm is not None:
        return swarm.status()
    workers: Workers | None = getattr(environment, "ocpp_swarm_workers", None)
    return workers.fleet() if workers is not None else FleetStatus()


DROP_MESSAGE = "ocpp_swarm_drop"


def drop_connections(environment: Environment, share: float) -> None:
    """Have a random ``share`` (0 to 1) of the fleet lose their connections at once; they
    reconnect after their backoff and boot again. On a master, every worker drops its share."""
    swarm = getattr(environment, "ocpp_swarm", None)
    if swarm is not None:
        swarm.engine.drop_connections(share)
    elif isinstance(environment.runner, MasterRunner):
        environment.runner.send_message(DROP_MESSAGE, share)


def resolve_host(host: str | None) -> tuple[str, tuple[str, int]]:
    """Check a ``ws://`` or ``wss://`` CSMS URL; return it without a trailing slash, and the
    first address its host name resolves to (to connect to where the loop cannot resolve)."""
    if not host:
        raise ValueError(
            "no CSMS: give --host ws://HOST:PORT/PATH, or none to use the embedded CSMS"
        )
    url = host.rstrip("/")
    try:
        shown = without_credentials(host)  # an error message is logged: no password in it
    except ValueError:  # a port that is no number
        shown = "a URL that does not parse"
    # Without a scheme a URL's user info does not parse as one: drop all before the last @.
    shown = shown.rpartition("@")[2]
    try:
        uri = parse_uri(url)
    except InvalidURI:
        raise ValueError(f"--host must be a ws:// or wss:// URL, got {shown!r}") from None
    if uri.user_info:
        raise ValueError(
            "--host cannot hold a user name or password (URLs reach logs and reports):"
            " give --password or --password-file"
        )
    if uri.query:
        raise ValueError(f"--host cannot hold a query string, got {shown!r}")
    try:
        infos = socket.getaddrinfo(uri.host, uri.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValueError(f"--host {host!r}: cannot resolve {uri.host}: {exc}") from None
    return url, infos[0][4][:2]


def check_scheme(url: str | None, security: Security) -> None:
    """Refuse TLS options for a ``ws://`` CSMS (None: the embedded one): they would do nothing."""
    if security.config.tls and not (url and _secure(url)):
        got = f"got {url!r}" if url else "the embedded CSMS serves ws://"
        raise ValueError(f"--ca-file, --insecure and --client-cert need a wss:// --host ({got})")


def _secure(url: str) -> bool:
    return url[:6].lower() == "wss://"


PROBE_TIMEOUT = 3.0
"""Seconds a start-up probe of the CSMS may take to open a TCP connection."""


def probe_host(host: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Check that something listens at a ``--host`` URL (checked by :func:`resolve_host`):
    open a TCP connection to it within ``timeout`` seconds, and close it. Raises ValueError
    saying why it cannot connect, so a run against nothing is refused before it starts."""
    uri = parse_uri(host.rstrip("/"))
    try:
        with socket.create_connection((uri.host, uri.port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ValueError(f"--host {host}: cannot connect: {reason}") from None


def _with_connect_options(config: ChargePointConfig, options: dict[str, Any]) -> ChargePointConfig:
    return replace(config, connect_options={**config.connect_options, **options})


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_arguments(parser)
    thresholds.add_arguments(parser)


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    # Refuse bad command-line input before any user starts, with one line.
    checks: list[thresholds.Threshold] = []
    security = Security()
    try:
        if environment.parsed_options is not None:
            # Files are loaded here, once: a certificate that does not load stops the run now.
            security = Security(security_from_options(environment.parsed_options))
        if environment.host is not None:
            url, _ = resolve_host(environment.host)
            check_scheme(url, security)
        elif not isinstance(runner, WorkerRunner):  # a worker's host comes from its master
            check_scheme(None, security)
        if environment.parsed_options is not None:
            config_from_options(environment.parsed_options)
            limits.read_source_addresses(environment.parsed_options.source_addresses)
            checks = thresholds.thresholds_from_options(environment.parsed_options)
        # Where the host is known: a master, or a process on its own. Workers connect to the
        # CSMS the master names; each probing it would only repeat the master's check.
        if environment.host is not None and not isinstance(runner, WorkerRunner):
            probe_host(environment.host)
    except ValueError as exc:
        logger.error("ocpp-swarm: %s", exc)
        # Workers connected so far quit too, rather than wait out Locust's 60 s timeout. Not
        # those --processes forks: they quit with their parent, and one told to quit while
        # Locust is still making its runner reports to the master without its user counts.
        if isinstance(runner, MasterRunner) and not getattr(
            environment.parsed_options, "processes", None
        ):
            runner.quit()
        sys.exit(2)
    if environment.host is None and not isinstance(runner, WorkerRunner):
        csms = CsmsProcess.start(["--control-port", "0"])
        environment.ocpp_swarm_csms = csms  # type: ignore[attr-defined]
        environment.host = csms.url
        if environment.parsed_options is not None:
            environment.parsed_options.host = csms.url
        logger.info(
            "ocpp-swarm: no --host given, started the embedded CSMS at %s (control API: %s)",
            csms.url,
            csms.control_url,
        )
    if not isinstance(runner, MasterRunner):
        swarm = Swarm(environment, security)
        environment.ocpp_swarm = swarm  # type: ignore[attr-defined]
        swarm.start()
        environment.events.reset_stats.add_listener(swarm.counters.reset)
    if isinstance(runner, WorkerRunner):
        if getattr(environment.parsed_options, "processes", None):
            gevent.spawn(_quit_with_parent, runner, _LAUNCHER)
        runner.register_message(
            DROP_MESSAGE, lambda message, **_: swarm.engine.drop_connections(message.data)
        )

        def report(data: dict[str, Any], **_kwargs: Any) -> None:
            data[REPORT_KEY] = swarm.status().as_dict()

        environment.events.report_to_master.add_listener(report)
        return
    workers_lost: list[dict[str, Any]] = []
    if isinstance(runner, MasterRunner):
        workers = Workers(runner)
        environment.ocpp_swarm_workers = workers  # type: ignore[attr-defined]
        environment.events.worker_report.add_listener(workers.take)
        runner.greenlet.spawn(workers.watch)  # the runner's group: it ends with the runner
        workers_lost = workers.lost
    try:
        run = RunFolder.create(environment, lambda: fleet_status(environment), checks, workers_lost)
    except (OSError, ValueError) as exc:
        logger.error("ocpp-swarm: --results-dir: %s", exc)
        sys.exit(2)
    environment.ocpp_swarm_run = run  # type: ignore[attr-defined]
    if run is not None:
        environment.events.test_stopping.add_listener(lambda **_: run.note_stop())
    if environment.web_ui is not None:
        webui.add_fleet_tab(environment.web_ui, lambda: fleet_status(environment))


@events.test_stop.add_listener
def _on_test_stop(environment: Environment, **_kwargs: Any) -> None:
    swarm = getattr(environment, "ocpp_swarm", None)
    if swarm is not None:
        swarm.flush()


QUIT_WAIT = 60.0
"""Seconds a second ``quitting`` waits for the first to finish writing the run's folder."""


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_kwargs: Any) -> None:
    done: gevent.event.Event | None = getattr(environment, "ocpp_swarm_quit", None)
    if done is not None:
        # On SIGTERM, Locust shuts down in the signal's greenlet; once it quits the runner,
        # its main greenlet wakes and shuts down too. Let the first finish, before either exits.
        done.wait(QUIT_WAIT)
        return
    environment.ocpp_swarm_quit = done = gevent.event.Event()  # type: ignore[attr-defined]
    try:
        runner = environment.runner
        if isinstance(runner, MasterRunner) and len(runner.greenlet):
            # On SIGINT or SIGTERM Locust quits its runner only after this event: have the
            # workers stop and send their last stats now, for the run's folder to count them.
            runner.quit()
        swarm = getattr(environment, "ocpp_swarm", None)
        if swarm is not None:
            swarm.stop()
        run = getattr(environment, "ocpp_swarm_run", None)
        if run is not None:
            run.finish()
    finally:
        csms = getattr(environment, "ocpp_swarm_csms", None)
        if csms is not None:
            csms.stop()
        done.set()
