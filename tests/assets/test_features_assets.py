"""The metric assets through Dagster: materialization, re-materialization, checks, metadata."""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd

from assets.features import metric_features_1m
from assets.ingest import metric_samples
from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sensors.rebuilds import rebuild_requests
from sreops import marks, paths, warehouse

HOURS = [dt.datetime(2026, 11, 20, 10), dt.datetime(2026, 11, 20, 11)]


def land(name: str) -> Path:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        (h + dt.timedelta(seconds=10 * i), svc, "cpu", float(i % 7))
        for h in HOURS
        for i in range(360)
        for svc in ("api", "db")
    ]
    path = folder / name
    pd.DataFrame(rows, columns=["timestamp", "service", "metric", "value"]).to_csv(path, index=False)
    return path


def run(selection, warehouse_path: Path, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        selection,
        resources={
            "warehouse": WarehouseResource(location=str(warehouse_path)),
            "sreops_config": ConfigResource(),
            "slack": SlackResource(),
        },
        **kwargs,
    )


def test_ingest_then_features_for_a_partition_with_passing_checks(warehouse_path: Path) -> None:
    land("a.csv")
    result = run([metric_samples], warehouse_path)
    assert result.success
    meta = result.asset_materializations_for_node("metric_samples")[0].metadata
    assert meta["rows"].value == 1440 and meta["quarantined"].value == 0 and meta["hours_touched"].value == 2
    assert meta["plot"].value.startswith("![rows per file](data:image/png;base64,")

    result = run([metric_features_1m], warehouse_path, partition_key="2026-11-20-10:00")
    assert result.success
    meta = result.asset_materializations_for_node("metric_features_1m")[0].metadata
    assert meta["rows"].value == 120 and meta["samples"].value == 720
    assert "plot" in meta and "preview" in meta
    checks = result.get_asset_check_evaluations()
    assert {c.check_name: c.passed for c in checks} == {
        "no_duplicate_keys": True,
        "counts_match_samples": True,
    }


def test_rematerializing_a_partition_leaves_the_same_rows(warehouse_path: Path) -> None:
    land("a.csv")
    run([metric_samples], warehouse_path)
    for _ in range(2):
        assert run([metric_features_1m], warehouse_path, partition_key="2026-11-20-11:00").success
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute(
            "SELECT count(*) FROM metric_features_1m WHERE date_trunc('hour', minute) = ?", [HOURS[1]]
        ).fetchone()[0]
    assert rows == 120


def test_a_live_batch_gets_its_features_in_the_ingest_run_and_no_second_build(warehouse_path: Path) -> None:
    land("live.csv")  # two hours: few enough to be built in the ingest run
    result = run([metric_samples], warehouse_path)
    assert result.success
    built = {
        m.partition: m.metadata["rows"].value
        for m in result.asset_materializations_for_node("metric_samples")
        if m.asset_key == metric_features_1m.key
    }
    assert built == {"2026-11-20-10:00": 120, "2026-11-20-11:00": 120}
    # the marks the ingest left are satisfied by those builds: the landing sensor requests nothing
    requests, _, _ = rebuild_requests(
        str(warehouse_path), "metric_features_1m", 0, "build_features", "features"
    )
    assert requests == []
    # a later file for the same hour is a new mark, after the build: it is requested again
    with warehouse.transaction(warehouse_path) as con:
        marks.mark_hours(con, "metric_features_1m", [HOURS[1]], "late samples")
    requests, _, _ = rebuild_requests(
        str(warehouse_path), "metric_features_1m", 0, "build_features", "features"
    )
    assert [r.partition_key for r in requests] == ["2026-11-20-11:00"]


def test_a_bad_file_fails_nothing_and_is_reported(warehouse_path: Path) -> None:
    land("good.csv")
    (paths.landing_metrics() / "bad.csv").write_text("timestamp,service,metric,value\nsoon,a,b,1\n")
    result = run([metric_samples], warehouse_path)
    assert result.success
    meta = result.asset_materializations_for_node("metric_samples")[0].metadata
    assert meta["ingested"].value == 1 and meta["quarantined"].value == 1
    assert "bad.csv" in meta["results"].value
