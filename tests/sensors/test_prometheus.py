"""The Prometheus sensor, run the Dagster way, with its config given as the `sreops_config` resource."""

from __future__ import annotations

import socket
from pathlib import Path

import dagster as dg

from assets.resources import ConfigResource
from sensors.prometheus import prometheus_scrape_sensor


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
