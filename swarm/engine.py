"""The engine: an event loop on a real OS thread that runs the charge points of one process.

Locust runs on gevent and monkey-patches the process; websockets and uvloop are asyncio. The
engine keeps the two apart (see DESIGN.md, threading rules):

- one event loop per process, on a thread started with the *original* ``start_new_thread``
  (after patching, ``threading.Thread`` would be a greenlet);
- the gevent side only controls: :meth:`Engine.start_charge_point` and
  :meth:`Engine.stop_charge_point` hop into the loop with ``call_soon_threadsafe``;
- the loop never calls gevent or Locust: samples go into a deque (thread-safe appends and pops)
  that the gevent side empties with :meth:`Engine.drain`, in batches; so do the frame traces
  of charge points that failed (:meth:`Engine.drain_traces`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections import deque
from collections.abc import Callable

from swarm import eventloop
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.protocol import ocppj
from swarm.protocol.samples import Sample
from swarm.protocol.trace import Trace, Tracer
from swarm.station.config import ChargePointConfig
from swarm.station.runner import Station
from swarm.station.state import State
from swarm.station.versions import version_of

logger = logging.getLogger(__name__)

STATIONS: dict[str, type[Station]] = {"1.6": ChargePoint16, "2.0.1": ChargePoint201}
"""The class of a charge point of each OCPP version."""

VERSION_PREFIX = "version "
"""Start of a :meth:`Engine.census` key that counts the charge points of an OCPP version."""


def _start_thread(function: Callable[[], None]) -> None:
    if "gevent" in sys.modules:
        from gevent import monkey

        start_new_thread = monkey.get_original("_thread", "start_new_thread")
    else:
        import _thread

        start_new_thread = _thread.start_new_thread
    start_new_thread(function, ())


class Engine:
    """Charge points of one process, in an event loop on its own thread.

    Thread-safe: every public method may be called from any thread (in Locust, the gevent hub).
    """

    def __init__(
        self,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._loop = (loop_factory or eventloop.loop_factory())()
        self._samples: deque[Sample] = deque()
        self.tracer = tracer or Tracer(0)
        """Traces the charge points' frames (:mod:`swarm.protocol.trace`); none by default."""
        self._charge_points: dict[str, tuple[Station, asyncio.Task[None]]] = {}
        self._running = False
        self._finished = False
        self._clean = True

    @property
    def resolves_names(self) -> bool:
        """Whether the loop resolves host names itself, off the loop (uvloop, in libuv's pool).

        asyncio's own loop would resolve in its default executor, whose threads are greenlets
        under gevent's patching and would never run: give it addresses instead.
        """
        return type(self._loop).__module__.startswith("uvloop")

    def start(self) -> None:
        """Start the loop thread. Calls made before it runs are queued, not lost."""
        if self._running:
            return
        self._running = True
        _start_thread(self._run)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()
            self._finished = True

    # Control plane

    def start_charge_point(self, charge_point_id: str, url: str, config: ChargePointConfig) -> None:
        """Start a charge point (asynchronously: it connects and boots in the loop)."""
        self._hop(self._start, charge_point_id, url, config)

    def stop_charge_point(self, charge_point_id: str) -> None:
        """Stop a charge point: its WebSocket is closed cleanly, in the loop."""
        self._hop(self._stop, charge_point_id)

    def data_transfer(
        self,
        charge_point_id: str,
        vendor_id: str,
        message_id: str | None = None,
        data: str | None = None,
    ) -> None:
        """Have a charge point send a DataTransfer (see
        :meth:`~swarm.station.runner.Station.data_transfer`)."""
        self._hop(self._data_transfer, charge_point_id, vendor_id, message_id, data)

    def drop_connections(self, share: float) -> None:
        """Have a random ``share`` (0 to 1) of the charge points lose their connection at once
        (see :meth:`~swarm.station.runner.Station.drop`): a reconnect storm."""
        if not 0 <= share <= 1:
            raise ValueError(f"share must be from 0 to 1, got {share}")
        self._hop(self._drop_connections, share)

    def _hop(self, callback: Callable[..., None], *args: object) -> None:
        # Locust stops its users after the quitting event, in which the engine shuts down:
        # their charge points are closed already, there is nothing left to do.
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            if not self._loop.is_closed():
                raise

    def drain(self) -> list[Sample]:
        """Take every sample recorded so far."""
        samples = self._samples
        return [samples.popleft() for _ in range(len(samples))]

    def drain_traces(self) -> list[Trace]:
        """Take every frame trace handed in so far."""
        return self.tracer.drain()

    def end_traces(
        self, timeout: float = 1.0, sleep: Callable[[float], object] = time.sleep
    ) -> None:
        """Have every trace that awaits its next frames handed in now (a test ends), and wait
        for that, at most ``timeout`` seconds in steps of ``sleep``."""
        done: list[bool] = []
        self._hop(lambda: (self.tracer.end_all(), done.append(True)))
        deadline = time.monotonic() + timeout
        while self._running and not self._finished and not done and time.monotonic() < deadline:
            sleep(0.005)

    def census(self) -> dict[str, int]:
        """Charge points per state (by :class:`State` value), ``charging``: those with a
        transaction running, ``power_w``: the watts their sessions draw (as of each session's
        last reading), and per OCPP version (``version 1.6``, ``version 2.0.1``, for the
        versions running). A snapshot, safe from any thread."""
        counts = dict.fromkeys([state.value for state in State] + ["charging"], 0)
        watts = 0.0
        for charge_point, _ in list(self._charge_points.values()):
            counts[charge_point.state.value] += 1
            transactions = charge_point.transactions
            if transactions:
                counts["charging"] += 1
                watts += sum(transaction.drawing for transaction in transactions.values())
            version = VERSION_PREFIX + charge_point.dialect.version
            counts[version] = counts.get(version, 0) + 1
        counts["power_w"] = round(watts)
        return counts

    def __len__(self) -> int:
        return len(self._charge_points)

    def shutdown(
        self, timeout: float = 10.0, sleep: Callable[[float], object] = time.sleep
    ) -> bool:
        """Stop every charge point, closing its WebSocket, then stop the loop and its thread.

        Waits up to ``timeout`` seconds in steps of ``sleep`` (pass ``gevent.sleep`` from the
        hub so other greenlets run meanwhile). Returns whether every charge point closed in
        time; those that did not are abandoned with their connections.
        """
        if not self._running:
            self._loop.close()
            return True
        self._loop.call_soon_threadsafe(self._shutdown_soon, timeout)
        deadline = time.monotonic() + timeout + 1.0
        while not self._finished and time.monotonic() < deadline:
            sleep(0.02)
        if not self._finished:
            logger.warning("the event loop did not stop within %g s", timeout)
        return self._finished and self._clean

    # In the loop

    def _start(self, charge_point_id: str, url: str, config: ChargePointConfig) -> None:
        if charge_point_id in self._charge_points:
            logger.warning("charge point %s is running already", charge_point_id)
            return
        station = STATIONS[version_of(charge_point_id, config.versions)]
        trace = self.tracer.trace(charge_point_id)
        charge_point = station(charge_point_id, url, config, self._samples.append, trace=trace)
        task = self._loop.create_task(charge_point.run(), name=charge_point_id)
        self._charge_points[charge_point_id] = (charge_point, task)
        task.add_done_callback(lambda _: self._forget(charge_point_id, charge_point, task))

    def _forget(self, charge_point_id: str, station: Station, task: asyncio.Task[None]) -> None:
        if self._charge_points.get(charge_point_id, (None, None))[1] is task:
            del self._charge_points[charge_point_id]
        if station.trace is not None:
            station.trace.end()
        if not task.cancelled() and task.exception() is not None:
            logger.error("charge point %s failed", charge_point_id, exc_info=task.exception())

    def _data_transfer(self, charge_point_id: str, *args: str | None) -> None:
        entry = self._charge_points.get(charge_point_id)
        if entry is None:
            return
        try:
            entry[0].data_transfer(*args)  # type: ignore[arg-type]
        except ocppj.FrameError as exc:
            logger.error("DataTransfer for %s: %s", charge_point_id, exc.description)

    def _drop_connections(self, share: float) -> None:
        charge_points = [charge_point for charge_point, _ in self._charge_points.values()]
        for charge_point in random.sample(charge_points, round(share * len(charge_points))):
            charge_point.drop()

    def _stop(self, charge_point_id: str) -> None:
        entry = self._charge_points.get(charge_point_id)
        if entry is not None:
            entry[1].cancel()

    def _shutdown_soon(self, timeout: float) -> None:
        self._loop.create_task(self._shutdown(timeout))

    async def _shutdown(self, timeout: float) -> None:
        tasks = [task for _, task in self._charge_points.values()]
        for task in tasks:
            # A second cancel would interrupt the close handshake of a charge point that
            # Locust's on_stop is stopping already.
            if not task.cancelling():
                task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                self._clean = False
                logger.warning("%d charge points did not close within %g s", len(pending), timeout)
        self._loop.stop()
