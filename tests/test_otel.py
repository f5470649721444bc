"""The swarm under Locust's ``--otel`` (swarm/locust/otel.py): a real run exports its metrics
over OTLP/HTTP to a receiver in this test, whose protobuf bodies are decoded and checked: every
round trip is a measurement of Locust's request-duration histogram, failures and the CSMS's
calls included, and the fleet's gauges come through the same meter provider.

Locust runs in a subprocess (importing it here would monkey-patch this process with gevent),
bounded by a timeout and checked to leave no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from swarm.csms import Csms, CsmsConfig
from tests.scripted import call_in, in_thread
from tests.test_locust import LOCUST, child, finished

DURATION = "locust.client.duration"
"""Locust's histogram of request durations (locust/opentelemetry.py)."""


@contextlib.contextmanager
def otlp_receiver() -> Iterator[tuple[str, list[ExportMetricsServiceRequest]]]:
    """An OTLP/HTTP receiver of metrics on loopback: yields its URL and the requests it got."""
    received: list[ExportMetricsServiceRequest] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/metrics":
                self.send_error(404)
                return
            received.append(ExportMetricsServiceRequest.FromString(body))
            answer = ExportMetricsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def metrics_named(exports: list[ExportMetricsServiceRequest], name: str) -> list[Any]:
    """Each export's metric called ``name``, in the order they came."""
    return [
        metric
        for export in exports
        for resource in export.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
    ]


def attributes(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}


@pytest.mark.timeout(90)
def test_an_otel_run_exports_round_trips_and_the_fleet(tmp_path: Path) -> None:
    users, seconds = 10, 4
    with (
        otlp_receiver() as (url, exports),
        in_thread(lambda: Csms(CsmsConfig(port=0))) as (
            csms,
            loop,
        ),
    ):
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",  # milliseconds
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
        command = [
            LOCUST, "-f", "locustfile.py", "--headless", "--otel", "--only-summary",
            "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", csms.url,
            "--results-dir", str(tmp_path), "--exit-code-on-error", "0",
            "--heartbeat-interval", "0.3", "--authorize-interval", "0",
        ]  # fmt: skip
        with child(command, env=env) as proc:
            # Once the fleet is up: failures and a call of the CSMS's, while it runs.
            deadline = time.monotonic() + 15
            while call_in(loop, lambda: len(csms.connections)) < users:
                assert proc.running() and time.monotonic() < deadline, proc.read()[1][-3000:]
                time.sleep(0.1)
            time.sleep(0.5)  # for the boots to be answered
            call_in(loop, lambda: csms.set_faults(callerror="InternalError", share=0.5))
            campaign = asyncio.run_coroutine_threadsafe(
                csms.campaign("ClearCache", {}, timeout=5), loop
            ).result(10)
            assert campaign.answered == users, campaign
            finished(proc, timeout=seconds + 30)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "OpenTelemetry enabled" in proc.stderr, proc.stderr[-3000:]

    # Locust's histogram: each round trip one measurement, named after its action. The last
    # export (at exit) holds every one (cumulative), by name and, for failures, error type.
    durations = metrics_named(exports, DURATION)
    assert durations, f"no {DURATION} among {len(exports)} exports"
    counts: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for point in durations[-1].histogram.data_points:
        labels = attributes(point)
        counts[labels["name"]] += point.count
        if "error.type" in labels:
            failed[labels["name"]] += point.count
    (folder,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    summary = json.loads((folder / "summary.json").read_text())
    locust: Counter[str] = Counter()  # Locust's stats of the whole run, the run's last too
    for row in summary["requests"]:
        if row["name"] != "Aggregated":
            locust[row["name"]] += row["requests"]
    assert counts == locust, (counts, locust)
    assert counts["BootNotification"] == users and counts["ClearCache"] == users, counts
    assert failed["Heartbeat"] > 0, failed

    # The fleet's gauges, through the same meter provider: the whole fleet booted, at an export.
    def observed(name: str, key: str) -> list[dict[str, int]]:
        return [
            {attributes(p).get(key, ""): p.as_int for p in metric.gauge.data_points}
            for metric in metrics_named(exports, name)
        ]

    states = observed("ocpp_swarm.charge_points", "state")
    assert any(export.get("accepted") == users for export in states), states
    assert {"connecting", "accepted", "offline"} <= set(states[-1]), states[-1]
    versions = observed("ocpp_swarm.charge_points_by_version", "version")
    assert any(export == {"1.6": users, "2.0.1": 0} for export in versions), versions
    assert observed("ocpp_swarm.charging", "")
