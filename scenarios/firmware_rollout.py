"""Firmware rollout: the CSMS pushes UpdateFirmware to a share of the fleet while it runs.

    locust -f scenarios/firmware_rollout.py --headless -u 1000 -r 100 -t 5m \
        --rollout-at 60 --rollout-share 0.2 --rollout-rate 20

At --rollout-at seconds into the test the embedded CSMS (or the `python -m swarm.csms` named
by --csms-control) sends UpdateFirmware to --rollout-share of the connected charge points,
--rollout-rate per second. Each one downloads, installs (a step every --update-step seconds,
with --update-failures failing), reports every FirmwareStatusNotification, reboots and boots
again with its new firmwareVersion. In a mixed fleet (--ocpp-version) each version's charge
points get the UpdateFirmware of their version: the share is of each version's. Against a CSMS
of your own, leave the rollout to it: start it there while the swarm runs (--rollout-share 0
sends nothing from here).
"""

import logging
from datetime import UTC, datetime

from locust import events
from locust.env import Environment

from swarm import ChargePointUser
from swarm.locust.options import WebUiGroup, seconds, share
from swarm.scenario import csms_control, defaults, every

logger = logging.getLogger(__name__)

defaults(num_users=500, spawn_rate=50, run_time="3m", update_step=3)


@events.init_command_line_parser.add_listener
def _arguments(parser, **_kwargs) -> None:
    group = WebUiGroup(parser, "firmware rollout")
    group.add_argument("--rollout-at", type=seconds, default=30.0, help="Seconds into the test")
    group.add_argument(
        "--rollout-share", type=share, default=0.2, help="Share of the fleet to update (0 to 1)"
    )
    group.add_argument(
        "--rollout-rate",
        type=seconds,
        default=20.0,
        help="UpdateFirmware calls per second; 0: all at once",
    )
    group.add_argument(
        "--firmware-location",
        default="https://firmware.example.com/ocpp-swarm-2.0.0.bin",
        help="The location in UpdateFirmware; its file name becomes the new firmwareVersion",
    )


def roll_out(environment: Environment) -> None:
    options = environment.parsed_options
    if not options.rollout_share:
        return
    now = datetime.now(UTC).isoformat(timespec="seconds")
    payloads = {  # the CSMS sends each to the charge points of the version it is valid in
        "1.6": {"location": options.firmware_location, "retrieveDate": now},
        "2.0.1": {
            "requestId": 1,
            "firmware": {"location": options.firmware_location, "retrieveDateTime": now},
        },
    }
    for version, payload in payloads.items():
        result = csms_control(
            environment,
            "/calls",
            {
                "action": "UpdateFirmware",
                "payload": payload,
                "share": options.rollout_share,
                "rate": options.rollout_rate or None,
            },
        )
        logger.info(
            "firmware rollout: UpdateFirmware to %d OCPP %s charge points, %d answered,"
            " %d CALLERRORs, %d timed out, %d gone",
            result["targeted"],
            version,
            result["answered"],
            result["callerrors"],
            result["timed_out"],
            result["disconnected"],
        )


every(roll_out, 0, first=lambda environment: environment.parsed_options.rollout_at)


class UpdatingChargePoint(ChargePointUser):
    """Boots, heartbeats, and updates its firmware when the CSMS says so."""
