"""Detection's tables: every read and write of `anomalies`, `detector_models`, `detector_versions`,
`detector_comparisons` and `events`, and the reads of `metric_features_1m` scoring needs.

Functions take an open DuckDB connection (`sreops.warehouse.connect` / `transaction`, opened by
`detection.run`); nothing here decides anything. This is the only module that writes these tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa

from sreops import warehouse
from sreops.detection.artifacts import ModelKey, model_id
from sreops.detection.models import SeriesModel
from sreops.timeutil import from_epoch

Connection = duckdb.DuckDBPyConnection
SERVICE_METRIC = "*"
ANOMALY_COLUMNS = (
    "minute",
    "service",
    "metric",
    "detector",
    "version",
    "score",
    "is_anomaly",
    "severity",
    "value",
    "expected_low",
    "expected_high",
    "novelty",
    "explanation",
    "event",
    "model_id",
    "scored_at",
)
HOUR = dt.timedelta(hours=1)


# ---- metric_features_1m (read) ------------------------------------------------------------------
@dataclass(frozen=True)
class SeriesState:
    """Where a series stands at a grid time: when first seen, points before the grid, its first model."""

    first: dt.datetime
    before_grid: int  # points strictly before the grid time
    cold_start: dt.datetime | None  # the time of its cold_start_points-th point (its first model)


def series_states(
    con: Connection, grid: dt.datetime, end: dt.datetime, cold_start_points: int
) -> dict[tuple[str, str], SeriesState]:
    """Every series with features before `end`: first minute, points before `grid`, cold-start time.

    The cold-start time is looked up only for series young at the grid (at most
    `cold_start_points` points before it); for the others it lies before the grid and only that
    matters, so it is reported as their first minute.
    """
    rows = con.execute(
        "SELECT service, metric, min(minute), count(*) FILTER (WHERE minute < ?)"
        " FROM metric_features_1m WHERE minute < ? GROUP BY ALL",
        [grid, end],
    ).fetchall()
    young = pd.DataFrame(
        [(s, m) for s, m, _, before in rows if before <= cold_start_points], columns=["service", "metric"]
    )
    cold: dict[tuple[str, str], dt.datetime] = {}
    if len(young):
        con.register("young_series", young)
        cold = {
            (s, m): minute
            for s, m, minute in con.execute(
                "SELECT service, metric, minute FROM (SELECT f.service, f.metric, f.minute,"
                " row_number() OVER (PARTITION BY f.service, f.metric ORDER BY f.minute) - 1 AS position"
                " FROM metric_features_1m f JOIN young_series USING (service, metric)"
                " WHERE f.minute < ?) WHERE position = ?",
                [end, cold_start_points],
            ).fetchall()
        }
        con.unregister("young_series")
    return {
        (s, m): SeriesState(first, int(before), cold.get((s, m)) if before <= cold_start_points else first)
        for s, m, first, before in rows
    }


def series_between(con: Connection, start: dt.datetime, end: dt.datetime) -> list[tuple[str, str]]:
    """Every (service, metric) with a minute in [start, end), sorted."""
    return con.execute(
        "SELECT DISTINCT service, metric FROM metric_features_1m WHERE minute >= ? AND minute < ? ORDER BY ALL",
        [start, end],
    ).fetchall()


VALUES_SCHEMA = pa.schema(
    [
        ("service", pa.string()),
        ("metric", pa.string()),
        ("minute", pa.timestamp("us")),
        ("value", pa.float64()),
    ]
)


def _values_table(
    con: Connection, start: dt.datetime, end: dt.datetime, series: set[tuple[str, str]]
) -> pa.Table:
    """Minute means of the named series in [start, end), as Arrow (no pandas frame on the way)."""
    con.register("wanted_series", pd.DataFrame(sorted(series), columns=["service", "metric"]))
    table = con.execute(
        "SELECT f.service, f.metric, f.minute, f.mean AS value FROM metric_features_1m f"
        " JOIN wanted_series USING (service, metric) WHERE f.minute >= ? AND f.minute < ?",
        [start, end],
    ).to_arrow_table()
    con.unregister("wanted_series")
    return table.cast(VALUES_SCHEMA)


def read_last_values(con: Connection, before: dict[tuple[str, str], dt.datetime], count: int) -> pd.DataFrame:
    """The last `count` minute means of each named series before its own time, ordered by series and minute."""
    if not before or count <= 0:
        return pd.DataFrame(columns=["service", "metric", "minute", "value"])
    query = (
        "SELECT service, metric, minute, value FROM (SELECT f.service, f.metric, f.minute, f.mean AS value,"
        " row_number() OVER (PARTITION BY f.service, f.metric ORDER BY f.minute DESC) AS back"
        " FROM metric_features_1m f JOIN wanted_series w ON f.service = w.service AND f.metric = w.metric"
        " AND f.minute < w.until {bound}) WHERE back <= ? ORDER BY service, metric, minute"
    )

    def wanted(keys: Iterable[tuple[str, str]]) -> pd.DataFrame:
        return pd.DataFrame(
            [(s, m, before[(s, m)]) for s, m in sorted(keys)], columns=["service", "metric", "until"]
        )

    con.register("wanted_series", wanted(before))
    # most series are dense: a read of the last hours finds their points; the rest are read unbounded
    span = dt.timedelta(minutes=count) * 1.25 + dt.timedelta(hours=6)
    frame = con.execute(
        query.format(bound="AND f.minute >= w.until - to_seconds(?)"), [span.total_seconds(), count]
    ).df()
    con.unregister("wanted_series")
    found = frame.groupby(["service", "metric"]).size() if len(frame) else pd.Series(dtype=int)
    short = [key for key in before if found.get(key, 0) < count]
    if short:
        con.register("wanted_series", wanted(short))
        rest = con.execute(query.format(bound=""), [count]).df()
        con.unregister("wanted_series")
        if len(frame):
            frame = frame[~pd.MultiIndex.from_frame(frame[["service", "metric"]]).isin(short)]
        frame = pd.concat([frame, rest], ignore_index=True).sort_values(
            ["service", "metric", "minute"], kind="stable"
        )
    return frame.reset_index(drop=True)


def read_history(
    con: Connection,
    young: set[tuple[str, str]],
    mature: set[tuple[str, str]],
    grid: dt.datetime,
    end: dt.datetime,
    context: int,
) -> pa.Table:
    """What scoring up to `end` reads, as one Arrow table sorted by service, metric and minute.

    A young series is read from its first point, a mature one from `grid` (its model's
    boundary) with the `context` points before it. Arrow, not pandas: for a thousand series the
    frame conversion cost more than the reads.
    """
    tables = []
    if young:
        tables.append(_values_table(con, dt.datetime(1970, 1, 1), end, young))
    if mature:
        before = read_last_values(con, {key: grid for key in mature}, context)
        tables.append(pa.Table.from_pandas(before, preserve_index=False).cast(VALUES_SCHEMA))
        tables.append(_values_table(con, grid, end, mature))
    if not tables:
        return VALUES_SCHEMA.empty_table()
    order = [("service", "ascending"), ("metric", "ascending"), ("minute", "ascending")]
    return pa.concat_tables(tables).sort_by(order)


# ---- detector_models ------------------------------------------------------------------------------
def register_models(con: Connection, rows: list[tuple[ModelKey, SeriesModel | None, str]]) -> None:
    """Record trained models in `detector_models` (one row per key; a re-train replaces the row)."""
    for key, model, location in rows:
        version, service, metric, until = key
        con.execute("DELETE FROM detector_models WHERE model_id = ?", [model_id(key)])
        con.execute(
            "INSERT INTO detector_models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
            [
                model_id(key),
                version,
                service,
                metric,
                until,
                from_epoch(model.train_start_s) if model else None,
                model.points if model else 0,
                model.kind if model else "none",
                location,
            ],
        )


# ---- anomalies ------------------------------------------------------------------------------------
def write_hour(
    con: Connection, hour: dt.datetime, version: str, frame: pd.DataFrame, end: dt.datetime | None = None
) -> None:
    """Replace one version's rows of one hour (or of [hour, end)) in `anomalies` (inside a transaction)."""
    table = (
        frame.reindex(columns=list(ANOMALY_COLUMNS))
        if len(frame)
        else pd.DataFrame(columns=list(ANOMALY_COLUMNS))
    )
    table = table.astype({"explanation": object, "event": object, "model_id": object})
    con.execute(
        "DELETE FROM anomalies WHERE minute >= ? AND minute < ? AND version = ?",
        [hour, end or hour + HOUR, version],
    )
    if len(table):
        con.register("scored_rows", table)
        con.execute(
            f"INSERT INTO anomalies ({', '.join(ANOMALY_COLUMNS)}) SELECT {', '.join(ANOMALY_COLUMNS)}"
            " FROM scored_rows"
        )
        con.unregister("scored_rows")


def read_service_scores(con: Connection, version: str, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Service-minute scores of one version in [start, end): service, minute, score, explanation, event."""
    return con.execute(
        "SELECT service, minute, score, explanation, event FROM anomalies"
        " WHERE version = ? AND metric = ? AND minute >= ? AND minute < ? ORDER BY service, minute",
        [version, SERVICE_METRIC, start, end],
    ).df()


def duplicate_rows(con: Connection, start: dt.datetime, end: dt.datetime, version: str) -> int:
    """How many (minute, service, metric) keys of one version appear more than once in [start, end)."""
    return con.execute(
        "SELECT count(*) FROM (SELECT minute, service, metric FROM anomalies"
        " WHERE version = ? AND minute >= ? AND minute < ? GROUP BY ALL HAVING count(*) > 1)",
        [version, start, end],
    ).fetchone()[0]


def hours_scored(con: Connection) -> dict[str, int]:
    """Per version: how many distinct hours it has scored."""
    return dict(
        con.execute(
            "SELECT version, count(DISTINCT date_trunc('hour', minute)) FROM anomalies GROUP BY version"
        ).fetchall()
    )


# ---- events ---------------------------------------------------------------------------------------
def insert_event(
    con: Connection,
    kind: str,
    service: str | None,
    start: dt.datetime,
    end: dt.datetime,
    note: str,
    source: str,
) -> int:
    """One row of `events`; returns its id."""
    event_id = warehouse.next_ids(con, "events_seq")[0]
    con.execute(
        "INSERT INTO events (event_id, kind, service, starts_at, ends_at, note, source, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [event_id, kind, service, start, end, note, source],
    )
    return event_id


def events_overlapping(con: Connection, start: dt.datetime, end: dt.datetime, settle_s: float) -> list[tuple]:
    """(kind, service, starts_at, ends_at, note, source) of events that may overlap [start, end)."""
    return con.execute(
        "SELECT kind, service, starts_at, ends_at, coalesce(note, ''), source FROM events"
        " WHERE starts_at < ? AND ends_at >= ? - to_seconds(?)",
        [end, start, settle_s],
    ).fetchall()


# ---- detector_versions, detector_comparisons ------------------------------------------------------
def version_row(con: Connection, version: str) -> tuple | None:
    """(status, settings JSON, note) of a registered version, or None."""
    return con.execute(
        "SELECT status, settings, note FROM detector_versions WHERE version = ?", [version]
    ).fetchone()


def current_version(con: Connection, current: str) -> tuple | None:
    """(version, settings JSON, note) of the version whose status is `current`, or None."""
    return con.execute(
        "SELECT version, settings, note FROM detector_versions WHERE status = ? LIMIT 1", [current]
    ).fetchone()


def insert_version(
    con: Connection, version: str, settings_json: str, status: str, promoted_at: dt.datetime | None, note: str
) -> None:
    con.execute(
        "INSERT INTO detector_versions VALUES (?, ?, ?, now()::TIMESTAMP, ?, ?)",
        [version, settings_json, status, promoted_at, note],
    )


def set_status(
    con: Connection, version: str, status: str, promoted_at: dt.datetime, note: str, retire: str, current: str
) -> None:
    """Make `version` the one with status `current`; the previous one gets status `retire`."""
    con.execute("UPDATE detector_versions SET status = ? WHERE status = ?", [retire, current])
    con.execute(
        "UPDATE detector_versions SET status = ?, promoted_at = ?, note = ? WHERE version = ?",
        [status, promoted_at, note, version],
    )


def versions_table(con: Connection) -> pd.DataFrame:
    """Every registered version with its status and the hours it has scored."""
    return con.execute(
        "SELECT v.version, v.status, v.created_at, v.promoted_at, v.note,"
        " (SELECT count(DISTINCT date_trunc('hour', a.minute)) FROM anomalies a WHERE a.version = v.version)"
        " AS hours_scored, v.settings FROM detector_versions v ORDER BY v.created_at"
    ).df()


def insert_comparison(
    con: Connection,
    candidate: str,
    baseline: str,
    start: dt.datetime,
    end: dt.datetime,
    counts: tuple[int, int, int],
    rows: pd.DataFrame,
) -> None:
    con.execute(
        "INSERT INTO detector_comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, now()::TIMESTAMP)",
        [candidate, baseline, start, end, *counts, rows.to_json(orient="records", date_format="iso")],
    )
