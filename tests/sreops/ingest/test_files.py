"""Ingestion of landing files: every format, every kind of bad input, exactly-once."""

import datetime as dt
import gzip
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sreops import paths, warehouse
from sreops.ingest import landing as metric_landing
from sreops.ingest import run as ingest_run

HEADER = "timestamp,service,metric,value\n"


def samples(warehouse_path: Path) -> pd.DataFrame:
    with warehouse.connect(warehouse_path) as con:
        return con.execute("SELECT * FROM metric_samples ORDER BY ts, service, metric").df()


def landing(name: str) -> Path:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def write_frame(path: Path, frame: pd.DataFrame) -> Path:
    name = path.name.removesuffix(".gz")
    compression = "gzip" if path.name.endswith(".gz") else None
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True, compression=compression, date_format="iso")
    else:
        frame.to_csv(path, index=False, compression=compression)
    return path


FRAME = pd.DataFrame(
    {
        "timestamp": ["2026-11-20T10:00:00Z", "2026-11-20T10:00:30Z", "2026-11-20T11:15:00Z"],
        "service": ["api", "api", "db"],
        "metric": ["cpu", "cpu", "latency"],
        "value": [0.5, 0.75, 12.0],
    }
)


@pytest.mark.parametrize("name", ["m.csv", "m.csv.gz", "m.parquet", "m.jsonl", "m.jsonl.gz"])
def test_each_format_lands_every_row_in_utc(warehouse_path: Path, name: str) -> None:
    result = ingest_run.ingest_file(write_frame(landing(name), FRAME), warehouse_path)
    assert result.status == "ingested", result.error
    assert result.rows == 3
    got = samples(warehouse_path)
    assert list(got["ts"]) == [
        pd.Timestamp("2026-11-20 10:00:00"),
        pd.Timestamp("2026-11-20 10:00:30"),
        pd.Timestamp("2026-11-20 11:15:00"),
    ]
    assert list(got["value"]) == [0.5, 0.75, 12.0]
    assert result.hours == [dt.datetime(2026, 11, 20, 10), dt.datetime(2026, 11, 20, 11)]
    assert result.moved_to is not None and result.moved_to.exists() and not result.path.exists()


def test_timestamp_forms_offsets_and_epochs_all_become_utc(warehouse_path: Path) -> None:
    path = landing("forms.csv")
    path.write_text(
        HEADER
        + "2026-11-20T12:00:00+02:00,a,m,1\n"  # offset → 10:00 UTC
        + "2026-11-20 10:01:00,a,m,2\n"  # naive → UTC
        + "1763632920,a,m,3\n"  # epoch seconds: 2025-11-20 10:02 UTC
    )
    other = landing("ms.jsonl")
    other.write_text(
        json.dumps({"timestamp": 1763632980500, "service": "a", "metric": "m", "value": 4}) + "\n"
    )
    results = ingest_run.ingest_files([path, other], warehouse_path)
    assert [r.status for r in results] == ["ingested", "ingested"], [r.error for r in results]
    got = list(samples(warehouse_path)["ts"])
    assert pd.Timestamp("2026-11-20 10:00:00") in got
    assert pd.Timestamp("2026-11-20 10:01:00") in got
    assert pd.Timestamp("2025-11-20 10:02:00") in got
    assert pd.Timestamp("2025-11-20 10:03:00.500") in got


def test_extra_columns_become_labels(warehouse_path: Path) -> None:
    path = landing("labels.csv")
    path.write_text("timestamp,service,metric,value,host,region\n2026-11-20T10:00:00Z,api,cpu,1,h1,eu\n")
    ingest_run.ingest_file(path, warehouse_path)
    assert json.loads(samples(warehouse_path)["labels"][0]) == {"host": "h1", "region": "eu"}


BAD_FILES = {
    "missing_column.csv": ("timestamp,service,value\n2026-11-20T10:00:00Z,a,1\n", "missing column 'metric'"),
    "bad_timestamp.csv": (
        HEADER + "2026-11-20T10:00:00Z,a,m,1\nnot-a-time,a,m,2\n",
        "row 2 (line 3), column timestamp",
    ),
    "bad_value.csv": (
        HEADER + "2026-11-20T10:00:00Z,a,m,1\n2026-11-20T10:00:10Z,a,m,1\n2026-11-20T10:00:20Z,a,m,abc\n",
        "row 3 (line 4), column value: 'abc' is not a number",
    ),
    "empty_value.csv": (HEADER + "2026-11-20T10:00:00Z,a,m,\n", "row 1 (line 2), column value: is empty"),
    "empty_service.csv": (HEADER + "2026-11-20T10:00:00Z,,m,1\n", "column service: is empty"),
    "infinite.csv": (HEADER + "2026-11-20T10:00:00Z,a,m,inf\n", "is not a finite number"),
    "empty.csv": ("", "is empty (0 bytes)"),
    "header_only.csv": (HEADER, "no rows"),
    "notes.txt": ("hello", "unsupported type"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_malformed_file_is_quarantined_with_a_reason_naming_file_row_and_column(warehouse_path, name) -> None:
    content, expected = BAD_FILES[name]
    bad = landing(name)
    bad.write_text(content)
    good = write_frame(landing("good.csv"), FRAME)

    results = ingest_run.ingest_files([bad, good], warehouse_path)

    assert results[0].status == "quarantined"
    assert name in results[0].error and expected in results[0].error
    assert results[1].status == "ingested" and results[1].rows == 3
    assert len(samples(warehouse_path)) == 3  # nothing of the bad file landed, all of the good one did
    moved = paths.quarantine_metrics() / name
    assert moved.exists() and not bad.exists()
    assert expected in (paths.quarantine_metrics() / f"{name}.reason.txt").read_text()
    with warehouse.connect(warehouse_path) as con:
        status, error = con.execute(
            "SELECT status, error FROM ingested_files WHERE path = ?", [str(bad)]
        ).fetchone()
    assert status == "quarantined" and expected in error


BAD_PARQUET_ROWS = {
    "nan_value": (("a", "m", float("nan")), "row 2, column value:", "is not a finite number"),
    "infinite_value": (("a", "m", float("-inf")), "row 2, column value:", "is not a finite number"),
    "null_value": (("a", "m", None), "row 2, column value:", "is empty"),
    "empty_service": (("", "m", 1.0), "row 2, column service:", "is empty"),
    "null_metric": (("a", None, 1.0), "row 2, column metric:", "is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_PARQUET_ROWS))
def test_a_typed_file_with_a_bad_row_is_quarantined_with_the_row(warehouse_path: Path, case: str) -> None:
    """Parquet is read with its own types (no text fallback decides): a bad row is named by row and column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    (service, metric, value), where, what = BAD_PARQUET_ROWS[case]
    stamps = [dt.datetime(2026, 11, 20, 10, 0, s) for s in (0, 10, 20)]
    table = pa.table(
        {
            "timestamp": pa.array(stamps, pa.timestamp("us")),
            "service": pa.array(["a", service, "a"], pa.string()),
            "metric": pa.array(["m", metric, "m"], pa.string()),
            "value": pa.array([1.0, value, 2.0], pa.float64(), from_pandas=False),  # NaN stays NaN
        }
    )
    bad = landing(f"{case}.parquet")
    pq.write_table(table, bad)
    (result,) = ingest_run.ingest_files([bad], warehouse_path)
    assert result.status == "quarantined"
    assert where in result.error and what in result.error, result.error
    assert len(samples(warehouse_path)) == 0


def test_bad_row_late_in_a_large_file_is_found(warehouse_path: Path) -> None:
    rows = [f"2026-11-20T10:{i // 60 % 60:02d}:{i % 60:02d}Z,a,m,{i}\n" for i in range(50_000)]
    rows[45_000] = "2026-11-20T10:00:00Z,a,m,12,5\n".replace(",5", "x5")  # '12x5' is not a number
    path = landing("large.csv")
    path.write_text(HEADER + "".join(rows))
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "quarantined"
    assert "row 45001 (line 45002), column value: '12x5' is not a number" in result.error


def test_truncated_parquet_is_quarantined(warehouse_path: Path) -> None:
    whole = write_frame(landing("whole.parquet"), FRAME).read_bytes()
    cut = landing("cut.parquet")
    cut.write_bytes(whole[: len(whole) // 2])
    result = ingest_run.ingest_file(cut, warehouse_path)
    assert result.status == "quarantined" and "cut.parquet" in result.error and "parquet" in result.error


def test_same_content_is_ingested_once(warehouse_path: Path) -> None:
    first = write_frame(landing("a.csv"), FRAME)
    assert ingest_run.ingest_file(first, warehouse_path).status == "ingested"
    again = write_frame(landing("a-copy.csv"), FRAME)
    result = ingest_run.ingest_file(again, warehouse_path)
    assert result.status == "duplicate"
    assert len(samples(warehouse_path)) == 3


def test_content_that_lands_while_a_file_loads_rolls_it_back_as_a_duplicate(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash is checked again before commit: a twin that landed meanwhile adds no rows."""
    first = write_frame(landing("a.csv"), FRAME)
    assert ingest_run.ingest_file(first, warehouse_path).status == "ingested"
    # As if the twin had committed after this ingest's size check (a concurrent ingest).
    monkeypatch.setattr(ingest_run.store, "ingested_with_size", lambda con, size: False)
    result = ingest_run.ingest_file(write_frame(landing("twin.csv"), FRAME), warehouse_path)
    assert result.status == "duplicate" and result.error.startswith("same content as file_id")
    assert len(samples(warehouse_path)) == 3
    with warehouse.connect(warehouse_path) as con:
        statuses = con.execute("SELECT status, rows FROM ingested_files ORDER BY file_id").fetchall()
    assert statuses == [("ingested", 3), ("duplicate", 0)]


def test_hours_before_1970_are_marked_as_the_hours_they_are(warehouse_path: Path) -> None:
    old = landing("old.csv")
    old.write_text(HEADER + "1969-12-31T22:10:00Z,a,m,1\n1970-01-01T00:30:00Z,a,m,2\n")
    window = (dt.datetime(1960, 1, 1), dt.datetime(2100, 1, 1))
    result = ingest_run.ingest_file(old, warehouse_path, window=window)
    assert result.status == "ingested", result.error
    assert result.hours == [dt.datetime(1969, 12, 31, 22), dt.datetime(1970, 1, 1, 0)]


def test_ingestion_marks_exactly_the_hours_it_touched(warehouse_path: Path) -> None:
    late = landing("late.csv")
    late.write_text(HEADER + "2026-11-19T03:10:00Z,a,m,1\n2026-11-19T07:59:59Z,a,m,2\n")
    ingest_run.ingest_file(late, warehouse_path)
    with warehouse.connect(warehouse_path) as con:
        hours = [r[0] for r in con.execute("SELECT hour FROM partition_marks ORDER BY hour").fetchall()]
    assert hours == [dt.datetime(2026, 11, 19, 3), dt.datetime(2026, 11, 19, 7)]


def test_discover_skips_partial_and_hidden_files(sreops_home: Path) -> None:
    for name in ["ok.csv", "writing.csv.part", ".hidden.csv", "x.tmp", "ok.parquet"]:
        landing(name).write_text(HEADER)
    assert sorted(p.name for p in metric_landing.discover()) == ["ok.csv", "ok.parquet"]


def test_cli_ingest_reports_and_exits_nonzero_on_quarantine(sreops_home: Path, capsys) -> None:
    from sreops.cli import main

    good = write_frame(landing("good.csv"), FRAME)
    bad = landing("bad.csv")
    bad.write_text(HEADER + "x,a,m,1\n")
    assert main(["ingest", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "ingested" in out and "QUARANTINED" in out and "bad.csv" in out
    assert good.exists()  # explicit paths outside the sensor's flow are left in place


def test_gzip_truncated_csv_is_quarantined(warehouse_path: Path) -> None:
    path = landing("cut.csv.gz")
    payload = gzip.compress((HEADER + "2026-11-20T10:00:00Z,a,m,1\n" * 2000).encode())
    path.write_bytes(payload[: len(payload) // 2])
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "quarantined" and "cut.csv.gz" in result.error
    assert len(samples(warehouse_path)) == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(min_value=1_600_000_000, max_value=1_900_000_000),
            st.sampled_from(["api", "db", "web-1", "svc.x"]),
            st.sampled_from(["cpu", "mem", "p95"]),
            st.floats(allow_nan=False, allow_infinity=False, width=32, min_value=-1e9, max_value=1e9),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_valid_csv_round_trips(warehouse_path: Path, rows) -> None:
    with warehouse.connect(warehouse_path) as con:
        con.execute("DELETE FROM metric_samples_core")
        con.execute("DELETE FROM metric_samples_extra")
        con.execute("DELETE FROM ingested_files")
    path = landing("prop.csv")
    path.write_text(HEADER + "".join(f"{t},{s},{m},{v!r}\n" for t, s, m, v in rows))
    result = ingest_run.ingest_file(path, warehouse_path, move=False)
    assert result.status == "ingested", result.error
    got = samples(warehouse_path)
    expected = sorted((pd.Timestamp(t, unit="s"), s, m, float(v)) for t, s, m, v in rows)
    assert sorted(zip(got["ts"], got["service"], got["metric"], got["value"], strict=True)) == expected


def test_parquet_with_wrong_types_is_quarantined(warehouse_path: Path) -> None:
    path = landing("types.parquet")
    frame = FRAME.assign(value=["1", "two", "3"])
    frame.to_parquet(path, index=False)
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "quarantined" and "row 2, column value: 'two' is not a number" in result.error


def test_ingest_never_holds_the_file_in_pandas(warehouse_path: Path, monkeypatch) -> None:
    # DuckDB reads the file itself: pandas readers must not be involved in the load path.
    def forbidden(*args, **kwargs):
        raise AssertionError("ingestion must stream through DuckDB, not pandas")

    monkeypatch.setattr(pd, "read_csv", forbidden)
    monkeypatch.setattr(pd, "read_parquet", forbidden)
    result = ingest_run.ingest_file(write_frame(landing("s.csv"), FRAME), warehouse_path)
    assert result.status == "ingested"
    assert duckdb.__version__
