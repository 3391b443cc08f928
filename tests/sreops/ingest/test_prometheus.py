"""Prometheus as a source, against a local server that speaks the query_range API."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from sensors.prometheus import scrape_window
from sreops import warehouse
from sreops.config import PrometheusConfig, PrometheusQuery
from sreops.ingest import prometheus
from sreops.ingest import run as ingest_run

START = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers query_range with one series per service; `fail` makes it answer 503."""

    fail = False
    queries: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakePrometheus.queries.append(args["query"])
        if FakePrometheus.fail:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"overloaded")
            return
        start, end, step = float(args["start"]), float(args["end"]), int(args["step"].rstrip("s"))
        stamps = [start + i * step for i in range(int((end - start) // step) + 1)]
        result = [
            {
                "metric": {"__name__": "x", "service": svc, "instance": f"{svc}:9100"},
                "values": [[t, "NaN" if i == 3 else str(i * 1.5)] for i, t in enumerate(stamps)],
            }
            for svc in ("api", "db")
        ]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def prometheus_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakePrometheus.fail, FakePrometheus.queries = False, []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def cfg(url: str) -> PrometheusConfig:
    return PrometheusConfig(
        url=url,
        step_seconds=15,
        queries=[PrometheusQuery(query="rate(http_requests_total[1m])", metric="request_rate")],
    )


def test_scrape_lands_samples_that_ingest_with_labels(
    prometheus_url: str, warehouse_path: Path, tmp_path
) -> None:
    result = prometheus.scrape(cfg(prometheus_url), START, START + dt.timedelta(minutes=1), tmp_path)
    # 0, 15, 30, 45 s (60 s is the next window's), one of them NaN, for two services
    assert result.samples == 6 and result.skipped_non_finite == 2
    assert FakePrometheus.queries == ["rate(http_requests_total[1m])"]
    assert ingest_run.ingest_file(result.path, warehouse_path).status == "ingested"
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT service, metric, ts, labels FROM metric_samples ORDER BY service, ts"
        ).fetchall()
    assert {r[0] for r in rows} == {"api", "db"} and {r[1] for r in rows} == {"request_rate"}
    assert rows[0][2] == dt.datetime(2026, 11, 20, 10, 0)
    assert json.loads(rows[0][3]) == {"label_instance": "api:9100"}


def test_unreachable_or_failing_prometheus_raises_a_clear_error_and_writes_nothing(
    prometheus_url, tmp_path
) -> None:
    FakePrometheus.fail = True
    with pytest.raises(prometheus.PrometheusError, match="answered 503"):
        prometheus.scrape(cfg(prometheus_url), START, START + dt.timedelta(minutes=1), tmp_path)
    with pytest.raises(prometheus.PrometheusError, match="unreachable"):
        prometheus.scrape(cfg("http://127.0.0.1:9"), START, START + dt.timedelta(minutes=1), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_consecutive_windows_neither_overlap_nor_leave_gaps() -> None:
    now = START + dt.timedelta(minutes=30, seconds=7)
    first = scrape_window(None, now, 15)
    assert first == (
        START + dt.timedelta(minutes=30) - dt.timedelta(hours=1),
        START + dt.timedelta(minutes=30),
    )
    assert scrape_window(first[1].isoformat(), now, 15) is None
    later = scrape_window(first[1].isoformat(), now + dt.timedelta(seconds=20), 15)
    assert later == (first[1], first[1] + dt.timedelta(seconds=15))
    behind = scrape_window((START - dt.timedelta(hours=5)).isoformat(), now, 15)
    assert behind[1] - behind[0] == dt.timedelta(hours=1)  # catches up an hour per tick
