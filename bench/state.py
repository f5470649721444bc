"""What a charge point's state costs beyond its connection: an offline queue, security options.

    python -m bench.state

Prints, each against what it stands in for in the same run:

- a queued MeterValues (a reading) against the payload it is sent as (tracemalloc);
- a charge point's own config with a password against the fleet's shared one (tracemalloc);
- a TLS context of a charge point's own (``--client-cert`` with ``{id}``), built with a CA file
  of one CA and with the system's CAs: the time to build one, and the resident memory each
  adds (OpenSSL allocates outside Python's reach, so this one is the process's RSS growth).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import trustme

from bench.measure import rss_kib
from swarm.ocpp16.charge_point import ChargePoint
from swarm.protocol.security import Security, SecurityConfig
from swarm.station.config import ChargePointConfig
from swarm.station.connector import Transaction
from swarm.station.outbox import Queued


def traced_bytes(make: Callable[[], Any], count: int) -> float:
    """Bytes Python allocates per ``make()``, kept alive, over ``count`` of them."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(count)]
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


def resident(make: Callable[[], Any], count: int) -> tuple[float, float]:
    """KiB of resident memory and milliseconds per ``make()``, kept alive, over ``count``."""
    gc.collect()
    before, started = rss_kib(), time.perf_counter()
    kept = [make() for _ in range(count)]
    seconds, after = time.perf_counter() - started, rss_kib()
    del kept
    return (after - before) / count, seconds / count * 1000


def queued_meter_values(count: int) -> tuple[float, float]:
    cp = ChargePoint("CP-0-000001", "ws://x/CP-0-000001", ChargePointConfig(), lambda s: None)

    async def measure() -> tuple[float, float]:
        transaction = Transaction(7, 1, "T", 11000.0, asyncio.get_running_loop().time())
        cp.connectors[1].transaction = transaction
        queued = traced_bytes(lambda: Queued("MeterValues", cp._read(1), transaction), count)
        payload = traced_bytes(lambda: cp._meter_values(1), count)
        return queued, payload

    return asyncio.run(measure())


def per_charge_point_config(count: int) -> float:
    security = Security(SecurityConfig(password="secret-{id}"))
    fleet = ChargePointConfig()
    serials = iter(range(count))

    def own() -> ChargePointConfig:
        cp_id = f"CP-0-{next(serials):06d}"
        return replace(fleet, connect_options=security.connect_options(cp_id, secure=False))

    return traced_bytes(own, count)


def tls_contexts(kind: str, ca_file: str, count: int) -> tuple[float, float]:
    """KiB and ms per TLS context of ``kind`` (``one-ca`` or ``system``), measured in a fresh
    process: memory OpenSSL freed in this one would be reused, and hide the growth."""
    code = (
        "import json, sys; from bench.state import resident; from swarm.protocol.security import"
        " client_context as c; ca = sys.argv[2] if sys.argv[1] == 'one-ca' else None;"
        " print(json.dumps(resident(lambda: c(ca), int(sys.argv[3]))))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code, kind, ca_file, str(count)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kib, ms = json.loads(output)
    return kib, ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="objects per Python figure")
    parser.add_argument("--contexts", type=int, default=200, help="TLS contexts per figure")
    args = parser.parse_args(argv)

    queued, payload = queued_meter_values(args.count)
    print(
        f"queued MeterValues     {queued:8.0f} B   (its payload: {payload:.0f} B,"
        f" {payload / queued:.1f}x)"
    )
    print(
        f"own config, password   {per_charge_point_config(args.count):8.0f} B"
        "   (the fleet's config is shared: 0 B a charge point)"
    )
    with tempfile.TemporaryDirectory() as folder:
        ca_file = str(Path(folder) / "ca.pem")
        trustme.CA().cert_pem.write_to_path(ca_file)
        one_ca = tls_contexts("one-ca", ca_file, args.contexts)
        system = tls_contexts("system", ca_file, args.contexts)
    print(f"TLS context, one CA    {one_ca[0]:8.1f} KiB {one_ca[1]:6.2f} ms")
    print(
        f"TLS context, system    {system[0]:8.1f} KiB {system[1]:6.2f} ms"
        f"   ({system[0] / one_ca[0]:.0f}x the memory, {system[1] / one_ca[1]:.0f}x the time)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
