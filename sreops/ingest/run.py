"""Metric ingestion from landing files: CSV, Parquet and JSON Lines, optionally gzipped.

The entry point of the stage (`ingest_file`, `ingest_files`), called by the `metric_samples`
asset and `sreops ingest`: hash the file, load it in one transaction, archive or quarantine it.
The pieces: `formats` (the SQL that reads a file, no I/O), `diagnosis` (why a file is refused),
`landing` (the folder, content hashes, archive and quarantine), `store` (the tables).

A file is long format `timestamp, service, metric, value` (extra columns become labels).
Each file lands once (by content hash) and atomically: its rows, its `ingested_files` record
and the marks of the hours it touched commit together. DuckDB reads the file itself, so a
large file is streamed, never held whole in memory. A malformed file is quarantined with a
reason that names the file, the row and the column; the other files of the batch still land.

What a file must be to land, row by row, checked in the load and explained by `diagnose`:
- every line readable: a ragged CSV row, invalid UTF-8, broken JSON or a cut or corrupt gzip
  stream (its CRC is checked here: DuckDB does not) anywhere in the file quarantines it. No
  outcome depends on where DuckDB's sniffing sample ends: the CSV dialect is fixed (RFC 4180,
  comma or tab), and a file whose types the sample guessed too narrowly is read again as text;
- a timestamp in the plausible window `PLAUSIBLE` (1970-01-01 up to 2100-01-01, UTC): year 1
  or 9999 is a parse slip, not an observation, and would mark hours no partition holds. The
  bound is fixed, not "now", so a file's fate never depends on the ingesting host's clock;
  callers that want a clock-based bound pass their own `window`;
- a service and a metric that `sreops.names.check_name` accepts (no control characters, line
  breaks or bidirectional overrides, at most 200 characters), and a finite number as value.
Reasons quote data escaped and cut short, never raw. A file that vanishes while it is handled
(another `sreops ingest --move` took it) is skipped, status `vanished`, never an error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from sreops import marks, warehouse
from sreops.ingest import landing, store
from sreops.ingest.diagnosis import (
    DATA_ERRORS,
    RowProblem,
    check_gzip,
    diagnose,
    not_the_files_fault,
    read_columns,
    unreadable,
)
from sreops.ingest.formats import (
    PLAUSIBLE,
    MalformedFileError,
    dialect,
    file_format,
    file_label,
    resolve_columns,
)

log = logging.getLogger(__name__)

FEATURES_ASSET = "metric_features_1m"


@dataclass
class FileResult:
    """What happened to one file."""

    path: Path
    status: str  # ingested | duplicate | quarantined | vanished
    rows: int = 0
    error: str | None = None
    file_id: int | None = None
    hours: list[dt.datetime] = field(default_factory=list)
    moved_to: Path | None = None


def _duplicate(con: duckdb.DuckDBPyConnection, path: Path, digest: str) -> FileResult | None:
    """The `duplicate` result (recorded) when a file with this content landed before, else None."""
    seen = store.ingested_with_hash(con, digest)
    if seen is None:
        return None
    reason = f"same content as file_id {seen}"
    file_id = store.record_rejection(con, path, digest, "duplicate", reason)
    return FileResult(path=path, status="duplicate", file_id=file_id, error=reason)


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    source: str,
    content_hash: landing.BackgroundHash,
    window: tuple[dt.datetime, dt.datetime],
) -> FileResult:
    """Insert one file's rows with its record and hour marks; raises MalformedFileError.

    The fast path reads with the types DuckDB sniffs from a sample. When it fails, the file is
    read again as text: a bad row is reported; a file whose every row is fine (the sample only
    guessed a type too narrow for a later row) is loaded as text, so the outcome never depends
    on where the sample ended.

    The content hash is computed while the rows load; it is checked once more before the
    commit, so a file whose content landed meanwhile is rolled back as a duplicate.
    """
    if path.name.lower().endswith(".gz"):
        check_gzip(path)
    columns = read_columns(con, path, fmt)
    resolved = resolve_columns(path, columns)
    file_id = store.next_file_id(con)
    for text in (False, True):
        con.execute("BEGIN TRANSACTION")
        try:
            _, per_hour = store.insert_file_rows(con, path, columns, resolved, fmt, file_id, window, text)
            break
        except MalformedFileError:
            con.execute("ROLLBACK")
            raise
        except (duckdb.Error, RowProblem) as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error) and not_the_files_fault(exc):
                raise
            reason = diagnose(con, path, fmt, columns, resolved, window)
            if reason:
                raise MalformedFileError(reason) from exc
            if text:
                if isinstance(exc, RowProblem):
                    raise MalformedFileError(f"metrics file {file_label(path)}: {exc}") from exc
                if isinstance(exc, DATA_ERRORS):
                    raise MalformedFileError(unreadable(path, fmt, exc)) from exc
                # every row passed the checks, read as text, and the error is not about data:
                # the warehouse's (disk full, I/O), which quarantining the file would not cure
                raise
            log.info("%s: sniffed types do not fit every row; loading it as text", path.name)
    rows = sum(row[1] for row in per_hour)
    hours = [row[0] for row in per_hour]
    try:
        digest = content_hash.result()
        if store.ingested_with_hash(con, digest) is not None:
            con.execute("ROLLBACK")
            duplicate = _duplicate(con, path, digest)
            assert duplicate is not None
            return duplicate
        span = (per_hour[0][2], per_hour[-1][3])
        store.record_ingested(con, file_id, path, digest, path.stat().st_size, rows, span, source)
        marks.mark_hours(con, FEATURES_ASSET, hours, f"samples from {path.name}", file_id)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return FileResult(path=path, status="ingested", rows=rows, file_id=file_id, hours=hours)


def _vanished(path: Path) -> FileResult:
    log.info("%s: gone before it was read (taken by another ingest); skipped", path)
    return FileResult(path=path, status="vanished", error="moved away by another ingest before it was read")


def ingest_file(
    path: Path,
    warehouse_path: str | Path | None = None,
    *,
    source: str = "landing",
    move: bool = True,
    window: tuple[dt.datetime, dt.datetime] = PLAUSIBLE,
) -> FileResult:
    """Ingest one file; a malformed one is recorded (and, with `move`, quarantined), never raised.

    `window` is the [start, end) of plausible timestamps (naive UTC). A file that is gone
    before it is read comes back with status `vanished` and leaves no record.
    """
    path = Path(path)
    fmt = file_format(path)
    if not path.exists():
        return _vanished(path)
    # The hash overlaps the load and is checked before the commit (a folder has none).
    content_hash = landing.BackgroundHash(path) if path.is_file() else None
    with warehouse.connect(warehouse_path) as con:
        if not path.exists():  # taken while this ingest waited for the warehouse
            return _vanished(path)
        try:
            if fmt is None:
                raise MalformedFileError(
                    f"metrics file {file_label(path)}: unsupported type; use .csv, .parquet or .jsonl (optionally .gz)"
                )
            if not path.is_file():
                raise MalformedFileError(f"metrics file {file_label(path)}: is not a regular file")
            if path.stat().st_size == 0:
                raise MalformedFileError(f"metrics file {file_label(path)}: is empty (0 bytes)")
            # Only a file of a size that landed before can be a duplicate: for it, wait for the
            # hash instead of loading rows that would be rolled back.
            assert content_hash is not None  # a regular file
            duplicate = None
            if store.ingested_with_size(con, path.stat().st_size):
                duplicate = _duplicate(con, path, content_hash.result())
            result = duplicate or _load(con, path, dialect(path, fmt), source, content_hash, window)
        except FileNotFoundError:
            return _vanished(path)
        except MalformedFileError as exc:
            if not path.exists():  # the read failed because the file went, not because of it
                return _vanished(path)
            try:
                digest = content_hash.result() if content_hash else ""
            except OSError:  # unreadable as a whole: the reason says why, the hash stays empty
                digest = ""
            file_id = store.record_rejection(con, path, digest, "quarantined", str(exc))
            result = FileResult(path=path, status="quarantined", error=str(exc), file_id=file_id)
            log.warning("quarantined: %s", exc)
    if move:
        result.moved_to = landing.move(result.path, result.status, result.error)
    return result


def ingest_files(
    files: Iterable[Path],
    warehouse_path: str | Path | None = None,
    *,
    source: str = "landing",
    move: bool = True,
    window: tuple[dt.datetime, dt.datetime] = PLAUSIBLE,
) -> list[FileResult]:
    """Ingest each file on its own, so one bad file never blocks the others."""
    return [ingest_file(Path(f), warehouse_path, source=source, move=move, window=window) for f in files]
