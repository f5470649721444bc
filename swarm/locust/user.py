"""Charge points as Locust users.

Importing this module (``from swarm import ChargePointUser`` in a locustfile) adds the swarm's
options to Locust and hooks its events (:mod:`swarm.locust.hooks`): a locustfile needs nothing
but the user class.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from gevent import Greenlet
from gevent.pool import Group
from locust import User, constant, task
from locust.exception import StopUser
from locust.user.users import LOCUST_STATE_WAITING

from swarm.locust import hooks  # noqa: F401  (registers the swarm's listeners on import)
from swarm.locust.swarm import Swarm

__all__ = ["ChargePointUser", "Swarm"]

logger = logging.getLogger(__name__)


class ChargePointUser(User):
    """One virtual OCPP 1.6J charge point.

    The charge point lives in the engine's event loop: it connects to ``<host>/<id>``, boots,
    heartbeats and authorizes there, and each OCPP round trip is a Locust request of type
    ``OCPP`` named after the action. The user only holds the charge point's place: starting
    it starts the charge point, stopping it closes the charge point's WebSocket.

    A subclass's own tasks run at its own ``wait_time``, in the user's greenlet: they replace
    :meth:`hold`, which is the task only of a user that has none. A user with none runs no
    greenlet (see :meth:`start`).
    """

    abstract = True
    wait_time = constant(3600)

    charge_point_id: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Locust gives a subclass its bases' tasks as well as its own: hold would take every
        # other wake-up of a user that has tasks of its own.
        own = [task for task in cls.tasks if task is not ChargePointUser.hold]
        if own:
            cls.tasks = own

    def start(self, group: Group) -> Greenlet:
        """Start the charge point; a greenlet only for a user with tasks of its own.

        A user whose only task is :meth:`hold` would keep a greenlet waiting an hour at a time:
        8 KiB a charge point, a third of its memory (``python -m bench.memory``). Such a user
        starts its charge point here and puts in Locust's ``group`` a greenlet that never runs:
        Locust counts it, and stopping the user kills it, which stops the charge point.
        """
        cls = type(self)
        if cls.tasks != [ChargePointUser.hold] or (
            cls.on_start is not ChargePointUser.on_start
            or cls.on_stop is not ChargePointUser.on_stop
        ):
            return super().start(group)
        # Locust finds a user by its greenlet's first argument: as User.start does.
        self._greenlet = greenlet = Greenlet(_run_user, self)
        self._group = group
        try:
            self.on_start()
        except Exception as exc:  # as Locust's User.run reports one
            logger.error("%s\n%s", exc, traceback.format_exc())
            self.environment.events.user_error.fire(
                user_instance=self, exception=exc, tb=exc.__traceback__
            )
            greenlet.kill(block=False)
            return greenlet
        if not hasattr(self, "charge_point_id"):  # refused: as hold would have stopped it
            greenlet.kill(block=False)
            return greenlet
        self._state = LOCUST_STATE_WAITING  # stop() kills it at once, as a user between tasks
        greenlet.rawlink(lambda _: self.on_stop())  # in the hub, once killed: it must not block
        group.add(greenlet)
        return greenlet

    def on_start(self) -> None:
        swarm = Swarm.started(self.environment)
        prepared = swarm.prepare(self.environment.host or self.host)
        if prepared is None:
            self._refused()
            return
        url, configs = prepared
        serial = next(swarm.serials)
        charge_point_id = swarm.charge_point_id(serial)
        config = swarm.secure(charge_point_id, url, configs[serial % len(configs)])
        if config is None:
            self._refused()
            return
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

    def _refused(self) -> None:
        """No charge point for this user (the swarm said why): only :meth:`hold` runs, which
        stops it, and not the subclass's tasks, which would ask a charge point it has not."""
        self.tasks = [ChargePointUser.hold]

    @task
    def hold(self) -> None:
        """Nothing to do here: the charge point works in the event loop."""
        if not hasattr(self, "charge_point_id"):
            raise StopUser()  # from a task, Locust stops a user quietly; from on_start, it logs


def _run_user(user: User) -> None:
    user.run()  # never, for a greenlet that is not started: as Locust's own, should one be
