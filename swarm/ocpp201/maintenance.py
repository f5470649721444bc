"""The maintenance of a 2.0.1 station in 2.0.1 words: firmware updates (L01), log uploads (N01)
and security events (A04) are the station's (:mod:`swarm.station.maintenance`); what is 2.0.1's
is here.

- A refusal says why, in statusInfo (an update Rejected while one installs: InstallOngoing).
- The reboot into new firmware boots with reason FirmwareUpdate.
- A Reset (of the station, Immediate or once idle) is a reboot: ResetOrReboot and
  StartupOfTheDevice once it is back.
- Back without a boot (B04), the station sends the security events it queued meanwhile, after
  the statuses that changed.

:class:`Maintenance` is a mixin of the 2.0.1 ChargePoint, first in its bases, before Commands,
whose ``_reset`` it extends, and Transactions, whose ``_resume`` it extends.
"""

from __future__ import annotations

from swarm.protocol.rpc import OcppSession
from swarm.station import maintenance
from swarm.station.maintenance import Request


class Maintenance(maintenance.Maintenance):
    """Firmware updates, log uploads and security events of a 2.0.1
    :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    def _rebooting_into(self, update: Request) -> None:
        self._boot_reason = "FirmwareUpdate"

    def _reset(self) -> None:
        """A Reset reboots the station: ResetOrReboot and StartupOfTheDevice once back."""
        self._reboot_events()
        super()._reset()

    async def _resume(self, session: OcppSession, offline_for: float) -> None:
        await super()._resume(session, offline_for)
        if self._security_events:
            await self._send_security_events(session)
