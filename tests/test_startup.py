"""Bad configuration is refused at start, with one clear line, before any charge point connects.

Each case runs the real ``locust`` CLI (a subprocess: importing locust would monkey-patch this
process) against a CSMS in this process that counts the WebSocket connections it gets, and
checks the exit code, the one line on stderr, that no traceback shows and that nothing
connected. They start a few at a time: each takes about as long as Locust's start-up.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from swarm.csms import CONNECTIONS_TOTAL, Csms, CsmsConfig
from tests.scripted import call_in, free_port, in_thread
from tests.test_locust import LOCUST, Child, child, finished

PARALLEL = 3


@dataclass(frozen=True)
class Case:
    args: str
    """After ``-f``, split at spaces: ``{host}`` stands for the counting CSMS's URL, ``{tmp}``
    for a folder of idTag files, ``{closed}`` for a port where nothing listens."""
    line: str
    """A regular expression the one line must match (``ocpp-swarm: ...`` or Locust's own)."""
    code: int = 2


CASES: dict[str, Case] = {
    # Locust's own check, before it imports the locustfile (so before the swarm can say
    # anything): one line, but its exit code is 1.
    "missing locustfile": Case(
        "missing.py --host {host}", r"Could not find 'missing\.py'\. .*", code=1
    ),
    "no ws:// URL": Case(
        "locustfile.py --host http://127.0.0.1:9000",
        r"ocpp-swarm: --host must be a ws:// or wss:// URL, got 'http://127.0.0.1:9000'",
    ),
    "unresolvable host": Case(
        "locustfile.py --host ws://csms.invalid:9000",
        r"ocpp-swarm: --host 'ws://csms.invalid:9000': cannot resolve csms\.invalid: .+",
    ),
    "nothing listening": Case(
        "locustfile.py --host ws://127.0.0.1:{closed}",
        r"ocpp-swarm: --host ws://127\.0\.0\.1:\d+: cannot connect: Connection refused",
    ),
    "nothing listening, with workers": Case(
        "locustfile.py --host ws://127.0.0.1:{closed} --processes 2"
        " --master-bind-port {master} --master-port {master}",
        r"ocpp-swarm: --host ws://127\.0\.0\.1:\d+: cannot connect: Connection refused",
    ),
    "idTag file missing": Case(
        "locustfile.py --host {host} --id-tags @{tmp}/none.txt",
        r"ocpp-swarm: --id-tags: cannot read .*none\.txt: No such file or directory",
    ),
    "idTag file empty": Case(
        "locustfile.py --host {host} --id-tags @{tmp}/empty.txt",
        r"ocpp-swarm: --id-tags: .*empty\.txt holds no idTag",
    ),
    "idTag over 20 characters": Case(
        "locustfile.py --host {host} --id-tags @{tmp}/long.txt",
        r"ocpp-swarm: --id-tags: an idTag is 1 to 20 characters \(OCPP IdToken\), got 'X{21}'",
    ),
    "connectors not a number": Case(
        "locustfile.py --host {host} --connectors two",
        r"locust: error: argument --connectors: invalid int value: 'two'",
    ),
    "connectors out of range": Case(
        "locustfile.py --host {host} --connectors 0",
        r"ocpp-swarm: --connectors must be 1 to 99, got 0",
    ),
    "negative seconds": Case(
        "locustfile.py --host {host} --call-timeout -5",
        r"locust: error: argument --call-timeout: '-5': seconds must be a finite number, 0 or more",
    ),
    "share above 1": Case(
        "locustfile.py --host {host} --faults 1.5",
        r"ocpp-swarm: --faults must be a share from 0 to 1, got 1\.5",
    ),
    "reconnect ceiling below its floor": Case(
        "locustfile.py --host {host} --reconnect-min 5 --reconnect-max 2",
        r"ocpp-swarm: --reconnect-max: 2 s is less than --reconnect-min \(5 s\)",
    ),
}


@dataclass
class Refusal:
    proc: Child
    command: list[str]
    connections: int
    """WebSocket connections the counting CSMS got while every case ran."""
    results_dir: Path


def _run(command: list[str]) -> Child:
    with child(command) as proc:
        proc.wait(timeout=25)
        # Workers that --processes forked quit within a second of their master: wait for them.
        deadline = time.monotonic() + 5
        while proc.leftovers() and time.monotonic() < deadline:
            time.sleep(0.1)
        finished(proc, timeout=25)
    return proc


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Refusal]]:
    """Every case run once, a few at a time, against one counting CSMS."""
    tmp = tmp_path_factory.mktemp("startup")
    (tmp / "empty.txt").write_text("# no idTag here\n\n")
    (tmp / "long.txt").write_text("TAG-1\n" + "X" * 21 + "\n")
    closed = free_port()  # nothing listens there
    with in_thread(lambda: Csms(CsmsConfig(port=0))) as (csms, loop):
        values = {"host": csms.url, "tmp": str(tmp), "closed": str(closed)}
        commands = {}
        for index, (name, case) in enumerate(CASES.items()):
            values["master"] = str(free_port())
            args = [arg.format(**values) for arg in case.args.split()]
            commands[name] = [
                LOCUST, "-f", *args, "--headless", "-u", "3", "-r", "3", "-t", "5s",
                "--results-dir", str(tmp / f"results-{index}"),
            ]  # fmt: skip
        with ThreadPoolExecutor(PARALLEL) as pool:
            procs = {name: pool.submit(_run, command) for name, command in commands.items()}
            done = {name: future.result() for name, future in procs.items()}
        connections = call_in(loop, lambda: csms.stats[CONNECTIONS_TOTAL])
        yield {
            name: Refusal(proc, commands[name], connections, Path(commands[name][-1]))
            for name, proc in done.items()
        }


@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", list(CASES))
def test_bad_configuration_is_refused_with_one_clear_line(
    name: str, refusals: dict[str, Refusal]
) -> None:
    case, refusal = CASES[name], refusals[name]
    proc = refusal.proc
    stderr = proc.stderr
    assert proc.returncode == case.code, (refusal.command, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    # The one line: argparse's own errors come after its usage line, the swarm's are logged.
    said = [
        line
        for line in stderr.splitlines()
        if "/ERROR/" in line or "error:" in line or "Could not find" in line
    ]
    assert len(said) == 1, stderr[-3000:]
    assert re.search(case.line, said[0]), (case.line, said[0])
    # Before any user spawns, so no charge point connected anywhere.
    assert "Ramping to" not in stderr and "spawned" not in stderr, stderr[-3000:]
    assert refusal.connections == 0
    assert not refusal.results_dir.exists() or list(refusal.results_dir.iterdir()) == []
    assert proc.leftovers() == [], proc.leftovers()
