"""The tables of metric ingestion: `metric_samples_core`, `metric_samples_extra`, `ingested_files`.

Functions take a connection; the caller (`sreops.ingest.run`) holds the transaction. A file's
rows go to the lean `metric_samples_core` when it has only the four required columns, to
`metric_samples_extra` (with a JSON `labels` column) when it has more; `metric_sample_values`
is the view over both.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from sreops import warehouse
from sreops.ingest.diagnosis import RowProblem
from sreops.ingest.formats import (
    PLAIN_NAME,
    MalformedFileError,
    file_label,
    keys_sql,
    select_sql,
    unsafe_name,
)

if TYPE_CHECKING:
    import pyarrow as pa

SAMPLE_COLUMNS = ("ts", "service", "metric", "value", "file_id")


def next_file_id(con: duckdb.DuckDBPyConnection) -> int:
    """A new `ingested_files.file_id` (also the samples' `file_id`)."""
    return warehouse.next_ids(con, "ingested_files_seq")[0]


def ingested_with_size(con: duckdb.DuckDBPyConnection, size_bytes: int) -> bool:
    """Whether an ingested file had exactly this size (only such a file can have the same content)."""
    return (
        con.execute(
            "SELECT 1 FROM ingested_files WHERE size_bytes = ? AND status = 'ingested' LIMIT 1", [size_bytes]
        ).fetchone()
        is not None
    )


def ingested_with_hash(con: duckdb.DuckDBPyConnection, digest: str) -> int | None:
    """The file_id of an ingested file with this content hash, if any."""
    seen = con.execute(
        "SELECT file_id FROM ingested_files WHERE sha256 = ? AND status = 'ingested' LIMIT 1",
        [digest],
    ).fetchone()
    return seen[0] if seen else None


_PLAIN = re.compile(PLAIN_NAME)


def _has_unsafe_names(con: duckdb.DuckDBPyConnection, source: str, params: dict) -> bool:
    """Whether any service or metric in `source` fails `check_name` (distinct names only).

    This is also the check for empty names: a per-row test in the INSERT cost more on text files
    than this scan of the few distinct names. NULL names are refused by the tables' NOT NULL.
    """
    for column in ("service", "metric"):
        # Distinct names first, checked here: a regex in the query would run once per row.
        names = con.execute(f"SELECT DISTINCT {column} FROM {source}", params).fetchall()
        if any(
            name is not None and _PLAIN.fullmatch(name) is None and unsafe_name(name) for (name,) in names
        ):
            return True
    return False


_EPOCH = dt.datetime(1970, 1, 1)


def rows_per_hour(con: duckdb.DuckDBPyConnection, source: str, params: dict) -> list[tuple]:
    """`(hour, rows, first ts, last ts)` of the samples in `source` (a table or subquery), in hour order.

    Grouped on whole hours since 1970 (an integer, twice as fast as `date_trunc` on a large
    file); DuckDB's `//` truncates toward zero, so a file reaching before 1970 is grouped with
    `date_trunc` instead (as is one with an infinite timestamp, which has no epoch).
    """
    per_hour = con.execute(
        f"SELECT epoch_us(ts) // 3600000000 AS hour, count(*), min(ts), max(ts) FROM {source}"
        " GROUP BY hour ORDER BY hour",
        params,
    ).fetchall()
    if per_hour and (per_hour[0][2] < _EPOCH or per_hour[-1][0] is None):  # before 1970, or infinite
        return con.execute(
            f"SELECT date_trunc('hour', ts) AS hour, count(*), min(ts), max(ts) FROM {source}"
            " GROUP BY hour ORDER BY hour",
            params,
        ).fetchall()
    return [(_EPOCH + dt.timedelta(hours=hour), *rest) for hour, *rest in per_hour]


def _checked(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    source: str,
    params: dict,
    window: tuple[dt.datetime, dt.datetime],
) -> list[tuple]:
    """The rows per hour of `source` after its names and timestamps pass the checks."""
    if _has_unsafe_names(con, source, params):
        raise RowProblem("a service or metric name is refused (see sreops.names.check_name)")
    per_hour = rows_per_hour(con, source, params)
    if not per_hour:
        raise MalformedFileError(f"metrics file {file_label(path)}: has a header but no rows")
    if per_hour[0][2] < window[0] or per_hour[-1][3] >= window[1]:
        raise RowProblem(
            f"a timestamp is outside the plausible window {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d} (UTC)"
        )
    return per_hour


def _identity(path: Path) -> tuple[int, int, int]:
    """What changes when a file is replaced or rewritten: inode, size, modification time (ns)."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def insert_file_rows(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    columns: dict[str, str],
    resolved: dict[str, str],
    fmt: str,
    file_id: int,
    window: tuple[dt.datetime, dt.datetime],
    text: bool,
) -> tuple[str, list[tuple]]:
    """Insert the file's rows (inside the caller's transaction); the table and rows per hour.

    Raises duckdb.Error when a row cannot be converted, `RowProblem` for a row the checks
    refuse (an unsafe name, a timestamp outside `window`), MalformedFileError for no rows.
    """
    insert, reader, table = select_sql(columns, resolved, fmt, text=text)
    params = {"path": str(path), "file_id": file_id}
    if fmt != "parquet":
        con.execute(f"INSERT INTO {insert} FROM {reader}", params)
    else:
        # Columnar: the file's own three key columns, read again in parallel, are checked before
        # any row is written; DuckDB scans a transaction's uncommitted rows on one thread only.
        before = _identity(path)
        per_hour = _checked(con, path, keys_sql(columns, resolved, fmt, text), {"path": str(path)}, window)
        (inserted_rows,) = con.execute(f"INSERT INTO {insert} FROM {reader}", params).fetchone()
        if _identity(path) == before and inserted_rows == sum(row[1] for row in per_hour):
            return table, per_hour
        # Rewritten between the two reads (its writer did not land it by rename): check the rows
        # that were inserted instead, so the marks always describe them.
    inserted = f"metric_samples_{table} WHERE file_id = $file_id"
    return table, _checked(con, path, inserted, {"file_id": file_id}, window)


def record_rejection(
    con: duckdb.DuckDBPyConnection, path: Path, digest: str, status: str, error: str | None
) -> int:
    """Record a file that brought no rows (`duplicate` or `quarantined`, with why); its file_id."""
    file_id = next_file_id(con)
    try:
        size = path.stat().st_size
    except OSError:
        size = 0
    con.execute(
        "INSERT INTO ingested_files (file_id, path, sha256, size_bytes, rows, status, error, ingested_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?, now()::TIMESTAMP)",
        [file_id, str(path), digest, size, status, error],
    )
    return file_id


def record_ingested(
    con: duckdb.DuckDBPyConnection,
    file_id: int,
    path: Path,
    digest: str,
    size_bytes: int,
    rows: int,
    span: tuple[dt.datetime, dt.datetime],
    source: str,
) -> None:
    """Record a file whose `rows` samples, from `span` (first, last), were inserted under `file_id`."""
    con.execute(
        "INSERT INTO ingested_files (file_id, path, sha256, size_bytes, rows, status, error, ingested_at,"
        " min_ts, max_ts, source) VALUES (?, ?, ?, ?, ?, 'ingested', NULL, now()::TIMESTAMP, ?, ?, ?)",
        [file_id, str(path), digest, size_bytes, rows, span[0], span[1], source],
    )


def insert_samples(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame | pa.Table) -> int:
    """Insert samples without labels (columns `ts, service, metric, value, file_id`); rows added.

    For generators and benchmarks that make samples themselves; files land through `run`.
    """
    con.register("new_samples", frame)
    try:
        columns = ", ".join(SAMPLE_COLUMNS)
        con.execute(f"INSERT INTO metric_samples_core ({columns}) SELECT {columns} FROM new_samples")
    finally:
        con.unregister("new_samples")
    return len(frame)
