"""The control API's named security campaigns (POST /campaigns/<name>, security_campaigns)
against a real embedded CSMS over real sockets: 1.6 charge points and 2.0.1 stations of the swarm,
each sent the campaign in its version's words, every CSMS call checked against its version's
request schema before it goes and every answer against its response schema here; and the
manufacturer the CSMS plays (swarm.csms.authority.Manufacturer).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from websockets.asyncio.client import connect

from swarm.csms import Csms, CsmsConfig, control
from swarm.csms.authority import Manufacturer
from swarm.ocpp16.charge_point import ChargePoint as ChargePoint16
from swarm.ocpp201.charge_point import ChargePoint as ChargePoint201
from swarm.protocol import ocppj
from swarm.station import certificates, identity
from swarm.station.state import State
from tests.fleet import FakeChargePoint, fleet
from tests.scripted import run, until
from tests.test_commands import CONFIG as CONFIG16
from tests.test_control import http
from tests.test_station201 import CONFIG as CONFIG201

# Firmware and log steps a few tens of milliseconds apart, none failing.
FAST16 = dataclasses.replace(CONFIG16, update_step=0.02, update_failures=0.0)
FAST201 = dataclasses.replace(CONFIG201, update_step=0.02, update_failures=0.0)
IDS = {"1.6": "CP-1", "2.0.1": "CS-1"}


@dataclasses.dataclass
class Served:
    """A CSMS, its control API's URL, a charge point of each version, and what they said."""

    csms: Csms
    url: str
    cp16: ChargePoint16
    cp201: ChargePoint201
    sent: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    """The CSMS's calls: (charge point id, action, payload)."""
    notified: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    """The charge points' firmware, log and security notifications: (id, action, payload)."""

    async def campaign(self, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        code, answer, _ = await http("POST", f"{self.url}/campaigns/{name}", body or {})
        assert code == 200, answer
        return answer

    def notifications(self, action: str, charge_point_id: str) -> list[dict[str, Any]]:
        return [p for cp, a, p in self.notified if a == action and cp == charge_point_id]


NOTICES = (
    "FirmwareStatusNotification",
    "SignedFirmwareStatusNotification",
    "LogStatusNotification",
    "SecurityEventNotification",
)


@contextlib.asynccontextmanager
async def served() -> AsyncIterator[Served]:
    """A CSMS with its control API, and a booted 1.6 charge point and 2.0.1 station of the swarm."""
    async with Csms(CsmsConfig(port=0)) as csms:
        server = await control.serve_control(csms, "127.0.0.1", 0)
        cp16 = ChargePoint16(IDS["1.6"], f"{csms.url}/{IDS['1.6']}", FAST16, [].append)
        cp201 = ChargePoint201(IDS["2.0.1"], f"{csms.url}/{IDS['2.0.1']}", FAST201, [].append)
        here = Served(csms, control.url(server), cp16, cp201)
        _record(here)
        tasks = [asyncio.create_task(cp.run()) for cp in (cp16, cp201)]
        try:
            await until(lambda: all(cp.state is State.ACCEPTED for cp in (cp16, cp201)))
            yield here
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            server.close()
    assert csms.stats["sent.callerror"] == 0  # every charge point's CALL fit its schema


def _record(here: Served) -> None:
    """Note the CSMS's calls, check each answer against its version's response schema, and
    note the notifications the CSMS answers."""
    csms = here.csms
    call = csms._call

    async def checked(charge_point_id: str, action: str, payload: dict[str, Any], timeout: float):
        dialect = csms.connections[charge_point_id].dialect  # all stay connected here
        here.sent.append((charge_point_id, action, payload))
        answer = await call(charge_point_id, action, payload, timeout)
        if type(answer) is ocppj.CallResult:
            dialect.schemas.validate(action, answer.payload, response=True)
        return answer

    csms._call = checked  # type: ignore[method-assign]
    for version in csms._versions.values():
        for action in NOTICES:
            answer = version.handlers.get(action)
            if answer is not None:
                version.handlers[action] = _noting(here, action, answer)  # type: ignore[index]


def _noting(here: Served, action: str, answer: Any) -> Any:
    def handler(charge_point_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        here.notified.append((charge_point_id, action, payload))
        return answer(charge_point_id, payload)

    return handler


def outcome(answer: dict[str, Any]) -> dict[str, tuple[str, int, dict[str, int]]]:
    """Each version's action, targets and statuses."""
    return {
        version: (result["action"], result["targeted"], result["statuses"])
        for version, result in answer.items()
        if version != "not_connected"
    }


def test_install_root_then_renew_certificates_in_each_versions_words() -> None:
    async def body() -> None:
        async with served() as here:
            answer = await here.campaign("install-root")
            assert outcome(answer) == {
                "1.6": ("InstallCertificate", 1, {"Accepted": 1}),
                "2.0.1": ("InstallCertificate", 1, {"Accepted": 1}),
            }
            assert answer["not_connected"] == 0
            root = here.csms.central.authority.root_pem
            types = {cp: payload["certificateType"] for cp, _, payload in here.sent}
            assert types == {"CP-1": "CentralSystemRootCertificate", "CS-1": "CSMSRootCertificate"}
            assert {payload["certificate"] for _, _, payload in here.sent} == {root}
            assert (
                "CentralSystemRootCertificate",
                certificates.parse(root),
            ) in here.cp16.certificates
            assert ("CSMSRootCertificate", certificates.parse(root)) in here.cp201.certificates

            answer = await here.campaign("renew-certificates", {"rate": 100, "timeout": 5})
            assert outcome(answer) == {
                "1.6": ("ExtendedTriggerMessage", 1, {"Accepted": 1}),
                "2.0.1": ("TriggerMessage", 1, {"Accepted": 1}),
            }
            # Each sends SignCertificate; the CSMS signs it and sends the chain, which it keeps.
            await until(lambda: here.csms.stats["answered.CertificateSigned"] == 2)
            for cp in (here.cp16, here.cp201):
                await until(lambda cp=cp: cp.identity is not None and bool(cp.identity.chain))
                chain = "".join(c.public_bytes(Encoding.PEM).decode() for c in cp.identity.chain)
                identity.verified_chain(chain, [certificates.parse(root)])  # raises if not
            assert here.csms.stats["SignCertificate"] == 2

    run(body())


def test_signed_firmware_is_trusted_once_the_manufacturer_root_is_installed() -> None:
    async def body() -> None:
        async with served() as here:
            stats = here.csms.stats
            # No manufacturer root yet: the signing certificate leads nowhere.
            answer = await here.campaign("signed-firmware", {"version": "untrusted-1"})
            assert outcome(answer) == {
                "1.6": ("SignedUpdateFirmware", 1, {"InvalidCertificate": 1}),
                "2.0.1": ("UpdateFirmware", 1, {"InvalidCertificate": 1}),
            }
            # L01.FR.02. (A 1.6 charge point reports security events from SecurityProfile 1.)
            await until(
                lambda: (
                    {"InvalidFirmwareSigningCertificate"}
                    <= {p["type"] for p in here.notifications("SecurityEventNotification", "CS-1")}
                )
            )
            # The CSMS root is not a manufacturer's.
            await here.campaign("install-root", {"root": "csms"})
            answer = await here.campaign("signed-firmware", {"version": "untrusted-2"})
            assert [r[2] for r in outcome(answer).values()] == [{"InvalidCertificate": 1}] * 2

            answer = await here.campaign("install-root", {"root": "manufacturer"})
            assert outcome(answer) == {
                "1.6": ("InstallCertificate", 1, {"Accepted": 1}),
                "2.0.1": ("InstallCertificate", 1, {"Accepted": 1}),
            }
            manufacturer = here.csms.central.manufacturer.root_pem
            kinds = {(cp, p["certificateType"], p["certificate"]) for cp, _, p in here.sent[-2:]}
            assert kinds == {
                ("CP-1", "ManufacturerRootCertificate", manufacturer),
                ("CS-1", "ManufacturerRootCertificate", manufacturer),
            }

            answer = await here.campaign("signed-firmware", {"version": "fw-2.1.0"})
            assert outcome(answer) == {
                "1.6": ("SignedUpdateFirmware", 1, {"Accepted": 1}),
                "2.0.1": ("UpdateFirmware", 1, {"Accepted": 1}),
            }
            rollout = here.sent[-2:]
            request_ids = {cp: payload["requestId"] for cp, _, payload in rollout}
            assert len(set(request_ids.values())) == 2
            for _, _, payload in rollout:
                check_signed(payload["firmware"], manufacturer)
                assert payload["firmware"]["location"] == "https://firmware.invalid/fw-2.1.0.bin"
            # Both install it, reboot, and come back with the version the file's name says.
            await until(lambda: here.cp16.firmware_version == "fw-2.1.0", timeout=10)
            await until(lambda: here.cp201.firmware_version == "fw-2.1.0", timeout=10)
            await until(lambda: stats["BootNotification"] >= 4, timeout=10)
            for charge_point_id, action in (
                ("CP-1", "SignedFirmwareStatusNotification"),
                ("CS-1", "FirmwareStatusNotification"),
            ):
                await until(
                    lambda i=charge_point_id, a=action: (
                        "Installed" in {p["status"] for p in here.notifications(a, i)}
                    ),
                    timeout=10,
                )
                reports = here.notifications(action, charge_point_id)
                statuses = [p["status"] for p in reports]
                assert statuses[:3] == ["Downloading", "Downloaded", "SignatureVerified"], statuses
                assert {p.get("requestId") for p in reports} == {request_ids[charge_point_id]}
                assert stats[action] == len(reports)  # counted by the CSMS as it answered them
            assert stats["answered.SignedUpdateFirmware"] == 3
            assert stats["answered.UpdateFirmware"] == 3

    run(body())


def check_signed(firmware: dict[str, Any], manufacturer_root: str) -> None:
    """The firmware's signing certificate is issued by the manufacturer root, and its signature
    is of the location's bytes (ECDSA, SHA-256) by the certificate's key."""
    (signer,) = identity.verified_chain(
        firmware["signingCertificate"], [certificates.parse(manufacturer_root)]
    )
    key = signer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(firmware["signature"], validate=True)
    key.verify(signature, firmware["location"].encode(), ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("log", ["DiagnosticsLog", "SecurityLog"])
def test_fetch_logs_in_each_version_and_the_uploads_are_reported(log: str) -> None:
    async def body() -> None:
        async with served() as here:
            answer = await here.campaign("fetch-logs", {"log": log, "rate": 50})
            assert outcome(answer) == {
                "1.6": ("GetLog", 1, {"Accepted": 1}),
                "2.0.1": ("GetLog", 1, {"Accepted": 1}),
            }
            request_ids = {}
            for charge_point_id, action, payload in here.sent:
                assert (action, payload["logType"]) == ("GetLog", log)
                assert payload["log"] == {"remoteLocation": "https://logs.invalid/"}
                request_ids[charge_point_id] = payload["requestId"]
            assert len(set(request_ids.values())) == 2
            for charge_point_id, request_id in request_ids.items():
                await until(
                    lambda i=charge_point_id: (
                        len(here.notifications("LogStatusNotification", i)) == 2
                    )
                )
                reports = here.notifications("LogStatusNotification", charge_point_id)
                assert reports == [
                    {"status": "Uploading", "requestId": request_id},
                    {"status": "Uploaded", "requestId": request_id},
                ]
            assert here.csms.stats["LogStatusNotification"] == 4

    run(body())


# Targets, shares and rates, with bare websockets clients of both versions.


@contextlib.asynccontextmanager
async def mixed(url: str, count: int) -> AsyncIterator[dict[str, list[FakeChargePoint]]]:
    """``count`` fake charge points of each version (``CP-<n>`` speak 1.6, ``CS-<n>`` 2.0.1)."""
    async with (
        fleet(url, [f"CP-{n}" for n in range(count)]) as fakes16,
        contextlib.AsyncExitStack() as stack,
    ):
        fakes201 = []
        for n in range(count):
            ws = await stack.enter_async_context(
                connect(f"{url}/ocpp/CS-{n}", subprotocols=["ocpp2.0.1"], open_timeout=5)
            )
            await ws.send(ocppj.call_frame("hello", "Heartbeat", {}))
            async with asyncio.timeout(5):
                await ws.recv()
            fakes201.append(FakeChargePoint(f"CS-{n}", ws, _accept))
        tasks = [asyncio.create_task(fake.run()) for fake in fakes201]
        try:
            yield {"1.6": fakes16, "2.0.1": fakes201}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _accept(frame: list[Any]) -> str:
    return ocppj.result_frame(frame[1], {"status": "Accepted"})


@contextlib.asynccontextmanager
async def control_api() -> AsyncIterator[tuple[Csms, str]]:
    async with Csms(CsmsConfig(port=0)) as csms:
        server = await control.serve_control(csms, "127.0.0.1", 0)
        try:
            yield csms, control.url(server)
        finally:
            server.close()


def test_a_share_of_each_version_at_a_rate_of_all_together() -> None:
    async def body() -> None:
        async with control_api() as (csms, url), mixed(csms.url, 4) as fakes:
            request = {"share": 0.5, "rate": 20, "timeout": 5}
            code, answer, _ = await http("POST", f"{url}/campaigns/renew-certificates", request)
            assert code == 200
            assert outcome(answer) == {
                "1.6": ("ExtendedTriggerMessage", 2, {"Accepted": 2}),
                "2.0.1": ("TriggerMessage", 2, {"Accepted": 2}),
            }
            assert answer["not_connected"] == 0
            assert answer["1.6"]["seconds"] >= 0.15  # four calls at 20 a second
            for version, action, message in (
                ("1.6", "ExtendedTriggerMessage", "SignChargePointCertificate"),
                ("2.0.1", "TriggerMessage", "SignChargingStationCertificate"),
            ):
                calls = [call for fake in fakes[version] for call in fake.calls]
                assert [(c[2], c[3]) for c in calls] == [
                    (action, {"requestedMessage": message})
                ] * 2
            # A tiny share is still one of each version.
            code, answer, _ = await http(
                "POST", f"{url}/campaigns/install-root", {"share": 0.01, "timeout": 5}
            )
            assert [answer[v]["targeted"] for v in ("1.6", "2.0.1")] == [1, 1]
            sent = collections.Counter(
                c[3]["certificateType"]
                for f in fakes["1.6"] + fakes["2.0.1"]
                for c in f.calls
                if c[2] == "InstallCertificate"
            )
            assert sent == {"CentralSystemRootCertificate": 1, "CSMSRootCertificate": 1}

    run(body())


def test_named_charge_points_get_their_versions_words_and_others_are_not_connected() -> None:
    async def body() -> None:
        async with control_api() as (csms, url), mixed(csms.url, 2) as fakes:
            named = {"charge_points": ["CS-1", "CP-0", "nobody", "CP-0"], "timeout": 5}
            code, answer, _ = await http("POST", f"{url}/campaigns/fetch-logs", named)
            assert code == 200
            assert outcome(answer) == {
                "1.6": ("GetLog", 1, {"Accepted": 1}),
                "2.0.1": ("GetLog", 1, {"Accepted": 1}),
            }
            assert answer["not_connected"] == 1
            called = {f.id: [c[2] for c in f.calls] for f in fakes["1.6"] + fakes["2.0.1"]}
            assert called == {"CP-0": ["GetLog"], "CP-1": [], "CS-0": [], "CS-1": ["GetLog"]}
            # A version with no charge point connected is targeted by none.
            named = {"charge_points": ["CP-1"], "timeout": 5}
            code, answer, _ = await http("POST", f"{url}/campaigns/install-root", named)
            assert (answer["1.6"]["targeted"], answer["2.0.1"]["targeted"]) == (1, 0)
            assert answer["2.0.1"]["statuses"] == {}
            assert csms.stats["sent.GetLog"] == 2

    run(body())


@pytest.mark.parametrize(
    ("path", "request_body", "error"),
    [
        ("/campaigns/frobnicate", {}, "no campaign 'frobnicate'; there are install-root,"),
        ("/campaigns/", {}, "no campaign ''; there are install-root, renew-certificates,"),
        ("/campaigns/install-root", {"root": "vendor"}, "root must be one of csms, manufacturer"),
        ("/campaigns/install-root", {"root": 1}, "root must be one of csms, manufacturer"),
        ("/campaigns/fetch-logs", {"log": "AuditLog"}, "log must be one of DiagnosticsLog,"),
        ("/campaigns/fetch-logs", {"share": 0}, "share must be a number in (0, 1]"),
        ("/campaigns/fetch-logs", {"share": 1.5}, "share must be a number in (0, 1]"),
        ("/campaigns/fetch-logs", {"share": "half"}, "share must be a number"),
        ("/campaigns/fetch-logs", {"rate": 0}, "rate must be positive"),
        ("/campaigns/fetch-logs", {"timeout": -1}, "timeout must be positive"),
        ("/campaigns/fetch-logs", {"share": 0.5, "charge_points": []}, "not both"),
        ("/campaigns/fetch-logs", {"charge_points": "CP-1"}, "charge_points must be a list"),
        ("/campaigns/fetch-logs", {"root": "csms"}, "unknown keys: root"),
        ("/campaigns/renew-certificates", {"log": "SecurityLog"}, "unknown keys: log"),
        ("/campaigns/signed-firmware", {"version": "../etc"}, "version must be 1 to 50"),
        ("/campaigns/signed-firmware", {"version": "v" * 51}, "version must be 1 to 50"),
        ("/campaigns/signed-firmware", {"install_at": "tomorrow"}, "install_at must be a date"),
        ("/campaigns/signed-firmware", {"install_at": "2030-01-01T00:00:00"}, "with its zone"),
        ("/campaigns/install-root", [], "the body must be a JSON object"),
    ],
)
def test_bad_campaigns_are_refused_with_400_before_anything_is_sent(
    path: str, request_body: Any, error: str
) -> None:
    async def body() -> None:
        async with control_api() as (csms, url), mixed(csms.url, 1) as fakes:
            code, answer, _ = await http("POST", url + path, request_body)
            assert code == 400
            assert list(answer) == ["error"]
            assert error in answer["error"]
            await asyncio.sleep(0.05)
            assert [f.calls for f in fakes["1.6"] + fakes["2.0.1"]] == [[], []]

    run(body())


def test_signed_firmware_options_are_sent_in_the_specs_words() -> None:
    async def body() -> None:
        async with control_api() as (csms, url), mixed(csms.url, 1) as fakes:
            when = {"version": "fw_3.0", "install_at": "2030-01-31T03:00:00+01:00"}
            code, answer, _ = await http("POST", f"{url}/campaigns/signed-firmware", when)
            assert code == 200 and answer["2.0.1"]["answered"] == 1
            ((_, _, _, sent16),) = fakes["1.6"][0].calls
            ((_, _, _, sent201),) = fakes["2.0.1"][0].calls
            assert sent16["firmware"]["installDateTime"] == "2030-01-31T02:00:00Z"
            assert sent16["firmware"]["location"] == "https://firmware.invalid/fw_3.0.bin"
            assert sent16["firmware"] == sent201["firmware"]  # the same words, other actions
            assert sent16["requestId"] != sent201["requestId"]
            code, answer, _ = await http("GET", f"{url}/ca")
            assert answer == {
                "certificate": csms.central.authority.root_pem,
                "manufacturer": csms.central.manufacturer.root_pem,
            }

    run(body())


# The manufacturer.


def test_the_manufacturer_is_a_root_and_a_firmware_signing_certificate_it_issues() -> None:
    manufacturer = Manufacturer.make()
    root = x509.load_pem_x509_certificate(manufacturer.root_pem.encode())
    (signer,) = identity.verified_chain(
        manufacturer.signing_pem, [certificates.parse(manufacturer.root_pem)]
    )
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert root.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    with pytest.raises(x509.ExtensionNotFound):  # A00.FR.514: no Extended Key Usage
        signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    for certificate in (root, signer):
        assert certificate.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)
        assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
        assert certificate.public_key().curve.name == "secp256r1"  # type: ignore[union-attr]
    lifetime = signer.not_valid_after_utc - signer.not_valid_before_utc
    assert 365 <= lifetime.days <= 366
    image = b"https://firmware.invalid/fw-1.bin"
    signature = base64.b64decode(manufacturer.sign(image))
    signer.public_key().verify(signature, image, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
    other = Manufacturer.make()
    with pytest.raises(certificates.CertificateError):
        identity.verified_chain(other.signing_pem, [certificates.parse(manufacturer.root_pem)])
