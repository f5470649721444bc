"""The embedded CSMS as a child process (:class:`CsmsProcess`): how a Locust process runs it.

Only the standard library: the parent loads neither websockets nor the server, which run in the
child (``python -m swarm.csms``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import threading
from types import TracebackType
from typing import IO, Self


class CsmsProcess:
    """A CSMS in a child process that dies with its parent (it stops when its stdin closes).

    ``control_url`` is the control API's ``http://host:port`` when it was started with
    ``--control-port``, else None.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        url: str,
        stderr: IO[bytes],
        control_url: str | None = None,
    ) -> None:
        self.process = process
        self.url = url
        self.control_url = control_url
        self._stderr = stderr

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, args: list[str] | None = None, timeout: float = 10.0) -> CsmsProcess:
        """Launch ``python -m swarm.csms --port 0 --exit-with-stdin *args``; wait until it listens.

        Raises RuntimeError, with the tail of its stderr, if it exits or does not print its
        ``listening on`` line (and with ``--control-port``, its ``control on`` line) within
        ``timeout`` seconds.
        """
        command = [sys.executable, "-m", "swarm.csms", "--port", "0", "--exit-with-stdin"]
        # A file, not a pipe: a pipe nobody drains would block the child once full.
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - it lives as long as the child
        try:
            process = subprocess.Popen(
                [*command, *(args or [])],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                # Out of the parent's process group: a Ctrl-C or a SIGTERM sent to the group
                # must not close the charge points' connections before the swarm closes them.
                # The parent stops it by closing its stdin, and its death closes it too.
                start_new_session=True,
            )
        except BaseException:
            stderr.close()
            raise
        child = cls(process, "", stderr)
        # Without the control API the child prints one line; reading for a second would block.
        expected = 2 if any(arg.startswith("--control-port") for arg in args or ()) else 1
        lines: list[str] = []

        def read() -> None:
            for _ in range(expected):
                line = process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                lines.append(line.decode(errors="replace").strip())

        # A thread (a greenlet under gevent's monkey-patching) reads, so the wait can time out.
        reader = threading.Thread(target=read, name="csms-stdout", daemon=True)
        reader.start()
        reader.join(timeout)
        got = lines[:]  # a snapshot: the reader may still be appending
        prefixes = ("listening on ", "control on ")[:expected]
        if len(got) == expected and all(map(str.startswith, got, prefixes)):
            child.url = got[0].removeprefix(prefixes[0])
            if expected == 2:
                child.control_url = got[1].removeprefix(prefixes[1])
            return child
        line = " | ".join(got)
        if not reader.is_alive():  # its stdout closed: it is exiting, or has
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1.0)
        exited = process.poll() is not None
        child.stop(timeout=1.0, close_stderr=False)
        reader.join(1.0)
        stderr.seek(0)
        tail = stderr.read()[-2000:].decode(errors="replace").strip()
        stderr.close()
        what = f"exited with code {process.returncode}" if exited else f"timed out ({timeout} s)"
        raise RuntimeError(
            f"the CSMS child process {what} before listening; stdout {line!r}, stderr:\n{tail}"
        )

    def stop(self, timeout: float = 5.0, *, close_stderr: bool = True) -> int:
        """Close its stdin and wait; terminate, then kill, if it lingers. Returns the exit code."""
        process = self.process
        with contextlib.suppress(OSError, ValueError):
            process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with contextlib.suppress(OSError, ValueError):
            process.stdout.close()  # type: ignore[union-attr]
        if close_stderr:
            self._stderr.close()
        return process.returncode

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
