"""Minute features: per (minute, service, metric) aggregates of the samples, one hour at a time.

Semantics, which the reference test in `tests/sreops/test_features.py` spells out in pandas:
- Samples that repeat a (service, metric, timestamp) count once: the value of the most
  recently ingested file wins; repeats inside one file are averaged.
- `n, mean, min, max, std (population), first, last, sum` over the minute's samples.
- `delta` is `last` minus the previous observed minute's `last`, `rate` the same change per
  second between the two last samples, `gap_minutes` the minutes since that previous minute;
  the previous minute is looked for up to `LOOKBACK` before the hour, so an hour's features do
  not depend on whether the hour before was built first.
A build replaces the hour's rows in one transaction: re-running never duplicates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from sreops import marks, warehouse
from sreops.timeutil import floor_hour, naive_utc

if TYPE_CHECKING:
    import pyarrow as pa

ASSET = "metric_features_1m"
LOOKBACK = dt.timedelta(hours=1)

_FEATURES_SQL = """
WITH per_file AS (
    SELECT service, metric, ts, file_id, avg(value) AS value
    FROM metric_sample_values
    WHERE ts >= $start AND ts < $end
    GROUP BY service, metric, ts, file_id
),
samples AS (
    SELECT service, metric, ts, arg_max(value, file_id) AS value
    FROM per_file
    GROUP BY service, metric, ts
),
minutes AS (
    SELECT service, metric, date_trunc('minute', ts) AS minute,
           count(*) AS n, avg(value) AS mean, min(value) AS min, max(value) AS max,
           stddev_pop(value) AS std, arg_min(value, ts) AS first, arg_max(value, ts) AS last,
           sum(value) AS sum, max(ts) AS last_ts
    FROM samples
    GROUP BY service, metric, minute
),
before_ts AS (
    SELECT service, metric, max(ts) AS ts
    FROM metric_sample_values
    WHERE ts >= $lookback AND ts < $start
    GROUP BY service, metric
),
before AS (
    -- the last sample before the hour, by the same repeat rule as above
    SELECT service, metric, date_trunc('minute', ts) AS minute, ts AS last_ts,
           arg_max(value, file_id) AS last
    FROM (
        SELECT s.service, s.metric, s.ts, s.file_id, avg(s.value) AS value
        FROM metric_sample_values AS s
        JOIN before_ts AS b ON s.service = b.service AND s.metric = b.metric AND s.ts = b.ts
        WHERE s.ts >= $lookback AND s.ts < $start
        GROUP BY s.service, s.metric, s.ts, s.file_id
    )
    GROUP BY service, metric, ts
),
chained AS (
    SELECT *,
           lag(last) OVER w AS prev_last,
           lag(last_ts) OVER w AS prev_last_ts,
           lag(minute) OVER w AS prev_minute
    FROM (
        SELECT service, metric, minute, n, mean, min, max, std, first, last, sum, last_ts FROM minutes
        UNION ALL
        SELECT service, metric, minute, NULL, NULL, NULL, NULL, NULL, NULL, last, NULL, last_ts FROM before
    )
    WINDOW w AS (PARTITION BY service, metric ORDER BY minute)
)
SELECT minute, service, metric, n, mean, min, max, std, last, first, sum,
       last - prev_last AS delta,
       CASE WHEN last_ts > prev_last_ts
            THEN (last - prev_last) / (epoch(last_ts) - epoch(prev_last_ts)) END AS rate,
       CAST(datediff('minute', prev_minute, minute) AS INTEGER) AS gap_minutes
FROM chained
WHERE minute >= $start
"""

FEATURE_COLUMNS = (
    "minute",
    "service",
    "metric",
    "n",
    "mean",
    "min",
    "max",
    "std",
    "last",
    "first",
    "sum",
    "delta",
    "rate",
    "gap_minutes",
)


@dataclass(frozen=True)
class HourBuild:
    """What one hour's build wrote."""

    hour: dt.datetime
    rows: int
    samples: int
    series: int


def hours_between(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every hour start in [start, end)."""
    hour = floor_hour(start)
    end = naive_utc(end)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += dt.timedelta(hours=1)
    return hours


def write_hour(con: duckdb.DuckDBPyConnection, hour: dt.datetime) -> HourBuild:
    """Replace the features of the hour holding `hour` and record the build (call in a transaction)."""
    start = floor_hour(hour)
    end = start + dt.timedelta(hours=1)
    params = {"start": start, "end": end, "lookback": start - LOOKBACK}
    con.execute("DELETE FROM metric_features_1m WHERE minute >= ? AND minute < ?", [start, end])
    con.execute(f"INSERT INTO metric_features_1m ({', '.join(FEATURE_COLUMNS)}) {_FEATURES_SQL}", params)
    rows, samples, series = con.execute(
        "SELECT count(*), coalesce(sum(n), 0), count(DISTINCT (service, metric)) FROM metric_features_1m"
        " WHERE minute >= ? AND minute < ?",
        [start, end],
    ).fetchone()
    marks.record_build(con, ASSET, start, rows, samples)
    return HourBuild(hour=start, rows=rows, samples=int(samples), series=series)


def insert_features(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame | pa.Table) -> int:
    """Insert ready-made feature rows (columns a subset of `FEATURE_COLUMNS`); the rows added.

    For generators, benchmarks and tests that make features themselves; builds go through
    `build_hour`.
    """
    columns = list(frame.column_names) if hasattr(frame, "column_names") else [str(c) for c in frame.columns]
    unknown = sorted(set(columns) - set(FEATURE_COLUMNS))
    if unknown:
        raise ValueError(f"not columns of metric_features_1m: {', '.join(unknown)}")
    names = ", ".join(columns)
    con.register("new_features", frame)
    try:
        con.execute(f"INSERT INTO metric_features_1m ({names}) SELECT {names} FROM new_features")
    finally:
        con.unregister("new_features")
    return len(frame)


def build_hour(warehouse_path: str | Path | None, hour: dt.datetime) -> HourBuild:
    """Rebuild the features of one hour atomically; returns the counts written.

    On DuckLake a build that conflicts with another writer's commit runs again (`warehouse.transact`).
    """
    return warehouse.transact(lambda con: write_hour(con, hour), warehouse_path)


def build_range(warehouse_path: str | Path | None, start: dt.datetime, end: dt.datetime) -> list[HourBuild]:
    """Rebuild every hour in [start, end), one transaction per hour."""
    return [build_hour(warehouse_path, hour) for hour in hours_between(start, end)]


def duplicate_keys(warehouse_path: str | Path | None, start: dt.datetime, end: dt.datetime) -> int:
    """How many (minute, service, metric) keys appear more than once in [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT count(*) FROM (SELECT minute, service, metric FROM metric_features_1m"
            " WHERE minute >= ? AND minute < ? GROUP BY ALL HAVING count(*) > 1)",
            [naive_utc(start), naive_utc(end)],
        ).fetchone()[0]


def sample_count_mismatch(
    warehouse_path: str | Path | None, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(samples counted by the features, distinct samples in the warehouse) for [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        counted = con.execute(
            "SELECT coalesce(sum(n), 0) FROM metric_features_1m WHERE minute >= ? AND minute < ?",
            [naive_utc(start), naive_utc(end)],
        ).fetchone()[0]
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT service, metric, ts FROM metric_sample_values WHERE ts >= ? AND ts < ?)",
            [naive_utc(start), naive_utc(end)],
        ).fetchone()[0]
    return int(counted), int(distinct)


def read_hour(warehouse_path: str | Path | None, hour: dt.datetime):
    """The features of one hour as a pandas DataFrame, ordered by service, metric, minute."""
    start = floor_hour(hour)
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT * FROM metric_features_1m WHERE minute >= ? AND minute < ? ORDER BY service, metric, minute",
            [start, start + dt.timedelta(hours=1)],
        ).df()
