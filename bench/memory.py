"""Where a charge point's memory goes: each part of it measured at N charge points, in one run.

    python -m bench.memory                          # 5,000 charge points, about two minutes
    python -m bench.memory --charge-points 15000    # the issue's figure

One embedded CSMS serves every measurement that connects. Each measurement is a fresh process
(``--measure <what>``, one JSON line on stdout; memory a process freed would be reused and hide
the growth): it holds N things, waits ``--settle`` seconds, and divides the growth of its
resident memory (RSS) since before the first by N, as :mod:`bench.capacity` does. Charge points
heartbeat every ``--interval`` seconds meanwhile, so each has sent one. An event loop runs on a
thread of its own, as the engine's does. The process then ends; the kernel closes its sockets.

- ``lean``: N lean protocol connections (:class:`bench.lean_client.ChargePoint`), booted, idle:
  the floor of a connection on websockets and uvloop;
- ``sessions``: N :class:`~swarm.protocol.rpc.OcppSession` (``open_session``, a BootNotification
  each), idle: the connection as the swarm makes it, with no charge point;
- ``state``: N 1.6 charge points and N 2.0.1 stations, built and booted, not connected (RSS),
  then another N of each counted by tracemalloc;
- ``engine``: N charge points booted in the swarm's engine, no Locust, their frames traced (as
  by default: their rings as full as the frames so far make them; ``python -m bench.trace``);
- ``users``: N of the swarm's Locust users that start no charge point, in a Locust Environment
  (as :mod:`bench.locust_client` runs it); then N bare greenlets, asleep;
- ``locust``: N charge points booted in Locust, as :mod:`bench.capacity` holds them: the total.

After its reading a process sizes what each of ``--sample`` charge points (or users) owns, by
part: :func:`owned`, ``sys.getsizeof`` of the objects a part's roots reach that another charge
point does not reach too; and the users' greenlets' saved C stacks. The table gives each part in
KiB per charge point and as a share of the total. The rows under a part split it; the last of
them is the part less the others, what no Python object shows (libuv's handles, a greenlet's
frames, the allocators' overhead). The rest is the total less the parts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
import traceback
import tracemalloc
import types
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from bench.measure import BOOT_LIMIT, log, rss_kib

MEASUREMENTS = ("lean", "sessions", "state", "engine", "users", "locust")
IDLE = 3600.0
"""Seconds between the lean connections' Heartbeats: none comes while they are held."""

MANAGED_DICT = 1 << 4
"""Python 3.11's ``Py_TPFLAGS_MANAGED_DICT``: the instance's attributes are a values array, its
``__dict__`` is made only when asked for."""
EMPTY_DICT = sys.getsizeof({})

# Parts of a connection, of a charge point's state, of a Locust user: labels of owned()'s groups.
SESSION = "OcppSession: slots, lock, bound callbacks"
CONNECTION = "the Connection: slots, bound callbacks"
PROTOCOL = "ClientProtocol: parser, reader, the response"
TRANSPORT = "uvloop's transport object"
STATION = "the station object: slots, small values"
CONNECTORS = "connectors (0 and 1)"
KEY_STORE = "key store: Configuration, values, observer"
SCHEDULE = "schedule: the _timers dict"
QUEUES = "queues: outbox, requests deque, jobs"
TASK = "its task: coroutines, sleep future, timer handle"
TRACE = "its frame trace: the ring of its last frames"
USER = "the User object and its attributes"
TREE = "gevent's greenlet tree: spawning stack"
GREENLET = "the gevent Greenlet object"
STACK = "the greenlet's saved C stack"


def _boundary(obj: object) -> bool:
    """Objects a walk does not enter: classes, modules, code, event loops (shared by all)."""
    return isinstance(obj, type | types.ModuleType | types.CodeType | asyncio.AbstractEventLoop)


def _module_dicts() -> set[int]:
    return {id(vars(module)) for module in list(sys.modules.values()) if module is not None}


def measure(obj: object) -> tuple[int, list[object]]:
    """``sys.getsizeof(obj)`` and the objects it refers to. An instance whose attributes live
    inline (Python 3.11) counts them as its ``__dict__`` does, less an empty dict's size."""
    size, referents = sys.getsizeof(obj), gc.get_referents(obj)
    if type(obj).__flags__ & MANAGED_DICT:
        try:
            attributes = object.__getattribute__(obj, "__dict__")
        except Exception:  # no dict to count, whatever the reason
            return size, referents
        if not any(referent is attributes for referent in referents):
            size += sys.getsizeof(attributes) - EMPTY_DICT
    return size, referents


def reach(roots: Iterable[object], fence: Container[int] = ()) -> set[int]:
    """Ids of the objects reachable from ``roots``, neither entering objects whose id is in
    ``fence`` nor classes, modules, their globals, code and event loops."""
    modules, seen = _module_dicts(), set()
    pending = list(roots)
    while pending:
        obj = pending.pop()
        key = id(obj)
        if key in seen or key in fence or key in modules or _boundary(obj):
            continue
        seen.add(key)
        pending.extend(gc.get_referents(obj))
    return seen


def owned(groups: Sequence[tuple[str, Sequence[object]]], shared: Container[int]) -> dict[str, int]:
    """Bytes per group label of the objects each group's roots reach that are not ``shared``
    (ids; what another charge point reaches too, by :func:`reach`), that no earlier group
    reached, and that are not reached only through another group's root: each object counted
    once, in the first group that owns it. Classes, modules, code and loops are not entered."""
    roots = {id(root) for _, group in groups for root in group}
    modules, seen = _module_dicts(), set()
    sizes: dict[str, int] = {}
    for label, group in groups:
        mine = {id(root) for root in group}
        pending, total = list(group), 0
        while pending:
            obj = pending.pop()
            key = id(obj)
            if (
                key in seen
                or key in shared
                or key in modules
                or (key in roots and key not in mine)
                or _boundary(obj)
            ):
                continue
            seen.add(key)
            size, referents = measure(obj)
            total += size
            pending.extend(referents)
        sizes[label] = sizes.get(label, 0) + total
    return sizes


def mean_kib(
    items: Sequence[object],
    groups: Callable[[Any], Sequence[tuple[str, Sequence[object]]]],
    sample: int,
    fence: Iterable[int] = (),
) -> dict[str, float]:
    """KiB per group that each of ``sample`` of ``items`` owns (:func:`owned`), on average;
    what the first of them reaches counts as shared by all."""
    reference, others = items[0], items[1 : sample + 1]
    shared = reach((root for _, group in groups(reference) for root in group), set(fence))
    shared |= set(fence)
    totals: dict[str, int] = {}
    for item in others:
        for label, size in owned(groups(item), shared).items():
            totals[label] = totals.get(label, 0) + size
    return {label: size / len(others) / 1024 for label, size in totals.items()}


def connection_groups(session: Any) -> list[tuple[str, Sequence[object]]]:
    connection = session.connection
    return [
        (SESSION, [session]),
        (PROTOCOL, [connection.protocol]),
        (TRANSPORT, [connection.transport]),
        (CONNECTION, [connection]),
    ]


def state_groups(station: Any) -> list[tuple[str, Sequence[object]]]:
    store = getattr(station, "configuration", None) or station.device_model
    return [
        (STATION, [station]),
        (CONNECTORS, [station.connectors]),
        (KEY_STORE, [store]),
        (SCHEDULE, [station._timers]),
        (QUEUES, [station.outbox, station._requests, station._jobs]),
    ]


# The measurements, each in its own process.


def _drop(_sample: object) -> None:
    """A sample sink that keeps nothing: held samples would count as the charge points'."""


def _pace(started: float, index: int, rate: float) -> float:
    """Seconds to wait before starting the ``index``-th thing at ``rate`` per second."""
    return max(0.0, started + index / rate - time.monotonic())


def _in_thread(main: Callable[[], Any]) -> Any:
    """``main()``'s coroutine run on the swarm's event loop, on a thread of its own."""
    from swarm.eventloop import run

    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(run(main())))
    thread.start()
    thread.join()
    if not box:
        raise SystemExit("the measurement failed in its loop thread")
    return box[0]


async def _lean(options: argparse.Namespace) -> dict[str, Any]:
    from bench.lean_client import ChargePoint

    loop, address, n = asyncio.get_running_loop(), urlsplit(options.url), options.charge_points
    counts = {"booted": 0, "failures": 0, "connect_failures": 0}
    held: list[asyncio.BaseTransport] = []
    base, started = rss_kib(), time.monotonic()
    for i in range(n):
        url = f"{options.url}/LEAN-{i:06d}"
        with contextlib.suppress(OSError):  # not booted: held counts those that are
            transport, _ = await loop.create_connection(
                lambda url=url: ChargePoint(url, IDLE, [], counts), address.hostname, address.port
            )
            held.append(transport)
        await asyncio.sleep(_pace(started, i + 1, options.spawn_rate))
    while counts["booted"] < n and time.monotonic() - started < BOOT_LIMIT:
        await asyncio.sleep(0.05)
    await asyncio.sleep(options.settle)
    return {"held": counts["booted"], "kib": (rss_kib() - base) / max(1, counts["booted"])}


async def _sessions(options: argparse.Namespace) -> dict[str, Any]:
    from swarm.ocpp16.dialect import OCPP16
    from swarm.protocol.rpc import OcppSession, open_session
    from swarm.station.config import ChargePointConfig

    config = ChargePointConfig()
    sessions: list[OcppSession] = []

    async def one(i: int) -> None:
        session = await open_session(
            f"{options.url}/SES-{i:06d}",
            _drop,
            dialect=OCPP16,
            call_timeout=config.call_timeout,
            connect_timeout=config.connect_timeout,
            ping_interval=config.ping_interval,
        )
        payload = {"chargePointVendor": config.vendor, "chargePointModel": config.model}
        await session.call("BootNotification", payload)
        sessions.append(session)

    base, started = rss_kib(), time.monotonic()
    tasks = []
    for i in range(options.charge_points):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(_pace(started, i + 1, options.spawn_rate))
    await asyncio.gather(*tasks, return_exceptions=True)
    del tasks
    await asyncio.sleep(options.settle)
    return {"held": len(sessions), "kib": (rss_kib() - base) / max(1, len(sessions))}


def _config(options: argparse.Namespace, version: str) -> Any:
    from swarm.station.config import ChargePointConfig

    return ChargePointConfig(
        heartbeat_interval=options.interval, authorize_interval=0, versions=((version, 1),)
    )


async def _state(options: argparse.Namespace) -> dict[str, Any]:
    from swarm.engine import STATIONS
    from swarm.station.schedule import HEARTBEAT
    from swarm.station.state import State

    loop, rng, n = asyncio.get_running_loop(), random.Random(1), options.charge_points
    kept: list[list[Any]] = []

    def booted(version: str) -> list[Any]:
        """N stations as a boot leaves them: the interval stored, the first beat set."""
        config, stations = _config(options, version), []
        for i in range(n):
            cp_id = f"MEM-{len(kept)}-{i:06d}"
            station = STATIONS[version](cp_id, f"{options.url}/{cp_id}", config, _drop)
            station._start_clean()
            station.state = State.ACCEPTED
            station._booted(config.heartbeat_interval)
            station._timers[HEARTBEAT] = loop.time() + rng.uniform(0, config.heartbeat_interval)
            stations.append(station)
        kept.append(stations)
        return stations

    figures: dict[str, Any] = {}
    for version in ("1.6", "2.0.1"):  # both before tracemalloc, whose memory is freed after
        gc.collect()
        base = rss_kib()
        booted(version)
        figures[f"rss {version}"] = (rss_kib() - base) / n
    tracemalloc.start()
    for version in ("1.6", "2.0.1"):
        before = tracemalloc.get_traced_memory()[0]
        booted(version)
        figures[f"traced {version}"] = (tracemalloc.get_traced_memory()[0] - before) / n / 1024
    tracemalloc.stop()
    for version, stations in zip(("1.6", "2.0.1"), kept, strict=False):
        figures[f"parts {version}"] = mean_kib(stations, state_groups, options.sample)
    return figures


def _engine(options: argparse.Namespace) -> dict[str, Any]:
    from swarm.engine import Engine
    from swarm.protocol.trace import Tracer

    engine, config, n = Engine(tracer=Tracer()), _config(options, "1.6"), options.charge_points
    engine.start()

    def pause(seconds: float) -> None:
        """Sleep, handing the samples on as Locust's pump would (held, they would count)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            engine.drain()
            time.sleep(min(0.1, left))
        engine.drain()

    base, started = rss_kib(), time.monotonic()
    for i in range(n):
        cp_id = f"ENG-{i:06d}"
        engine.start_charge_point(cp_id, f"{options.url}/{cp_id}", config)
        pause(_pace(started, i + 1, options.spawn_rate))
    while engine.census()["accepted"] < n and time.monotonic() - started < BOOT_LIMIT:
        pause(0.05)
    pause(options.settle)
    held = engine.census()["accepted"]
    figures: dict[str, Any] = {"held": held, "kib": (rss_kib() - base) / max(1, held)}
    # The engine's containers hold every charge point: a walk must not enter them.
    fence = [id(engine), id(engine._charge_points), id(engine._samples)]

    def groups(entry: tuple[Any, Any]) -> list[tuple[str, Sequence[object]]]:
        station, task = entry
        return [
            *connection_groups(station._session),
            *state_groups(station),
            (TASK, [task, entry]),
            (TRACE, [station.trace]),
        ]

    done = threading.Event()

    def walk() -> None:  # in the loop's thread: the charge points hold still meanwhile
        try:
            entries = [e for e in engine._charge_points.values() if e[0]._session is not None]
            figures["parts"] = mean_kib(entries, groups, options.sample, fence)
        finally:
            done.set()

    engine._loop.call_soon_threadsafe(walk)
    done.wait(120)
    return figures


def _environment(options: argparse.Namespace, user_class: type) -> tuple[Any, Any]:
    """A Locust Environment and local runner run as a library, the swarm's hooks fired."""
    from locust import events
    from locust.argument_parser import parse_options
    from locust.env import Environment

    arguments = ["--heartbeat-interval", str(options.interval), "--authorize-interval", "0"]
    arguments += ["--serial-prefix", "MEM-", "--results-dir", ""]
    environment = Environment(
        user_classes=[user_class],
        events=events,
        host=options.url,
        parsed_options=parse_options(arguments),
    )
    runner = environment.create_local_runner()
    events.init.fire(environment=environment, runner=runner, web_ui=None)
    return environment, runner


def _users(options: argparse.Namespace) -> dict[str, Any]:
    import gevent

    from swarm.engine import Engine
    from swarm.locust.user import ChargePointUser

    class IdleUser(ChargePointUser):
        """The swarm's user: its engine starts no charge point."""

    Engine.start_charge_point = lambda *_: None  # type: ignore[method-assign]
    environment, runner = _environment(options, IdleUser)
    n = options.charge_points
    base, started = rss_kib(), time.monotonic()
    runner.start(n, spawn_rate=options.user_spawn_rate)
    while runner.user_count < n and time.monotonic() - started < BOOT_LIMIT:
        gevent.sleep(0.05)
    gevent.sleep(options.settle)
    held = runner.user_count
    figures: dict[str, Any] = {"held": held, "kib": (rss_kib() - base) / max(1, held)}
    greenlets = list(runner.user_greenlets)
    figures["stack"] = sum(g._stack_saved for g in greenlets) / len(greenlets) / 1024

    def groups(greenlet: Any) -> list[tuple[str, Sequence[object]]]:
        tree = [greenlet.spawning_stack, greenlet.spawn_tree_locals, greenlet.spawning_greenlet]
        return [(USER, [greenlet.args[0]]), (TREE, tree), (GREENLET, [greenlet])]

    hub = gevent.get_hub()
    fence = [id(environment), id(runner), id(runner.user_greenlets), id(hub), id(hub.loop)]
    figures["parts"] = mean_kib(greenlets, groups, options.sample, fence)
    # For reference: as many bare greenlets, each asleep as the users are.
    base = rss_kib()
    bare = [gevent.spawn(gevent.sleep, IDLE) for _ in range(n)]
    gevent.sleep(1.0)
    figures["bare greenlet"] = (rss_kib() - base) / len(bare)
    return figures


def _locust(options: argparse.Namespace) -> dict[str, Any]:
    import gevent

    from swarm.locust.user import ChargePointUser, Swarm

    class MemoryChargePoint(ChargePointUser):
        pass

    environment, runner = _environment(options, MemoryChargePoint)
    swarm, n = Swarm.of(environment), options.charge_points
    base, started = rss_kib(), time.monotonic()
    runner.start(n, spawn_rate=options.spawn_rate)
    accepted = lambda: swarm.engine.census()["accepted"]  # noqa: E731
    while accepted() < n and time.monotonic() - started < BOOT_LIMIT:
        gevent.sleep(0.05)
    gevent.sleep(options.settle)
    held = accepted()
    return {"held": held, "kib": (rss_kib() - base) / max(1, held)}


def _child(options: argparse.Namespace) -> NoReturn:
    from swarm import limits

    limits.raise_open_file_limit()
    what = options.measure
    try:
        if what in ("lean", "sessions", "state"):
            figures = _in_thread(
                lambda: {"lean": _lean, "sessions": _sessions, "state": _state}[what](options)
            )
        else:
            figures = {"engine": _engine, "users": _users, "locust": _locust}[what](options)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    print(json.dumps(figures), flush=True)
    os._exit(0)  # the kernel closes the sockets: thousands of close handshakes would take long


# The table.


class Row(NamedTuple):
    label: str
    kib: float
    how: str
    depth: int = 0
    """0: a part; 1: a row that splits the part above it; -1: for reference, no share."""


def _split(
    part: float, parts: Mapping[str, float], labels: Sequence[str], how: str, *more: Row
) -> list[Row]:
    """Rows of ``parts`` (and ``more``) under a part of ``part`` KiB, and a last one for the
    part less them: what no Python object shows."""
    split = [*(Row(label, parts.get(label, 0.0), how, 1) for label in labels), *more]
    outside = part - sum(row.kib for row in split)
    return [*split, Row("outside those objects", outside, "the part less the rows above", 1)]


def rows(figures: Mapping[str, Mapping[str, Any]], n: int, sample: int) -> list[Row]:
    """The table's rows from the measurements' figures (KiB per charge point)."""
    lean, sessions, state = figures["lean"], figures["sessions"], figures["state"]
    engine, users, total = figures["engine"], figures["users"], figures["locust"]["kib"]
    walked = f"sys.getsizeof of what each of {sample} owns, in the {{}} process"
    in_engine = walked.format("engine")
    connection, cp_state, user = sessions["kib"], state["rss 1.6"], users["kib"]
    task, trace = engine["parts"].get(TASK, 0.0), engine["parts"].get(TRACE, 0.0)
    parts = connection + cp_state + task + trace + user
    stack = Row(STACK, users["stack"], "greenlet's _stack_saved, mean of the users' greenlets", 1)
    return [
        Row(
            "the connection",
            connection,
            f"RSS growth of {n:,} OcppSessions, a BootNotification each, no charge point",
        ),
        *_split(connection, engine["parts"], (SESSION, CONNECTION, PROTOCOL, TRANSPORT), in_engine),
        Row(
            "the charge point's state (1.6)",
            cp_state,
            f"RSS growth of {n:,} built and booted, not connected"
            f" (tracemalloc: {state['traced 1.6']:.2f} KiB)",
        ),
        *_split(
            cp_state,
            state["parts 1.6"],
            (STATION, CONNECTORS, KEY_STORE, SCHEDULE, QUEUES),
            walked.format("state"),
        ),
        Row("the charge point's task", task, in_engine),
        Row(
            "the Locust user and its greenlet",
            user,
            f"RSS growth of {n:,} of the swarm's users starting no charge point, in Locust",
        ),
        *_split(user, users["parts"], (USER, GREENLET, TREE), walked.format("users"), stack),
        Row("the charge point's frame trace", trace, in_engine),
        Row("the rest", total - parts, "the total less the parts"),
        Row(
            "in the loop",
            engine["kib"] - (parts - user),
            f"RSS growth of {n:,} booted in the engine, no Locust ({engine['kib']:.2f} KiB),"
            " less the connection, state, task, trace",
            1,
        ),
        Row("in Locust's process", total - engine["kib"] - user, "the total less engine, user", 1),
        Row(
            "total: the swarm in Locust", total, f"RSS growth of {n:,} booted, as bench.capacity's"
        ),
        Row("lean connection (the floor)", lean["kib"], f"RSS growth of {n:,}", -1),
        Row(
            "the 2.0.1 station's state",
            state["rss 2.0.1"],
            f"as the 1.6 state's (tracemalloc: {state['traced 2.0.1']:.2f} KiB)",
            -1,
        ),
        Row("a bare gevent greenlet, asleep", users["bare greenlet"], f"RSS growth of {n:,}", -1),
    ]


def print_table(out: Sequence[Row], n: int) -> None:
    total = next(row.kib for row in out if row.label.startswith("total"))
    print(f"\nwhere a charge point's memory goes: {n:,} charge points, OCPP 1.6, one process\n")
    print(f"{'part':<52} {'KiB/CP':>7} {'share':>6}  how measured")
    first_reference = next((i for i, row in enumerate(out) if row.depth < 0), len(out))
    for i, row in enumerate(out):
        if i == first_reference:
            print("\nfor reference")
        label = ("  " if row.depth else "") + row.label
        share = "" if row.depth < 0 else f"{row.kib / total:.0%}"
        print(f"{label:<52} {row.kib:>7.2f} {share:>6}  {row.how}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--charge-points", type=int, default=5000)
    parser.add_argument("--spawn-rate", type=float, default=500.0, help="connects per second")
    parser.add_argument(
        "--user-spawn-rate", type=float, default=5000.0, help="users without charge points"
    )
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between Heartbeats")
    parser.add_argument("--settle", type=float, default=12.0, help="seconds held before reading")
    parser.add_argument("--sample", type=int, default=200, help="charge points sized by part")
    parser.add_argument("--measure", choices=MEASUREMENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.measure:
        _child(options)
    from swarm.csms import CsmsProcess

    passed = [f"--{name.replace('_', '-')}={value}" for name, value in vars(options).items()]
    passed = [arg for arg in passed if not arg.startswith(("--measure", "--url"))]
    figures: dict[str, dict[str, Any]] = {}
    n = options.charge_points
    timeout = n / options.spawn_rate + options.settle + BOOT_LIMIT
    with CsmsProcess.start([]) as csms:
        for what in MEASUREMENTS:
            log(f"{what}: {n:,}")
            command = [sys.executable, "-m", "bench.memory", "--measure", what, "--url", csms.url]
            done = subprocess.run(
                command + passed, stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                raise SystemExit(f"--measure {what} failed with exit code {done.returncode}")
            figures[what] = json.loads(lines[-1])
    print_table(rows(figures, n, options.sample), n)
    held = ", ".join(f"{what} {figures[what].get('held', n):,}" for what in MEASUREMENTS)
    print(f"\nheld: {held}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
