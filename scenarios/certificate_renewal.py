"""Certificate renewal: the CSMS has a share of the fleet renew its certificates while it runs.

    locust -f scenarios/certificate_renewal.py --headless -u 1000 -r 100 -t 5m \
        --renewal-at 30 --renewal-every 60 --renewal-share 0.5 --renewal-rate 50

At --renewal-at seconds into the test (and every --renewal-every seconds after, 0: once) the
embedded CSMS (or the `python -m swarm.csms` named by --csms-control) runs two campaigns of its
control API: install-root installs its root in every charge point connected
(InstallCertificate: again, it changes nothing), then renew-certificates asks --renewal-share
of each version's charge points, --renewal-rate per second in all, for a new certificate: 1.6
charge points with ExtendedTriggerMessage SignChargePointCertificate, 2.0.1 stations with
TriggerMessage SignChargingStationCertificate. Each makes a key and a CSR and sends
SignCertificate; the CSMS signs it and sends CertificateSigned; the charge point checks the
chain and keeps it. The round trips show as OCPP SignCertificate and CSMS CertificateSigned
(OCPP201 and CSMS201 for 2.0.1).
Against a CSMS of your own, have it do the renewal (--renewal-share 0 sends nothing from here).
"""

import logging

from locust import events
from locust.env import Environment

from swarm import ChargePointUser
from swarm.locust.options import WebUiGroup, seconds, share
from swarm.scenario import csms_control, defaults, every

logger = logging.getLogger(__name__)

defaults(num_users=500, spawn_rate=50, run_time="3m")


@events.init_command_line_parser.add_listener
def _arguments(parser, **_kwargs) -> None:
    group = WebUiGroup(parser, "certificate renewal")
    group.add_argument("--renewal-at", type=seconds, default=30.0, help="Seconds into the test")
    group.add_argument(
        "--renewal-every", type=seconds, default=0.0, help="Seconds between renewals; 0: once"
    )
    group.add_argument(
        "--renewal-share", type=share, default=0.5, help="Share of the fleet to renew (0 to 1)"
    )
    group.add_argument(
        "--renewal-rate", type=seconds, default=20.0, help="Renewals asked per second; 0: at once"
    )


def renew(environment: Environment) -> None:
    options = environment.parsed_options
    if not options.renewal_share:
        return
    csms_control(environment, "/campaigns/install-root", {"root": "csms"})
    renewal = {"share": options.renewal_share, "rate": options.renewal_rate or None}
    answer = csms_control(environment, "/campaigns/renew-certificates", renewal)
    for version, result in answer.items():
        if version == "not_connected":
            continue
        logger.info(
            "certificate renewal: %s to %d OCPP %s charge points, %d answered, %d CALLERRORs,"
            " %d timed out, %d gone",
            result["action"],
            result["targeted"],
            version,
            result["answered"],
            result["callerrors"],
            result["timed_out"],
            result["disconnected"],
        )


every(
    renew,
    lambda environment: environment.parsed_options.renewal_every,
    first=lambda environment: environment.parsed_options.renewal_at,
)


class RenewingChargePoint(ChargePointUser):
    """Boots, heartbeats, and renews its certificate when the CSMS asks."""
