"""Smart charging in OCPP 1.6 (3.13, 5.5, 5.7, 5.11, 5.16): charging profiles kept, obeyed and
reported.

SetChargingProfile keeps a profile by connector, as the CSMS sent it: a TxProfile needs a
transaction on its connector (3.13.2), and replaces the profile of the same id, or of the same
purpose and stackLevel on the connector (5.16). A RemoteStartTransaction's chargingProfile, a
TxProfile (5.11), is kept for the transaction the start begins; a TxProfile goes when its
transaction stops (3.13.2). ClearChargingProfile clears by id, or by every criterion given.

The limit in force on a connector is the composite of the valid profiles
(:mod:`swarm.station.composite`): :meth:`~swarm.station.sessions.Sessions._power_limit` gives it
in watts at an instant and :meth:`~swarm.station.sessions.Sessions._next_limit_change` when it
next changes, for the sessions to follow; each accepted change of profiles tells them at once. A
Relative schedule, or an Absolute one without startSchedule, runs from the start of the
connector's session (from the instant asked when it has none).

GetCompositeSchedule (5.7) answers that composite from now over the duration asked, in the
unit asked (else that of the profile setting the limit at the start): Accepted, or Rejected
for an unknown connector. Where no profile limits a connector it reports the connector's own
maximum (``--connector-current`` on ``--connector-phases``); connector 0, the grid connection, is
limited by the ChargePointMaxProfile, else by all connectors' maxima.
"""

from __future__ import annotations

from typing import Any

from swarm.station import composite, meter
from swarm.station.composite import Installed
from swarm.station.connector import Status


class SmartCharging:
    """The smart-charging handlers of a 1.6 :class:`~swarm.ocpp16.charge_point.ChargePoint`,
    and the limit they set."""

    __slots__ = ()

    def _on_set_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        connector, profile = payload["connectorId"], payload["csChargingProfiles"]
        if not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        purpose = profile["chargingProfilePurpose"]
        if purpose == "TxProfile" and self.connectors[connector].transaction is None:
            return {"status": "Rejected"}  # a TxProfile needs a transaction (3.13.2)
        if purpose == "ChargePointMaxProfile" and connector != 0:
            return {"status": "Rejected"}  # set on connector 0 only (3.13.2)
        try:
            composite.from_16(profile)
        except ValueError:  # a time not a date and time, periods out of order, phases not 1-3
            return {"status": "Rejected"}
        self._keep_profile(connector, profile)
        return {"status": "Accepted"}

    def _keep_profile(self, connector: int, profile: dict[str, Any]) -> None:
        """Store a profile: it replaces one of the same id anywhere, or of the same purpose and
        stackLevel on its connector (5.16); the sessions it may limit are told."""
        replaced = (profile["chargingProfilePurpose"], profile["stackLevel"])
        profiles = self.charging_profiles
        for number, kept in list(profiles.items()):
            profiles[number] = [
                p
                for p in kept
                if p["chargingProfileId"] != profile["chargingProfileId"]
                and (number, p["chargingProfilePurpose"], p["stackLevel"]) != (connector, *replaced)
            ]
        profiles[connector] = [*profiles.get(connector, []), profile]
        self._limit_changed(connector)

    def _start_profile_refusal(self, profile: dict[str, Any] | None) -> dict[str, Any] | None:
        """The Rejected answer to a RemoteStartTransaction whose chargingProfile is no TxProfile
        (5.11) or does not parse; None if it has none or a fit one."""
        if profile is None:
            return None
        try:
            composite.from_16(profile)
        except ValueError:
            return {"status": "Rejected"}
        return None if profile["chargingProfilePurpose"] == "TxProfile" else {"status": "Rejected"}

    def _on_clear_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        def matches(connector: int, profile: dict[str, Any]) -> bool:
            if "id" in payload:
                return profile["chargingProfileId"] == payload["id"]
            return all(
                value == (connector if key == "connectorId" else profile.get(key))
                for key, value in payload.items()
            )

        cleared: set[int] = set()
        for connector, profiles in self.charging_profiles.items():
            kept = [p for p in profiles if not matches(connector, p)]
            if len(kept) < len(profiles):
                cleared.add(connector)
            self.charging_profiles[connector] = kept
        for connector in cleared:
            self._limit_changed(connector)
        return {"status": "Accepted" if cleared else "Unknown"}

    def _on_get_composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The composite schedule of a connector (0: the grid connection) from now, over the
        duration asked; Rejected for an unknown connector (5.7)."""
        connector = payload["connectorId"]
        if not 0 <= connector < len(self.connectors):
            return {"status": "Rejected"}
        start, duration, unit, periods = self._composite_schedule(
            connector, payload["duration"], payload.get("chargingRateUnit")
        )
        return {
            "status": "Accepted",
            "connectorId": connector,
            "scheduleStart": meter.timestamp(start),
            "chargingSchedule": {
                "duration": duration,
                "startSchedule": meter.timestamp(start),
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods,
            },
        }

    def _installed_profiles(self) -> list[Installed]:
        """The profiles in force, parsed. A TxProfile lasts while its connector is taken by its
        session: in a transaction, or Preparing for the remote start that brought it."""
        installed = []
        for connector, profiles in self.charging_profiles.items():
            record = self.connectors[connector]
            taken = record.transaction is not None or record.status is Status.PREPARING
            kept = [p for p in profiles if taken or p["chargingProfilePurpose"] != "TxProfile"]
            if len(kept) < len(profiles):
                self.charging_profiles[connector] = kept
            installed += [(connector, composite.from_16(p)) for p in kept]
        return installed

    def _end_locally(self, connector: int) -> None:
        # A TxProfile goes with its transaction (3.13.2).
        profiles = self.charging_profiles.get(connector)
        if profiles:
            self.charging_profiles[connector] = [
                p for p in profiles if p["chargingProfilePurpose"] != "TxProfile"
            ]
        super()._end_locally(connector)
