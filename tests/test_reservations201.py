"""Reservations (H), the local list (D) and stored charging profiles (K) of a 2.0.1 station.

The mixins are wired into :class:`Station201` here as the charge point will wire them; flows run
against the scripted 2.0.1 CSMS of :mod:`tests.test_station201`, which checks every frame both
ways against the 2.0.1 schemas, and each answer asked directly is checked against its schema.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from swarm.ocpp201.charge_point import ChargePoint
from swarm.ocpp201.dialect import OCPP201
from swarm.ocpp201.variables import LOCAL_LIST_ENTRIES, PROFILE_ENTRIES
from swarm.station.connector import Status, Transaction
from swarm.station.schedule import Key, Timer
from swarm.station.state import State
from tests.scripted import run, scripted_csms, until
from tests.test_station201 import CONFIG, Csms201, check_transactions

Station201 = ChargePoint  # blocks H, D and K are the 2.0.1 charge point's


def offline_station(connectors=2):
    return Station201(
        "CS-1", "ws://127.0.0.1:9/CS-1", replace(CONFIG, connectors=connectors), [].append
    )


def ask(cp, action, payload):
    """The station's answer to a CSMS call, the call and the answer checked against the schemas."""
    answer = cp.handle_call(action, payload)
    OCPP201.schemas.validate(action, answer, response=True)
    return answer


def status(cp, action, payload):
    return ask(cp, action, payload)["status"]


def in_seconds(seconds):
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def token(value):
    return {"idToken": value, "type": "Local"}


def reserve(reservation_id, evse, id_token="T1", seconds=60, **extra):
    payload = {
        "id": reservation_id,
        "expiryDateTime": in_seconds(seconds),
        "idToken": token(id_token),
    }
    if evse is not None:
        payload["evseId"] = evse
    return {**payload, **extra}


async def station(csms, until_done, timeout=8.0, linger=0.0):
    """Run a :class:`Station201` against ``csms`` until ``until_done(station)``, and ``linger``
    seconds more."""
    async with scripted_csms(csms.handler, protocol="ocpp2.0.1") as (url, _):
        cp = Station201("CS-1", url + "/CS-1", CONFIG, [].append)
        task = asyncio.create_task(cp.run())
        try:
            await until(lambda: until_done(cp), timeout=timeout)
            await asyncio.sleep(linger)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return cp


def after_boot_statuses(commands):
    """A ``react`` that sends ``commands`` once the boot's last StatusNotification came: the
    statuses after it are the commands' doing."""
    sent = []

    def react(csms, action, payload):
        if action == "StatusNotification" and payload["evseId"] == 2 and not sent:
            sent.append(True)
            yield from commands

    return react


def evse_statuses(csms, evse):
    return [s["connectorStatus"] for s in csms.actions("StatusNotification") if s["evseId"] == evse]


# H Reservations.


def test_reserve_now_answers_each_status():
    cp = offline_station(connectors=5)
    cp.connectors[2].status = Status.FAULTED
    cp.connectors[3].status = Status.UNAVAILABLE
    cp.connectors[4].status = Status.CHARGING
    assert status(cp, "ReserveNow", reserve(1, None)) == "Rejected"  # H01.FR.19
    assert status(cp, "ReserveNow", reserve(1, 9)) == "Rejected"
    assert status(cp, "ReserveNow", reserve(1, 1, connectorType="cCCS2")) == "Rejected"
    assert status(cp, "ReserveNow", reserve(1, 1, seconds=-5)) == "Rejected"
    assert status(cp, "ReserveNow", reserve(1, 1, connectorType="sType2")) == "Accepted"
    assert (cp.connectors[1].status, cp.connectors[1].reservation) == (Status.RESERVED, (1, "T1"))
    assert status(cp, "ReserveNow", reserve(2, 1, "T2")) == "Occupied"  # reserved for another
    assert status(cp, "ReserveNow", reserve(1, 1, "T9")) == "Accepted"  # the same id replaces
    assert cp.connectors[1].reservation == (1, "T9")
    assert status(cp, "ReserveNow", reserve(3, 2)) == "Faulted"
    assert status(cp, "ReserveNow", reserve(3, 3)) == "Unavailable"
    assert status(cp, "ReserveNow", reserve(3, 4)) == "Occupied"
    # The same id on another EVSE moves the reservation there.
    assert status(cp, "ReserveNow", reserve(1, 5, groupIdToken=token("G1"))) == "Accepted"
    assert (cp.connectors[1].status, cp.connectors[1].reservation) == (Status.AVAILABLE, None)
    assert cp.connectors[5].reservation == (1, "T1")
    assert cp.reservation_groups == {5: "G1"}


def test_cancel_reservation_frees_the_evse_or_is_rejected():
    cp = offline_station()
    assert status(cp, "ReserveNow", reserve(4, 2, groupIdToken=token("G1"))) == "Accepted"
    assert status(cp, "CancelReservation", {"reservationId": 5}) == "Rejected"  # H02.FR.01
    assert status(cp, "CancelReservation", {"reservationId": 4}) == "Accepted"  # H02.FR.02
    assert (cp.connectors[2].status, cp.connectors[2].reservation) == (Status.AVAILABLE, None)
    assert Key(Timer.RESERVATION, 2) not in cp._timers
    assert cp.reservation_groups is None  # back to holding nothing
    assert status(cp, "CancelReservation", {"reservationId": 4}) == "Rejected"


def test_only_the_reserved_id_token_or_its_group_may_start_and_uses_the_reservation():
    cp = offline_station()
    cp.state = State.ACCEPTED
    status(cp, "ReserveNow", reserve(1, 1, "T1"))
    status(cp, "ReserveNow", reserve(2, 2, "T3", groupIdToken=token("G1")))
    assert not cp._may_start_at(1, "T2")
    assert not cp._may_start_at(1, "T2", "G1")  # no group on this reservation
    assert cp._may_start_at(1, "t1")  # idTokens are case-insensitive
    assert cp._may_start_at(2, "T4", "g1")
    assert not cp._may_start_at(2, "T4")
    status(cp, "SendLocalList", local_list(1, "Full", entry("T5", "Accepted", group="G1")))
    assert cp._may_start_at(2, "T5")  # the local list knows its group
    assert cp._use_reservation(2) == 2
    assert cp.connectors[2].reservation is None and Key(Timer.RESERVATION, 2) not in cp._timers
    assert cp._use_reservation(2) is None


def test_a_reservation_removed_by_unavailability_is_reported_removed():
    class Session:
        def __init__(self):
            self.calls = []

        async def call(self, action, payload):
            self.calls.append((action, payload))

    cp = offline_station()
    status(cp, "ReserveNow", reserve(7, 1))
    cp._jobs.clear()
    cp._remove_reservation(1)  # as ChangeAvailability Inoperative will call it
    cp._remove_reservation(1)  # nothing left to remove: nothing more sent
    assert cp.connectors[1].reservation is None
    session = Session()
    for job in cp._jobs:
        asyncio.run(job(session))
    update = {"reservationId": 7, "reservationUpdateStatus": "Removed"}
    assert session.calls == [("ReservationStatusUpdate", update)]
    OCPP201.schemas.validate("ReservationStatusUpdate", update)


def test_a_reservation_expires_reserved_then_available_then_reported_expired():
    csms = Csms201(react=after_boot_statuses([("ReserveNow", reserve(5, 2, seconds=0.8))]))

    def done(cp):
        return bool(csms.actions("ReservationStatusUpdate"))

    cp = run(station(csms, done))
    assert csms.results["c0"] == {"status": "Accepted"}
    assert csms.actions("ReservationStatusUpdate") == [
        {"reservationId": 5, "reservationUpdateStatus": "Expired"}
    ]
    assert evse_statuses(csms, 2) == ["Available", "Reserved", "Available"]
    # H04: Available first, then the update.
    actions = [f[2] for f in csms.calls if f[2] != "Heartbeat"]
    assert actions[-2:] == ["StatusNotification", "ReservationStatusUpdate"]
    assert cp.connectors[2].reservation is None


def test_the_reserved_id_token_starts_a_transaction_and_others_are_refused():
    def start(evse, id_token, remote_start_id, group=None):
        payload = {"idToken": token(id_token), "remoteStartId": remote_start_id, "evseId": evse}
        if group is not None:
            payload["groupIdToken"] = token(group)
        return "RequestStartTransaction", payload

    commands = [
        # Long enough for the boot and the starts on a busy machine; the expiry counts from now.
        ("ReserveNow", reserve(1, 1, "T1", seconds=2.0)),
        ("ReserveNow", reserve(2, 2, "T3", groupIdToken=token("G1"))),
        start(1, "T2", 1),  # c2: Rejected, reserved for T1
        start(2, "T5", 2),  # c3: Rejected, no group given
        start(1, "T1", 3),  # c4: Accepted
        start(2, "T4", 4, group="G1"),  # c5: Accepted, by its group
    ]
    csms = Csms201(react=after_boot_statuses(commands))

    def done(cp):
        events = csms.actions("TransactionEvent")
        return sum(e["eventType"] == "Started" for e in events) == 2

    cp = run(station(csms, done, linger=2.1))  # past the first reservation's expiry
    answers = [csms.results[f"c{n}"]["status"] for n in range(6)]
    assert answers == ["Accepted"] * 2 + ["Rejected"] * 2 + ["Accepted"] * 2
    started = {
        e["evse"]["id"]: e["idToken"]["idToken"]
        for e in csms.actions("TransactionEvent")
        if e["eventType"] == "Started"
    }
    assert started == {1: "T1", 2: "T4"}
    check_transactions(csms.actions("TransactionEvent"))
    assert evse_statuses(csms, 1) == ["Available", "Reserved", "Occupied"]
    assert csms.actions("ReservationStatusUpdate") == []  # used, so it did not expire
    assert all(c.reservation is None for c in cp.connectors)


# D Local authorization list.


def local_list(version, update, *entries):
    payload = {"versionNumber": version, "updateType": update}
    if entries:
        payload["localAuthorizationList"] = list(entries)
    return payload


def entry(value, state=None, group=None):
    item = {"idToken": token(value)}
    if state is not None:
        item["idTokenInfo"] = {"status": state}
        if group is not None:
            item["idTokenInfo"]["groupIdToken"] = token(group)
    return item


def test_local_list_versions_full_and_differential_updates():
    cp = offline_station()
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 0}  # D02: no list yet
    assert status(cp, "SendLocalList", local_list(0, "Full")) == "Failed"
    full = local_list(2, "Full", entry("A", "Accepted"), entry("B", "Blocked", group="G"))
    assert status(cp, "SendLocalList", full) == "Accepted"
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 2}
    assert (cp._local_entry("a"), cp._local_entry("B")) == (("Accepted", None), ("Blocked", "G"))
    # Refused updates change nothing.
    assert status(cp, "SendLocalList", local_list(3, "Full", entry("C"))) == "Failed"
    assert status(cp, "SendLocalList", local_list(2, "Differential")) == "VersionMismatch"
    twice = local_list(3, "Differential", entry("C", "Accepted"), entry("c", "Blocked"))
    assert status(cp, "SendLocalList", twice) == "Failed"  # the same idToken twice
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 2}
    # A Differential update removes, adds and replaces.
    update = local_list(
        5, "Differential", entry("A"), entry("B", "Accepted"), entry("C", "Expired")
    )
    assert status(cp, "SendLocalList", update) == "Accepted"
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 5}
    assert cp._local_entry("A") is None
    assert (cp._local_entry("B"), cp._local_entry("C")) == (("Accepted", None), ("Expired", None))
    assert cp._local_entry("B", "ISO14443") is None  # an idToken is its value and its type
    assert cp.device_model.int_value("LocalAuthListCtrlr", "Entries") == 2  # B and C
    # A Full update without a list empties it.
    assert status(cp, "SendLocalList", local_list(6, "Full")) == "Accepted"
    assert cp._local_entry("B") is None
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 6}
    too_many = [entry(f"T{n}", "Accepted") for n in range(LOCAL_LIST_ENTRIES + 1)]
    assert status(cp, "SendLocalList", local_list(7, "Full", *too_many)) == "Failed"
    assert ask(cp, "GetLocalListVersion", {}) == {"versionNumber": 6}


def test_the_local_list_decides_offline_and_before_authorize():
    cp = offline_station()
    model = cp.device_model
    assert not cp._may_start_offline("A")  # no list, OfflineTxForUnknownIdEnabled false
    status(
        cp, "SendLocalList", local_list(1, "Full", entry("A", "Accepted"), entry("B", "Blocked"))
    )
    assert cp._may_start_offline("a")
    assert not cp._may_start_offline("B")
    assert not cp._may_start_offline("U")
    model.set("AuthCtrlr", "OfflineTxForUnknownIdEnabled", True)
    assert cp._may_start_offline("U")  # C15: an unknown idToken
    assert not cp._may_start_offline("B")  # a listed one that is not Accepted stays refused
    model.set("AuthCtrlr", "LocalAuthorizeOffline", False)
    assert cp._may_start_offline("B")  # the list is not used offline: unknown it is
    assert not cp._pre_authorized("A")  # LocalPreAuthorize false
    model.set("AuthCtrlr", "LocalPreAuthorize", True)
    assert cp._pre_authorized("A")
    assert not cp._pre_authorized("B")
    assert not cp._pre_authorized("U")


# K Smart charging.


def profile(profile_id, purpose="TxDefaultProfile", stack=0, kind="Absolute", **extra):
    periods = extra.pop("periods", [{"startPeriod": 0, "limit": 16.0}])
    schedule = {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": periods}
    if kind != "Relative":
        schedule["startSchedule"] = "2026-01-01T00:00:00Z"
    schedule.update(extra.pop("schedule", {}))
    return {
        "id": profile_id,
        "stackLevel": stack,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        "chargingSchedule": [schedule],
        **extra,
    }


def set_profile(cp, evse, body):
    answer = ask(cp, "SetChargingProfile", {"evseId": evse, "chargingProfile": body})
    return answer["status"], answer.get("statusInfo", {}).get("reasonCode")


def stored(cp):
    return sorted((evse, p["id"]) for evse, p in cp._profiles())


def test_set_charging_profile_checks_what_k01_gives():
    cp = offline_station()
    assert set_profile(cp, 9, profile(1)) == ("Rejected", "UnknownEvse")
    assert set_profile(cp, 0, profile(1, "ChargingStationExternalConstraints"))[0] == "Rejected"
    assert set_profile(cp, 1, profile(1, "ChargingStationMaxProfile"))[0] == "Rejected"
    assert set_profile(cp, 0, profile(1, "ChargingStationMaxProfile", kind="Relative"))[0] == (
        "Rejected"
    )
    assert set_profile(cp, 0, profile(1, "ChargingStationMaxProfile")) == ("Accepted", None)
    # A TxProfile needs an EVSE, a transactionId, and that transaction there.
    assert set_profile(cp, 0, profile(2, "TxProfile", transactionId="tx-1"))[0] == "Rejected"
    assert set_profile(cp, 1, profile(2, "TxProfile")) == ("Rejected", "MissingParam")
    assert set_profile(cp, 1, profile(2, "TxProfile", transactionId="tx-1"))[1] == "TxNotFound"
    cp.connectors[1].transaction = Transaction("tx-1", 1, "T1", 7000.0, 0.0)
    assert set_profile(cp, 2, profile(2, "TxProfile", transactionId="tx-1"))[1] == "TxNotFound"
    assert set_profile(cp, 1, profile(2, "TxProfile", transactionId="tx-2"))[1] == "TxNotFound"
    assert set_profile(cp, 1, profile(2, "TxProfile", transactionId="tx-1"))[0] == "Accepted"

    # Schedules.
    def periods(*starts, **extra):
        return [{"startPeriod": start, "limit": 6.0, **extra} for start in starts]

    unstarted = profile(3)
    del unstarted["chargingSchedule"][0]["startSchedule"]
    for bad in (
        profile(3, stack=11),
        profile(3, periods=periods(5)),  # K01.FR.31
        profile(3, periods=periods(0, 0)),  # K01.FR.35
        profile(3, periods=periods(0, phaseToUse=1, numberPhases=1)),  # K01.FR.20
        profile(3, periods=periods(0, numberPhases=4)),
        profile(3, periods=periods(*range(49))),
        profile(3, schedule={"startSchedule": "2026-01-01T00:00:00Z"}, kind="Relative"),
        unstarted,  # an Absolute profile without its startSchedule
        profile(3, kind="Recurring"),  # no recurrencyKind
    ):
        assert set_profile(cp, 1, bad)[0] == "Rejected", bad
    assert set_profile(cp, 1, profile(3, kind="Recurring", recurrencyKind="Daily"))[0] == (
        "Accepted"
    )
    # K01.FR.06: one profile of a purpose and stackLevel at a time on an EVSE.
    assert set_profile(cp, 1, profile(4, stack=1))[0] == "Accepted"
    assert set_profile(cp, 1, profile(5, stack=1)) == ("Rejected", "DuplicateProfile")
    later = {"validFrom": "2030-01-01T00:00:00Z", "validTo": "2031-01-01T00:00:00Z"}
    assert set_profile(cp, 1, profile(6, stack=2, **later))[0] == "Accepted"
    assert set_profile(cp, 1, profile(7, stack=2, validTo="2029-01-01T00:00:00Z"))[0] == (
        "Accepted"
    )  # valid before the other: no overlap
    assert set_profile(cp, 2, profile(5, stack=1))[0] == "Accepted"  # another EVSE
    assert set_profile(cp, 1, profile(4, stack=3))[0] == "Accepted"  # K01.FR.05: replaced
    assert stored(cp) == [(0, 1), (1, 2), (1, 3), (1, 4), (1, 6), (1, 7), (2, 5)]
    # A TxProfile goes with its transaction.
    cp.connectors[1].transaction = None
    assert (1, 2) not in stored(cp)


def test_profiles_are_kept_up_to_the_station_s_limit():
    cp = offline_station()
    for number in range(PROFILE_ENTRIES):
        # Years apart: none overlaps another of its stackLevel.
        year = {"validFrom": f"{2030 + number}-01-01T00:00:00Z"}
        year["validTo"] = f"{2031 + number}-01-01T00:00:00Z"
        assert set_profile(cp, 0, profile(number, stack=number % 10, **year))[0] == "Accepted"
    assert set_profile(cp, 1, profile(99)) == ("Rejected", "TooManyElements")
    entries = {"variable_instance": "ChargingProfiles"}
    assert cp.device_model.int_value("SmartChargingCtrlr", "Entries", **entries) == PROFILE_ENTRIES
    assert set_profile(cp, 0, profile(3, stack=9, validFrom="2090-01-01T00:00:00Z"))[0] == (
        "Accepted"
    )  # replacing one is no more


def test_clear_charging_profile_by_id_or_criteria():
    cp = offline_station()
    set_profile(cp, 0, profile(1, "ChargingStationMaxProfile"))
    set_profile(cp, 1, profile(2, stack=1))
    set_profile(cp, 2, profile(3, stack=1))
    set_profile(cp, 2, profile(4, stack=2))

    def clear(payload):
        return status(cp, "ClearChargingProfile", payload)

    assert clear({"chargingProfileId": 9}) == "Unknown"
    assert clear({"chargingProfileId": 2}) == "Accepted"
    assert clear({"chargingProfileId": 2}) == "Unknown"
    assert stored(cp) == [(0, 1), (2, 3), (2, 4)]
    criteria = {
        "chargingProfileCriteria": {"chargingProfilePurpose": "ChargingStationExternalConstraints"}
    }
    assert clear(criteria) == "Unknown"  # K10.FR.06
    assert clear({"chargingProfileCriteria": {"evseId": 2, "stackLevel": 5}}) == "Unknown"
    assert clear({"chargingProfileCriteria": {"evseId": 2, "stackLevel": 2}}) == "Accepted"
    assert stored(cp) == [(0, 1), (2, 3)]
    assert clear({"chargingProfileCriteria": {"chargingProfilePurpose": "TxDefaultProfile"}}) == (
        "Accepted"
    )
    assert stored(cp) == [(0, 1)]
    assert clear({}) == "Accepted"  # no criterion: every profile
    assert cp.charging_profiles is None
    assert clear({}) == "Unknown"


def test_get_charging_profiles_reports_them_and_composite_schedules_combine_them():
    def get(request_id, evse=None, **criterion):
        payload = {"requestId": request_id, "chargingProfile": criterion}
        if evse is not None:
            payload["evseId"] = evse
        return "GetChargingProfiles", payload

    def set_on(evse, body):
        return "SetChargingProfile", {"evseId": evse, "chargingProfile": body}

    commands = [
        set_on(0, profile(1, "ChargingStationMaxProfile")),
        set_on(1, profile(2)),
        set_on(2, profile(3, stack=4)),
        get(7),  # c3: all, one report per EVSE
        get(8, chargingProfilePurpose="TxProfile"),  # c4: NoProfiles
        get(9, evse=2),  # c5
        get(10, chargingProfileId=[1, 2], stackLevel=4),  # c6: by id alone
        get(11, chargingLimitSource=["EMS"]),  # c7: NoProfiles, every one is the CSO's
        ("GetCompositeSchedule", {"duration": 600, "evseId": 1}),  # c8
        ("GetCompositeSchedule", {"duration": 600, "evseId": 5}),  # c9
    ]
    csms = Csms201(react=after_boot_statuses(commands))

    def done(cp):
        return len(csms.actions("ReportChargingProfiles")) >= 6

    run(station(csms, done))
    results = [csms.results[f"c{n}"]["status"] for n in range(10)]
    expected = ["Accepted"] * 4 + ["NoProfiles", "Accepted", "Accepted", "NoProfiles"]
    assert results == [*expected, "Accepted", "Rejected"]
    # EVSE 1's TxDefaultProfile under the station's maximum, both 16 A (K08.FR.02).
    assert csms.results["c8"]["schedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}
    ]
    assert csms.results["c9"]["statusInfo"]["reasonCode"] == "UnknownEvse"  # K08.FR.05
    reports = {}
    for report in csms.actions("ReportChargingProfiles"):
        assert report["chargingLimitSource"] == "CSO"
        ids = [p["id"] for p in report["chargingProfile"]]
        reports.setdefault(report["requestId"], []).append((report["evseId"], ids, report["tbc"]))
    assert reports == {
        7: [(0, [1], True), (1, [2], True), (2, [3], False)],
        9: [(2, [3], False)],
        10: [(0, [1], True), (1, [2], False)],
    }


def test_a_remote_start_s_charging_profile_is_its_transaction_s_tx_profile():
    """F01.FR.08-11: a TxProfile without a transactionId, kept for the transaction it starts
    and gone with it; any other profile makes the start Rejected."""

    def start(remote_start_id, evse, body):
        payload = {"idToken": token("T1"), "remoteStartId": remote_start_id, "evseId": evse}
        return {**payload, "chargingProfile": body}

    cp = offline_station()
    cp.state = State.ACCEPTED
    for bad in (
        profile(1),  # a TxDefaultProfile
        profile(1, "TxProfile", transactionId="tx-1"),
        profile(1, "TxProfile", stack=11),
    ):
        assert ask(cp, "RequestStartTransaction", start(1, 1, bad))["status"] == "Rejected", bad
    assert cp.connectors[1].status is Status.AVAILABLE  # nothing taken

    def react(csms, action, payload):
        if action == "TransactionEvent" and payload["eventType"] == "Started":
            yield "GetChargingProfiles", {"requestId": 3, "chargingProfile": {}}
        if action == "ReportChargingProfiles":
            transaction = csms.actions("TransactionEvent")[0]["transactionInfo"]["transactionId"]
            yield "RequestStopTransaction", {"transactionId": transaction}
        if action == "TransactionEvent" and payload["eventType"] == "Ended":
            yield "GetChargingProfiles", {"requestId": 4, "chargingProfile": {}}

    commands = [("RequestStartTransaction", start(7, 2, profile(5, "TxProfile", stack=2)))]
    csms = Csms201(commands=commands, react=react)

    def done(cp):
        return "c3" in csms.results

    run(station(csms, done))
    assert [csms.results[f"c{n}"]["status"] for n in range(4)] == [
        "Accepted",
        "Accepted",
        "Accepted",
        "NoProfiles",  # gone with its transaction
    ]
    (report,) = csms.actions("ReportChargingProfiles")
    transaction = csms.actions("TransactionEvent")[0]["transactionInfo"]["transactionId"]
    assert report["evseId"] == 2
    assert [(p["id"], p["transactionId"]) for p in report["chargingProfile"]] == [(5, transaction)]
