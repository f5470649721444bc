"""The processes of a CSMS over several (``python -m swarm.csms --workers N``): :func:`start`
starts N ``python -m swarm.csms --worker`` children on one port and gives them one certificate
authority and one firmware manufacturer; :class:`Workers` watches them and stops them.

The front reserves the port with a socket bound with SO_REUSEPORT that never listens: the
kernel gives it no connection, and no other program the port, even while the workers restart.
Each worker listens on it with SO_REUSEPORT (Linux spreads the connections among them), serves
its control API on loopback, and stops at the end of its stdin, a pipe from the front: when the
front closes it, or dies. The authority and the manufacturer reach the workers through files in
a private temporary directory (mode 0700, files 0600), removed once they listen: their keys are
in no command line and no log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass

from swarm.csms.authority import Authority, Manufacturer
from swarm.csms.config import CsmsConfig
from swarm.csms.server import CLOSE_TIMEOUT

START_TIMEOUT = 30.0
"""Seconds for every worker to listen: N interpreters start at once on a busy machine."""
STOP_TIMEOUT = CLOSE_TIMEOUT + 3.0
"""Seconds a worker has to stop once its stdin closes: it closes its connections within
CLOSE_TIMEOUT plus a second. Then it is terminated, then killed."""


class StartError(RuntimeError):
    """A worker exited before it listened, or the workers took too long to listen."""


@dataclass(slots=True)
class Worker:
    """One worker process, and where it listens once it says so."""

    process: asyncio.subprocess.Process
    url: str = ""
    control_url: str = ""


class Workers:
    """The workers of a front, all on ``port``; ``url`` is where they listen."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.workers: list[Worker] = []

    @property
    def url(self) -> str:
        return self.workers[0].url

    @property
    def control_urls(self) -> list[str]:
        return [worker.control_url for worker in self.workers]

    async def start(self, args: list[str], count: int) -> None:
        """Start ``count`` workers with ``args`` at once; return when all listen. StartError
        if one exits first (its stderr, the front's, says why) or they take START_TIMEOUT."""
        try:
            async with asyncio.timeout(START_TIMEOUT), asyncio.TaskGroup() as group:
                for _ in range(count):
                    group.create_task(self._start_one(args))
        except TimeoutError:
            raise StartError(f"the workers did not listen within {START_TIMEOUT:g} s") from None
        except ExceptionGroup as group_error:
            raise group_error.exceptions[0] from None

    async def _start_one(self, args: list[str]) -> None:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "swarm.csms", *args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # Out of the front's process group: a Ctrl-C is the front's to handle, and it
            # stops them. Their stderr is the front's.
            start_new_session=True,
        )
        worker = Worker(process)
        self.workers.append(worker)  # from now on stop() stops it
        assert process.stdout is not None
        listening = (await process.stdout.readline()).decode(errors="replace").strip()
        control = (await process.stdout.readline()).decode(errors="replace").strip()
        if not (listening.startswith("listening on ") and control.startswith("control on ")):
            code = await process.wait()
            raise StartError(f"worker {process.pid} exited with code {code} before listening")
        worker.url = listening.removeprefix("listening on ")
        worker.control_url = control.removeprefix("control on ")

    async def exited(self) -> str:
        """Wait until a worker exits; say which, and its exit code."""
        waits = {asyncio.ensure_future(worker.process.wait()): worker for worker in self.workers}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        process = waits[done.pop()].process
        return f"worker {process.pid} exited with code {process.returncode}"

    async def stop(self) -> None:
        """Close every worker's stdin and wait for it to exit; terminate, then kill, one that
        lingers."""
        await asyncio.gather(*(_stop(worker.process) for worker in self.workers))


@contextlib.asynccontextmanager
async def start(config: CsmsConfig, args: list[str], count: int) -> AsyncIterator[Workers]:
    """Start ``count`` workers of the CSMS ``config`` says (``args`` its options as they are, but
    the port, see :func:`swarm.csms.cli.worker_args`); yield them once all listen; stop them."""
    with _reserve(config.host, config.port) as reserved:
        workers = Workers(reserved.getsockname()[1])
        try:
            with tempfile.TemporaryDirectory(prefix="ocpp-swarm-csms-") as directory:
                shared = _share(config, directory)
                await workers.start(
                    [*args, f"--port={workers.port}", "--worker", "--exit-with-stdin", *shared],
                    count,
                )
            # The directory is gone: the workers loaded its files as they started.
            yield workers
        finally:
            await workers.stop()


def _reserve(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: a free port) with SO_REUSEPORT, not listening."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    reserved = socket.socket(family, kind, proto)
    try:
        # As asyncio sets them on the workers' listening sockets.
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            reserved.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        reserved.bind(address)
    except BaseException:
        reserved.close()
        raise
    return reserved


def _share(config: CsmsConfig, directory: str) -> list[str]:
    """Write the firmware manufacturer, and the certificate authority unless ``--ca-cert`` gave
    one (the workers load that themselves), in ``directory``; the workers' options that load
    them."""
    manufacturer = config.manufacturer or Manufacturer.make()
    args = [f"--manufacturer={_write(directory, 'manufacturer.pem', manufacturer.to_pem())}"]
    if config.ca_cert is None:
        authority = Authority.make()
        args.append(f"--ca-cert={_write(directory, 'ca.pem', authority.root_pem.encode())}")
        args.append(f"--ca-key={_write(directory, 'ca-key.pem', authority.key_pem())}")
    return args


def _write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
        file.write(data)
    return path


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.stdin is not None:
        process.stdin.close()
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            await process.wait()
        return
    except TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        async with asyncio.timeout(2.0):
            await process.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
