"""The swarm's Locust command-line options, shown in the web UI too, and the config they make."""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, TypeVar

from swarm.locust.charging_options import FIELDS as EV_FIELDS
from swarm.locust.charging_options import add_ev_arguments, ev_values
from swarm.protocol.security import SecurityConfig
from swarm.protocol.trace import DEFAULT_FRAMES
from swarm.station.config import ChargePointConfig
from swarm.station.versions import parse_versions

N = TypeVar("N", int, float)

SERIAL_PREFIX_MAX = 12
"""Leaves room in the 25 characters of a serial for the worker index and a 6-digit counter."""


SECRET_OPTIONS = frozenset({"password"})
"""Options whose values no report shows (:func:`swarm_options` masks them)."""

MASK = "***"

PASSWORD_ENV = "OCPP_SWARM_PASSWORD"
"""Where ``--password`` is read from when not given: the process list shows no environment."""


SERIAL_PREFIX = re.compile(r"[A-Za-z0-9._~-]*")
"""Characters that stand in a URL path as they are (RFC 3986 unreserved)."""


def number(text: str, kind: type[N], noun: str) -> N:
    """``text`` as a ``kind`` (int or float), or the argparse error that it is not ``noun``."""
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def seconds(text: str) -> float:
    """An argparse type: a finite number of seconds, 0 or more."""
    value = number(text, float, "a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be a finite number, 0 or more")
    return value


def ocpp_versions(text: str) -> str:
    """An argparse type: a fleet's OCPP versions (``1.6=7,2.0.1=3``), checked, kept as text.

    Text, not the parsed pairs: the web UI converts what it is sent by the type of the default
    (see :func:`swarm.locust.scenario.defaults`); :func:`config_from_options` parses it.
    """
    try:
        parse_versions(str(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return str(text)


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a count is 0 or more")
    return value


def share(text: str) -> float:
    """An argparse type: a share from 0 to 1."""
    value = number(text, float, "a number")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a share is from 0 to 1")
    return value


def csms_workers(text: str) -> int:
    """An argparse type: processes of the embedded CSMS, 1 or more (over 1 where the system
    has SO_REUSEPORT)."""
    value = number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: the embedded CSMS runs in 1 process or more")
    if value > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: over 1 needs SO_REUSEPORT, which this system lacks"
        )
    return value


def port(text: str) -> int:
    """An argparse type: a TCP port, 1 to 65535, or 0 for none."""
    value = number(text, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is from 1 to 65535 (0: none)")
    return value


def embedded_csms_workers(options: Any) -> int:
    """How many processes the embedded CSMS runs in: ``--csms-workers``, or one per Locust
    process (``--processes``; -1 is one per CPU), where the system can share a port."""
    chosen = getattr(options, "csms_workers", 0)
    if chosen:
        return chosen
    processes = getattr(options, "processes", None) or 1
    if processes == -1:
        processes = os.cpu_count() or 1
    return max(1, processes) if hasattr(socket, "SO_REUSEPORT") else 1


class WebUiGroup:
    """An argument group whose options the web UI shows too, and whose help gives defaults.

    Locust marks the options it shows with ``include_in_web_ui``, but only those added to the
    parser itself; those added to a group (for ``--help``) need the mark set here. The web UI
    shows a help text as it is written, ``--help`` formats it: so no ``%`` in one, and the
    default is written out here rather than as ``%(default)s``.
    """

    def __init__(self, parser: Any, title: str, description: str | None = None) -> None:
        self._group = parser.add_argument_group(title, description)

    def add_argument(self, *args: Any, include_in_web_ui: bool = True, **kwargs: Any) -> Any:
        text, default = kwargs.get("help", ""), kwargs.get("default")
        if text and "default" not in text and default not in (None, "", False):
            shown = f"{default:g}" if isinstance(default, float) else default
            kwargs["help"] = f"{text} (default: {shown})"
        if kwargs.get("type") is seconds:
            kwargs.setdefault("metavar", "SECONDS")
        elif kwargs.get("type") in (int, float):
            kwargs.setdefault("metavar", "N")
        action = self._group.add_argument(*args, **kwargs)
        action.include_in_web_ui = include_in_web_ui
        return action


def add_arguments(parser: Any) -> None:
    """Add the swarm's options to Locust's parser (``events.init_command_line_parser``), in
    groups, those users change most first (the web UI lists them in this order)."""
    _add_fleet_arguments(parser)
    _add_charging_arguments(parser)
    _add_connection_arguments(parser)
    group = WebUiGroup(parser, "ocpp-swarm run", "Where the run's results and live metrics go")
    group.add_argument(
        "--results-dir",
        default="results",
        include_in_web_ui=False,
        help="Where each run writes its folder <locustfile>-<timestamp>/ (CSV, HTML report,"
        " summary, pictures); an empty value writes none",
    )
    group.add_argument(
        "--csms-control",
        default="",
        include_in_web_ui=False,
        help="Control API (http://HOST:PORT) of a `python -m swarm.csms` given as --host, for"
        " scenarios that command the CSMS; the embedded CSMS's is used without --host",
    )
    group.add_argument(
        "--csms-workers",
        type=csms_workers,
        default=0,
        metavar="N",
        include_in_web_ui=False,
        help="Processes of the embedded CSMS; default one per Locust process (--processes)",
    )
    group.add_argument(
        "--prometheus-port",
        type=port,
        default=0,
        metavar="PORT",
        include_in_web_ui=False,
        help="Serve live metrics for Prometheus at http://<this host>:PORT/metrics, from the"
        " master or a process on its own; 0 (default): none",
    )
    group.add_argument(
        "--trace-frames",
        type=count,
        default=DEFAULT_FRAMES,
        metavar="N",
        include_in_web_ui=False,
        help="Frames each charge point keeps, for the trace the run's folder gets when it"
        " fails (traces/); 0: no traces",
    )
    group.add_argument(
        "--trace-limit",
        type=count,
        default=100,
        metavar="N",
        include_in_web_ui=False,
        help="Charge points traced at most in a run, the first to fail",
    )
    group.add_argument(
        "--trace-all",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Write every frame of every charge point to traces/, failed or not (small runs)",
    )
    add_security_arguments(parser)


def _add_fleet_arguments(parser: Any) -> None:
    group = WebUiGroup(
        parser, "ocpp-swarm fleet", "What the charge points are and do by themselves"
    )
    group.add_argument(
        "--ocpp-version",
        type=ocpp_versions,
        default="1.6",
        metavar="VERSIONS",
        help="OCPP version of the charge points: 1.6 (default) or 2.0.1; several split the"
        " fleet evenly (1.6,2.0.1) or by weight (1.6=7,2.0.1=3), each charge point by its id,"
        " the same on every worker",
    )
    group.add_argument(
        "--connectors",
        type=int,
        default=1,
        help="Connectors per charge point, 1 to 99 (each reports its status after boot)",
    )
    group.add_argument(
        "--heartbeat-interval",
        type=seconds,
        default=0.0,
        help="Seconds between Heartbeats; 0 (default) uses the interval the CSMS answers Boot with",
    )
    group.add_argument(
        "--authorize-interval",
        type=seconds,
        default=60.0,
        help="Mean seconds between Authorizes per charge point (random, exponential); 0 sends none",
    )
    group.add_argument(
        "--id-tags",
        default="",
        help="idTags to authorize with: comma-separated, or @FILE with one per line"
        " (default: SWARM-TAG-0001 to SWARM-TAG-0010)",
    )
    group.add_argument(
        "--serial-prefix",
        default="CP-",
        help="Charge point ids are PREFIX<worker index>-<counter>, unique across workers",
    )
    group.add_argument(
        "--vendor", default="ocpp-swarm", help="chargePointVendor in BootNotification"
    )
    group.add_argument(
        "--model", default="VirtualCharger", help="chargePointModel in BootNotification"
    )


def _add_charging_arguments(parser: Any) -> None:
    group = WebUiGroup(
        parser, "ocpp-swarm charging", "Charging sessions, firmware updates and uploads"
    )
    group.add_argument(
        "--session-interval",
        type=seconds,
        default=0.0,
        help="Mean seconds between charging sessions arriving per charge point (random,"
        " exponential); 0 (default): only sessions a CSMS starts remotely",
    )
    group.add_argument(
        "--session-duration",
        type=seconds,
        default=1800.0,
        help="Mean seconds a charging session lasts (each 0.5x to 1.5x of it)",
    )
    group.add_argument(
        "--meter-interval",
        type=seconds,
        default=0.0,
        help="Seconds between MeterValues in a session; 0 (default) uses the"
        " MeterValueSampleInterval key (60 s)",
    )
    group.add_argument(
        "--charging-power",
        type=float,
        default=11000.0,
        help="Watts of an EV's maximum AC power at most: each EV's is half to all of it, on"
        " its phases, under the connector's current and the charging limit",
    )
    add_ev_arguments(group)
    group.add_argument(
        "--day-length",
        type=seconds,
        default=0.0,
        help="Seconds of a compressed day: session arrivals follow a weekday's hours (peaks"
        " at 8 h and 18 h) at --session-interval on average; 0 (default): a flat rate",
    )
    group.add_argument(
        "--day-hour",
        type=float,
        default=6.0,
        help="Hour of the compressed day at which the run starts (0 to 24)",
    )
    group.add_argument(
        "--faults",
        type=float,
        default=0.0,
        help="Share (0 to 1) of charging sessions in which the connector faults",
    )
    group.add_argument(
        "--update-step",
        type=seconds,
        default=3.0,
        help="Seconds each step of a firmware update (download, install) or diagnostics"
        " upload takes",
    )
    group.add_argument(
        "--update-failures",
        type=float,
        default=0.0,
        help="Share (0 to 1) of firmware updates and diagnostics uploads that fail",
    )


def _add_connection_arguments(parser: Any) -> None:
    group = WebUiGroup(parser, "ocpp-swarm connections", "Timeouts, keepalive and reconnects")
    group.add_argument(
        "--call-timeout",
        type=seconds,
        default=30.0,
        help="Seconds to wait for the CSMS to answer a CALL before counting a timeout",
    )
    group.add_argument(
        "--connect-timeout",
        type=seconds,
        default=30.0,
        help="Seconds to wait for the TCP connect and the WebSocket opening handshake",
    )
    group.add_argument(
        "--ping-interval",
        type=seconds,
        default=60.0,
        help="Seconds between WebSocket pings (WebSocketPingInterval, which the CSMS may change);"
        " 0 sends none. A connection whose pong does not come within --call-timeout is dropped"
        " as dead and reconnected",
    )
    group.add_argument(
        "--dead-after",
        type=int,
        default=3,
        help="CallTimeouts in a row after which a connection is dropped as dead and reconnected;"
        " 0: never",
    )
    group.add_argument(
        "--reconnect-min",
        type=seconds,
        default=1.0,
        help="Least seconds to wait before reconnecting after a lost connection, a refused"
        " connect or a failed handshake: exponential backoff with full jitter (a random wait"
        " from this to a ceiling that doubles with each failure), above 0",
    )
    group.add_argument(
        "--reconnect-max",
        type=seconds,
        default=60.0,
        help="Most seconds the reconnect backoff's ceiling grows to (at least --reconnect-min)",
    )
    group.add_argument(
        "--validate",
        action="store_true",
        default=False,
        help="Check every answer of the CSMS against the OCPP schema of its response: an"
        " answer that breaks it is a failure ('invalid answer: ...'). Off (default), only the"
        " answers a charge point acts on are checked (BootNotification, charging sessions)",
    )
    group.add_argument(
        "--source-addresses",
        default="",
        help="Local addresses to connect from, in turn (A,B,... or a network: 127.0.0.0/28):"
        " each gives its own 28,000 local ports, to hold more connections to one CSMS address",
    )


def add_security_arguments(parser: Any) -> None:
    """Add the options of OCPP 1.6 security profiles 1 to 3 (see :mod:`swarm.protocol.security`).

    None is in the web UI: its page would carry a password given on the command line as the
    field's default, and TLS contexts are built once, at start.
    """
    group = WebUiGroup(
        parser,
        "ocpp-swarm security",
        "OCPP security profiles 1-3: HTTP Basic auth, wss://, client certificates."
        " Set at start; not in the web UI",
    )
    group.add_argument(
        "--password",
        default="",
        metavar="TEMPLATE",
        include_in_web_ui=False,
        help="HTTP Basic auth password of each charge point (user name: its id), {id} replaced"
        " by the id: 'secret-{id}'. For the charge points --password-file does not list."
        " Also from $OCPP_SWARM_PASSWORD, which the process list does not show",
    )
    group.add_argument(
        "--password-file",
        default="",
        metavar="FILE",
        include_in_web_ui=False,
        help="Lines '<chargePointId> <password>' ('#' comments); a charge point it does not"
        " list takes --password, or without one does not start",
    )
    group.add_argument(
        "--ca-file",
        default="",
        metavar="FILE",
        include_in_web_ui=False,
        help="CA certificates (PEM) to verify a wss:// CSMS with (default: the system's CAs)",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=False,
        include_in_web_ui=False,
        help="Do not verify the wss:// CSMS's certificate (a warning says so)",
    )
    group.add_argument(
        "--client-cert",
        default="",
        metavar="FILE",
        include_in_web_ui=False,
        help="Client certificate (PEM) for mutual TLS; {id} in the path gives each charge"
        " point its own (and its own TLS context: see the README for the memory it takes)",
    )
    group.add_argument(
        "--client-key",
        default="",
        metavar="FILE",
        include_in_web_ui=False,
        help="Unencrypted private key (PEM) of --client-cert; may hold {id} too",
    )


def read_id_tags(spec: str) -> tuple[str, ...]:
    """idTags from ``--id-tags``: ``A,B,C`` or ``@path`` (one per line, ``#`` comments)."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ValueError(f"--id-tags: cannot read {path}: {exc.strerror}") from None
        tags = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not tags:
            raise ValueError(f"--id-tags: {path} holds no idTag")
    else:
        tags = [tag.strip() for tag in spec.split(",") if tag.strip()]
    return tuple(tags)


def config_from_options(options: Any) -> ChargePointConfig:
    """The fleet's :class:`ChargePointConfig` from Locust's parsed options.

    Values may be strings (the web UI sends some so); raises ``ValueError`` naming the option.
    """
    values: dict[str, Any] = {}
    for name in (
        "heartbeat_interval",
        "authorize_interval",
        "call_timeout",
        "connect_timeout",
        "ping_interval",
        "session_interval",
        "session_duration",
        "meter_interval",
        "update_step",
        "day_length",
        "reconnect_min",
        "reconnect_max",
    ):
        raw = getattr(options, name)
        try:
            values[name] = seconds(str(raw))
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--{name.replace('_', '-')}: {exc}") from None
    if not values["reconnect_min"]:
        raise ValueError("--reconnect-min: the least wait before a reconnect must be above 0")
    if values["reconnect_max"] < values["reconnect_min"]:
        raise ValueError(
            f"--reconnect-max: {values['reconnect_max']:g} s is less than --reconnect-min"
            f" ({values['reconnect_min']:g} s)"
        )
    try:
        values["versions"] = parse_versions(str(options.ocpp_version))
    except ValueError as exc:
        raise ValueError(f"--ocpp-version: {exc}") from None
    values["validate"] = str(getattr(options, "validate", False)).lower() in ("true", "1")
    if options.id_tags:
        values["id_tags"] = read_id_tags(options.id_tags)
    prefix = options.serial_prefix
    if len(prefix) > SERIAL_PREFIX_MAX or not SERIAL_PREFIX.fullmatch(prefix):
        raise ValueError(
            f"--serial-prefix: up to {SERIAL_PREFIX_MAX} of A-Z a-z 0-9 . _ ~ -, got {prefix!r}"
        )
    for name in ("connectors", "dead_after"):
        raw = getattr(options, name)
        try:
            values[name] = int(raw)
        except ValueError:
            raise ValueError(f"--{name.replace('_', '-')}: {raw!r} is not a whole number") from None
    if values["dead_after"] < 0:
        raise ValueError(f"--dead-after: {values['dead_after']} is below 0")
    try:
        values["charging_power"] = float(options.charging_power)
        values["update_failures"] = float(options.update_failures)
        values["faults"] = float(options.faults)
        values["day_hour"] = float(options.day_hour)
    except ValueError as exc:
        raise ValueError(
            f"--charging-power, --update-failures, --faults or --day-hour: {exc}"
        ) from None
    values.update(ev_values(options))
    try:
        return ChargePointConfig(
            vendor=options.vendor, model=options.model, day_start=time.time(), **values
        )
    except ValueError as exc:  # it names its fields: say the options instead
        raise ValueError(_FIELD.sub(lambda m: f"--{m[0].replace('_', '-')}", str(exc))) from None


_FIELD = re.compile(
    r"\b(?:connectors|dead_after|faults|update_failures|update_step|day_hour|id_tags"
    r"|reconnect_max|reconnect_min|charging_power|session_duration|session_interval"
    r"|heartbeat_interval|authorize_interval|call_timeout|connect_timeout|ping_interval"
    r"|meter_interval|day_length|vendor|model|" + "|".join(EV_FIELDS) + r")\b"
)
"""The fields of :class:`ChargePointConfig` that options set, as its errors name them."""


def security_from_options(options: Any) -> SecurityConfig:
    """The fleet's :class:`SecurityConfig` from Locust's parsed options.

    Raises :class:`~swarm.protocol.security.SecurityError` (a ``ValueError``) naming the option.
    """
    return SecurityConfig(
        password=getattr(options, "password", "") or os.environ.get(PASSWORD_ENV) or None,
        password_file=getattr(options, "password_file", "") or None,
        ca_file=getattr(options, "ca_file", "") or None,
        insecure=str(getattr(options, "insecure", False)).lower() in ("true", "1"),
        client_cert=getattr(options, "client_cert", "") or None,
        client_key=getattr(options, "client_key", "") or None,
    )


def swarm_options(options: Any) -> dict[str, Any]:
    """The values of the swarm's own options in Locust's parsed ``options``, by name; those of
    :data:`SECRET_OPTIONS` masked when set."""
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    values = {
        name: getattr(options, name, default)
        for name, default in vars(parser.parse_args([])).items()
    }
    for name in SECRET_OPTIONS:
        if values.get(name):
            values[name] = MASK
    return values
