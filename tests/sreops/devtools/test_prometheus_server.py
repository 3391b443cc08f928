"""The Prometheus test harness: real binaries on loopback, restartable on the same TSDB, optional auth."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from sreops import config
from sreops.devtools import demo, prometheus_server
from sreops.ingest import prometheus

pytestmark = pytest.mark.skipif(not prometheus_server.available(), reason=prometheus_server.missing() or "")


def test_a_restart_keeps_the_samples_and_basic_auth_guards_every_endpoint(tmp_path: Path) -> None:
    with (
        prometheus_server.node_exporter(tmp_path / "node") as node,
        prometheus_server.prometheus_server(tmp_path / "prom", [node.target], basic_auth=True) as server,
    ):
        assert server.url.startswith("http://127.0.0.1:")
        server.wait_for("node_memory_MemTotal_bytes")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}/api/v1/query?query=up", timeout=5)
        assert refused.value.code == 401
        before = server.api("query", query="node_memory_MemTotal_bytes[1h]")["result"][0]["values"]
        port = server.port
        server.stop()
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=5)
        server.start()
        assert server.port == port
        after = server.api("query", query="node_memory_MemTotal_bytes[1h]")["result"][0]["values"]
        assert after[: len(before)] == before  # the TSDB (and its WAL) survived the restart


def test_missing_says_what_to_install_when_a_binary_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    assert prometheus_server.missing() is None and prometheus_server.available()
    monkeypatch.setattr(prometheus_server, "PROMETHEUS", "no-such-prometheus-binary")
    assert "no-such-prometheus-binary not installed" in prometheus_server.missing()
    assert not prometheus_server.available()


def test_the_node_exporter_demo_source_reads_cpu_and_memory_percent(tmp_path: Path) -> None:
    with (
        prometheus_server.node_exporter(tmp_path / "node") as node,
        prometheus_server.prometheus_server(tmp_path / "prom", [node.target]) as server,
    ):
        cfg = config.SourcesConfig(
            prometheus=demo.node_exporter_source(server.url, step_seconds=1)
        ).prometheus
        assert [q.read_mode for q in cfg.queries] == ["range", "range"]
        server.wait_for(cfg.queries[0].query)  # rate() needs two scrapes
        time.sleep(1.5)  # so the last whole second of the window has them too
        until = prometheus.server_time_ms(prometheus.Client(server.url))
        result = prometheus.scrape(cfg, until - 60_000, until, tmp_path / "landing")
    frame = pd.read_parquet(result.path)
    assert set(frame["metric"]) == {"cpu_utilization", "memory_utilization"}
    assert set(frame["service"]) == {f"node-{node.target}"}
    assert frame["value"].between(0, 100).all() and result.skipped_series == 0


def test_write_config_sets_the_prometheus_source_and_keeps_the_rest(tmp_path: Path) -> None:
    target = tmp_path / "sreops.yaml"
    target.write_text("partitions:\n  start: 2026-11-01\nsources:\n  landing_dir: /data/landing\n")
    source = demo.node_exporter_source("http://127.0.0.1:9999")
    prometheus_server.write_source(target, source)
    prometheus_server.write_source(target, demo.node_exporter_source("http://127.0.0.1:9998"))  # a rerun
    loaded = config.load(target)
    assert loaded.partitions.start is not None and str(loaded.sources.landing_dir) == "/data/landing"
    assert loaded.sources.prometheus.url == "http://127.0.0.1:9998"
    assert [q.metric for q in loaded.sources.prometheus.queries] == ["cpu_utilization", "memory_utilization"]
    assert [p.name for p in tmp_path.iterdir()] == ["sreops.yaml"]  # no partial file left behind
