"""Metric ingestion from landing files: CSV, Parquet and JSON Lines, optionally gzipped.

A file is long format `timestamp, service, metric, value` (extra columns become labels).
Each file lands once (by content hash) and atomically: its rows, its `ingested_files` record
and the marks of the hours it touched commit together. DuckDB reads the file itself, so a
large file is streamed, never held whole in memory. A malformed file is quarantined with a
reason that names the file, the row and the column; the other files of the batch still land.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import logging
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from sreops import paths, warehouse

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("timestamp", "service", "metric", "value")
FEATURES_ASSET = "metric_features_1m"
_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


class MalformedFileError(ValueError):
    """A metrics file cannot be ingested; the message says which row and column, and why."""


@dataclass
class FileResult:
    """What happened to one file."""

    path: Path
    status: str  # ingested | duplicate | quarantined
    rows: int = 0
    error: str | None = None
    file_id: int | None = None
    hours: list[dt.datetime] = field(default_factory=list)
    moved_to: Path | None = None


def file_format(path: Path) -> str | None:
    """`csv`, `parquet` or `jsonl` from the file name (a `.gz` suffix is looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def is_candidate(path: Path) -> bool:
    """A finished data file: not hidden, not a partial download, a supported format."""
    name = path.name
    if name.startswith((".", "_")) or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
        return False
    return path.is_file() and file_format(path) is not None


def discover(folder: Path | None = None) -> list[Path]:
    """Candidate files directly in the landing folder (subfolders are not scanned), oldest first."""
    folder = folder or paths.landing_metrics()
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if is_candidate(p)]
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def sha256_of(path: Path) -> str:
    """Content hash, streamed in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _reader(fmt: str, types: dict[str, str] | None = None, all_varchar: bool = False) -> str:
    """A table function over the file at parameter `$path`."""
    if fmt == "parquet":
        return "read_parquet($path)"
    if fmt == "jsonl":
        return "read_json($path, format = 'newline_delimited', sample_size = 20480)"
    options = ["header = true"]
    if all_varchar:
        options.append("all_varchar = true")
    elif types:
        pairs = ", ".join(f"'{name.replace(chr(39), chr(39) * 2)}': '{kind}'" for name, kind in types.items())
        options.append(f"types = {{{pairs}}}")
    return f"read_csv($path, {', '.join(options)})"


def _columns(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type as the reader detects them."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_reader(fmt)}", {"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        raise MalformedFileError(
            f"metrics file {path.name}: cannot be read as {fmt}: {_first_line(exc)}"
        ) from exc
    return {row[0]: row[1] for row in rows}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _resolve_columns(path: Path, columns: dict[str, str]) -> dict[str, str]:
    """Map each required column to the file's own spelling (case and spaces ignored)."""
    by_norm = {name.strip().lower(): name for name in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in by_norm]
    if missing:
        found = ", ".join(columns) or "none"
        raise MalformedFileError(
            f"metrics file {path.name}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (found: {found}); the long format needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    return {c: by_norm[c] for c in REQUIRED_COLUMNS}


_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
)


def _epoch_expr(col: str) -> str:
    """Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude."""
    x = f"CAST({col} AS DOUBLE)"
    return (
        f"CASE WHEN abs({x}) >= 1e17 THEN make_timestamp(CAST({x} / 1000 AS BIGINT))"
        f" WHEN abs({x}) >= 1e14 THEN make_timestamp(CAST({x} AS BIGINT))"
        f" WHEN abs({x}) >= 1e11 THEN make_timestamp(CAST({x} * 1000 AS BIGINT))"
        f" ELSE make_timestamp(CAST({x} * 1000000 AS BIGINT)) END"
    )


def _ts_expr(col: str, kind: str) -> str:
    """An expression turning the file's timestamp column into a naive UTC TIMESTAMP."""
    kind = kind.upper()
    if kind.startswith("TIMESTAMP WITH TIME ZONE") or kind == "TIMESTAMPTZ":
        return f"timezone('UTC', {col})"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return f"CAST({col} AS TIMESTAMP)"
    if kind.startswith(_NUMERIC):
        return _epoch_expr(col)
    text = f"trim(CAST({col} AS VARCHAR))"
    return (
        f"CASE WHEN regexp_full_match({text}, '-?[0-9]+(\\.[0-9]*)?') THEN {_epoch_expr(text)}"
        f" ELSE timezone('UTC', CAST({text} AS TIMESTAMPTZ)) END"
    )


def _select_sql(columns: dict[str, str], resolved: dict[str, str], fmt: str) -> tuple[str, str, str]:
    """The INSERT column list with its SELECT, and the reader, for this file's sample rows.

    Files with only the four required columns go to the lean `metric_samples_core` table;
    files with extra columns (labels) go to `metric_samples_extra`.
    """
    q = {name: _quote(resolved[name]) for name in REQUIRED_COLUMNS}
    types = None
    if fmt == "csv":
        types = {resolved["service"]: "VARCHAR", resolved["metric"]: "VARCHAR", resolved["value"]: "DOUBLE"}
    ts_kind = columns[resolved["timestamp"]]
    value_kind = "DOUBLE" if fmt == "csv" else columns[resolved["value"]]
    value = (
        f"CAST({q['value']} AS DOUBLE)"
        if value_kind.upper().startswith(_NUMERIC)
        else (f"CAST(trim(CAST({q['value']} AS VARCHAR)) AS DOUBLE)")
    )
    select = (
        f"SELECT {_ts_expr(q['timestamp'], ts_kind)} AS ts,"
        f" CASE WHEN coalesce(CAST({q['service']} AS VARCHAR), '') = ''"
        f"  THEN error('empty service') ELSE CAST({q['service']} AS VARCHAR) END AS service,"
        f" CASE WHEN coalesce(CAST({q['metric']} AS VARCHAR), '') = ''"
        f"  THEN error('empty metric') ELSE CAST({q['metric']} AS VARCHAR) END AS metric,"
        f" CASE WHEN isfinite({value}) THEN {value} ELSE error('value not finite') END AS value,"
        f" $file_id AS file_id"
    )
    extra = [c for c in columns if c not in resolved.values()]
    if not extra:
        return (
            f"metric_samples_core (ts, service, metric, value, file_id) {select}",
            _reader(fmt, types),
            "core",
        )
    labels = ", ".join(f"{_quote(c)} := {_quote(c)}" for c in extra)
    select += f", CAST(to_json(struct_pack({labels})) AS VARCHAR) AS labels"
    return (
        f"metric_samples_extra (ts, service, metric, value, file_id, labels) {select}",
        _reader(fmt, types),
        "extra",
    )


def _diagnose(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, resolved: dict[str, str]) -> str | None:
    """Find the first bad row and say what is wrong with it (slow path, bad files only)."""
    con.execute("SET preserve_insertion_order = true")
    reader = _reader(fmt, all_varchar=True)
    q = {name: _quote(resolved[name]) for name in REQUIRED_COLUMNS}
    text = {name: f"trim(CAST({q[name]} AS VARCHAR))" for name in REQUIRED_COLUMNS}
    ts_ok = (
        f"(regexp_full_match({text['timestamp']}, '-?[0-9]+(\\.[0-9]*)?')"
        f" OR TRY_CAST({text['timestamp']} AS TIMESTAMPTZ) IS NOT NULL)"
    )
    checks = [
        ("timestamp", f"{text['timestamp']} IS NULL OR {text['timestamp']} = ''", "is empty"),
        ("timestamp", f"NOT {ts_ok}", "is not an ISO-8601 timestamp or epoch seconds/milliseconds"),
        ("service", f"{text['service']} IS NULL OR {text['service']} = ''", "is empty"),
        ("metric", f"{text['metric']} IS NULL OR {text['metric']} = ''", "is empty"),
        ("value", f"{text['value']} IS NULL OR {text['value']} = ''", "is empty"),
        ("value", f"TRY_CAST({text['value']} AS DOUBLE) IS NULL", "is not a number"),
        ("value", f"NOT isfinite(TRY_CAST({text['value']} AS DOUBLE))", "is not a finite number"),
    ]
    sql = f"SELECT row_number() OVER () AS row_no, {', '.join(text[c] + ' AS ' + c for c in REQUIRED_COLUMNS)} FROM {reader}"
    for column, condition, problem in checks:
        condition = condition.replace(text["timestamp"], "timestamp").replace(text["service"], "service")
        condition = condition.replace(text["metric"], "metric").replace(text["value"], "value")
        found = con.execute(
            f"SELECT min(row_no), count(*), arg_min({column}, row_no) FROM ({sql}) WHERE {condition}",
            {"path": str(path)},
        ).fetchone()
        if found and found[1]:
            row_no, count, raw = found
            shown = "" if raw in (None, "") else f" {raw!r}"
            line = f" (line {row_no + 1})" if fmt == "csv" else ""
            more = f"; {count} bad rows in all" if count > 1 else ""
            return f"metrics file {path.name}, row {row_no}{line}, column {resolved[column]}:{shown} {problem}{more}"
    return None


def _load(con: duckdb.DuckDBPyConnection, path: Path, fmt: str, source: str, digest: str) -> FileResult:
    """Insert one file's rows with its record and hour marks; raises MalformedFileError."""
    columns = _columns(con, path, fmt)
    resolved = _resolve_columns(path, columns)
    insert, reader, table = _select_sql(columns, resolved, fmt)
    file_id = con.execute("SELECT nextval('ingested_files_seq')").fetchone()[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"INSERT INTO {insert} FROM {reader}", {"path": str(path), "file_id": file_id})
        per_hour = con.execute(
            "SELECT date_trunc('hour', ts) AS hour, count(*), min(ts), max(ts) FROM "
            + ("metric_samples_core" if table == "core" else "metric_samples_extra")
            + " WHERE file_id = ? GROUP BY hour ORDER BY hour",
            [file_id],
        ).fetchall()
        if not per_hour:
            raise MalformedFileError(f"metrics file {path.name}: has a header but no rows")
        hours = [row[0] for row in per_hour]
        rows = sum(row[1] for row in per_hour)
        min_ts, max_ts = per_hour[0][2], per_hour[-1][3]
        con.execute(
            "INSERT INTO ingested_files (file_id, path, sha256, size_bytes, rows, status, error, ingested_at,"
            " min_ts, max_ts, source) VALUES (?, ?, ?, ?, ?, 'ingested', NULL, now()::TIMESTAMP, ?, ?, ?)",
            [file_id, str(path), digest, path.stat().st_size, rows, min_ts, max_ts, source],
        )
        con.executemany(
            "INSERT INTO partition_marks VALUES (nextval('partition_marks_seq'), ?, ?, ?, ?, now()::TIMESTAMP)",
            [[FEATURES_ASSET, hour, f"samples from {path.name}", file_id] for hour in hours],
        )
    except MalformedFileError:
        con.execute("ROLLBACK")
        raise
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        reason = _diagnose(con, path, fmt, resolved)
        raise MalformedFileError(reason or f"metrics file {path.name}: {_first_line(exc)}") from exc
    con.execute("COMMIT")
    return FileResult(path=path, status="ingested", rows=rows, file_id=file_id, hours=hours)


def _record_rejection(
    con: duckdb.DuckDBPyConnection, path: Path, digest: str, status: str, error: str | None
) -> int:
    file_id = con.execute("SELECT nextval('ingested_files_seq')").fetchone()[0]
    size = path.stat().st_size if path.exists() else 0
    con.execute(
        "INSERT INTO ingested_files (file_id, path, sha256, size_bytes, rows, status, error, ingested_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?, now()::TIMESTAMP)",
        [file_id, str(path), digest, size, status, error],
    )
    return file_id


def _unique_target(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    n = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{n}{''.join(Path(name).suffixes[-1:])}"
        n += 1
    return target


def _move(result: FileResult) -> None:
    """Archive an ingested or duplicate file; quarantine a malformed one beside its reason."""
    if result.status == "quarantined":
        target = _unique_target(paths.quarantine_metrics(), result.path.name)
        shutil.move(str(result.path), target)
        target.with_name(target.name + ".reason.txt").write_text((result.error or "") + "\n")
    else:
        day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
        target = _unique_target(paths.archive_metrics() / day, result.path.name)
        shutil.move(str(result.path), target)
    result.moved_to = target


def ingest_file(
    path: Path, warehouse_path: str | Path | None = None, *, source: str = "landing", move: bool = True
) -> FileResult:
    """Ingest one file; a malformed one is recorded (and, with `move`, quarantined), never raised."""
    path = Path(path)
    fmt = file_format(path)
    digest = sha256_of(path) if path.is_file() else ""
    with warehouse.connect(warehouse_path) as con:
        try:
            if fmt is None:
                raise MalformedFileError(
                    f"metrics file {path.name}: unsupported type; use .csv, .parquet or .jsonl (optionally .gz)"
                )
            if path.stat().st_size == 0:
                raise MalformedFileError(f"metrics file {path.name}: is empty (0 bytes)")
            seen = con.execute(
                "SELECT file_id FROM ingested_files WHERE sha256 = ? AND status = 'ingested' LIMIT 1",
                [digest],
            ).fetchone()
            if seen:
                file_id = _record_rejection(
                    con, path, digest, "duplicate", f"same content as file_id {seen[0]}"
                )
                result = FileResult(
                    path=path, status="duplicate", file_id=file_id, error=f"same content as file_id {seen[0]}"
                )
            else:
                result = _load(con, path, fmt, source, digest)
        except MalformedFileError as exc:
            file_id = _record_rejection(con, path, digest, "quarantined", str(exc))
            result = FileResult(path=path, status="quarantined", error=str(exc), file_id=file_id)
            log.warning("quarantined: %s", exc)
    if move:
        _move(result)
    return result


def ingest_files(
    files: Iterable[Path],
    warehouse_path: str | Path | None = None,
    *,
    source: str = "landing",
    move: bool = True,
) -> list[FileResult]:
    """Ingest each file on its own, so one bad file never blocks the others."""
    return [ingest_file(Path(f), warehouse_path, source=source, move=move) for f in files]


def expand(targets: Sequence[str | Path]) -> list[Path]:
    """Files named directly plus the candidate files inside named folders."""
    found: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found.extend(sorted(p for p in target.rglob("*") if is_candidate(p)))
        elif target.exists():
            found.append(target)
        else:
            raise FileNotFoundError(f"{target}: no such file or folder")
    return found


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `sreops ingest`."""
    parser.add_argument("paths", nargs="*", help="files or folders (default: the landing folder)")
    parser.add_argument(
        "--move",
        action="store_true",
        help="archive ingested files and quarantine bad ones (as the sensor does)",
    )
    parser.add_argument("--source", default="cli", help="source label stored with the samples")


def run(args: argparse.Namespace) -> int:
    """`sreops ingest PATH…`: the landing sensor's code path, from the command line."""
    from tqdm import tqdm

    files = expand(args.paths) if args.paths else discover()
    move = args.move or not args.paths
    if not files:
        print("no metric files to ingest")
        return 0
    failed = 0
    for path in tqdm(files, desc="ingesting", unit="file", disable=len(files) < 2):
        result = ingest_file(path, source=args.source, move=move)
        if result.status == "quarantined":
            failed += 1
            print(f"QUARANTINED {path}: {result.error}")
        elif result.status == "duplicate":
            print(f"skipped     {path}: {result.error}")
        else:
            print(f"ingested    {path}: {result.rows} samples over {len(result.hours)} hour(s)")
    return 1 if failed else 0
