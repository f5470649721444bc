"""The swarm in one Locust process that runs users: its engine, the pump that hands the
engine's samples to Locust (and its frame traces to :attr:`Swarm.on_traces`), the charge
points' serial numbers and their connect settings.

One per process (a lone one, or each worker), made by the ``init`` listener
(:mod:`swarm.locust.hooks`); a master has none: its workers hold the charge points.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gevent
from locust.env import Environment

from swarm import limits
from swarm.engine import Engine
from swarm.locust import traces
from swarm.locust.context import context
from swarm.locust.host import check_scheme, is_secure, resolve_host
from swarm.locust.options import config_from_options, security_from_options
from swarm.protocol.security import Security, SecurityConfig, SecurityError
from swarm.protocol.trace import Trace
from swarm.report.fleet import FleetCounters, FleetStatus
from swarm.station.config import ChargePointConfig

logger = logging.getLogger(__name__)

PUMP_INTERVAL = 0.1
"""Seconds between batches of samples handed to Locust: the hub wakes ten times a second, not
once per message (it still fires Locust's request event once per sample)."""


START_WAIT = 10.0
"""Seconds a user waits for its process's swarm to start (:meth:`Swarm.started`)."""

Prepared = tuple[str, tuple[ChargePointConfig, ...]]
"""The CSMS URL and the fleet's configs, one per source address."""


class Swarm:
    """The swarm's state in one Locust process: engine, sample pump, serial numbers."""

    def __init__(self, environment: Environment, security: Security | None = None) -> None:
        self.environment = environment
        self.security = Security()
        if security is not None:
            self._use(security)
        self._refused_charge_point = False
        self.engine = Engine(tracer=traces.tracer(environment.parsed_options))
        self.on_traces: Callable[[list[Trace]], None] | None = None
        """Takes the frame traces the charge points hand in; None: they are dropped."""
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
        """This process's swarm; RuntimeError where none runs (a master, or before ``init``)."""
        swarm = context(environment).swarm
        if swarm is None:
            raise RuntimeError("ocpp-swarm is not started in this process (was events.init fired?)")
        return swarm

    @staticmethod
    def started(environment: Environment, timeout: float = START_WAIT) -> Swarm:
        """This process's swarm, once ``init`` has started it: waits up to ``timeout`` seconds.

        A worker connects to its master before Locust fires ``init``: with ``--autostart`` the
        master may spawn users on it while its ``init`` listener still runs (and yields).
        """
        deadline = time.monotonic() + timeout
        while context(environment).swarm is None and time.monotonic() < deadline:
            gevent.sleep(0.05)
        return Swarm.of(environment)

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
        config = _with_connect_options(config, self.security.fleet_options(is_secure(url)))
        config = replace(config, security_profile=self.security.profile(is_secure(url)))
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
            options = self.security.connect_options(charge_point_id, is_secure(url))
        except SecurityError as exc:
            if not self._refused_charge_point:
                self._refused_charge_point = True
                logger.error("ocpp-swarm: %s (such charge points do not start)", exc)
            self.environment.process_exit_code = 2
            return None
        return _with_connect_options(config, options)

    def _run_pump(self) -> None:
        try:
            while True:
                gevent.sleep(PUMP_INTERVAL)
                self.flush()
        except KeyboardInterrupt:
            # Ctrl-C lands in whichever greenlet runs when it comes: it is the main greenlet's
            # to act on (Locust's shutdown), not this one's to die of with a traceback.
            gevent.get_hub().parent.throw(KeyboardInterrupt)

    def status(self) -> FleetStatus:
        """This process's fleet: states, CALLERRORs, CSMS calls."""
        return self.counters.status(self.engine.census())

    def flush(self) -> None:
        """Report every sample the engine holds to Locust."""
        fire = self.environment.events.request.fire
        count = self.counters.count
        add, now = context(self.environment).timeline.add, time.time()
        for sample in self.engine.drain():
            count(sample)
            add(sample, now)
            fire(
                request_type=sample.request_type,
                name=sample.name,
                response_time=sample.response_time,
                response_length=0,
                exception=sample.error,
                context={},
            )
        handed = self.engine.drain_traces()
        if handed and self.on_traces is not None:
            self.on_traces(handed)

    def stop(self) -> None:
        """Close every charge point's WebSocket, stop the engine, report the last samples."""
        if self._pump is not None:
            self._pump.kill(block=False)
        self.engine.shutdown(timeout=10.0, sleep=gevent.sleep)
        self.flush()


def _with_connect_options(config: ChargePointConfig, options: dict[str, Any]) -> ChargePointConfig:
    return replace(config, connect_options={**config.connect_options, **options})
