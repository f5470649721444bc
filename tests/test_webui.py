"""The web UI's "Charge points" tab: its rows, and the tab in a real ``locust`` web UI.

Importing :mod:`swarm.locust.webui` imports Locust, which would monkey-patch this process with
gevent; the other tests run plain asyncio here, so it is imported with
``LOCUST_SKIP_MONKEY_PATCH`` set (tests/unpatched.py) and the web UI itself runs in a subprocess.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pytest

from swarm.report.fleet import STATES, FleetStatus
from tests.scripted import free_port
from tests.test_locust import LOCUST, Child
from tests.unpatched import unpatched

with unpatched():
    from swarm.locust.webui import TAB, rows


# Unit: the rows.


def test_rows_of_an_empty_fleet_are_its_states_charging_power_and_versions() -> None:
    assert rows(FleetStatus()) == [
        *({"what": "state", "item": state, "count": 0} for state in STATES),
        {"what": "state", "item": "charging", "count": 0},
        {"what": "power", "item": "kW drawn", "count": 0.0},
        {"what": "version", "item": "OCPP 1.6", "count": 0},
        {"what": "version", "item": "OCPP 2.0.1", "count": 0},
    ]


def test_rows_hold_states_charging_sorted_callerrors_and_csms_calls() -> None:
    states = {**dict.fromkeys(STATES, 0), "accepted": 7, "booting": 2, "offline": 1}
    status = FleetStatus(
        states=states,
        charging=3,
        power_w=22_049,
        callerrors={
            "StartTransaction": {"InternalError": 1},
            "Authorize": {"SecurityError": 2, "FormationViolation": 5},
        },
        csms_calls={"Reset": 1, "ChangeConfiguration": 4},
    )
    assert rows(status) == [
        *({"what": "state", "item": state, "count": states[state]} for state in STATES),
        {"what": "state", "item": "charging", "count": 3},
        {"what": "power", "item": "kW drawn", "count": 22.0},
        {"what": "version", "item": "OCPP 1.6", "count": 0},
        {"what": "version", "item": "OCPP 2.0.1", "count": 0},
        {"what": "CALLERROR", "item": "Authorize FormationViolation", "count": 5},
        {"what": "CALLERROR", "item": "Authorize SecurityError", "count": 2},
        {"what": "CALLERROR", "item": "StartTransaction InternalError", "count": 1},
        {"what": "CSMS call", "item": "ChangeConfiguration", "count": 4},
        {"what": "CSMS call", "item": "Reset", "count": 1},
    ]
    # The state rows keep the fleet's order of states.
    assert [row["item"] for row in rows(status)[: len(STATES)]] == list(STATES)
    assert TAB == "charge-points"


def test_rows_of_a_mixed_fleet_count_its_versions_and_keep_them_apart() -> None:
    status = FleetStatus(
        versions={"1.6": 7, "2.0.1": 3},
        callerrors={
            "OCPP201 Authorize": {"SecurityError": 1},
            "StartTransaction": {"InternalError": 2},
            "Authorize": {"SecurityError": 4},
        },
        csms_calls={"CSMS201 GetVariables": 2, "Reset": 1, "CSMS201 Reset": 3},
    )
    assert rows(status)[len(STATES) + 2 :] == [
        {"what": "version", "item": "OCPP 1.6", "count": 7},
        {"what": "version", "item": "OCPP 2.0.1", "count": 3},
        # OCPP 1.6's first, as ever; then 2.0.1's, after their request type.
        {"what": "CALLERROR", "item": "Authorize SecurityError", "count": 4},
        {"what": "CALLERROR", "item": "StartTransaction InternalError", "count": 2},
        {"what": "CALLERROR", "item": "OCPP201 Authorize SecurityError", "count": 1},
        {"what": "CSMS call", "item": "Reset", "count": 1},
        {"what": "CSMS call", "item": "CSMS201 GetVariables", "count": 2},
        {"what": "CSMS call", "item": "CSMS201 Reset", "count": 3},
    ]


# Integration: the tab in the web UI of a real ``locust`` run.

TEMPLATE_ARGS = re.compile(r"window\.templateArgs\s*=\s*(\{.*?\})\s*</script>", re.DOTALL)


def get(url: str) -> tuple[str, str]:
    """The body and content type of a GET, bounded by a timeout."""
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.read().decode(), response.headers.get("Content-Type", "")


def poll(proc: Child, url: str, seconds: float) -> str:
    """GET ``url`` until it answers, while ``proc`` runs; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    error: Exception | None = None
    while time.monotonic() < deadline:
        assert proc.running(), f"locust exited early:\n{proc.read()[1][-3000:]}"
        try:
            return get(url)[0]
        except (urllib.error.URLError, OSError) as exc:
            error = exc
        time.sleep(0.2)
    pytest.fail(f"no answer from {url} in {seconds} s ({error}):\n{proc.read()[1][-3000:]}")


def fleet_rows(stats: dict[str, Any], what: str = "state") -> dict[str, int]:
    """``{name: count}`` of the tab's rows of a kind in a ``/stats/requests`` answer."""
    tabs = [entry for entry in stats.get("extended_stats", []) if entry["key"] == TAB]
    assert len(tabs) == 1, stats.get("extended_stats")
    return {row["item"]: row["count"] for row in tabs[0]["data"] if row["what"] == what}


def stop(proc: Child) -> None:
    """SIGINT (Ctrl+C), then SIGTERM, then SIGKILL of its group: it ends, one way or another.

    SIGTERM is the fallback for a pytest started with SIGINT ignored (as a background job),
    whose children inherit that; Locust shuts down the same way on either.
    """
    # Python raises KeyboardInterrupt in whatever code runs when the signal comes: let the web
    # server's greenlet finish the last answer first, or it prints gevent's traceback of it.
    time.sleep(0.5)
    for sig, grace in ((signal.SIGINT, 10.0), (signal.SIGTERM, 5.0)):
        if proc.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.process.send_signal(sig)
        deadline = time.monotonic() + grace
        while proc.running() and time.monotonic() < deadline:
            time.sleep(0.05)
    if proc.process.poll() is None:
        proc.kill()


@dataclass
class WebRun:
    """What a ``locust`` web UI run showed, and how it ended."""

    template_args: dict[str, Any]
    states: dict[str, int]  # the tab's state rows once every charge point booted
    versions: dict[str, int]  # its version rows then
    names: set[str]  # the names in Locust's own request stats then
    returncode: int | None
    stderr: str
    descendants: dict[int, tuple[float, str]]
    leftovers: list[str]
    summary: dict[str, Any]  # the run folder's summary.json


CLOSING = "ocpp-swarm: closing the charge points and writing the run's folder"


def ctrl_c_twice(proc: Child) -> None:
    """Ctrl-C, and again as the run ends (as impatient users do); then wait for it to end,
    which on a busy machine takes a few seconds (a third would abort it)."""
    time.sleep(0.5)  # see stop()
    proc.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 10
    while proc.running() and CLOSING not in proc.read()[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        proc.process.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while proc.running() and time.monotonic() < deadline:
        time.sleep(0.05)


USERS = 10


@pytest.fixture(scope="module")
def web_run(tmp_path_factory: pytest.TempPathFactory) -> WebRun:
    """``locust -f scenarios/steady.py`` with its web UI on a free port, 10 users autostarted:
    read its page and its stats until every charge point booted, then Ctrl+C it twice."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results = tmp_path_factory.mktemp("results")
    command = [
        LOCUST,
        "-f",
        "scenarios/steady.py",
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(port),
        "--autostart",
        "-u",
        str(USERS),
        "-r",
        str(USERS),
        "--heartbeat-interval",
        "1",
        "--results-dir",
        str(results),
        # A bound of its own, should this test fail to stop it.
        "--autoquit",
        "0",
        "-t",
        "30s",
    ]
    proc = Child(command)
    try:
        page = poll(proc, f"{base}/", seconds=15)
        match = TEMPLATE_ARGS.search(page)
        assert match, page[-2000:]
        template_args = json.loads(match[1])

        states: dict[str, int] = {}
        versions: dict[str, int] = {}
        names: set[str] = set()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            body, content_type = get(f"{base}/stats/requests")
            assert content_type.startswith("application/json"), content_type
            stats = json.loads(body)
            states = fleet_rows(stats)
            versions = fleet_rows(stats, "version")
            names = {entry["name"] for entry in stats["stats"]}
            if states.get("accepted") == USERS and "BootNotification" in names:
                break
            assert proc.running(), proc.read()[1][-3000:]
            time.sleep(0.3)
        proc.running()  # records its children (the embedded CSMS)
        ctrl_c_twice(proc)
    finally:
        stop(proc)
        returncode = proc.process.poll()
        stderr = proc.read()[1]
        leftovers = proc.leftovers()
        proc.close()
    summaries = list(results.glob("*/summary.json"))
    summary = json.loads(summaries[0].read_text()) if summaries else {}
    return WebRun(
        template_args,
        states,
        versions,
        names,
        returncode,
        stderr,
        proc.descendants,
        leftovers,
        summary,
    )


@pytest.mark.timeout(60)
def test_the_page_names_the_tab_and_its_table(web_run: WebRun) -> None:
    # The page embeds them as window.templateArgs; Locust's UI camel-cases the keys.
    assert web_run.template_args["extended_tabs"] == [{"title": "Charge points", "key": TAB}]
    assert web_run.template_args["extended_tables"] == [
        {
            "key": TAB,
            "structure": [
                {"key": "what", "title": "What"},
                {"key": "item", "title": "Name"},
                {"key": "count", "title": "Count"},
            ],
        }
    ]


@pytest.mark.timeout(60)
def test_the_stats_the_page_polls_carry_the_rows(web_run: WebRun) -> None:
    states = web_run.states
    assert states.get("accepted") == USERS, states
    assert set(states) == {*STATES, "charging"}, states
    assert sum(n for name, n in states.items() if name != "charging") == USERS, states
    # The default fleet is all OCPP 1.6.
    assert web_run.versions == {"OCPP 1.6": USERS, "OCPP 2.0.1": 0}, web_run.versions
    # Locust's own stats are still there, beside the tab's rows.
    assert "BootNotification" in web_run.names, web_run.names


@pytest.mark.timeout(60)
def test_ctrl_c_ends_the_run_and_its_csms(web_run: WebRun) -> None:
    assert web_run.returncode is not None, "locust did not exit"
    assert web_run.returncode == 0, web_run.stderr[-3000:]
    assert any("swarm.csms" in cmd for _, cmd in web_run.descendants.values()), web_run.descendants
    assert web_run.leftovers == [], web_run.leftovers


@pytest.mark.timeout(60)
def test_ctrl_c_leaves_no_traceback(web_run: WebRun) -> None:
    assert "Traceback" not in web_run.stderr, web_run.stderr[-3000:]


@pytest.mark.timeout(60)
def test_a_run_quit_mid_test_keeps_its_fleet_as_it_was_in_the_summary(web_run: WebRun) -> None:
    assert web_run.summary, "no summary.json"
    assert web_run.summary["fleet"]["final"]["states"]["accepted"] == USERS, web_run.summary


# The start form: a bad swarm option or host is refused where the user looks, nothing starts.


def post(url: str, form: dict[str, Any]) -> dict[str, Any]:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.timeout(60)
def test_a_bad_start_form_is_refused_with_the_option_s_message_and_starts_nothing() -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        LOCUST, "-f", "scenarios/steady.py", "--web-host", "127.0.0.1", "--web-port", str(port),
        "--results-dir", "",
    ]  # fmt: skip
    proc = Child(command)
    try:
        page = poll(proc, f"{base}/", seconds=15)
        match = TEMPLATE_ARGS.search(page)
        assert match, page[-2000:]
        shown = list(json.loads(match[1])["extra_options"])
        form = {"user_count": 2, "spawn_rate": 2}
        refusals = {
            "connectors=0": ({"connectors": "0"}, "ocpp-swarm: --connectors must be 1 to 99"),
            "connectors=two": ({"connectors": "two"}, "--connectors: 'two' is not a whole number"),
            "http host": ({"host": "http://x"}, "--host must be a ws:// or wss:// URL"),
            "nothing there": ({"host": f"ws://127.0.0.1:{free_port()}"}, "cannot connect"),
            "bad versions": ({"ocpp_version": "1.5"}, "--ocpp-version"),
        }
        for case, (fields, message) in refusals.items():
            answer = post(f"{base}/swarm", {**form, **fields})
            assert answer["success"] is False, (case, answer)
            assert message in answer["message"], (case, answer)
        state = json.loads(get(f"{base}/stats/requests")[0])
        assert (state["state"], state["user_count"]) == ("ready", 0), state
        # A good form starts the run.
        assert post(f"{base}/swarm", {**form, "connectors": "2"})["success"] is True
    finally:
        stop(proc)
        stderr = proc.read()[1]
        proc.close()
    assert "Traceback" not in stderr, stderr[-3000:]
    # The options in the order the swarm adds them, those users change most first.
    assert shown[:4] == ["ocpp_version", "connectors", "heartbeat_interval", "authorize_interval"]
