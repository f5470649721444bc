"""OCPP 1.6 security profiles 1-3 in the swarm in Locust (subprocesses, as in test_locust.py)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarm.csms import Csms, CsmsConfig
from swarm.locust.options import MASK
from swarm.protocol.security import authorization, expand
from tests.scripted import call_in, free_port, in_thread
from tests.test_locust import LOCUST, LOCUST_RUN, ROOT, Child, child, finished
from tests.test_security import IDS, SECURITY_OPTIONS, Pki
from tests.test_security import pki as pki  # a fixture: the alias marks it as used

# The swarm in Locust.


def csms_in_thread(config: CsmsConfig) -> Any:
    """The embedded CSMS in this process, on a thread; yields it and its loop."""
    return in_thread(lambda: Csms(config))


def locust_runs(*runs: list[str], seconds: float) -> list[tuple[Child, dict[str, Any]]]:
    """tests/locust_run.py with each list of arguments, at once; each child and its JSON."""
    commands = [[*LOCUST_RUN, "--seconds", str(seconds), *args] for args in runs]
    children = [Child(command) for command in commands]
    try:
        results = []
        for proc in children:
            finished(proc, timeout=seconds + 30)
            assert proc.returncode == 0, proc.stderr[-3000:]
            results.append((proc, json.loads(proc.stdout.strip().splitlines()[-1])))
        return results
    finally:
        for proc in children:
            proc.close()


@pytest.mark.timeout(90)
def test_in_locust_a_wrong_password_is_a_failed_websocket_connect(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    path.write_text("".join(f"{cp} right-{cp}\n" for cp in IDS))
    with csms_in_thread(CsmsConfig(port=0, password_file=str(path))) as (csms, _):
        common = ["--users", "3", "--spawn-rate", "3", "--host", csms.url]
        (_, right), (_, wrong) = locust_runs(
            [*common, "--password-file", str(path)],
            [*common, "--password", "wrong-{id}"],
            seconds=3,
        )
    assert right["errors"] == [], right["errors"]
    assert right["stats"]["WebSocket connect"]["failures"] == 0
    assert right["stats"]["OCPP BootNotification"]["requests"] == 3
    assert right["states"]["accepted"] == 3, right["states"]
    connects = wrong["stats"]["WebSocket connect"]
    assert connects["failures"] == connects["requests"] >= 3, connects
    assert "OCPP BootNotification" not in wrong["stats"]
    assert [(e["name"], e["error"]) for e in wrong["errors"]] == [
        ("connect", "InvalidStatus: HTTP 401")
    ]


@pytest.mark.timeout(90)
def test_in_locust_insecure_connects_to_an_unknown_ca_and_warns_once(pki: Pki) -> None:
    config = CsmsConfig(port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    with csms_in_thread(config) as (csms, _):
        common = ["--users", "3", "--spawn-rate", "3", "--host", csms.url]
        (insecure_run, insecure), (_, verified), (_, unverified) = locust_runs(
            [*common, "--insecure"],
            [*common, "--ca-file", str(pki.ca)],
            [*common],  # the system's CAs
            seconds=3,
        )
    for result in (insecure, verified):
        assert result["errors"] == [], result["errors"]
        assert result["states"]["accepted"] == 3, result["states"]
    assert insecure_run.stderr.count("--insecure: the CSMS's TLS certificate is not verified") == 1
    connects = unverified["stats"]["WebSocket connect"]
    assert connects["failures"] == connects["requests"] >= 3, connects
    assert "CERTIFICATE_VERIFY_FAILED" in unverified["errors"][0]["error"]


@pytest.mark.timeout(60)
def test_bad_security_options_exit_2_with_one_line_before_any_user(
    pki: Pki, tmp_path: Path
) -> None:
    malformed = tmp_path / "passwords"
    malformed.write_text("CP-0-000001 secret\nCP-0-000002\n")
    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("not a certificate\n")
    base = [LOCUST, "-f", "locustfile.py", "--headless", "-u", "1", "-t", "2s", "--results-dir", ""]
    wss = ["--host", "wss://127.0.0.1:1"]
    cases = {
        "--client-cert: ": [*wss, "--client-cert", str(not_pem), "--client-key", str(not_pem)],
        "--ca-file: cannot read": [*wss, "--ca-file", str(tmp_path / "missing.pem")],
        "--password-file: ": ["--password-file", str(malformed)],
        "--password: a malformed template": ["--password", "secret-{id"],
        "need a wss:// --host (got 'ws://127.0.0.1:1')": [
            "--host",
            "ws://127.0.0.1:1",
            "--ca-file",
            str(pki.ca),
        ],
        "need a wss:// --host (the embedded CSMS serves ws://)": ["--insecure"],
        "--host cannot hold a user name or password": ["--host", "ws://cp:secret@127.0.0.1:1"],
    }
    procs = {}
    with contextlib.ExitStack() as stack:
        for error, args in cases.items():
            procs[error] = stack.enter_context(child([*base, *args]))
        for proc in procs.values():
            finished(proc, timeout=30)
    for error, proc in procs.items():
        assert proc.returncode == 2, (error, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if "ocpp-swarm:" in line]
        assert len(lines) == 1 and error in lines[0], (error, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        assert "Ramping to" not in proc.stderr, "a user started"
        assert proc.descendants == {}, "no embedded CSMS for refused options"
        assert "secret" not in proc.stderr, proc.stderr  # the password, in the file or the URL
    assert "line 2: expected '<chargePointId> <password>'" in procs["--password-file: "].stderr


@pytest.mark.timeout(90)
def test_a_run_with_a_password_and_client_keys_leaves_no_secret_behind(
    pki: Pki, tmp_path: Path
) -> None:
    password = "Zq7-{id}-unguessable"
    config = CsmsConfig(
        port=0,
        tls_cert=str(pki.server_cert),
        tls_key=str(pki.server_key),
        client_ca=str(pki.ca),
        password=password,
    )
    results = tmp_path / "results"
    with csms_in_thread(config) as (csms, loop):
        command = [
            LOCUST,
            "-f",
            "locustfile.py",
            "--headless",
            "-u",
            "3",
            "-r",
            "3",
            "-t",
            "4s",
            "--loglevel",
            "DEBUG",  # websockets logs every handshake header at DEBUG
            "--results-dir",
            str(results),
            "--host",
            csms.url,
            "--ca-file",
            str(pki.ca),
            "--client-cert",
            pki.cert_template,
            "--client-key",
            pki.key_template,
            "--password",
            password,
        ]
        with child(command) as proc:
            finished(proc, timeout=40)
        booted = call_in(loop, lambda: csms.stats["BootNotification"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert booted == 3, "every charge point got through TLS, its certificate and its password"
    # What must not be anywhere: the template, each password, each Authorization header, and
    # any line of a private key's PEM body.
    secrets = {password, "unguessable"}
    for cp in IDS:
        secrets.add(expand(password, cp))
        secrets.add(authorization(cp, expand(password, cp)).split()[1])
        body = pki.keys[cp].decode().splitlines()[1:-1]
        secrets.update(line for line in body if len(line) >= 16)
    files = [path for path in results.rglob("*") if path.is_file()]
    names = {path.name for path in files}
    assert {"report.html", "summary.json", "locust_stats.csv", "fleet.csv"} <= names, names
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    texts.update({str(path): path.read_bytes().decode(errors="replace") for path in files})
    assert "DEBUG" in proc.stderr  # the run logged at DEBUG indeed
    for where, text in texts.items():
        found = [secret for secret in secrets if secret in text]
        assert found == [], f"{where} holds {found}"
    summary = json.loads(next(results.rglob("summary.json")).read_text())
    assert summary["options"]["password"] == MASK
    assert summary["options"]["client_key"] == pki.key_template  # a path may show


@pytest.mark.timeout(60)
def test_the_web_ui_is_given_no_security_option() -> None:
    # What Locust's web UI puts in its page: each option's command-line value as its default.
    script = (
        "import json, sys\n"
        "import swarm.locust.user\n"
        "from locust.argument_parser import ui_extra_args_dict\n"
        "print(json.dumps(ui_extra_args_dict(sys.argv[1:])))\n"
    )
    argv = ["-f", "locustfile.py", "--password", "pw-web-{id}", "--ca-file", "ca.pem"]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert "heartbeat_interval" in shown  # the swarm's other options are there
    assert not set(SECURITY_OPTIONS) & set(shown), shown
    assert "pw-web" not in done.stdout


@pytest.mark.timeout(90)
def test_a_worker_takes_the_security_options_of_its_master(pki: Pki) -> None:
    """Locust hands a master's own options to its workers when users spawn: a worker connects
    as its master says, with the master's password, over TLS to the host the master names."""
    password = "m-{id}"
    config = CsmsConfig(
        port=0, tls_cert=str(pki.server_cert), tls_key=str(pki.server_key), password=password
    )
    port = free_port()
    with csms_in_thread(config) as (csms, loop):
        master = [
            LOCUST, "-f", "locustfile.py", "--master", "--master-bind-port", str(port),
            "--headless", "--expect-workers", "1", "-u", "4", "-r", "4", "-t", "6s",
            "--results-dir", "", "--host", csms.url,
            "--ca-file", str(pki.ca), "--password", password,
        ]  # fmt: skip
        worker = [
            LOCUST, "-f", "locustfile.py", "--worker", "--master-port", str(port),
            "--results-dir", "", "--ca-file", str(pki.ca),  # no --host: its master names it
        ]  # fmt: skip
        with child(master) as boss, child(worker) as hand:
            finished(boss, timeout=60)
            finished(hand, timeout=20)
        booted = call_in(loop, lambda: csms.stats["BootNotification"])
    assert hand.returncode == 0, hand.stderr[-3000:]
    assert boss.returncode == 0, boss.stderr[-3000:]
    assert booted == 4, (booted, boss.stderr[-2000:], hand.stderr[-2000:])
