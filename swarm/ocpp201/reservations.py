"""Reservations (block H) and the local authorization list (block D) of a 2.0.1 station.

A reservation holds one EVSE (its one connector: the :class:`~swarm.station.connector.Connector`'s
``reservation``, ``(id, idToken)``) until its ``expiryDateTime``: the connector is Reserved, and
only its idToken, or an idToken of its groupIdToken, may start a session there (H03). At expiry
the connector is Available again and the CSMS gets a ReservationStatusUpdate Expired (H04);
a reserved EVSE made Unavailable loses its reservation, Removed (H01.FR.17). Only EVSE-specific
reservations are taken (ReservationCtrlr.NonEvseSpecific false: H01.FR.19).

The local list is what the CSMS's SendLocalList (D01) made it, numbered by its versionNumber
(GetLocalListVersion, D02: 0 for none). It decides offline whether an idToken it lists may
charge (LocalAuthorizeOffline), and online whether one may start without an Authorize
(LocalPreAuthorize); an idToken it does not list is left to the station's other rules.

Per-station state lives in the concrete class's slots, None until first used:
``reservation_groups`` (``{evseId: groupIdToken}`` of the reservations that have one) and
``local_list`` (a :class:`LocalList`).
"""

from __future__ import annotations

import sys
from typing import Any

from swarm.ocpp201.dialect import with_reason
from swarm.ocpp201.transactions import ID_TOKEN_TYPE
from swarm.ocpp201.variables import LOCAL_LIST_ENTRIES
from swarm.protocol.rpc import OcppSession
from swarm.station.connector import BUSY, Status
from swarm.station.runner import call_quietly
from swarm.station.schedule import Key, Timer, seconds_until

Entry = tuple[str, str | None]
"""A listed idToken's authorization status and groupIdToken: all the station uses of its
idTokenInfo."""


class LocalList:
    """The local authorization list: its version and its entries by :func:`token_key`."""

    __slots__ = ("entries", "version")

    def __init__(self, version: int, entries: dict[str, Entry]) -> None:
        self.version = version
        self.entries = entries


def token_key(id_token: str, token_type: str = ID_TOKEN_TYPE) -> str:
    """An idToken as the local list looks it up: its type and its value, whose case does not
    count (IdTokenType.idToken is case-insensitive)."""
    return f"{token_type}:{id_token.casefold()}"


class Reservations:
    """The reservation and local-list handlers of a 2.0.1
    :class:`~swarm.ocpp201.charge_point.ChargePoint`."""

    __slots__ = ()

    # H Reservations.

    def _on_reserve_now(self, payload: dict[str, Any]) -> dict[str, Any]:
        evse, reservation_id = payload.get("evseId"), payload["id"]
        if evse is None:  # H01.FR.19: NonEvseSpecific is false
            return with_reason("Rejected", "MissingParam", "only an evseId can be reserved")
        if not 0 < evse < len(self.connectors):
            return with_reason("Rejected", "UnknownEvse", f"no EVSE {evse}")
        wanted_type = payload.get("connectorType")
        if wanted_type is not None and wanted_type != self.device_model.value(
            "Connector", "ConnectorType", evse=evse, connector=1
        ):
            return with_reason(
                "Rejected", "UnknownConnectorType", f"EVSE {evse} has no {wanted_type}"
            )
        expiry = seconds_until(payload["expiryDateTime"])
        if not expiry:
            return with_reason("Rejected", "InvalidValue", "expiryDateTime has passed")
        record = self.connectors[evse]
        # The same id replaces its reservation (H01.FR.02): here it does not hold the EVSE.
        held = record.reservation is not None and record.reservation[0] == reservation_id
        if record.status is Status.FAULTED:  # H01.FR.12
            return {"status": "Faulted"}
        if record.status is Status.UNAVAILABLE:  # H01.FR.14
            return {"status": "Unavailable"}
        if record.transaction is not None or record.status in BUSY:  # H01.FR.11
            return {"status": "Occupied"}
        if record.reservation is not None and not held:
            return {"status": "Occupied"}
        for other in self.connectors[1:]:  # the replaced reservation, held elsewhere
            if other is not record and other.reservation and other.reservation[0] == reservation_id:
                self._end_reservation(other.id)
                self._release_reserved(other.id)
        record.reservation = (reservation_id, payload["idToken"]["idToken"])
        groups = self.reservation_groups or {}
        group = payload.get("groupIdToken")
        if group is not None:
            groups[evse] = group["idToken"]
        else:
            groups.pop(evse, None)
        self.reservation_groups = groups or None
        self._soon(self._start_timer(Key(Timer.RESERVATION, evse), expiry))
        if record.status is not Status.RESERVED:  # H01.FR.23: its connector is Reserved
            record.status = Status.RESERVED
            self._status_soon(evse)
        return {"status": "Accepted"}

    def _on_cancel_reservation(self, payload: dict[str, Any]) -> dict[str, Any]:
        for record in self.connectors[1:]:
            if record.reservation is not None and record.reservation[0] == payload["reservationId"]:
                self._end_reservation(record.id)
                self._release_reserved(record.id)  # H02.FR.02; no ReservationStatusUpdate
                return {"status": "Accepted"}
        return {"status": "Rejected"}  # H02.FR.01

    async def _on_reservation_timer(self, session: OcppSession | None, key: Key) -> None:
        """A reservation expires (H04): the connector is Available again, then the CSMS is told.

        Reservation timers run only while connected: a new connection starts without them."""
        evse = key.connector
        reservation_id = self._end_reservation(evse)
        if reservation_id is None:  # cancelled or used since its timer was set
            return
        record = self.connectors[evse]
        if record.status is Status.RESERVED:
            await self._set_status(session, evse, record.release())
        update = {"reservationId": reservation_id, "reservationUpdateStatus": "Expired"}
        await call_quietly(session, "ReservationStatusUpdate", update)

    def _remove_reservation(self, evse: int) -> None:
        """The reserved EVSE became Unavailable or Faulted: its reservation goes, and the CSMS
        gets a ReservationStatusUpdate Removed (H01.FR.16, .17). The caller sets the status."""
        reservation_id = self._end_reservation(evse)
        if reservation_id is not None:
            update = {"reservationId": reservation_id, "reservationUpdateStatus": "Removed"}
            self._send_soon("ReservationStatusUpdate", update)

    def _may_start_at(self, evse: int, id_token: str, group_id_token: str | None = None) -> bool:
        """Whether a session of ``id_token`` may start at ``evse`` now: it is free, or reserved
        for that idToken, or for a groupIdToken that is ``group_id_token`` or the local list's
        for ``id_token`` (H03.FR.03, .04). Cases of idTokens do not count."""
        record = self.connectors[evse]
        if record.free:
            return True
        reservation = record.reservation
        if reservation is None or record.status is not Status.RESERVED:
            return False
        if reservation[1].casefold() == id_token.casefold():
            return True
        reserved_group = (self.reservation_groups or {}).get(evse)
        if reserved_group is None:
            return False
        if group_id_token is None:
            entry = self._local_entry(id_token)
            group_id_token = entry[1] if entry is not None else None
        return group_id_token is not None and group_id_token.casefold() == reserved_group.casefold()

    def _use_reservation(self, evse: int) -> int | None:
        """A session admitted by :meth:`_may_start_at` starts at ``evse``: its reservation, if
        any, is used up (no ReservationStatusUpdate: the TransactionEvent's ``reservationId``,
        the id returned, tells the CSMS, H03.FR.05). The caller sets the connector's status."""
        return self._end_reservation(evse)

    def _end_reservation(self, evse: int) -> int | None:
        """Forget ``evse``'s reservation and its timer; its id, None if there was none."""
        record = self.connectors[evse]
        reservation = record.reservation
        if reservation is None:
            return None
        record.reservation = None
        self._timers.pop(Key(Timer.RESERVATION, evse), None)
        groups = self.reservation_groups
        if groups is not None:
            groups.pop(evse, None)
            self.reservation_groups = groups or None
        return reservation[0]

    def _release_reserved(self, evse: int) -> None:
        """A reservation ended by a CSMS call: a connector still Reserved is free again."""
        record = self.connectors[evse]
        if record.status is Status.RESERVED:
            record.status = record.release()
            self._status_soon(evse)

    # D Local authorization list.

    def _on_get_local_list_version(self, payload: dict[str, Any]) -> dict[str, Any]:
        listed = self.local_list
        return {"versionNumber": listed.version if listed is not None else 0}  # D02.FR.01, .02

    def _on_send_local_list(self, payload: dict[str, Any]) -> dict[str, Any]:
        version, entries = payload["versionNumber"], payload.get("localAuthorizationList", [])
        if version <= 0:  # 0 is "no list" to GetLocalListVersion
            return with_reason("Failed", "InvalidValue", "versionNumber must be above 0")
        current = self.local_list
        full = payload["updateType"] == "Full"
        if not full and current is not None and version <= current.version:  # D01.FR.19
            return with_reason("VersionMismatch", "InvalidValue", f"the list is {current.version}")
        keys = [token_key(e["idToken"]["idToken"], e["idToken"]["type"]) for e in entries]
        if len(set(keys)) < len(keys):
            return with_reason("Failed", "InvalidValue", "an idToken is listed twice")
        updated = {} if full or current is None else dict(current.entries)
        for key, entry in zip(keys, entries, strict=True):
            info = entry.get("idTokenInfo")
            if info is not None:  # D01.FR.04: added or replaced
                group = info.get("groupIdToken")
                # Interned: thousands of entries share a handful of statuses.
                status = sys.intern(info["status"])
                updated[key] = (status, None if group is None else group["idToken"])
            elif full:
                return with_reason(
                    "Failed", "MissingParam", "a Full list's entry needs idTokenInfo"
                )
            else:  # D01.FR.05: a Differential entry without idTokenInfo is removed
                updated.pop(key, None)
        if len(updated) > LOCAL_LIST_ENTRIES:
            return with_reason("Failed", "TooManyElements", f"at most {LOCAL_LIST_ENTRIES} entries")
        self.local_list = LocalList(version, updated)
        self.device_model.set("LocalAuthListCtrlr", "Entries", len(updated))
        return {"status": "Accepted"}

    def _local_entry(self, id_token: str, token_type: str = ID_TOKEN_TYPE) -> Entry | None:
        """The local list's status and groupIdToken of an idToken, None if it is not listed."""
        listed = self.local_list
        return None if listed is None else listed.entries.get(token_key(id_token, token_type))

    def _may_start_offline(self, id_token: str) -> bool:
        """Whether a session of ``id_token`` may start offline: as the local list says, with
        LocalAuthorizeOffline, if it lists the idToken (C13: a listed idToken that is not
        Accepted may not charge); else as OfflineTxForUnknownIdEnabled says (C15)."""
        if self.device_model.bool_value("AuthCtrlr", "LocalAuthorizeOffline"):
            entry = self._local_entry(id_token)
            if entry is not None:
                return entry[0] == "Accepted"
        return self.device_model.bool_value("AuthCtrlr", "OfflineTxForUnknownIdEnabled")

    def _pre_authorized(self, id_token: str) -> bool:
        """Whether an online session of ``id_token`` may start without an Authorize: with
        LocalPreAuthorize, when the local list has it Accepted (C14)."""
        if not self.device_model.bool_value("AuthCtrlr", "LocalPreAuthorize"):
            return False
        entry = self._local_entry(id_token)
        return entry is not None and entry[0] == "Accepted"
