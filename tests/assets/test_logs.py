"""The log assets through Dagster: ingest, cluster, count an hour, with metadata and a passing check."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from assets.logs import log_cluster_counts_1m, log_clusters, log_lines
from assets.resources import ConfigResource, WarehouseResource
from sreops import config, paths, warehouse

HOUR = dt.datetime(2026, 11, 20, 13)


@pytest.fixture
def no_model(sreops_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A config without the embedding model, so these tests stay fast (the model has its own test)."""
    path = sreops_home / "sreops.yaml"
    path.write_text("logs:\n  use_embeddings: false\n")
    monkeypatch.setenv("SREOPS_CONFIG", str(path))
    config.current.cache_clear()
    yield
    config.current.cache_clear()


def write_log(service: str, lines: list[str]) -> None:
    folder = paths.landing_logs() / service
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "app.log").open("a") as fh:
        for i, text in enumerate(lines):
            fh.write(f"{HOUR + dt.timedelta(seconds=20 * i):%Y-%m-%d %H:%M:%S},000 INFO {text}\n")
    # The last record is read once the file is idle: age the file so one run reads everything.
    old = (HOUR - dt.timedelta(hours=1)).timestamp()
    (folder / "app.log").touch()
    import os

    os.utime(folder / "app.log", (old, old))


def run(selection, warehouse_path: Path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection,
        resources={
            "warehouse": WarehouseResource(location=str(warehouse_path)),
            "sreops_config": ConfigResource(),
        },
        **kwargs,
    )


def test_lines_then_clusters_then_an_hour_of_counts(no_model, warehouse_path: Path) -> None:
    write_log("api", [f"GET /items/{i} took {i} ms" for i in range(30)] + ["cache flushed"])
    write_log("db", [f"checkpoint {i} complete" for i in range(10)])
    result = run([log_lines, log_clusters], warehouse_path)
    assert result.success
    lines_meta = result.asset_materializations_for_node("log_lines")[0].metadata
    assert lines_meta["rows"].value == 41 and lines_meta["services"].value == "api, db"
    assert lines_meta["plot"].value.startswith("![records per service](data:image/png;base64,")
    clusters_meta = result.asset_materializations_for_node("log_clusters")[0].metadata
    assert clusters_meta["lines"].value == 41 and clusters_meta["new_clusters"].value == 3
    assert "GET <*> took <*>" in clusters_meta["largest_clusters"].value
    assert clusters_meta["plot"].value.startswith("![largest clusters](data:image/png;base64,")

    result = run([log_cluster_counts_1m], warehouse_path, partition_key="2026-11-20-13:00")
    assert result.success
    meta = result.asset_materializations_for_node("log_cluster_counts_1m")[0].metadata
    assert meta["lines"].value == 41 and meta["unclustered_lines"].value == 0
    assert "plot" in meta and "preview" in meta
    checks = result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {"counts_match_lines": True}


def test_rematerializing_an_hour_of_counts_changes_nothing(no_model, warehouse_path: Path) -> None:
    write_log("api", [f"job {i} done" for i in range(5)])
    run([log_lines, log_clusters], warehouse_path)
    for _ in range(2):
        assert run([log_cluster_counts_1m], warehouse_path, partition_key="2026-11-20-13:00").success
    with warehouse.connect(warehouse_path) as con:
        assert con.execute("SELECT sum(count), count(*) FROM log_cluster_counts_1m").fetchall() == [(5, 2)]
