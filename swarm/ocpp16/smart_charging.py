"""Smart charging in OCPP 1.6 (3.13, 5.5, 5.7, 5.16): charging profiles kept and reported.

A profile is kept as the CSMS sent it, by connector. A session is held at zero (SuspendedEVSE)
while a profile's first period limits its connector to 0; no other limit is applied yet, and
GetCompositeSchedule reports the stored profile of highest stack level, not a composition.
"""

from __future__ import annotations

import asyncio
from typing import Any

from swarm.protocol.rpc import OcppSession
from swarm.station import meter
from swarm.station.connector import Status, Transaction


class SmartCharging:
    """The smart-charging handlers of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`."""

    __slots__ = ()

    def _on_set_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, profile = payload["connectorId"], payload["csChargingProfiles"]
        if not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        transaction = self.connectors[connector].transaction
        if profile["chargingProfilePurpose"] == "TxProfile" and transaction is None:
            return {"status": "Rejected"}  # a TxProfile needs a transaction (5.16)
        kept = [
            p
            for p in self.charging_profiles.get(connector, [])
            if p["chargingProfileId"] != profile["chargingProfileId"]
            and (p["chargingProfilePurpose"], p["stackLevel"])
            != (profile["chargingProfilePurpose"], profile["stackLevel"])
        ]
        self.charging_profiles[connector] = [*kept, profile]
        if transaction is not None:
            to_zero = _limits_to_zero(profile)
            self._soon(lambda session: self._limit(session, transaction, to_zero))
        return {"status": "Accepted"}

    async def _limit(self, session: OcppSession, transaction: Transaction, to_zero: bool) -> None:
        """A profile limits a session to 0 (SuspendedEVSE), or lifts that limit."""
        record = self.connectors[transaction.connector]
        if record.transaction is not transaction:
            return
        if to_zero != transaction.limited:
            meter.bring_up_to_date(record, transaction, asyncio.get_running_loop().time())
            transaction.limited = to_zero
            status = (
                Status.SUSPENDED_EVSE
                if to_zero
                else Status.SUSPENDED_EV
                if transaction.full
                else Status.CHARGING
            )
            await self._set_status(session, transaction.connector, status)

    def _on_clear_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        def matches(connector: int, profile: dict[str, Any]) -> bool:
            if "id" in payload:
                return profile["chargingProfileId"] == payload["id"]
            return all(
                value == (connector if key == "connectorId" else profile.get(key))
                for key, value in payload.items()
            )

        cleared = 0
        for connector, profiles in self.charging_profiles.items():
            kept = [p for p in profiles if not matches(connector, p)]
            cleared += len(profiles) - len(kept)
            self.charging_profiles[connector] = kept
            transaction = self.connectors[connector].transaction
            if transaction is not None and not any(_limits_to_zero(p) for p in kept):
                self._soon(lambda session, t=transaction: self._limit(session, t, False))
        return {"status": "Accepted" if cleared else "Unknown"}

    def _on_get_composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The stored profile of highest stack level for the connector (or the charge point),
        reported back; no real composition of several profiles."""
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        profiles = self.charging_profiles.get(connector) or self.charging_profiles.get(0) or []
        if not profiles:
            return {"status": "Rejected"}
        profile = max(profiles, key=lambda p: p["stackLevel"])
        schedule = dict(profile["chargingSchedule"])
        schedule["duration"] = min(
            schedule.get("duration", payload["duration"]), payload["duration"]
        )
        schedule.pop("startSchedule", None)
        return {
            "status": "Accepted",
            "connectorId": connector,
            "scheduleStart": meter.timestamp(),
            "chargingSchedule": schedule,
        }


def _limits_to_zero(profile: dict[str, Any]) -> bool:
    periods = profile["chargingSchedule"]["chargingSchedulePeriod"]
    return bool(periods) and periods[0]["limit"] == 0
