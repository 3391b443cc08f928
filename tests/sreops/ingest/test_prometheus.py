"""Prometheus as a source, against a small local server that speaks the HTTP API like Prometheus 2.

The fake stores raw samples (every 10 s, two services) and answers `time()`, range selectors
through `/api/v1/query` (closed bounds, as Prometheus 2) and `/api/v1/query_range` (the last
sample within a 5-minute lookback at each step). tests/sensors/test_prometheus_outage.py checks
the same against Debian's real Prometheus.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from sreops import warehouse
from sreops.config import PrometheusConfig, PrometheusQuery
from sreops.ingest import prometheus
from sreops.ingest import run as ingest_run

START_MS = int(dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC).timestamp() * 1000)
NOW_MS = START_MS + 600_000
# raw samples every 10 s from START for ten minutes; db has a gap (an outage) from 200 s to 400 s
RAW = {
    svc: [
        (START_MS + i * 10_000, float(i) + (0.5 if svc == "db" else 0))
        for i in range(60)
        if svc == "api" or not 20 <= i < 40
    ]
    for svc in ("api", "db")
}


class FakePrometheus(BaseHTTPRequestHandler):
    """`fail` answers 503; `delay_s` answers late; `seen` keeps (path, params, headers) of each call."""

    fail = False
    delay_s = 0.0
    seen: list[tuple[str, dict, dict]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakePrometheus.seen.append((url.path, args, dict(self.headers)))
        time.sleep(FakePrometheus.delay_s)
        if FakePrometheus.fail:
            return self._send(503, b"overloaded")
        if args["query"] == "time()":
            data = {"resultType": "scalar", "result": [NOW_MS / 1000, str(NOW_MS / 1000)]}
        elif url.path.endswith("/query_range"):
            data = {"resultType": "matrix", "result": self._evaluated(args)}
        else:
            data = {"resultType": "matrix", "result": self._raw(args)}
        self._send(200, json.dumps({"status": "success", "data": data}).encode())

    @staticmethod
    def _series(svc: str, values: list) -> dict:
        return {"metric": {"__name__": "x", "service": svc, "instance": f"{svc}:9100"}, "values": values}

    def _raw(self, args: dict) -> list[dict]:
        match = re.fullmatch(r"x\[(\d+)ms\]", args["query"])
        end = round(float(args["time"]) * 1000)
        start = end - int(match.group(1))
        return [
            self._series(svc, [[ms / 1000, str(v)] for ms, v in points if start <= ms <= end])
            for svc, points in RAW.items()
        ]

    def _evaluated(self, args: dict) -> list[dict]:
        start, end = round(float(args["start"]) * 1000), round(float(args["end"]) * 1000)
        step = int(args["step"].rstrip("s")) * 1000
        result = []
        for svc, points in RAW.items():
            values = []
            for at in range(start, end + 1, step):
                recent = [v for ms, v in points if at - 300_000 < ms <= at]
                if recent:
                    values.append([at / 1000, "NaN" if at == START_MS + 60_000 else str(recent[-1])])
            result.append(self._series(svc, values))
        return result

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def prometheus_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakePrometheus.fail, FakePrometheus.delay_s, FakePrometheus.seen = False, 0.0, []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def cfg(url: str, query: str = "x", **settings) -> PrometheusConfig:
    spec = {"query": query, "metric": "request_rate", **settings.pop("spec", {})}
    return PrometheusConfig(url=url, step_seconds=15, queries=[PrometheusQuery(**spec)], **settings)


def landed(warehouse_path: Path, *results: prometheus.Scrape) -> list[tuple]:
    for result in results:
        if result.path is not None:
            assert ingest_run.ingest_file(result.path, warehouse_path).status == "ingested"
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT service, metric, ts, value, labels FROM metric_samples ORDER BY ALL"
        ).fetchall()


def test_raw_samples_land_once_each_with_their_own_timestamps_across_windows(
    prometheus_url: str, warehouse_path: Path, tmp_path: Path
) -> None:
    config = cfg(prometheus_url)
    assert config.queries[0].read_mode == "samples"
    middle = START_MS + 300_000  # a sample sits exactly on this bound: it belongs to the first window
    first = prometheus.scrape(config, START_MS - 1, middle, tmp_path)
    second = prometheus.scrape(config, middle, NOW_MS, tmp_path)
    assert first.samples + second.samples == len(RAW["api"]) + len(RAW["db"])
    rows = landed(warehouse_path, first, second)
    epoch = dt.datetime(1970, 1, 1)
    expected = sorted(
        (svc, "request_rate", epoch + dt.timedelta(milliseconds=ms), v)
        for svc, pts in RAW.items()
        for ms, v in pts
    )
    assert [row[:4] for row in rows] == expected  # nothing twice, nothing made up in db's gap
    assert json.loads(rows[0][4]) == {"label_instance": "api:9100"}
    assert [path for path, _, _ in FakePrometheus.seen] == ["/api/v1/query", "/api/v1/query"]


def test_range_queries_evaluate_each_step_point_in_exactly_one_window(
    prometheus_url: str, warehouse_path: Path, tmp_path: Path
) -> None:
    config = cfg(prometheus_url, "last_over_time(x[5m])")
    assert config.queries[0].read_mode == "range"
    middle = START_MS + 127_000  # off the step grid: windows still split the grid points once
    results = [prometheus.scrape(config, a, b, tmp_path) for a, b in ((START_MS, middle), (middle, NOW_MS))]
    rows = landed(warehouse_path, *results)
    api = [row[2] for row in rows if row[0] == "api"]
    grid = [dt.datetime(2026, 11, 20, 10, 0) + dt.timedelta(seconds=s) for s in range(15, 601, 15)]
    assert api == [t for t in grid if t != dt.datetime(2026, 11, 20, 10, 1)]  # 10:01 was NaN
    assert sum(r.skipped_non_finite for r in results) == 2
    assert all(path == "/api/v1/query_range" for path, _, _ in FakePrometheus.seen)


def test_failing_unreachable_or_slow_prometheus_raise_a_clear_error_and_write_nothing(
    prometheus_url: str, tmp_path: Path
) -> None:
    FakePrometheus.fail = True
    with pytest.raises(prometheus.PrometheusError, match="answered 503"):
        prometheus.scrape(cfg(prometheus_url), START_MS, NOW_MS, tmp_path)
    with pytest.raises(prometheus.PrometheusError, match="unreachable"):
        prometheus.scrape(cfg("http://127.0.0.1:9"), START_MS, NOW_MS, tmp_path)
    FakePrometheus.fail, FakePrometheus.delay_s = False, 1.0
    with pytest.raises(
        prometheus.PrometheusError, match=r"within 0.2 s \(sources.prometheus.timeout_seconds\)"
    ):
        prometheus.scrape(cfg(prometheus_url, timeout_seconds=0.2), START_MS, NOW_MS, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_auth_header_carries_the_secret_and_a_missing_secret_says_which_variable(
    prometheus_url: str, tmp_path: Path
) -> None:
    config = cfg(prometheus_url, auth_secret_env="PROM_TOKEN")
    with pytest.raises(prometheus.PrometheusError, match=r"\$PROM_TOKEN, which is not set"):
        prometheus.Client.from_config(config, None)
    client = prometheus.Client.from_config(config, "s3cret")
    assert "s3cret" not in repr(client)
    assert prometheus.server_time_ms(client) == NOW_MS
    custom = cfg(prometheus_url, auth_secret_env="PROM_TOKEN", auth_header="X-Scope-Token", auth_scheme="")
    prometheus.scrape(custom, START_MS, NOW_MS, tmp_path, prometheus.Client.from_config(custom, "k"))
    assert FakePrometheus.seen[0][2]["Authorization"] == "Bearer s3cret"
    assert FakePrometheus.seen[-1][2]["X-Scope-Token"] == "k"


def test_templates_map_labels_to_service_and_metric_and_unusable_series_are_skipped(
    prometheus_url: str, tmp_path: Path
) -> None:
    spec = PrometheusQuery(query="x", metric="{__name__}_{mode}", service="node-{instance}")
    assert prometheus.series_names({"__name__": "cpu", "mode": "idle", "instance": "a:1"}, spec)[:2] == (
        "node-a:1",
        "cpu_idle",
    )
    by_label = PrometheusQuery(query="x", metric="m", service_label="instance")
    assert prometheus.series_names({"instance": "a:1", "job": "j"}, by_label) == ("a:1", "m", {"job": "j"})
    assert prometheus.series_names({"job": "j"}, by_label)[0] == "j"  # falls back to the job
    result = [
        {
            "metric": {"__name__": "cpu", "mode": "idle", "instance": "ok"},
            "values": [[START_MS / 1000 + 1, "1"]],
        },
        {"metric": {"__name__": "cpu", "instance": "no-mode"}, "values": [[START_MS / 1000 + 1, "1"]]},
        {
            "metric": {"__name__": "cpu", "mode": "x\nforged", "instance": "bad"},
            "values": [[START_MS / 1000 + 1, "1"]],
        },
    ]
    frame, dropped, problems = prometheus.to_samples(result, spec, START_MS, NOW_MS)
    assert list(frame["service"]) == ["node-ok"] and dropped == 0
    assert len(problems) == 2 and "lacks a label" in problems[0] and "control character" in problems[1]


def test_windows_trail_prometheus_clock_by_the_lag_on_the_step_grid_an_hour_at_most() -> None:
    config = PrometheusConfig(url="http://p", step_seconds=15, lag_seconds=30)
    now = START_MS + 1_807_000  # 10:30:07
    first = prometheus.next_window(None, now, config)
    assert first == (START_MS + 1_770_000 - 3_600_000, START_MS + 1_770_000)  # until 10:29:30
    assert prometheus.next_window(first[1], now, config) is None
    assert prometheus.next_window(first[1], now + 16_000, config) == (first[1], first[1] + 15_000)
    behind = prometheus.next_window(START_MS - 5 * 3_600_000, now, config)
    assert behind[1] - behind[0] == prometheus.MAX_WINDOW_MS  # catches up an hour per tick


def test_the_cursor_keeps_the_watermark_and_reads_an_older_iso_cursor() -> None:
    assert prometheus.parse_cursor(prometheus.format_cursor(START_MS + 5)) == START_MS + 5
    assert prometheus.parse_cursor(None) is None
    # the old cursor was the exclusive end of [start, end): the point at `end` is still to read
    assert prometheus.parse_cursor("2026-11-20T10:00:00+00:00") == START_MS - 1


def test_a_window_already_landed_is_found_in_landing_or_the_archive(tmp_path: Path) -> None:
    landing, archive = tmp_path / "landing", tmp_path / "archive"
    archive.mkdir()
    assert prometheus.landed_until([landing, archive], START_MS) is None
    (archive / f"prometheus-{prometheus.stamp(START_MS)}-{prometheus.stamp(NOW_MS + 7)}.1.parquet").touch()
    (archive / f"prometheus-{prometheus.stamp(START_MS)}-{prometheus.stamp(NOW_MS + 9)}.parquet.part").touch()
    assert prometheus.landed_until([landing, archive], START_MS) == NOW_MS + 7


@pytest.mark.parametrize(
    "query, selector",
    [
        ("up", True),
        ('node_cpu_seconds_total{mode="idle", cpu=~"0|1"}', True),
        ('{__name__="x", job="a}b"}', True),
        ("rate(x[1m])", False),
        ("x offset 5m", False),
        ("x / y", False),
        ("x[5m]", False),
    ],
)
def test_only_plain_selectors_read_raw_samples(query: str, selector: bool) -> None:
    assert PrometheusQuery.is_series_selector(query) is selector
    if not selector:
        with pytest.raises(ValueError, match="must be a series selector"):
            PrometheusQuery(query=query, metric="m", mode="samples")


def test_templates_name_labels_only() -> None:
    with pytest.raises(ValueError, match=r"\{a-b\} is not a label name"):
        PrometheusQuery(query="x", metric="m_{a-b}")
