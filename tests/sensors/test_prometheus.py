"""The Prometheus sensor, run the Dagster way, with its config given as the `sreops_config` resource.

The two-minute outage test is tests/sensors/test_prometheus_outage.py.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.resources import ConfigResource
from sensors.prometheus import prometheus_scrape_sensor
from sreops import paths, warehouse
from sreops.devtools import prometheus_server
from sreops.ingest import landing, prometheus
from sreops.ingest import run as ingest_run


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_without_a_configured_prometheus_the_sensor_skips(sreops_home: Path) -> None:
    context = dg.build_sensor_context(resources={"sreops_config": ConfigResource()})
    result = prometheus_scrape_sensor(context)
    assert isinstance(result, dg.SkipReason) and "no Prometheus configured" in result.skip_message
    assert context.cursor is None


def test_an_unreachable_prometheus_keeps_the_cursor_for_the_next_tick(
    sreops_home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "sreops.yaml"
    path.write_text(
        "sources:\n  prometheus:\n"
        f"    url: http://127.0.0.1:{_closed_port()}\n"
        "    queries:\n      - query: up\n        metric: up\n"
    )
    context = dg.build_sensor_context(resources={"sreops_config": ConfigResource(path=str(path))})
    result = prometheus_scrape_sensor(context)
    assert isinstance(result, dg.SkipReason) and "will retry" in result.skip_message
    assert context.cursor is None


def _wait_for_clock(client: prometheus.Client, moment_ms: int) -> None:
    """Wait (bounded) until Prometheus's clock passes `moment_ms`."""
    for _ in range(100):
        if prometheus.server_time_ms(client) > moment_ms:
            return
        time.sleep(0.2)
    raise AssertionError("Prometheus's clock did not advance")


def _tick(resource: ConfigResource, cursor: str | None) -> tuple[str, str | None]:
    context = dg.build_sensor_context(cursor=cursor, resources={"sreops_config": resource})
    return prometheus_scrape_sensor(context).skip_message, context.cursor


@pytest.mark.skipif(not prometheus_server.available(), reason=prometheus_server.missing() or "")
def test_a_real_prometheus_behind_auth_is_read_from_the_watermark_once(
    warehouse_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        prometheus_server.node_exporter(tmp_path / "node") as node,
        prometheus_server.prometheus_server(tmp_path / "prom", [node.target], basic_auth=True) as server,
    ):
        server.wait_for("node_memory_MemAvailable_bytes")
        client = prometheus.Client(server.url, 5, server.headers)
        _wait_for_clock(client, prometheus.server_time_ms(client) + 3000)  # a sample older than the lag
        path = tmp_path / "sreops.yaml"
        path.write_text(
            "sources:\n  prometheus:\n"
            f"    url: {server.url}\n    step_seconds: 1\n    lag_seconds: 2\n"
            "    auth_scheme: Basic\n    auth_secret_env: SREOPS_TEST_PROM_SECRET\n"
            "    queries:\n      - query: node_memory_MemAvailable_bytes\n        metric: memory_available_bytes\n"
            "        service: node-{instance}\n"
        )
        resource = ConfigResource(path=str(path))
        message, cursor = _tick(resource, None)
        assert "$SREOPS_TEST_PROM_SECRET, which is not set" in message and cursor is None

        monkeypatch.setenv("SREOPS_TEST_PROM_SECRET", prometheus_server.basic_auth_secret())
        message, first = _tick(resource, None)
        assert message.startswith("landed") and first is not None
        # ticks whose cursor was lost (the process died after the file landed) resume, reading nothing
        message, resumed = _tick(resource, None)
        assert message.startswith("resumed") and resumed == first
        _wait_for_clock(client, prometheus.parse_cursor(first) + 4000)  # lag 2 s + 2 s of new samples
        message, second = _tick(resource, first)
        assert message.startswith("landed") and prometheus.parse_cursor(second) > prometheus.parse_cursor(
            first
        )
        message, resumed = _tick(resource, first)
        assert message.startswith("resumed") and resumed == second
        truth = server.api("query", query="node_memory_MemAvailable_bytes[1h]")["result"][0]["values"]

    files = landing.discover(paths.landing_metrics())
    assert len(files) == 2
    assert all(r.status == "ingested" for r in ingest_run.ingest_files(files, warehouse_path))
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute("SELECT service, epoch_ms(ts), value FROM metric_samples ORDER BY ts").fetchall()
    until = prometheus.parse_cursor(second)
    expected = [(round(float(t) * 1000), float(v)) for t, v in truth if round(float(t) * 1000) <= until]
    assert [(ms, v) for _, ms, v in rows] == expected  # every sample up to the watermark, once
    assert {service for service, _, _ in rows} == {f"node-{node.target}"}
