"""The security events of a station's connects and credentials: a CSMS that refuses them, one
whose certificate does not verify, a password the CSMS changes; and the bounds of the queue
they wait in.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import trustme

from swarm.csms import Csms, CsmsConfig
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.protocol.security import Security, SecurityConfig, client_context
from swarm.station.maintenance import EVENTS_KEPT
from tests.scripted import run, until
from tests.test_credentials import Pki, set_password, station
from tests.test_station201 import CONFIG as CONFIG201


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("events"))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_security_events_of_a_refused_handshake_and_a_new_password(version: str) -> None:
    """The CSMS refuses the station's password at its first connects (one event, however many
    refusals), then takes it; then sets a new one: both are reported once the station is back,
    each with its version's event type."""
    ident = "CP-1" if version == "1.6" else "CS-1"
    fleet = Security(SecurityConfig(password="fleet-{id}"))
    refused = (
        "FailedToAuthenticateAtCentralSystem" if version == "1.6" else "FailedToAuthenticateAtCsms"
    )
    *change, _ = set_password(version)

    async def main():
        async with Csms(CsmsConfig(port=0, password="other-{id}")) as csms:
            types = record_security_events(csms)
            cp = station(
                version,
                ident,
                csms.url,
                samples := [],
                security_profile=1,
                reconnect_min=0.1,
                reconnect_max=0.1,
                connect_options=fleet.connect_options(ident, False),
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(samples) >= 3)  # three refused connects
                csms.central.passwords[ident] = "fleet-" + ident  # the CSMS takes it now
                await until(lambda: csms.stats["SecurityEventNotification"] >= 1)
                await csms.call(ident, *change)
                await until(lambda: RECONFIGURED in types, timeout=10)
                return types, csms.stats
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    types, stats = run(main())
    assert types == ["StartupOfTheDevice", refused, RECONFIGURED]
    assert stats["received.invalid"] == 0


RECONFIGURED = "ReconfigurationOfSecurityParameters"


def record_security_events(csms: Csms) -> list[str]:
    """The types of the SecurityEventNotifications ``csms`` gets from now on, in order."""
    types: list[str] = []
    for version in csms._versions.values():
        answer = version.handlers["SecurityEventNotification"]

        def recording(charge_point_id, payload, answer=answer):
            types.append(payload["type"])
            return answer(charge_point_id, payload)

        version.handlers["SecurityEventNotification"] = recording
    return types


@pytest.mark.timeout(30)
@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_a_csms_certificate_that_does_not_verify_is_a_security_event(
    pki: Pki, version: str, tmp_path: Path
) -> None:
    """The fleet trusts another CA at first: every TLS handshake fails, which is reported
    once the station gets through (after its CA is trusted too)."""
    ident = "CP-1" if version == "1.6" else "CS-1"
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    context = client_context(str(other))
    invalid = "InvalidCentralSystemCertificate" if version == "1.6" else "InvalidCsmsCertificate"

    async def main():
        async with Csms(pki.csms(client_ca=False)) as csms:
            types = record_security_events(csms)
            cp = station(
                version,
                ident,
                csms.url,
                samples := [],
                security_profile=2,
                reconnect_min=0.1,
                reconnect_max=0.1,
                connect_options={"ssl": context},
            )
            task = asyncio.create_task(cp.run())
            try:
                await until(lambda: len(samples) >= 3)  # three failed handshakes
                context.load_verify_locations(str(pki.server_ca))
                await until(lambda: invalid in types, timeout=10)
                return types, samples
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    types, samples = run(main())
    assert types == ["StartupOfTheDevice", invalid]
    assert "SSLCertVerificationError" in samples[0].error


def test_a_station_that_cannot_send_its_events_keeps_the_last_100() -> None:
    station = ChargePoint201("CS-1", "ws://127.0.0.1:9/CS-1", CONFIG201, [].append)
    for number in range(EVENTS_KEPT + 50):
        station._security_event("InvalidMessages", str(number))
    kept = station._security_events
    assert len(kept) == EVENTS_KEPT
    assert kept[-1][2] == str(EVENTS_KEPT + 49) and kept[0][2] == "50"
