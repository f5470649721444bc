"""Ctrl-C pressed once, twice, three times.

Once, it is Locust's Ctrl-C: the run ends, every charge point closes its WebSocket and the run's
folder is written. Pressed again while that goes on (impatient users do, and some CI runners
forward a signal twice), or after a SIGTERM began it, it is said to be under way and changes
nothing: the folder is still written whole. A third press aborts at once and says that the
folder is left incomplete. A worker, which writes no folder, only takes the first press.

Python raises KeyboardInterrupt in whatever code runs when SIGINT comes: in the middle of the
folder's writing, or in a greenlet that dies of it with a traceback. Here SIGINT is a gevent
signal handler instead, which runs in a greenlet of its own and raises KeyboardInterrupt in
the main greenlet, where Locust waits for it, only for the first press.
"""

from __future__ import annotations

import logging
import os
import signal

import gevent
from locust.env import Environment
from locust.runners import WorkerRunner

from swarm.locust.context import context

logger = logging.getLogger(__name__)

ABORT_EXIT_CODE = 130
"""The exit code of a run aborted by a third Ctrl-C: 128 + SIGINT, as a shell reports it."""


class Interrupts:
    """Counts the Ctrl-Cs of one process and acts on each (see the module)."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.presses = 0

    def install(self) -> bool:
        """Take over SIGINT; False where gevent cannot (Windows: Locust's own Ctrl-C stays)."""
        if os.name == "nt":
            return False
        gevent.signal_handler(signal.SIGINT, self.press)
        return True

    def press(self) -> None:
        self.presses += 1
        state = context(self.environment)
        ending = state.quitting is not None
        if self.presses == 1 and not ending:
            gevent.get_hub().parent.throw(KeyboardInterrupt)  # Locust's Ctrl-C
        elif isinstance(self.environment.runner, WorkerRunner):
            # A worker writes no folder, and gets Ctrl-C from the terminal and again from a
            # --processes parent: it goes on closing its charge points; the master decides.
            logger.debug("ocpp-swarm: Ctrl-C again while this worker ends: ignored")
        elif self.presses <= 2:
            logger.warning(
                "ocpp-swarm: the run is ending: closing the charge points and writing the run's"
                " folder; Ctrl-C once more aborts, leaving the folder incomplete"
            )
        else:
            folder = f" {state.run.path}/" if state.run is not None else ""
            logger.error("ocpp-swarm: aborted; the run's folder%s is incomplete", folder)
            logging.shutdown()
            # The embedded CSMS, a child, stops as its stdin closes with this process.
            os._exit(ABORT_EXIT_CODE)
