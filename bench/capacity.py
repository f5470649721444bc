"""Capacity of one process: charge points held, memory per charge point, connect rate, and
messages per second at saturation; the swarm in Locust against the lean client.

    python -m bench.capacity                        # 15,000 charge points, then saturation
    python -m bench.capacity --charge-points 5000 --saturation-charge-points 1000
    python -m bench.capacity --no-201               # the lean client and the 1.6 swarm only

One embedded CSMS, over two processes (``--workers 2``: one alone would be the limit at
saturation), serves each client in turn, each a fresh process: the lean client
(:mod:`bench.lean_client`), the
swarm in Locust, and the swarm in Locust with ``--ocpp-version 2.0.1`` (every charge point a 2.0.1
station; ``--no-201`` skips it, a third quicker):

1. **hold**: N charge points started at ``--spawn-rate``, each heartbeating every ``--interval``
   seconds (30), held for ``--duration`` seconds. It prints how many booted, how long the
   connects took, how many failed, the messages per second and failures in the window, and the
   process's resident memory before the first start and at the end: the growth per charge
   point is the memory figure (the lean client's is the floor: a socket, websockets' protocol
   state and a few attributes).
2. **saturation**: fewer charge points, each heartbeating as fast as the answers come back
   (``--saturation-interval``), to find how many messages per second one process carries, and
   what the CSMS's own CPU was meanwhile, its processes together (the machine's other core is
   what it has).
3. **a whole machine** (:mod:`bench.machine`): the swarm through Locust's command line, 15,000
   charge points in one process, then 30,000 over ``--processes 2``, against the CSMS over two
   processes (``--machine-processes none`` skips it).

``--check`` exits 1 unless the swarm held every charge point with no failure and grew by less
than ``--kib-bar`` KiB per charge point (20), carried at least 0.8x the lean client's messages
per second at saturation, unless the 2.0.1 swarm held every charge point too, with no more
than 1.25x the memory per charge point of the 1.6 swarm, and unless :mod:`bench.machine`'s bars
hold.
"""

from __future__ import annotations

import argparse
import sys

from bench import machine
from bench.latency import LEAN, SWARM, SWARM_201, VERSION_BAR, CpuRecorder, run_client
from bench.measure import Result, log
from swarm.csms import CsmsProcess

CLIENTS = (("bench.lean_client", "1.6"), ("bench.locust_client", "1.6"))
CLIENTS_201 = (("bench.locust_client", "2.0.1"),)
SATURATION_BAR = 0.8
"""Messages per second one process of the swarm in Locust carries at saturation, over the lean
client's."""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--charge-points", type=int, default=15_000)
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between Heartbeats")
    parser.add_argument("--spawn-rate", type=float, default=500.0)
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds after the last boot")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--saturation-charge-points", type=int, default=1000)
    parser.add_argument("--saturation-interval", type=float, default=0.001)
    parser.add_argument(
        "--connect-rates",
        default="1000,2000,4000",
        help="spawn rates to try, comma-separated; none: skip",
    )
    parser.add_argument("--connect-charge-points", type=int, default=4000)
    parser.add_argument("--kib-bar", type=float, default=20.0)
    parser.add_argument(
        "--no-201",
        dest="ocpp201",
        action="store_false",
        help="skip the 2.0.1 swarm (the other clients, ratios and bars stay)",
    )
    machine.arguments(parser)
    parser.add_argument("--check", action="store_true", help="exit 1 when a bar is missed")
    options = parser.parse_args()
    saturation = argparse.Namespace(
        **{
            **vars(options),
            "charge_points": options.saturation_charge_points,
            "interval": options.saturation_interval,
            "warmup": 3.0,
            "duration": 15.0,
        }
    )

    rates = [
        float(rate)
        for rate in options.connect_rates.split(",")
        if rate.strip() and rate.strip().lower() != "none"
    ]
    phases: list[tuple[str, argparse.Namespace, list[tuple[Result, float]]]] = [
        ("hold", options, held := []),
        ("saturation", saturation, saturated := []),
    ]
    for rate in rates:
        connect = {"charge_points": options.connect_charge_points, "spawn_rate": rate}
        phase_options = argparse.Namespace(**{**vars(options), **connect})
        phase_options.warmup, phase_options.duration = 1.0, 3.0
        phases.append((f"connect at {rate:g}/s", phase_options, []))
    clients = CLIENTS + CLIENTS_201 if options.ocpp201 else CLIENTS
    with CsmsProcess.start(["--workers", "2"], timeout=60) as csms:
        recorder = CpuRecorder(csms.pid, children=True)
        try:
            for phase, phase_options, results in phases:
                for module, version in clients:
                    log(f"{phase}: {module} {version}")
                    result = run_client(module, csms.url, phase_options, version)
                    end = result.window_start + result.window_s
                    results.append((result, recorder.between(result.window_start, end)))
        finally:
            recorder.stop()
    machine_rows = machine.measure(options)

    print(
        f"\nhold: {options.charge_points:,} charge points started at {options.spawn_rate:g}/s,"
        f" one Heartbeat each per {options.interval:g} s, {options.duration:g} s measured\n"
    )
    print(
        f"{'client':<20} {'booted':>7} {'connect':>8} {'CPs/s':>6} {'c.fails':>7} {'msgs/s':>7}"
        f" {'fails':>6} {'RSS before':>11} {'RSS held':>9} {'KiB/CP':>7} {'CPU':>5}"
    )
    for r, _ in held:
        print(
            f"{r.client:<20} {r.charge_points:>7,} {r.connect_s:>7.1f}s"
            f" {r.charge_points / r.connect_s:>6.0f} {r.connect_failures:>7}"
            f" {r.messages / r.window_s:>7.0f} {r.failures:>6} {r.rss_base_kib / 1024:>8.0f} MiB"
            f" {r.rss_kib / 1024:>5.0f} MiB {r.kib_per_charge_point:>7.1f}"
            f" {r.cpu_s / r.window_s:>5.0%}"
        )
    print(
        f"\nsaturation: {saturation.charge_points:,} charge points, each heartbeating as soon as"
        f" its answer comes (interval {saturation.interval:g} s), {saturation.duration:g} s"
        " measured\n"
    )
    print(
        f"{'client':<20} {'msgs/s':>8} {'fails':>6} {'median':>8} {'p99':>8} {'CPU':>5}"
        f" {'CSMS CPU':>9}"
    )
    for r, csms_cpu in saturated:
        print(
            f"{r.client:<20} {r.messages / r.window_s:>8.0f} {r.failures:>6}"
            f" {r.median_ms:>6.2f}ms {r.p99_ms:>6.1f}ms {r.cpu_s / r.window_s:>5.0%}"
            f" {csms_cpu / r.window_s:>8.0%}"
        )

    if rates:
        print(
            f"\nconnect: {options.connect_charge_points:,} charge points started at each rate"
            " (Locust starts a second's worth at once, the lean client one at a time)\n"
        )
        print(
            f"{'spawn rate':>10} {'client':<20} {'booted':>7} {'connect':>8} {'CPs/s':>6}"
            f" {'c.fails':>7}"
        )
        for _, phase_options, results in phases[2:]:
            for r, _ in results:
                print(
                    f"{phase_options.spawn_rate:>8g}/s {r.client:<20} {r.charge_points:>7,}"
                    f" {r.connect_s:>7.1f}s {r.charge_points / r.connect_s:>6.0f}"
                    f" {r.connect_failures:>7}"
                )

    def of(results: list[tuple[Result, float]], client: str) -> Result:
        return next(result for result, _ in results if result.client == client)

    raw, swarm = of(held, LEAN), of(held, SWARM)
    held_ok = (
        swarm.charge_points == options.charge_points
        and swarm.failures == swarm.connect_failures == 0
    )
    kib_ok = swarm.kib_per_charge_point < options.kib_bar
    print(
        f"\nheld by the swarm in Locust: {swarm.charge_points:,} of {options.charge_points:,},"
        f" {swarm.failures} failures, {swarm.connect_failures} failed connects"
        f" {'ok' if held_ok else 'MISSED'}"
    )
    print(
        f"memory per charge point, swarm in Locust / lean client: {swarm.kib_per_charge_point:.1f}"
        f" / {raw.kib_per_charge_point:.1f} KiB"
        f" = {swarm.kib_per_charge_point / raw.kib_per_charge_point:.2f}x"
        f" (bar: < {options.kib_bar:g} KiB) {'ok' if kib_ok else 'MISSED'}"
    )
    print(
        f"connect rate, swarm in Locust / lean client: {swarm.charge_points / swarm.connect_s:.0f}"
        f" / {raw.charge_points / raw.connect_s:.0f} charge points per second (started at"
        f" {options.spawn_rate:g}/s)"
    )
    raw_rate, swarm_rate = (
        r.messages / r.window_s for r in (of(saturated, LEAN), of(saturated, SWARM))
    )
    saturation_ok = swarm_rate >= SATURATION_BAR * raw_rate
    print(
        f"messages per second at saturation, swarm in Locust / lean client: {swarm_rate:.0f}"
        f" / {raw_rate:.0f} = {swarm_rate / raw_rate:.2f}x (bar: >= {SATURATION_BAR:.2f}x)"
        f" {'ok' if saturation_ok else 'MISSED'}"
    )
    version_ok = True
    if options.ocpp201:
        swarm_201 = of(held, SWARM_201)
        kib, kib_201 = swarm.kib_per_charge_point, swarm_201.kib_per_charge_point
        held_201_ok = (
            swarm_201.charge_points == options.charge_points
            and swarm_201.failures == swarm_201.connect_failures == 0
        )
        version_ok = held_201_ok and kib_201 <= VERSION_BAR * kib
        print(
            f"held by the 2.0.1 swarm in Locust: {swarm_201.charge_points:,} of"
            f" {options.charge_points:,}, {swarm_201.failures} failures,"
            f" {swarm_201.connect_failures} failed connects {'ok' if held_201_ok else 'MISSED'}"
        )
        print(
            f"memory per charge point, 2.0.1 / 1.6 in Locust: {kib_201:.1f} / {kib:.1f} KiB"
            f" = {kib_201 / kib:.2f}x (bar: <= {VERSION_BAR:.2f}x)"
            f" {'ok' if kib_201 <= VERSION_BAR * kib else 'MISSED'}"
        )
        print(
            f"connect rate, 2.0.1 / 1.6 in Locust:"
            f" {swarm_201.charge_points / swarm_201.connect_s:.0f}"
            f" / {swarm.charge_points / swarm.connect_s:.0f} charge points per second"
        )
        rate_201 = of(saturated, SWARM_201).messages / of(saturated, SWARM_201).window_s
        print(
            f"messages per second at saturation, 2.0.1 / 1.6 in Locust: {rate_201:.0f}"
            f" / {swarm_rate:.0f} = {rate_201 / swarm_rate:.2f}x"
        )
    machine_ok = machine.report(machine_rows, options) if machine_rows else True
    passed = held_ok and kib_ok and saturation_ok and version_ok and machine_ok
    return 0 if passed or not options.check else 1


if __name__ == "__main__":
    sys.exit(main())
