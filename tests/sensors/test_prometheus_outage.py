"""A two-minute Prometheus outage, for real: after catching up, every sample is in the warehouse once.

Debian's `prometheus` scrapes `prometheus-node-exporter` every second on loopback; the
`prometheus_scrape` sensor runs the Dagster way (`dg.build_sensor_context`, the cursor carried
from tick to tick) and the landed files are ingested as the landing sensor's run does. Prometheus
is stopped for two minutes (its TSDB kept) and started again; then the warehouse is compared with
a direct read of Prometheus over the whole window.
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from assets.resources import ConfigResource
from sensors.prometheus import prometheus_scrape_sensor
from sreops import paths, warehouse
from sreops.devtools import prometheus_server
from sreops.ingest import landing
from sreops.ingest import prometheus as source
from sreops.ingest import run as ingest_run

pytestmark = pytest.mark.skipif(not prometheus_server.available(), reason=prometheus_server.missing() or "")

OUTAGE_S = 120.0
MEMORY = "node_memory_MemAvailable_bytes"
CPU_IDLE = 'node_cpu_seconds_total{mode="idle"}'
MEMORY_AVG = f"avg_over_time({MEMORY}[3s])"


def _write_config(path: Path, url: str) -> ConfigResource:
    queries = [
        {"query": MEMORY, "metric": "memory_available_bytes", "service_label": "instance"},
        {"query": CPU_IDLE, "metric": "cpu{cpu}_idle_seconds_total", "service": "node"},
        {"query": MEMORY_AVG, "metric": "memory_available_avg_3s", "service": "node"},
    ]
    prom = {"url": url, "step_seconds": 1, "lag_seconds": 3, "timeout_seconds": 5, "queries": queries}
    path.write_text(yaml.safe_dump({"sources": {"prometheus": prom}}))
    return ConfigResource(path=str(path))


class Ticker:
    """Runs the sensor with the cursor of the previous tick, then ingests what it landed."""

    def __init__(self, resource: ConfigResource, warehouse_path: Path) -> None:
        self.resource, self.warehouse_path = resource, warehouse_path
        self.cursor: str | None = None
        self.messages: list[str] = []

    def tick(self) -> str:
        context = dg.build_sensor_context(cursor=self.cursor, resources={"sreops_config": self.resource})
        message = prometheus_scrape_sensor(context).skip_message
        self.cursor = context.cursor
        for result in ingest_run.ingest_files(landing.discover(paths.landing_metrics()), self.warehouse_path):
            assert result.status == "ingested", result.error
        self.messages.append(message)
        return message

    @property
    def watermark(self) -> int:
        return source.parse_cursor(self.cursor)


def _raw(server: prometheus_server.PrometheusServer, selector: str, after: int, until: int) -> list[dict]:
    data = server.api("query", query=f"{selector}[{until - after}ms]", time=until / 1000)
    return data["result"]


def _points(series: dict, after: int, until: int) -> list[tuple[int, float]]:
    points = [(round(float(t) * 1000), float(v)) for t, v in series["values"]]
    return [(ms, v) for ms, v in points if after < ms <= until]


def _largest_gap_s(stamps: list[int]) -> float:
    return max(b - a for a, b in zip(stamps, stamps[1:], strict=False)) / 1000


@pytest.mark.slow
def test_a_two_minute_outage_is_caught_up_with_every_sample_once(
    warehouse_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with (
        prometheus_server.node_exporter(tmp_path / "node") as node,
        prometheus_server.prometheus_server(
            tmp_path / "prom", [node.target], scrape_interval_s=1.0
        ) as server,
    ):
        server.wait_for(MEMORY)
        ticker = Ticker(_write_config(tmp_path / "sreops.yaml", server.url), warehouse_path)
        assert ticker.tick().startswith("landed")
        first_after = ticker.watermark - source.FIRST_WINDOW_MS
        for _ in range(12):
            time.sleep(2)
            ticker.tick()

        before_outage = ticker.watermark
        server.stop()
        stopped = time.monotonic()
        while time.monotonic() - stopped < OUTAGE_S:
            assert "will retry" in ticker.tick() and ticker.watermark == before_outage
            time.sleep(10)
        server.start()

        restarted = source.server_time_ms(source.Client(server.url))
        deadline = time.monotonic() + 90
        while ticker.watermark < restarted + 20_000:  # caught up past the restart
            assert time.monotonic() < deadline, f"no catch-up: {ticker.messages[-3:]}"
            ticker.tick()
            time.sleep(1)
        until = ticker.watermark

        expected: list[tuple[str, str, int, float]] = []
        for series in _raw(server, MEMORY, first_after, until):
            instance = series["metric"]["instance"]
            expected += [
                (instance, "memory_available_bytes", ms, v) for ms, v in _points(series, first_after, until)
            ]
        memory_stamps = [ms for _, _, ms, _ in expected]
        for series in _raw(server, CPU_IDLE, first_after, until):
            metric = f"cpu{series['metric']['cpu']}_idle_seconds_total"
            expected += [("node", metric, ms, v) for ms, v in _points(series, first_after, until)]
        first_point = (first_after // 1000 + 1) * 1000
        evaluated = server.api(
            "query_range", query=MEMORY_AVG, start=first_point / 1000, end=until / 1000, step="1s"
        )
        (avg_series,) = evaluated["result"]
        avg = _points(avg_series, first_after, until)
        expected += [("node", "memory_available_avg_3s", ms, v) for ms, v in avg]

    with warehouse.connect(warehouse_path) as con:
        stored = con.execute("SELECT service, metric, epoch_ms(ts), value FROM metric_samples").fetchall()
    stored_count, expected_count = collections.Counter(stored), collections.Counter(expected)
    twice = sum(n - 1 for n in stored_count.values() if n > 1)
    missing = sum((expected_count - stored_count).values())
    extra = sum((stored_count - expected_count).values())
    raw = [row for row in expected if row[1] != "memory_available_avg_3s"]
    caught_up = sum(before_outage < ms < restarted - 60_000 for _, _, ms, _ in raw)
    with capsys.disabled():
        print(
            f"\noutage {OUTAGE_S:.0f} s: Prometheus holds {len(expected)} samples for the window"
            f" ({len(raw)} raw, {len(avg)} evaluated), the warehouse {len(stored)}:"
            f" {missing} missing, {extra} extra, {twice} twice; {caught_up} raw samples written before"
            f" the stop were read after the restart; largest gap {_largest_gap_s(memory_stamps):.0f} s raw,"
            f" {_largest_gap_s([ms for ms, _ in avg]):.0f} s evaluated;"
            f" {sum('will retry' in m for m in ticker.messages)} ticks retried"
        )
    assert twice == 0 and missing == 0 and extra == 0
    assert stored_count == expected_count
    # the outage is in the data: raw samples and evaluated points stop, none is made up in the gap
    assert _largest_gap_s(memory_stamps) > OUTAGE_S - 20
    assert _largest_gap_s([ms for ms, _ in avg]) > OUTAGE_S - 20
    # samples Prometheus wrote in the lag before it stopped were read only after the restart
    assert caught_up > 0
    assert any(ms > restarted for ms in memory_stamps)
