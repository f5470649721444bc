"""Smart charging of a 2.0.1 station (block K): charging profiles kept, obeyed and reported.

SetChargingProfile (K01) stores a profile after the checks K01 gives, ClearChargingProfile
(K10) clears them by id or by criteria, GetChargingProfiles (K09) reports them in
ReportChargingProfiles. A profile is kept as the CSMS sent it, with its EVSE (0: the station);
each was set by the CSMS, so its chargingLimitSource is CSO. A TxProfile lasts as long as its
transaction; one sent with a RequestStartTransaction is kept for the transaction it starts
(F01.FR.08).

The limit in force on an EVSE is the composite of the valid profiles
(:mod:`swarm.station.composite`), of each its first chargingSchedule (the others are for ISO
15118 negotiation): :meth:`~swarm.station.sessions.Sessions._power_limit` gives it in watts at
an instant and :meth:`~swarm.station.sessions.Sessions._next_limit_change` when it next changes,
for the sessions to follow; each accepted change of profiles tells them at once. A Relative
schedule runs from the start of the EVSE's session (from the instant asked when it has none).

GetCompositeSchedule (K08) answers that composite from now over the duration asked, in the
unit asked: Accepted (the station supports A and W, SmartChargingCtrlr.RateUnit, so K08.FR.07
never rejects), or Rejected for an unknown EVSE (K08.FR.05). Where no profile limits an EVSE it
reports the EVSE's own maximum, ``--connector-current`` on ``--connector-phases`` (the device
model's EVSE.Power maxLimit stays 22,080 W whatever they are); evseId 0, the grid connection
(K08.FR.03), is limited by the ChargingStationMaxProfile, else by all EVSEs' maxima.

Per-station state lives in the concrete class's slot ``charging_profiles``
(``[(evseId, profile)]``), None while there is none.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

from swarm.ocpp201.dialect import with_reason
from swarm.ocpp201.variables import PERIODS_PER_SCHEDULE, PROFILE_ENTRIES, PROFILE_STACK_LEVEL
from swarm.station import composite, meter
from swarm.station.composite import Installed

SOURCE = "CSO"
"""The chargingLimitSource of every stored profile: the CSMS set them all."""

SUPPLY_PHASES = 3
"""The phases an EVSE has (the device model's SupplyPhases): a period may ask 1 to 3."""

Stored = tuple[int, dict[str, Any]]
"""A stored profile: the EVSE it is set on (0 for the station as a whole) and the profile."""


class SmartCharging:
    """The smart-charging handlers of a 2.0.1 :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    def _on_set_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse, profile = payload["evseId"], payload["chargingProfile"]
        refusal = self._refusal(evse, profile)
        if refusal is not None:
            return with_reason("Rejected", *refusal)
        self._keep_profile(evse, profile)
        return {"status": "Accepted"}

    def _keep_profile(self, evse: int, profile: dict[str, Any]) -> None:
        """Store a profile found fit: the same id replaces one, wherever it is (K01.FR.05)."""
        kept = [(e, p) for e, p in self._profiles() if p["id"] != profile["id"]]
        self.charging_profiles = [*kept, (evse, profile)]
        self._count_profiles()
        self._limits_changed({evse})

    def _start_profile_refusal(self, evse: int, profile: dict[str, Any]) -> dict[str, Any] | None:
        """The Rejected answer to a RequestStartTransaction whose chargingProfile does not fit
        ``evse``; None if it does: a TxProfile (F01.FR.09) without a transactionId (F01.FR.11),
        as SetChargingProfile would take it for the transaction about to start."""
        if profile["chargingProfilePurpose"] != "TxProfile":
            return with_reason(
                "Rejected", "InvalidProfile", "the profile of a start is a TxProfile"
            )
        if "transactionId" in profile:
            return with_reason("Rejected", "InvalidValue", "its transaction has no id yet")
        refusal = self._refusal(evse, profile, starting=True)
        return None if refusal is None else with_reason("Rejected", *refusal)

    def _refusal(
        self, evse: int, profile: dict[str, Any], *, starting: bool = False
    ) -> tuple[str, str] | None:
        """Why ``profile`` may not be set on ``evse``, as a reasonCode and a text; None if it
        may. ``starting``: a TxProfile for the transaction a remote start is to begin."""
        if not 0 <= evse < len(self.connectors):  # K01.FR.28
            return "UnknownEvse", f"no EVSE {evse}"
        purpose, kind = profile["chargingProfilePurpose"], profile["chargingProfileKind"]
        if purpose == "ChargingStationExternalConstraints":  # K01.FR.22: the station's own
            return "InvalidValue", "ChargingStationExternalConstraints is not the CSMS's to set"
        if purpose == "ChargingStationMaxProfile" and evse != 0:
            return "InvalidValue", "a ChargingStationMaxProfile is set on evseId 0"
        if purpose == "ChargingStationMaxProfile" and kind == "Relative":  # K01.FR.38
            return "InvalidValue", "a ChargingStationMaxProfile cannot be Relative"
        if purpose == "TxProfile":
            if evse == 0:  # K01.FR.16
                return "InvalidValue", "a TxProfile is set on an EVSE, not on evseId 0"
            refusal = None if starting else self._transaction_refusal(evse, profile)
            if refusal is not None:
                return refusal
        if not 0 <= profile["stackLevel"] <= PROFILE_STACK_LEVEL:
            return "InvalidStackLevel", f"stackLevel is 0 to {PROFILE_STACK_LEVEL}"
        if kind == "Recurring" and "recurrencyKind" not in profile:
            return "InvalidSchedule", "a Recurring profile needs a recurrencyKind"
        for schedule in profile["chargingSchedule"]:
            problem = _schedule_problem(schedule, kind)
            if problem is not None:
                return "InvalidSchedule", problem
        try:
            window = _validity(profile)
            composite.from_201(profile)  # startSchedule too, and the periods' order and phases
        except composite.ScheduleError as exc:
            return "InvalidSchedule", str(exc)
        except ValueError:
            return "InvalidValue", "validFrom, validTo or startSchedule is not a date and time"
        for other_evse, other in self._profiles():
            if (
                other["id"] != profile["id"]
                and other_evse == evse
                and (other["chargingProfilePurpose"], other["stackLevel"])
                == (purpose, profile["stackLevel"])
                and _overlap(window, _validity(other))
            ):  # K01.FR.06; for a TxProfile, its transaction's (K01.FR.39)
                return "DuplicateProfile", f"profile {other['id']} has this stackLevel then"
        if sum(other["id"] != profile["id"] for _, other in self._profiles()) >= PROFILE_ENTRIES:
            return "TooManyElements", f"at most {PROFILE_ENTRIES} profiles"
        return None

    def _transaction_refusal(self, evse: int, profile: dict[str, Any]) -> tuple[str, str] | None:
        """Why a TxProfile may not be set for the transaction it names."""
        if "transactionId" not in profile:  # K01.FR.03
            return "MissingParam", "a TxProfile needs a transactionId"
        transaction = self.connectors[evse].transaction
        if transaction is None:  # K01.FR.09
            return "TxNotFound", f"no transaction on EVSE {evse}"
        if transaction.id != profile["transactionId"]:  # K01.FR.33
            return "TxNotFound", f"transaction {profile['transactionId']} is not on EVSE {evse}"
        return None

    def _on_clear_charging_profile(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Clear the profile of ``chargingProfileId`` if given, else those meeting every one
        of ``chargingProfileCriteria``'s fields (none given: all): Accepted, or Unknown if
        there was none."""
        criteria = payload.get("chargingProfileCriteria", {})
        if criteria.get("chargingProfilePurpose") == "ChargingStationExternalConstraints":
            return with_reason("Unknown", "InvalidValue", "external constraints are not the CSMS's")
        wanted = payload.get("chargingProfileId")

        def matches(evse: int, profile: dict[str, Any]) -> bool:
            if wanted is not None:
                return profile["id"] == wanted
            return (
                criteria.get("evseId", evse) == evse
                and criteria.get("chargingProfilePurpose", profile["chargingProfilePurpose"])
                == profile["chargingProfilePurpose"]
                and criteria.get("stackLevel", profile["stackLevel"]) == profile["stackLevel"]
            )

        profiles = self._profiles()
        kept = [(e, p) for e, p in profiles if not matches(e, p)]
        if len(kept) == len(profiles):
            return {"status": "Unknown"}
        self.charging_profiles = kept or None
        self._count_profiles()
        self._limits_changed({e for e, p in profiles if matches(e, p)})
        return {"status": "Accepted"}

    def _on_get_charging_profiles(self, payload: dict[str, Any]) -> dict[str, Any]:
        """NoProfiles, or Accepted and, after the answer, a ReportChargingProfiles per EVSE of
        the profiles asked for (K09): ``evseId`` picks one EVSE (0: the station's); the
        criterion's chargingProfileId picks by id alone, else its purpose, stackLevel and
        chargingLimitSource must all fit."""
        evse, criterion = payload.get("evseId"), payload["chargingProfile"]
        ids, sources = criterion.get("chargingProfileId"), criterion.get("chargingLimitSource")

        def wanted(at: int, profile: dict[str, Any]) -> bool:
            if evse is not None and at != evse:
                return False
            if ids is not None:
                return profile["id"] in ids
            return (
                (sources is None or SOURCE in sources)
                and criterion.get("chargingProfilePurpose", profile["chargingProfilePurpose"])
                == profile["chargingProfilePurpose"]
                and criterion.get("stackLevel", profile["stackLevel"]) == profile["stackLevel"]
            )

        by_evse: dict[int, list[dict[str, Any]]] = {}
        for at, profile in self._profiles():
            if wanted(at, profile):
                by_evse.setdefault(at, []).append(profile)
        if not by_evse:
            return {"status": "NoProfiles"}
        evses = sorted(by_evse)
        for number, at in enumerate(evses):
            report = {
                "requestId": payload["requestId"],  # K09.FR.01
                "chargingLimitSource": SOURCE,
                "evseId": at,
                "chargingProfile": by_evse[at],
                "tbc": number < len(evses) - 1,
            }
            self._send_soon("ReportChargingProfiles", report)
        return {"status": "Accepted"}

    def _on_get_composite_schedule(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The composite schedule of an EVSE (0: the grid connection) from now, over the
        duration asked (K08.FR.02); Rejected for an unknown EVSE (K08.FR.05)."""
        evse = payload["evseId"]
        if not 0 <= evse < len(self.connectors):
            return with_reason("Rejected", "UnknownEvse", f"no EVSE {evse}")
        start, duration, unit, periods = self._composite_schedule(
            evse, payload["duration"], payload.get("chargingRateUnit")
        )
        schedule = {
            "evseId": evse,
            "duration": duration,
            "scheduleStart": meter.timestamp(start),
            "chargingRateUnit": unit,
            "chargingSchedulePeriod": periods,
        }
        return {"status": "Accepted", "schedule": schedule}

    def _installed_profiles(self) -> list[Installed]:
        return [(evse, composite.from_201(p)) for evse, p in self._profiles()]

    def _limits_changed(self, evses: set[int]) -> None:
        """Tell the sessions on ``evses`` (0: on every EVSE) that their limit may have changed:
        they draw what it allows from now on."""
        for evse in sorted(evses):
            self._limit_changed(evse)

    def _profiles(self) -> list[Stored]:
        """The stored profiles, but TxProfiles whose transaction has ended: they go with it."""
        profiles = self.charging_profiles
        if not profiles:
            return []
        kept = [(evse, p) for evse, p in profiles if self._in_force(evse, p)]
        if len(kept) < len(profiles):
            self.charging_profiles = kept or None
            self._count_profiles()
        return kept

    def _count_profiles(self) -> None:
        """Keep SmartChargingCtrlr.Entries[ChargingProfiles] the number of profiles held."""
        self.device_model.set(
            "SmartChargingCtrlr",
            "Entries",
            len(self.charging_profiles or ()),
            variable_instance="ChargingProfiles",
        )

    def _in_force(self, evse: int, profile: dict[str, Any]) -> bool:
        if profile["chargingProfilePurpose"] != "TxProfile":
            return True
        transaction = self.connectors[evse].transaction
        return transaction is not None and transaction.id == profile.get("transactionId")


def _schedule_problem(schedule: dict[str, Any], kind: str) -> str | None:
    """What is wrong with a chargingSchedule of a profile of ``kind``, None if nothing."""
    periods = schedule["chargingSchedulePeriod"]
    if len(periods) > PERIODS_PER_SCHEDULE:
        return f"at most {PERIODS_PER_SCHEDULE} periods"
    if periods[0]["startPeriod"] != 0:  # K01.FR.31
        return "the first period starts at 0"
    if any(a["startPeriod"] >= b["startPeriod"] for a, b in pairwise(periods)):
        return "periods start in increasing order"  # K01.FR.35
    for period in periods:
        if "phaseToUse" in period:  # K01.FR.20: ACPhaseSwitchingSupported is false
            return "no phase switching: phaseToUse is not supported"
        if not 1 <= period.get("numberPhases", SUPPLY_PHASES) <= SUPPLY_PHASES:
            return f"numberPhases is 1 to {SUPPLY_PHASES}"
        if period["limit"] < 0:
            return "a limit is not negative"
    if kind != "Relative" and "startSchedule" not in schedule:  # K01.FR.40
        return "an Absolute or Recurring profile's schedule needs a startSchedule"
    if kind == "Relative" and "startSchedule" in schedule:  # K01.FR.41
        return "a Relative profile's schedule has no startSchedule"
    return None


def _validity(profile: dict[str, Any]) -> tuple[float, float]:
    """When a profile is valid, in epoch seconds: from validFrom (or ever) to validTo (or
    ever); ValueError if either does not parse."""
    start, end = (profile.get(field) for field in ("validFrom", "validTo"))
    return (
        -math.inf if start is None else composite.instant(start),
        math.inf if end is None else composite.instant(end),
    )


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]
