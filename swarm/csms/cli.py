"""The embedded CSMS's command line: ``python -m swarm.csms`` and ``ocpp-swarm-csms``.

``main`` parses the options, then runs the CSMS (and with ``--control-port`` its control API)
until SIGINT, SIGTERM or, for a child process (:mod:`swarm.csms.process`), the end of stdin.
With ``--workers N`` over 1, the process is the front of N CSMS processes
(:mod:`swarm.csms.front`), each started by this command line with the hidden ``--worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable

from swarm import eventloop
from swarm.csms import control, front
from swarm.csms.config import BOOT_POLICIES, CsmsConfig
from swarm.csms.server import Csms

logger = logging.getLogger(__name__)


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {value}")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocpp-swarm-csms",
        description="An OCPP 1.6J and 2.0.1J CSMS (central system) for load tests.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_port, default=9000, help="TCP port; 0 picks a free one")
    parser.add_argument(
        "--heartbeat-interval",
        type=_non_negative_int,
        default=60,
        metavar="SECONDS",
        help="interval sent in an accepted BootNotification",
    )
    parser.add_argument(
        "--boot",
        choices=BOOT_POLICIES,
        default="accept",
        help="status of each charge point's first BootNotification; later ones are accepted",
    )
    parser.add_argument(
        "--boot-retry-interval",
        type=_non_negative_int,
        default=10,
        metavar="SECONDS",
        help="interval sent with a Pending or Rejected BootNotification",
    )
    parser.add_argument(
        "--reject-id-tag",
        action="append",
        default=[],
        metavar="TAG",
        help="answer this idTag (1.6) or idToken (2.0.1) with status Invalid (repeatable)",
    )
    parser.add_argument(
        "--no-validate",
        dest="validate",
        action="store_false",
        help="do not check incoming payloads against their OCPP version's schemas",
    )
    parser.add_argument(
        "--control-port",
        type=_port,
        metavar="PORT",
        help="serve the control API (JSON over HTTP, no authentication) on this port of --host;"
        " 0 picks a free one; off by default",
    )
    security = parser.add_argument_group(
        "security profiles", "OCPP security profiles 1-3, alike in 1.6 and 2.0.1 (see the README)"
    )
    security.add_argument("--tls-cert", metavar="FILE", help="certificate (PEM): serve wss://")
    security.add_argument("--tls-key", metavar="FILE", help="private key (PEM) of --tls-cert")
    security.add_argument(
        "--client-ca",
        metavar="FILE",
        help="CA certificates (PEM): require a client certificate they issued, whose CN is the"
        " charge point id (mutual TLS)",
    )
    security.add_argument(
        "--password-file",
        metavar="FILE",
        help="HTTP Basic auth: lines '<chargePointId> <password>' ('#' comments); user name"
        " the charge point id of the URL, 401 otherwise",
    )
    security.add_argument(
        "--password",
        metavar="TEMPLATE",
        help="HTTP Basic auth password for charge points --password-file does not list, {id}"
        " replaced by the id: 'secret-{id}' (the process list shows it; prefer a file)",
    )
    security.add_argument(
        "--ca-cert",
        metavar="FILE",
        help="CA certificate (PEM) that signs the charge points' CSRs (SignCertificate);"
        " without it, one made at start",
    )
    security.add_argument("--ca-key", metavar="FILE", help="private key (PEM) of --ca-cert")
    security.add_argument(
        "--certificate-lifetime",
        type=float,
        default=365 * 86400.0,
        metavar="SECONDS",
        help="how long a certificate it signs is valid (default a year); the fleet renews one"
        " a month before it expires, a third of its life before if it lives under three months",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="processes that serve the charge points, all on --port (SO_REUSEPORT: the kernel"
        " spreads the connections); the control API commands them all",
    )
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when standard input reaches end of file (when run by a parent process)",
    )
    # A front's workers: SO_REUSEPORT, the control API on loopback with the front's routes,
    # the front's manufacturer (a file it wrote).
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manufacturer", help=argparse.SUPPRESS)
    return parser


FRONT_ONLY = frozenset({"help", "port", "workers", "control_port", "exit_with_stdin", "worker"})
"""Options the front gives its workers values of its own for, or none."""


def worker_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The options of ``args`` a front's workers take as they are: those set to other than
    their default, but for :data:`FRONT_ONLY`, each as ``--name=value``."""
    argv = []
    for action in parser._actions:
        if not action.option_strings or action.dest in FRONT_ONLY:
            continue
        value = getattr(args, action.dest)
        if value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if action.nargs == 0:
            argv.append(flag)
        else:
            argv += [f"{flag}={item}" for item in (value if isinstance(value, list) else [value])]
    return argv


def main(argv: list[str] | None = None) -> int:
    """Run the CSMS until SIGINT, SIGTERM or (with ``--exit-with-stdin``) end of stdin."""
    parser = _parser()
    args = parser.parse_args(argv)
    # Said here with the options' names; CsmsConfig says it with its fields'.
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    if args.client_ca and not args.tls_cert:
        parser.error("--client-ca needs --tls-cert and --tls-key")
    if (args.ca_cert is None) != (args.ca_key is None):
        parser.error("--ca-cert and --ca-key go together")
    if args.workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        parser.error("--workers over 1 needs SO_REUSEPORT, which this system lacks")
    try:
        config = CsmsConfig(
            host=args.host,
            port=args.port,
            heartbeat_interval=args.heartbeat_interval,
            boot=args.boot,
            boot_retry_interval=args.boot_retry_interval,
            reject_id_tags=frozenset(args.reject_id_tag),
            validate=args.validate,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            client_ca=args.client_ca,
            password_file=args.password_file,
            password=args.password,
            ca_cert=args.ca_cert,
            ca_key=args.ca_key,
            certificate_lifetime=args.certificate_lifetime,
            manufacturer_file=args.manufacturer,
            reuse_port=args.worker,
        )
    except ValueError as exc:
        message = str(exc).replace("ca_cert, ca_key", "--ca-cert, --ca-key")
        parser.error(message.replace("certificate_lifetime", "--certificate-lifetime"))
    who = " worker %(process)d" if args.worker else ""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(name)s{who} %(message)s")
    # Refused handshakes and closing notices would otherwise be logged at INFO.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        return eventloop.run(_main(parser, args, config))
    return 0


async def _main(
    parser: argparse.ArgumentParser, args: argparse.Namespace, config: CsmsConfig
) -> int:
    stopping = _stopping(args.exit_with_stdin)
    if args.workers > 1:
        return await front.run(
            config,
            worker_args(parser, args),
            count=args.workers,
            control_port=args.control_port,
            stopping=stopping,
        )
    await _run(config, args.control_port, stopping, worker=args.worker)
    return 0


def _stopping(exit_with_stdin: bool) -> asyncio.Event:
    """An event set on SIGINT, SIGTERM and (with ``exit_with_stdin``) the end of stdin."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stopping.set)
    if exit_with_stdin:
        threading.Thread(
            target=_wait_for_stdin_eof, args=(loop, stopping.set), name="stdin-eof", daemon=True
        ).start()
    return stopping


async def _run(
    config: CsmsConfig, control_port: int | None, stopping: asyncio.Event, *, worker: bool
) -> None:
    """Serve until ``stopping`` is set; a front's worker serves its control API on loopback."""
    async with Csms(config) as csms:
        control_server = None
        if worker:
            control_server = await front.serve_worker_control(csms)
        elif control_port is not None:
            control_server = await control.serve_control(csms, config.host, control_port)
        logger.info(
            "CSMS listening on %s (boot %s, heartbeat interval %d s, validation %s)",
            csms.url,
            config.boot,
            config.heartbeat_interval,
            "on" if config.validate else "off",
        )
        print(f"listening on {csms.url}", flush=True)
        if control_server is not None:
            print(f"control on {control.url(control_server)}", flush=True)
        try:
            await stopping.wait()
        finally:
            if control_server is not None:
                control_server.close()


def _wait_for_stdin_eof(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> None:
    # os.read, not sys.stdin.buffer.read: a daemon thread blocked inside the BufferedReader holds
    # its lock, and the interpreter aborts ("could not acquire lock ... at interpreter shutdown")
    # when it exits on a signal meanwhile.
    with contextlib.suppress(OSError, ValueError):
        fd = sys.stdin.fileno()
        while os.read(fd, 65536):
            pass
    with contextlib.suppress(RuntimeError):  # the loop is already closed
        loop.call_soon_threadsafe(stop)
