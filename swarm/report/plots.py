"""Pictures of a run, drawn from the CSV files in its folder.

:func:`render` writes two PNG files into a run folder:

- ``latency.png``: the p50, p95 and p99 latency of each OCPP and CSMS action over time (OCPP 1.6's,
  then 2.0.1's), one panel per action, against the number of connected charge points, with a
  red mark at each second in which some of the action's round trips failed;
- ``fleet.png``: the charge points in each state over time, how many are charging, and the
  failures per second; below, the power the fleet's sessions draw (``fleet.csv``'s
  ``power_w``) and, when the run folder has a ``caps.csv``, the caps a scenario had the CSMS set.

It reads ``timeline.csv`` and ``fleet.csv``, both written by the swarm every second: the
timeline holds each second's percentiles at the samples' own resolution (a run folder from
before it had one is drawn from Locust's ``locust_stats_history.csv``, in whole milliseconds
over a sliding window). Either may be missing, hold only a header or
end in a half-written row: malformed rows are skipped, and a picture without data says "no data"
instead of failing, so that a run that ended at once still gets its pictures.

matplotlib is imported only when drawing: a Locust process may import this module, and importing
matplotlib costs it a second at startup.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from swarm.protocol.samples import CSMS, CSMS201, OCPP, OCPP201
from swarm.report.fleet import CONNECTED
from swarm.report.timeline import TIMELINE_CSV

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FLEET_SIZE", "latency_size", "render"]

STATS_HISTORY_CSV = "locust_stats_history.csv"
FLEET_CSV = "fleet.csv"
LATENCY_PNG = "latency.png"
FLEET_PNG = "fleet.png"
CAPS_CSV = "caps.csv"
"""Written by a scenario that caps the fleet's power (``scenarios/load_balancing.py``): rows of
``timestamp``, ``watts`` and ``stations``: from that time, the watts the ``stations`` capped
may draw in all; ``watts`` empty from when the cap is lifted."""

DPI = 100
WIDTH = 1200
FLEET_SIZE = (WIDTH, 750)

# Request types drawn in latency.png, in this order: OCPP 1.6's, then 2.0.1's. "WebSocket" holds
# connection events and the "Aggregated" row mixes every action: neither is an action's latency.
LATENCY_TYPES = (OCPP, CSMS, OCPP201, CSMS201)
PERCENTILES = (("50%", "p50"), ("95%", "p95"), ("99%", "p99"))

# States stacked in fleet.png, bottom up: (label, columns of fleet.csv added together, colour).
FLEET_STACK = (
    ("connecting", ("connecting", "booting"), "tab:blue"),
    ("accepted", ("accepted",), "tab:green"),
    ("pending", ("pending",), "gold"),
    ("rejected", ("rejected",), "tab:orange"),
    ("boot failed", ("boot failed",), "tab:red"),
    ("offline", ("offline",), "silver"),
)

Series = dict[str, list[float]]


def latency_size(panels: int) -> tuple[int, int]:
    """Size of ``latency.png`` in pixels (width, height) for a number of panels.

    Panels go in two columns; there's at least one row, for the "no data" panel.
    """
    rows = max(1, math.ceil(panels / 2))
    return WIDTH, 120 + 260 * rows


def render(run_dir: Path) -> list[Path]:
    """Draw ``latency.png`` and ``fleet.png`` into a run folder from its CSV files.

    Missing or empty CSV files give pictures that say "no data".

    Args:
        run_dir: The run folder; it must exist.

    Returns:
        The paths of the pictures written.

    """
    run_dir = Path(run_dir)
    failures: dict[tuple[str, str], Series] = {}
    if (run_dir / TIMELINE_CSV).exists():
        latency, failures = read_timeline(run_dir / TIMELINE_CSV)
    else:
        latency = read_latency(run_dir / STATS_HISTORY_CSV)
    fleet = read_fleet(run_dir / FLEET_CSV)
    # Both pictures count seconds from the first row of either file, so their times agree.
    starts = [min(s["t"]) for s in latency.values()] + fleet["t"][:1]
    start = min(starts, default=0.0)

    title = run_dir.resolve().name
    paths = [run_dir / LATENCY_PNG, run_dir / FLEET_PNG]
    _save(draw_latency(latency, fleet, start, title, failures), paths[0])
    caps = read_caps(run_dir / CAPS_CSV)
    _save(draw_fleet(fleet, start, title, failures, caps), paths[1])
    return paths


def read_timeline(
    path: Path,
) -> tuple[dict[tuple[str, str], Series], dict[tuple[str, str], Series]]:
    """Read ``timeline.csv``: the percentiles of each action of :data:`LATENCY_TYPES`, as
    :func:`read_latency` gives them (a second without requests between two with reads as NaN,
    a gap in the line), and the failures of every action that had any, as
    ``{(type, name): {"t": [...], "failures": [...]}}`` (only the seconds with failures)."""
    latency: dict[tuple[str, str], Series] = {}
    failures: dict[tuple[str, str], Series] = {}
    for row in _rows(path):
        try:
            key = (row["type"], row["name"])
            t, failed = float(row["second"]), int(row["failures"])
            values = [float(row[column]) for _, column in PERCENTILES]
        except (KeyError, ValueError):
            continue
        if failed:
            entry = failures.setdefault(key, {"t": [], "failures": []})
            entry["t"].append(t)
            entry["failures"].append(failed)
        if key[0] in LATENCY_TYPES:
            series = latency.setdefault(key, _series())
            if series["t"] and t - series["t"][-1] > 1:  # no request meanwhile
                series["t"].append(series["t"][-1] + 1)
                for _, column in PERCENTILES:
                    series[column].append(math.nan)
            series["t"].append(t)
            for (_, column), value in zip(PERCENTILES, values, strict=True):
                series[column].append(value)
    order = sorted(latency, key=lambda key: (LATENCY_TYPES.index(key[0]), key[1]))
    return {key: latency[key] for key in order}, failures


def read_latency(path: Path) -> dict[tuple[str, str], Series]:
    """Read the percentiles of each action of :data:`LATENCY_TYPES` from Locust's stats history.

    Returns ``{(type, name): {"t": [...], "p50": [...], "p95": [...], "p99": [...]}}``, in the
    order of the panels: OCPP, CSMS, OCPP201, then CSMS201, each sorted by name. ``N/A`` (no
    request yet) and the zeros of a window without requests read as NaN, which leaves a gap in
    the line.
    """
    series: dict[tuple[str, str], Series] = {}
    for row in _rows(path):
        if row.get("Type") not in LATENCY_TYPES:
            continue
        try:
            values = [float(row["Timestamp"])]
            values += [_percentile(row[column]) for column, _ in PERCENTILES]
            if not float(row["Requests/s"]):
                # No request in the window: Locust writes 0 for its percentiles, not a gap.
                values[1:] = [math.nan] * len(PERCENTILES)
        except (KeyError, ValueError):
            continue
        entry = series.setdefault((row["Type"], row["Name"]), _series())
        for key, value in zip(("t", *(key for _, key in PERCENTILES)), values, strict=True):
            entry[key].append(value)
    order = sorted(series, key=lambda key: (LATENCY_TYPES.index(key[0]), key[1]))
    return {key: series[key] for key in order}


def read_fleet(path: Path) -> Series:
    """Read the charge point states from ``fleet.csv``.

    Returns ``{"t": [...], "connecting": [...], ...}``: the file's columns, with
    ``timestamp`` as ``t``, and ``connected`` added; ``power_w`` NaN in a file from before it
    had that column.
    """
    columns = ("timestamp", *dict.fromkeys(c for _, cs, _ in FLEET_STACK for c in cs), "charging")
    fleet: Series = {"t": [], "connected": [], "power_w": [], **{c: [] for c in columns[1:]}}
    for row in _rows(path):
        try:
            values = dict(zip(columns, map(float, (row[c] for c in columns)), strict=True))
            values["power_w"] = float(row.get("power_w", "nan"))
        except (KeyError, ValueError):
            continue
        fleet["t"].append(values.pop("timestamp"))
        fleet["connected"].append(sum(values[c] for c in CONNECTED))
        for column, value in values.items():
            fleet[column].append(value)
    return fleet


def read_caps(path: Path) -> Series:
    """Read :data:`CAPS_CSV`: ``{"t": [...], "watts": [...]}``, ``watts`` NaN where the cap
    is lifted; empty if there is no such file."""
    caps: Series = {"t": [], "watts": []}
    for row in _rows(path):
        try:
            t, watts = float(row["timestamp"]), float(row["watts"] or "nan")
        except (KeyError, ValueError):
            continue
        caps["t"].append(t)
        caps["watts"].append(watts)
    return caps


def draw_latency(
    latency: dict[tuple[str, str], Series],
    fleet: Series,
    start: float,
    title: str,
    failures: dict[tuple[str, str], Series] | None = None,
) -> Figure:
    """Draw the latency of each action, against the connected charge points; a red mark at
    the top of a panel for each second in which the action had ``failures``."""
    failures = failures or {}
    fig = _figure(latency_size(len(latency)), f"{title}: latency per action")
    if not latency:
        _no_data(fig.subplots(), STATS_HISTORY_CSV)
        return fig
    grid = list(fig.subplots(math.ceil(len(latency) / 2), 2, squeeze=False).flat)
    panels = grid[: len(latency)]
    for ax in grid[len(latency) :]:  # the empty slot beside an odd last panel
        ax.remove()
    end = max((max(s["t"]) for s in latency.values()), default=start)
    end = max(end, *fleet["t"][-1:], start + 1)
    connected_t = _since(fleet["t"], start)
    for ax, ((kind, name), series) in zip(panels, latency.items(), strict=True):
        ax.set_title(f"{kind} {name}", fontsize="medium")
        ax.set_xlim(0, end - start)
        ax.set_ylabel("ms")
        if connected_t:
            # On a twin axis behind the lines: put the latency axis on top, see-through.
            twin = ax.twinx()
            twin.fill_between(connected_t, fleet["connected"], color="0.88", lw=0, step="post")
            twin.set_ylim(bottom=0)
            twin.set_ylabel("connected", color="0.5")
            twin.tick_params(axis="y", colors="0.5")
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
        t = _since(series["t"], start)
        for _, key in PERCENTILES:
            ax.plot(t, series[key], lw=1.2, label=key)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        failed = failures.get((kind, name))
        if failed:
            ax.set_title(f"{kind} {name}: {sum(failed['failures']):,} failed", fontsize="medium")
            top = ax.get_xaxis_transform()  # x in seconds, y from 0 (bottom) to 1 (top)
            ax.plot(
                _since(failed["t"], start),
                [0.97] * len(failed["t"]),
                "|",
                color="red",
                ms=8,
                transform=top,
                label="failures",
            )
    for ax in panels[-2:]:  # those with no panel below
        ax.set_xlabel("seconds since start")
    handles, labels = panels[0].get_legend_handles_labels()
    if failures and "failures" not in labels:
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], color="red", marker="|", ls="none", ms=8))
        labels.append("failures")
    if connected_t:
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.88"))
        labels.append("connected charge points")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig


def draw_fleet(
    fleet: Series,
    start: float,
    title: str,
    failures: dict[tuple[str, str], Series] | None = None,
    caps: Series | None = None,
) -> Figure:
    """Draw the charge points in each state, stacked, those charging, and the failures per
    second of every action together; below, the power drawn and the ``caps`` set."""
    fig = _figure(FLEET_SIZE, f"{title}: charge points")
    if not fleet["t"]:
        _no_data(fig.subplots(), FLEET_CSV)
        return fig
    ax, power = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    t = _since(fleet["t"], start)
    stack = [[sum(v) for v in zip(*map(fleet.get, cs), strict=True)] for _, cs, _ in FLEET_STACK]
    labels = [label for label, _, _ in FLEET_STACK]
    colors = [color for _, _, color in FLEET_STACK]
    ax.stackplot(t, stack, labels=labels, colors=colors, alpha=0.8, lw=0, step="post")
    ax.step(t, fleet["charging"], where="post", color="black", lw=1.5, label="charging")
    ax.set_xlim(0, max(t[-1], 1))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("charge points")
    ax.grid(alpha=0.3)
    per_second: dict[float, int] = {}
    for failed in (failures or {}).values():
        for second, count in zip(failed["t"], failed["failures"], strict=True):
            per_second[second] = per_second.get(second, 0) + count
    if per_second:
        twin = ax.twinx()
        seconds = sorted(per_second)
        twin.vlines(
            _since(seconds, start),
            0,
            [per_second[s] for s in seconds],
            color="red",
            lw=1.5,
            label="failures per second",
        )
        twin.set_ylim(bottom=0)
        twin.set_ylabel("failures per second", color="red")
        twin.tick_params(axis="y", colors="red")
    # Outside the plot, so that it never hides the areas.
    fig.legend(loc="outside right upper")
    _draw_power(power, fleet, start, caps or {"t": [], "watts": []})
    return fig


def _draw_power(ax: Axes, fleet: Series, start: float, caps: Series) -> None:
    """The fleet's power drawn, in kW, and the sum of the caps set (to the end of ``fleet``)."""
    t = _since(fleet["t"], start)
    ax.step(t, [w / 1000 for w in fleet["power_w"]], where="post", color="tab:purple")
    ax.set_ylabel("power drawn, kW")
    ax.set_xlabel("seconds since start")
    ax.grid(alpha=0.3)
    # Each cap holds until the next row, the last one to the end of the run.
    cap_t: list[float] = []
    cap_kw: list[float] = []
    for at, watts in zip(_since(caps["t"], start), caps["watts"], strict=True):
        if at < t[-1]:
            cap_t.append(at)
            cap_kw.append(watts / 1000)
    if cap_t:
        ax.step([*cap_t, t[-1]], [*cap_kw, cap_kw[-1]], where="post", color="red", ls="--")
        ax.legend(["power drawn", "caps set, summed"], loc="upper left", fontsize="small")
    ax.set_ylim(bottom=0)


def _rows(path: Path) -> Iterator[dict[str, str]]:
    """Yield the rows of a CSV file that have as many cells as its header; none if missing."""
    try:
        with path.open(newline="", errors="replace") as file:
            reader = csv.reader(file)
            header = next(reader, None) or []
            while True:
                try:
                    row = next(reader)
                except csv.Error:  # e.g. a NUL byte: skip the line
                    continue
                except StopIteration:
                    return
                if len(row) == len(header):
                    yield dict(zip(header, row, strict=True))
    except (FileNotFoundError, csv.Error):
        return


def _percentile(cell: str) -> float:
    return math.nan if cell == "N/A" else float(cell)


def _series() -> Series:
    return {"t": [], **{key: [] for _, key in PERCENTILES}}


def _since(times: Sequence[float], start: float) -> list[float]:
    return [t - start for t in times]


def _figure(size: tuple[int, int], title: str) -> Figure:
    from matplotlib.figure import Figure

    # A Figure, not pyplot: no global state or backend to choose (savefig draws PNG with Agg),
    # so it's thread-safe and garbage-collected.
    # Constrained layout fits the panels into the figure without changing its size.
    width, height = size
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    fig.suptitle(title)
    return fig


def _no_data(ax: Axes, filename: str) -> None:
    ax.text(0.5, 0.5, f"no data in {filename}", ha="center", va="center", color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, path: Path) -> None:
    # No bbox_inches="tight": it would change the size in pixels.
    fig.savefig(path, dpi=DPI)
