"""What the README promises a new user, checked: its scenario examples do what they say, and
``ocpp-swarm --help`` lists every option of the swarm.

Each run is the real command in a subprocess (importing locust here would monkey-patch this
process), bounded by a timeout, and checked to leave no process behind.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pytest

from tests.test_locust import LOCUST, ROOT, child, finished

README = ROOT / "README.md"


def readme_example(marker: str) -> str:
    """The README's one Python code block that holds ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if marker in block]
    assert len(found) == 1, f"{len(found)} README examples hold {marker!r}"
    return found[0]


def summary_of(results: Path) -> dict:
    (folder,) = [path for path in results.iterdir() if path.is_dir()]
    return json.loads((folder / "summary.json").read_text())


def requests(summary: dict, request_type: str, name: str) -> int:
    rows = [r for r in summary["requests"] if (r["type"], r["name"]) == (request_type, name)]
    return rows[0]["requests"] if rows else 0


@pytest.mark.timeout(60)
def test_a_scenario_s_own_task_runs_at_its_own_wait_time(tmp_path: Path) -> None:
    """The README's VendorFleet, woken five times a second rather than once in 30 to 90 s:
    each wake-up runs its DataTransfer task, none is taken by the base class's idle task."""
    example = readme_example("class VendorFleet")
    assert "wait_time = between(30, 90)" in example
    locustfile = tmp_path / "vendor_fleet.py"
    locustfile.write_text(
        "from locust import constant\n"
        + example.replace("wait_time = between(30, 90)", "wait_time = constant(0.2)")
    )
    users, seconds = 10, 5
    command = [
        LOCUST, "-f", str(locustfile), "VendorFleet", "--headless", "--only-summary",
        "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
        "--results-dir", str(tmp_path / "results"),
    ]  # fmt: skip
    with child(command) as proc:
        finished(proc, timeout=seconds + 30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    transfers = requests(summary_of(tmp_path / "results"), "OCPP", "DataTransfer")
    # Booted within a second, then one every 0.2 s each: about 10 * 4 / 0.2 = 200. Diluted by
    # an idle task on every other wake-up, it would be half that.
    assert transfers >= 0.75 * users * (seconds - 1) / 0.2, transfers


def swarm_parser() -> argparse.ArgumentParser:
    """A parser with the swarm's options only, as it adds them to Locust's."""
    from swarm.locust.options import add_arguments
    from swarm.report import thresholds

    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    thresholds.add_arguments(parser)
    return parser


@pytest.mark.timeout(60)
def test_help_lists_every_swarm_option_grouped_with_its_default() -> None:
    command = [str(Path(sys.executable).parent / "ocpp-swarm"), "--help"]
    with child(command) as proc:
        finished(proc, timeout=30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "--headless" in text  # Locust's own options too
    blocks = {}  # each option's help, as --help prints it
    for action in swarm_parser()._actions:
        (flag,) = [f for f in action.option_strings if f.startswith("--")]
        match = re.search(rf"^  {re.escape(flag)}\b.*?(?=^  -|^\S|\Z)", text, re.M | re.S)
        assert match is not None, f"--help does not list {flag}"
        blocks[flag] = " ".join(match[0].split())
        if action.default not in (None, "", False):
            assert "default" in blocks[flag], blocks[flag]
    for group in ("fleet", "charging", "connections", "run", "security", "thresholds"):
        assert f"\nocpp-swarm {group}:" in text, group
    assert "(default: 60)" in blocks["--authorize-interval"]


def test_help_texts_the_web_ui_shows_read_as_written() -> None:
    """The web UI shows a help text raw, where --help formats it: no % escapes in either."""
    for action in swarm_parser()._actions:
        if getattr(action, "include_in_web_ui", False):
            assert "%" not in action.help, action.help


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # no headings in code
    return {slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


def test_the_readme_leads_with_its_use_and_its_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    sections = re.findall(r"^## (.+)$", re.sub(r"```.*?```", "", text, flags=re.S), re.M)
    assert sections[:3] == ["Contents", "Two commands", "Five-minute tour"], sections
    assert sections.index("Use") < sections.index("How it works"), sections
    assert "python3-venv" in text and "PyPI" in text  # what a fresh machine needs
    for document in (README, ROOT / "docs" / "benchmarks.md"):
        body = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            linked = (document.parent / file).resolve() if file else document
            assert linked.exists(), f"{document.name}: {target}"
            if anchor and linked.suffix == ".md":
                assert anchor in anchors(linked), f"{document.name}: {target}"
