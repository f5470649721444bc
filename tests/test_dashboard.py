"""The Charge points tab as a user sees it: a real ``locust`` web UI, in the system's Chromium
driven by Playwright, shows the fleet's live dashboard above the tab's table.

Chromium is the system's package: where it is missing, the test installs it with apt-get if it
can (as root, within a few minutes), and is skipped saying so where it cannot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scripted import free_port
from tests.test_locust import LOCUST, Child
from tests.test_webui import poll, stop

USERS = 10

# As root, with no network but the package registries: no sandbox, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def system_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def install_chromium() -> str:
    """apt-get's chromium; why not, where it cannot be had."""
    if not shutil.which("apt-get") or os.geteuid() != 0:
        return "no apt-get, or not root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ):
        try:
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=True)
        except subprocess.CalledProcessError as exc:
            return f"{' '.join(command)} failed: {exc.stderr.decode(errors='replace')[-300:]}"
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"{' '.join(command)}: {exc}"
    return ""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    path = system_chromium()
    if path is None:
        reason = install_chromium()
        path = system_chromium()
        if path is None:
            pytest.skip(f"no Chromium for the browser test ({reason}): apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def last_values(page: object, chart: str) -> dict[str, float]:
    """The last value of each line of a chart, as the chart itself records it."""
    found = page.get_attribute(f'#ocpp-swarm-dashboard svg[data-chart="{chart}"]', "data-last")
    return json.loads(found or "{}")


@pytest.mark.timeout(120)
def test_the_charge_points_tab_draws_the_fleet_live(browser: object, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        LOCUST, "-f", "scenarios/steady.py", "--web-host", "127.0.0.1", "--web-port", str(port),
        "--autostart", "-u", str(USERS), "-r", str(USERS), "--heartbeat-interval", "0.5",
        "--authorize-interval", "1", "--results-dir", str(tmp_path), "--autoquit", "0",
        "-t", "60s",
    ]  # fmt: skip
    proc = Child(command)
    try:
        poll(proc, f"{base}/", seconds=15)
        page = browser.new_page()
        try:
            page.goto(f"{base}/", wait_until="domcontentloaded")
            page.get_by_role("tab", name="Charge points").click()
            page.wait_for_selector('#ocpp-swarm-dashboard svg[data-chart="Charge points"]')
            deadline = time.monotonic() + 30
            while last_values(page, "Charge points").get("accepted") != USERS:
                assert time.monotonic() < deadline, last_values(page, "Charge points")
                page.wait_for_timeout(500)
            heartbeat = "latency OCPP Heartbeat"
            page.wait_for_selector(f'svg[data-chart="{heartbeat}"] path.line[data-name="p99"]')
            latency = last_values(page, heartbeat)
            assert set(latency) == {"p50", "p95", "p99"}, latency
            # The samples' own resolution: a loopback Heartbeat takes a fraction of a ms, which
            # Locust's whole milliseconds would round.
            assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] < 1000, latency
            assert latency["p50"] != round(latency["p50"]), latency
            for chart in ("Failures per second", "CSMS calls per second", "latency OCPP Authorize"):
                assert page.locator(f'svg[data-chart="{chart}"]').count() == 1, chart
            assert "accepted\t10" in page.locator("table").inner_text()  # the table stays
            page.screenshot(path=str(tmp_path / "charge-points.png"), full_page=True)
            # Another tab hides it; back again, it is drawn again.
            page.get_by_role("tab", name="Statistics").click()
            page.wait_for_selector("#ocpp-swarm-dashboard", state="hidden")
            page.get_by_role("tab", name="Charge points").click()
            page.wait_for_selector('#ocpp-swarm-dashboard svg[data-chart="Charge points"]')
        finally:
            page.close()
    finally:
        stop(proc)
        stderr = proc.read()[1]
        proc.close()
    assert "Traceback" not in stderr, stderr[-3000:]
