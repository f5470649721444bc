"""A hostile CSMS: whatever codes and action names it sends, what reaches Locust, the
summary, the fleet counts and the pictures comes from a closed vocabulary, the run folder stays
small and the run ends within seconds.

The CSMS accepts the boot and the StatusNotifications, answers every other CALL with a CALLERROR
whose code is a random string (some thousands of characters long, some not even a string), now
and then with a real OCPP code (``InternalError``), and sends each charge point, every 50 ms, a
CALL of a random action (now and then a real one, ``ClearCache``). Every random string carries a
nonce drawn for the run, so one search of each file of the run folder (and of Locust's output)
tells whether any of them got through.

The swarm is the real ``locust`` CLI in a subprocess of its own session (see tests/test_locust.py),
bounded by a timeout that kills its group and checked to leave no process behind; the CSMS runs
in this process, in its own asyncio loop on a thread, and stops with the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import random
import string
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from swarm.report import plots
from tests.scripted import BOOT_ACCEPTED, Script, answer, call_in, in_thread, scripted_csms
from tests.test_locust import LOCUST, child, finished
from tests.test_scenarios import png_size
from tests.test_shutdown import run_folder

USERS = 10
RUN_SECONDS = 8
FLOOD_EVERY = 0.05
"""Seconds between the random CALLs the CSMS sends each charge point."""

END_OF_RUN = 20.0
"""Seconds a run may take to end after its run time: writing the folder and drawing the pictures
take a few seconds; a loaded 2-core CI machine gets plenty of room, minutes fail."""
STARTUP = 10.0
"""Seconds the ``locust`` process may take to start (imports) before its run time begins."""

MAX_ROWS = 30
"""Rows a stats or failures table may have: a handful of actions and error texts are expected."""
MAX_FOLDER_BYTES = 2_000_000
"""The run folder's size: about 1 MB normally, nearly all of it Locust's report.html."""
MAX_OUTPUT_BYTES = 1_000_000
"""Locust's console output (stats tables every 2 s, the log)."""

NOT_AN_OCPP_CODE = "CALLERROR <not an OCPP code>"
UNKNOWN_ACTION = "<unknown action>"

# Characters of the random strings: some that CSV, JSON, HTML and a terminal treat specially.
ALPHABET = string.ascii_letters + string.digits + " ,;:\"'\\/<>&%{}[]\n\té€😀"


class Hostile:
    """The hostile CSMS's handler, and what it sent.

    Every random string it sends (error codes, descriptions, details, action names) starts with
    a short prefix and :attr:`nonce`, so that finding the nonce anywhere finds any of them, even
    cut short.
    """

    def __init__(self) -> None:
        self.seed = random.SystemRandom().getrandbits(64)
        self.rng = random.Random(self.seed)
        self.nonce = f"{self.rng.getrandbits(48):012x}"
        self.first_boot: float | None = None
        self.sent = {
            "random codes": 0,
            "long codes": 0,
            "non-string codes": 0,
            "InternalError": 0,
            "random actions": 0,
            "long actions": 0,
            "ClearCache": 0,
        }
        self._ids = 0

    def token(self, prefix: str, kind: str) -> str:
        """A random string: mostly 1 to 40 characters after the nonce, one in ten thousands."""
        long = self.rng.random() < 0.1
        size = self.rng.randint(2000, 5000) if long else self.rng.randint(1, 40)
        if long:
            self.sent[f"long {kind}"] += 1
        return prefix + self.nonce + "".join(self.rng.choices(ALPHABET, k=size))

    def callerror(self, frame: list[Any]) -> str:
        roll = self.rng.random()
        if roll < 0.1:
            self.sent["InternalError"] += 1
            return json.dumps([4, frame[1], "InternalError", "test", {}])
        code: Any = self.token("Err", "codes")
        self.sent["random codes"] += 1
        if roll < 0.15:  # not even a string: what a CSMS that builds its frames badly sends
            code = [code] if roll < 0.125 else {"code": code}
            self.sent["non-string codes"] += 1
        description = self.token("Why", "codes")
        details = {"detail": self.token("Det", "codes")}
        return json.dumps([4, frame[1], code, description, details])

    def random_call(self) -> str:
        self._ids += 1
        if self.rng.random() < 0.1:
            self.sent["ClearCache"] += 1
            action = "ClearCache"
        else:
            self.sent["random actions"] += 1
            action = self.token("Act", "actions")
        return json.dumps([2, f"h{self._ids}", action, {}])

    async def flood(self, ws: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(FLOOD_EVERY)
                await ws.send(self.random_call())

    async def __call__(self, ws: ServerConnection, script: Script) -> None:
        flood: asyncio.Task[None] | None = None
        try:
            while True:
                frame = await script.receive(ws)
                if frame[0] != 2:
                    continue  # the charge point's answers to the flood
                action = frame[2]
                if action == "BootNotification":
                    await ws.send(answer(frame, BOOT_ACCEPTED))
                    if self.first_boot is None:
                        self.first_boot = time.monotonic()
                    if flood is None:
                        flood = asyncio.create_task(self.flood(ws))
                elif action == "StatusNotification":
                    await ws.send(answer(frame, {}))
                else:
                    await ws.send(self.callerror(frame))
        finally:
            if flood is not None:
                flood.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flood


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


@pytest.mark.timeout(90)
def test_random_codes_and_actions_leave_rows_folder_and_end_of_run_bounded(
    tmp_path: Path,
) -> None:
    hostile = Hostile()
    within = STARTUP + RUN_SECONDS + END_OF_RUN
    with in_thread(lambda: scripted_csms(hostile)) as ((url, _), loop):
        command = [
            LOCUST, "-f", "locustfile.py", "--headless",
            "-u", str(USERS), "-r", str(USERS), "-t", f"{RUN_SECONDS}s", "--host", url,
            "--heartbeat-interval", "0.2", "--authorize-interval", "0",
            "--results-dir", str(tmp_path),
        ]  # fmt: skip
        with child(command) as proc:
            finished(proc, timeout=within)  # else killed, and the test fails: no end in sight
        exited = proc.started + proc.elapsed
        first_boot, sent = call_in(loop, lambda: (hostile.first_boot, dict(hostile.sent)))

    output = proc.stdout + proc.stderr
    assert first_boot is not None, output[-3000:]
    # The run time starts as the users spawn, just before the first boot.
    end_of_run = exited - (first_boot + RUN_SECONDS)
    folder = run_folder(tmp_path)  # every file of a run folder, the pictures among them
    files = sorted(path for path in folder.iterdir() if path.is_file())
    sizes = {path.name: path.stat().st_size for path in files}
    stats = read_csv(folder / "locust_stats.csv")
    failures = read_csv(folder / "locust_failures.csv")
    history_names = {
        (row["Type"], row["Name"]) for row in read_csv(folder / "locust_stats_history.csv")
    }
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    print(
        f"hostile CSMS seed {hostile.seed:#x} nonce {hostile.nonce}: sent {sent}; "
        f"locust exited {proc.returncode} after {proc.elapsed:.1f} s, "
        f"{end_of_run:.1f} s after its run time; stats rows {len(stats)}, "
        f"failures rows {len(failures)}, history names {len(history_names)}, "
        f"summary requests {len(summary['requests'])}; run folder {sum(sizes.values())} bytes "
        f"{sizes}; output {len(output.encode())} bytes"
    )

    # The CSMS was hostile enough: codes and actions of every kind went out, many of them.
    assert sent["random codes"] >= 100 and sent["long codes"] >= 10, sent
    assert sent["non-string codes"] >= 5 and sent["InternalError"] >= 5, sent
    assert sent["random actions"] >= 500 and sent["long actions"] >= 20, sent
    assert sent["ClearCache"] >= 20, sent

    # The end of the run takes seconds, whatever the CSMS sent; Locust's rule for the exit code.
    assert end_of_run < END_OF_RUN, (end_of_run, output[-3000:])
    assert proc.returncode == 1, output[-3000:]  # requests failed: Heartbeats, unknown actions
    assert "Traceback" not in output, output[-3000:]

    # Bounded: the rows, the folder, the console.
    assert len(stats) <= MAX_ROWS, [(row["Type"], row["Name"][:80]) for row in stats]
    assert len(failures) <= MAX_ROWS, [(row["Name"][:80], row["Error"][:80]) for row in failures]
    assert len(history_names) <= MAX_ROWS, sorted(name[:80] for _, name in history_names)
    assert len(summary["requests"]) <= MAX_ROWS, [r["name"][:80] for r in summary["requests"]]
    assert sum(sizes.values()) < MAX_FOLDER_BYTES, sizes
    # The pictures: latency.png has a panel per OCPP and CSMS row, a handful of them.
    panels = [
        row
        for row in summary["requests"]
        if row["type"] in ("OCPP", "CSMS") and row["name"] != "Aggregated"
    ]
    assert png_size(folder / "latency.png") == plots.latency_size(len(panels)), len(panels)
    assert png_size(folder / "fleet.png") == plots.FLEET_SIZE
    assert len(output.encode()) < MAX_OUTPUT_BYTES, output[-3000:]

    # No random string got anywhere: not in any file of the run folder, not in Locust's output.
    nonce = hostile.nonce.encode()
    assert [path.name for path in files if nonce in path.read_bytes()] == []
    assert hostile.nonce not in output, output[-3000:]

    # The closed vocabulary: a random code is <not an OCPP code>, a real one keeps its own row;
    # a CSMS CALL of an action 1.6 does not define is one CSMS row, a real action its own.
    requests = {(row["Type"], row["Name"]): row for row in stats}
    errors = {(row["Method"], row["Name"], row["Error"]): row for row in failures}
    unknown = requests.get(("CSMS", UNKNOWN_ACTION))
    assert unknown is not None, sorted(requests)
    assert int(unknown["Request Count"]) >= sent["random actions"] // 2, (unknown, sent)
    assert int(requests["CSMS", "ClearCache"]["Request Count"]) > 0, sorted(requests)
    assert int(requests["CSMS", "ClearCache"]["Failure Count"]) == 0, sorted(requests)
    not_ocpp = errors.get(("OCPP", "Heartbeat", NOT_AN_OCPP_CODE))
    assert not_ocpp is not None, sorted(errors)
    assert int(not_ocpp["Occurrences"]) >= 50, not_ocpp
    internal = errors.get(("OCPP", "Heartbeat", "CALLERROR InternalError"))
    assert internal is not None, sorted(errors)
    assert int(internal["Occurrences"]) >= 5, internal
    # The fleet's counts in the summary: CALLERRORs by action and code, CSMS calls by action.
    fleet = summary["fleet"]["final"]
    assert set(fleet["callerrors"]) == {"Heartbeat"}, fleet["callerrors"]
    assert set(fleet["callerrors"]["Heartbeat"]) == {"<not an OCPP code>", "InternalError"}, fleet
    assert set(fleet["csms_calls"]) == {UNKNOWN_ACTION, "ClearCache"}, fleet["csms_calls"]
