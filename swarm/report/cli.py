"""Redraw the pictures of earlier runs from the CSV files in their folders.

Usage::

    python -m swarm.report RUN_DIR [RUN_DIR ...]

For example ``python -m swarm.report results/steady-20261124-101500``. It writes
``latency.png`` and ``fleet.png`` into each folder (see :mod:`swarm.report.plots`) and prints their
paths. A folder that doesn't exist is an error (exit code 2) and nothing is drawn.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from swarm.report import plots


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m swarm.report",
        description="Redraw latency.png and fleet.png in the folders of earlier runs.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="a run folder")
    args = parser.parse_args(argv)
    # Check every folder first, so that a typo doesn't leave the job half done.
    for run_dir in args.run_dirs:
        if not run_dir.is_dir():
            parser.exit(2, f"{parser.prog}: error: no such folder: {run_dir}\n")
    for run_dir in args.run_dirs:
        for path in plots.render(run_dir):
            print(path)
    return 0
