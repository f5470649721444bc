"""What a station connects with once its CSMS changed it: a new password (use case A01: 1.6's
AuthorizationKey, 2.0.1's SecurityCtrlr.BasicAuthPassword), a higher security profile (A05: 1.6's
SecurityProfile key), and the certificate it was issued (A02, A03: :mod:`swarm.station.identity`),
which it presents at profile 3.

Every station starts with the fleet's settings (:mod:`swarm.protocol.security`): the
``connect_options`` of its config and the profile they make. Until its CSMS changes something,
it connects with them as they are, and nothing is built for it alone.

:class:`Credentials` is a mixin of :class:`swarm.station.runner.Station`; the versions say where
they keep a password and a profile the CSMS set (1.6's configuration keys, 2.0.1's device model).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from websockets.exceptions import InvalidStatus

from swarm.protocol.security import HANDSHAKE_LOGGER, authorization

if TYPE_CHECKING:
    from swarm.station.config import ChargePointConfig
    from swarm.station.identity import Identity

AUTHORIZATION_KEY = re.compile(r"(?:[0-9A-Fa-f]{2}){16,20}")
"""A 1.6 AuthorizationKey (Security Whitepaper, edition 3, 7): 16 to 20 bytes in hexadecimal
digits. The digits are the password, as written."""

REFUSED = frozenset({401, 403})
"""HTTP statuses of a handshake refused for its credentials."""

PASSWORD_PROFILES = frozenset({1, 2})
"""The profiles that authenticate with a password (HTTP Basic); profile 3 with a certificate."""


def raise_refusal(
    current: int,
    new: int,
    *,
    secure: bool,
    password: bool,
    csms_root: bool,
    certificate: bool,
) -> str | None:
    """Why a station at profile ``current`` may not go to ``new``, or None if it may (A05.FR.01
    to 04): ``secure``, its CSMS is ``wss://``; ``password``, it has an AuthorizationKey;
    ``csms_root``, a CSMS root certificate is installed; ``certificate``, it has its own."""
    if new <= current:
        return "a security profile is only ever raised"
    if not 1 <= new <= 3:
        return "security profiles are 1 to 3"
    if new in PASSWORD_PROFILES and not password:
        return "no AuthorizationKey is set"
    if new >= 2 and not secure:
        return "TLS needs a wss:// CSMS, and this one is ws://"
    if new >= 2 and not csms_root:
        return "no CSMS root certificate is installed"
    if new == 3 and not certificate:
        return "the station has no certificate of its own"
    return None


def sends_password(fleet: Mapping[str, Any], profile: int, fleet_profile: int) -> bool:
    """Whether a station at ``profile`` sends a password, with the fleet's options ``fleet``
    (which make ``fleet_profile``): at profiles 1 and 2, and wherever the fleet sends one, but
    once raised to 3."""
    if profile == 3 and fleet_profile != 3:
        return False
    return profile in PASSWORD_PROFILES or fleet_password(fleet)


def fleet_password(fleet: Mapping[str, Any]) -> bool:
    """Whether the fleet's options ``fleet`` send a password: in an Authorization header."""
    return "additional_headers" in fleet


def connect_options(
    fleet: Mapping[str, Any],
    charge_point_id: str,
    *,
    password: str | None,
    profile: int,
    fleet_profile: int,
    identity: Identity | None,
) -> Mapping[str, Any]:
    """The keyword arguments of ``connect()`` for one station: the fleet's (``fleet``, which
    make ``fleet_profile``), with its own ``password`` wherever it sends one
    (:func:`sends_password`), no password once raised to profile 3, and at profile 3 the
    chain of its ``identity`` over TLS."""
    options = dict(fleet)
    if profile == 3 and fleet_profile != 3:  # raised: a certificate instead of a password
        options.pop("additional_headers", None)
        options.pop("logger", None)
    elif password and sends_password(fleet, profile, fleet_profile):
        options["additional_headers"] = (
            ("Authorization", authorization(charge_point_id, password)),
        )
        options["logger"] = HANDSHAKE_LOGGER
    if profile == 3 and identity is not None and identity.chain and "ssl" in options:
        options["ssl"] = identity.tls_context(options["ssl"])
    return options


class Credentials:
    """A station's password and security profile, as its CSMS left them."""

    __slots__ = ()

    failed_authentication_event: ClassVar[str]
    """The security event of a handshake the CSMS refused for the credentials."""
    invalid_csms_certificate_event: ClassVar[str]
    """The security event of a CSMS whose TLS certificate does not verify."""

    id: str
    config: ChargePointConfig
    identity: Identity | None

    def _connect_options(self) -> Mapping[str, Any]:
        password, profile = self._password(), self._security_profile()
        fleet = self.config.security_profile
        raised = profile == 3 and fleet != 3
        if not (password or raised or (self.identity is not None and self.identity.chain)):
            return self.config.connect_options  # the fleet's, as nearly every station has
        return connect_options(
            self.config.connect_options,
            self.id,
            password=password,
            profile=profile,
            fleet_profile=fleet,
            identity=self.identity,
        )

    def _password(self) -> str | None:
        """The password the CSMS set (A01), None for the fleet's."""
        return None

    def _has_password(self) -> bool:
        """Whether the station has a password: one the CSMS set, or the fleet's."""
        return bool(self._password()) or fleet_password(self.config.connect_options)

    def _sends_password(self) -> bool:
        """Whether the station's connections carry a password (:func:`sends_password`)."""
        return sends_password(
            self.config.connect_options, self._security_profile(), self.config.security_profile
        )

    def _security_profile(self) -> int:
        """The security profile the station connects with: the fleet's unless the CSMS raised
        it (A05)."""
        return self.config.security_profile

    def _set_security_profile(self, profile: int) -> None:
        """Go back to ``profile``: the first connection on a raised one failed (A05.FR.08)."""

    def _profile_works(self, profile: int) -> None:
        """A connection at ``profile`` got to work: if that is a raised one, it stays."""
        identity = self.identity
        if identity is not None and profile == self._security_profile():
            identity.fallback = None

    def _connect_failed(self, exc: Exception) -> None:
        """A connect failed (``exc``, reported): a refused password or certificate, or a CSMS
        certificate that does not verify, is a security event (once per outage); a raised
        security profile falls back."""
        if isinstance(exc, InvalidStatus) and exc.response.status_code in REFUSED:
            self._security_event(self.failed_authentication_event, once=True)
        elif isinstance(exc, ssl.SSLCertVerificationError):
            self._security_event(self.invalid_csms_certificate_event, once=True)
        identity = self.identity
        if identity is not None and identity.fallback is not None:
            self._set_security_profile(identity.fallback)
            identity.fallback = None
