"""Demo logs: steady patterns from the start, incident patterns later, reported as new patterns."""

import datetime as dt
import time
from pathlib import Path

from sreops import config, paths, warehouse
from sreops.devtools.demo_logs import write_demo_logs
from sreops.logs import run as logs_run
from sreops.logs.embedding import TokenHashEmbedder

START = dt.datetime(2026, 11, 20)
INCIDENTS = [
    {"service": "payments", "kind": "error_burst", "metrics": ["error_rate"],
     "start": "2026-11-20T06:00:00Z", "end": "2026-11-20T06:15:00Z"},
    {"service": "search", "kind": "deploy", "metrics": ["latency_p95_ms"],
     "start": "2026-11-20T09:00:00Z", "end": "2026-11-20T09:00:00Z"},
]  # fmt: skip


def test_demo_logs_cluster_into_few_patterns_and_flag_the_incidents(warehouse_path: Path) -> None:
    files = write_demo_logs(INCIDENTS, START, days=0.5, services=["payments", "search"])
    assert [f.relative_to(paths.landing_logs()).as_posix() for f in files] == [
        "payments/app.log",
        "search/app.log",
    ]
    cfg = config.Config()
    ingested = logs_run.ingest(warehouse_path, cfg=cfg, clock=time.time() + 10)
    assert ingested.rows > 2 * 12 * 60 * 2
    run = logs_run.cluster_pending(warehouse_path, cfg=cfg, embedder=TokenHashEmbedder())
    assert sum(s.clusters for s in run.services) < 30
    with warehouse.connect(warehouse_path) as con:
        alerts = dict(con.execute("SELECT service, summary FROM alerts").fetchall())
        formats = {r[0] for r in con.execute("SELECT header FROM log_offsets").fetchall()}
    assert set(alerts) == {"payments", "search"}
    assert "returned 503" in alerts["payments"] or "Request failed" in alerts["payments"]
    assert "deprecated" in alerts["search"]
    assert formats == {"iso-thread-level"}
