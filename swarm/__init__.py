"""ocpp-swarm: a Locust swarm of virtual OCPP 1.6J charge points for capacity-testing a CSMS."""

from swarm.version import __version__


def __getattr__(name: str):
    # The Locust user pulls in gevent; import it only when asked for, so that the protocol,
    # charge point and CSMS modules stay usable in plain asyncio processes.
    if name == "ChargePointUser":
        from swarm.locust.user import ChargePointUser

        return ChargePointUser
    raise AttributeError(name)


__all__ = ["ChargePointUser", "__version__"]
