"""Metric ingestion from landing files: CSV, Parquet and JSON Lines, optionally gzipped.

A file is long format `timestamp, service, metric, value` (extra columns become labels).
Each file lands once (by content hash) and atomically: its rows, its `ingested_files` record
and the marks of the hours it touched commit together. DuckDB reads the file itself, so a
large file is streamed, never held whole in memory. A malformed file is quarantined with a
reason that names the file, the row and the column; the other files of the batch still land.

What a file must be to land, row by row, checked in the load and explained by `_diagnose`:
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

import argparse
import csv
import datetime as dt
import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from sreops import paths, warehouse
from sreops.names import UnsafeName, check_name

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("timestamp", "service", "metric", "value")
FEATURES_ASSET = "metric_features_1m"
PLAUSIBLE = (dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1))
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
# Printable ASCII without surrounding spaces, at most 200 characters: names that check_name
# always accepts, so only the others need a look from Python.
_PLAIN_NAME = "[!-~]([ -~]{0,198}[!-~])?"
_SHOWN_CHARS = 60


class MalformedFileError(ValueError):
    """A metrics file cannot be ingested; the message says which row and column, and why."""


class _RowProblem(Exception):
    """The load found a row it must refuse; `_diagnose` says which one."""


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
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except FileNotFoundError:
        return []
    found = []
    for path in entries:
        if not is_candidate(path):
            continue
        try:
            found.append((path.stat().st_mtime_ns, path.name, path))
        except FileNotFoundError:  # taken by a concurrent ingest since the listing
            continue
    return [path for _, _, path in sorted(found)]


def sha256_of(path: Path) -> str:
    """Content hash, streamed in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


def _shown(text: object) -> str:
    """Data as it may appear in a reason: escaped (ascii), cut short."""
    text = str(text)
    if len(text) <= _SHOWN_CHARS:
        return ascii(text)
    return f"{ascii(text[:_SHOWN_CHARS])}… ({len(text)} characters)"


def _label(path: Path) -> str:
    """The file's name for a reason: as it is when printable, escaped otherwise."""
    name = path.name
    return name if name.isprintable() and len(name) <= 200 else _shown(name)


# The dialect is fixed, not sniffed. Sniffed, a quoted "a,b" past the sample splits in two and
# refuses a good file; a first line unlike the rest is skipped as a preamble (a header with
# rows of five fields reads as zero rows); a row starting with '#' vanishes as a comment.
_CSV_DIALECT = "header = true, skip = 0, comment = '', quote = '\"', escape = '\"'"
_CSV_OPTIONS = {"csv": f"{_CSV_DIALECT}, delim = ','", "tsv": f"{_CSV_DIALECT}, delim = '\t'"}


def _dialect(path: Path, fmt: str) -> str:
    """`fmt`, with tab-separated files told apart from comma-separated ones."""
    if fmt == "csv" and ".tsv" in [s.lower() for s in path.suffixes[-2:]]:
        return "tsv"
    return fmt


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reader(fmt: str, types: dict[str, str] | None = None) -> str:
    """A table function over the file at parameter `$path`, with the types DuckDB detects."""
    if fmt == "parquet":
        return "read_parquet($path)"
    if fmt == "jsonl":
        return "read_json($path, format = 'newline_delimited', sample_size = 20480)"
    options = [_CSV_OPTIONS[fmt]]
    if types:
        pairs = ", ".join(f"{_literal(name)}: '{kind}'" for name, kind in types.items())
        options.append(f"types = {{{pairs}}}")
    return f"read_csv($path, {', '.join(options)})"


def _text_reader(fmt: str, columns: dict[str, str], resolved: dict[str, str]) -> str:
    """A reader that types nothing: the required columns come as text, so no sample decides."""
    if fmt == "parquet":
        return "read_parquet($path)"
    if fmt == "jsonl":
        required = set(resolved.values())
        pairs = ", ".join(
            f"{_literal(name)}: '{'VARCHAR' if name in required else 'JSON'}'" for name in columns
        )
        return f"read_json($path, format = 'newline_delimited', columns = {{{pairs}}})"
    return f"read_csv($path, {_CSV_OPTIONS[fmt]}, all_varchar = true)"


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _lines(path: Path) -> Iterator[bytes]:
    """The file's raw lines, gzip looked through."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as fh:
        yield from fh


def _decoded(path: Path) -> Iterator[str]:
    """The file's lines as text; UnicodeDecodeError carries the line number in `.line_no`."""
    for line_no, raw in enumerate(_lines(path), start=1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            exc.line_no = line_no
            raise


def _first_unreadable_line(path: Path, fmt: str) -> tuple[int, str] | None:
    """(line, problem) of the first line that cannot be read, found by a plain scan (bad files only).

    DuckDB's messages say where only sometimes (and count JSON lines from another base), so
    the line is found here; None when the scan sees nothing wrong.
    """
    try:
        if fmt == "jsonl":
            for line_no, text in enumerate(_decoded(path), start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError:
                    return line_no, "is not valid JSON"
                if not isinstance(record, dict):
                    return line_no, f"is a JSON {type(record).__name__}, not an object"
            return None
        if fmt not in _CSV_OPTIONS:
            return None
        reader = csv.reader(_decoded(path), delimiter="\t" if fmt == "tsv" else ",", strict=True)
        width = None
        line_no = 1
        try:
            for row in reader:
                if row and width is None:
                    width = len(row)
                elif row and len(row) != width:
                    return line_no, f"has {len(row)} fields where the header has {width}"
                line_no = reader.line_num + 1
        except csv.Error as exc:
            if "new-line" in str(exc):
                return reader.line_num, "has a line break (CR or LF) inside an unquoted field"
            return reader.line_num, f"cannot be split into fields: {ascii(str(exc))[1:-1]}"
    except UnicodeDecodeError as exc:
        return getattr(exc, "line_no", 0), "is not valid UTF-8"
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _unreadable(path: Path, fmt: str, exc: BaseException) -> str:
    """The reason for a file DuckDB cannot read to the end: where, when it can be told, and what."""
    found = _first_unreadable_line(path, fmt)
    if found:
        return f"metrics file {_label(path)}, line {found[0]}: {found[1]}"
    message = str(exc).replace(str(path), path.name)
    line = _CSV_LINE.search(message)
    where = f", line {line.group(1)}" if line else ""
    fields = _FIELDS.search(message)
    if fields:
        problem = f"has {fields.group(2)} fields where the header has {fields.group(1)}"
    elif "invalid unicode" in message.lower():
        problem = "is not valid UTF-8"
    else:
        first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
        problem = f"cannot be read as {fmt}: {ascii(first[:200])[1:-1]}"
    return f"metrics file {_label(path)}{where}: {problem}"


def _not_the_files_fault(exc: BaseException) -> bool:
    """Errors of the warehouse or the process, which quarantining the file would not cure."""
    return isinstance(exc, duckdb.OutOfMemoryException | duckdb.InterruptException)


_DATA_ERRORS = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.ConstraintException,
)


def _check_gzip(path: Path) -> None:
    """Read a gzip stream to its end, checking its CRC."""
    # DuckDB does not check it: a corrupt block would silently lose rows
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(4 << 20):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise MalformedFileError(
            f"metrics file {_label(path)}: is not a complete gzip stream (cut short or corrupt):"
            f" {ascii(str(exc)[:200])[1:-1]}"
        ) from exc


def _columns(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type as the reader detects them."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {_reader(fmt)}", {"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        if _not_the_files_fault(exc):
            raise
        raise MalformedFileError(_unreadable(path, fmt, exc)) from exc
    return {row[0]: row[1] for row in rows}


def _resolve_columns(path: Path, columns: dict[str, str]) -> dict[str, str]:
    """Map each required column to the file's own spelling (case and spaces ignored)."""
    by_norm = {name.strip().lower(): name for name in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in by_norm]
    if missing:
        shown = [_shown(name) for name in list(columns)[:12]]
        found = ", ".join(shown) + (f" and {len(columns) - 12} more" if len(columns) > 12 else "") or "none"
        raise MalformedFileError(
            f"metrics file {_label(path)}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} (found: {found}); the long format needs "
            f"{', '.join(REQUIRED_COLUMNS)}"
        )
    resolved = {c: by_norm[c] for c in REQUIRED_COLUMNS}
    for name in columns:
        if name in resolved.values():
            continue
        try:  # a label's name becomes a JSON key that users query: the same rule as for names
            check_name(name.strip() or name, "label column name")
        except UnsafeName as exc:
            raise MalformedFileError(f"metrics file {_label(path)}, header: {exc}") from None
    return resolved


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
        f"CASE WHEN regexp_full_match({text}, '-?[0-9]+(\\.[0-9]*)?([eE][-+]?[0-9]+)?') THEN {_epoch_expr(text)}"
        f" ELSE timezone('UTC', CAST({text} AS TIMESTAMPTZ)) END"
    )


def _value_expr(col: str, kind: str) -> str:
    """The value as a DOUBLE: numbers cast, text trimmed and parsed."""
    if kind.upper().startswith(_NUMERIC):
        return f"CAST({col} AS DOUBLE)"
    return f"CAST(trim(CAST({col} AS VARCHAR)) AS DOUBLE)"


def _select_sql(
    columns: dict[str, str], resolved: dict[str, str], fmt: str, text: bool = False
) -> tuple[str, str, str]:
    """The INSERT column list with its SELECT, the reader, and the target table ("core"/"extra").

    Files with only the four required columns go to the lean `metric_samples_core` table;
    files with extra columns (labels) go to `metric_samples_extra`. With `text`, every column
    is read as text and parsed here, so no sniffed type can reject a row that is fine.
    """
    q = {name: _quote(resolved[name]) for name in REQUIRED_COLUMNS}
    if text:
        reader = _text_reader(fmt, columns, resolved)
        ts_kind = value_kind = "VARCHAR"
    elif fmt in _CSV_OPTIONS:
        types = {resolved["service"]: "VARCHAR", resolved["metric"]: "VARCHAR", resolved["value"]: "DOUBLE"}
        reader = _reader(fmt, types)
        ts_kind, value_kind = columns[resolved["timestamp"]], "DOUBLE"
    else:
        reader = _reader(fmt)
        ts_kind, value_kind = columns[resolved["timestamp"]], columns[resolved["value"]]
    value = _value_expr(q["value"], value_kind)
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
        return f"metric_samples_core (ts, service, metric, value, file_id) {select}", reader, "core"
    labels = ", ".join(f"{_quote(c)} := {_quote(c)}" for c in extra)
    select += f", CAST(to_json(struct_pack({labels})) AS VARCHAR) AS labels"
    return f"metric_samples_extra (ts, service, metric, value, file_id, labels) {select}", reader, "extra"


def _unsafe_name(text: str | None) -> str | None:
    """check_name's reason for `text`, or None when it is a fine name (a DuckDB function).

    NULL is left to the "is empty" check, which comes first.
    """
    if text is None:
        return None
    try:
        check_name(text, "name")
    except UnsafeName as exc:
        return str(exc)
    return None


def _unsafe_condition(column: str) -> str:
    """SQL true for a name `check_name` refuses; Python sees only the names that are not plain."""
    return (
        f"CASE WHEN regexp_full_match({column}, '{_PLAIN_NAME}') THEN false"
        f" ELSE sreops_unsafe_name({column}) IS NOT NULL END"
    )


def _has_unsafe_names(con: duckdb.DuckDBPyConnection, table: str, file_id: int) -> bool:
    """Whether any service or metric the file brought fails `check_name` (distinct names only)."""
    for column in ("service", "metric"):
        suspects = con.execute(
            f"SELECT DISTINCT {column} FROM metric_samples_{table}"
            f" WHERE file_id = ? AND NOT regexp_full_match({column}, '{_PLAIN_NAME}')",
            [file_id],
        ).fetchall()
        if any(_unsafe_name(name) for (name,) in suspects):
            return True
    return False


def _diagnose(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    columns: dict[str, str],
    resolved: dict[str, str],
    window: tuple[dt.datetime, dt.datetime],
) -> str | None:
    """Find the first bad row and say what is wrong with it (slow path, bad files only).

    The file is read as text, so the checks hold wherever a sniffing sample ended; a file that
    cannot be read to its end raises MalformedFileError saying where it stops.
    """
    con.execute("SET preserve_insertion_order = true").fetchall()
    reader = _text_reader(fmt, columns, resolved)
    q = {name: _quote(resolved[name]) for name in REQUIRED_COLUMNS}
    picked = ", ".join(f"CAST({q[c]} AS VARCHAR) AS {c}" for c in REQUIRED_COLUMNS)
    sql = f"SELECT row_number() OVER () AS row_no, {picked} FROM {reader}"
    try:
        # every column is touched: a count alone would let DuckDB skip decoding them
        con.execute(
            f"SELECT count(*), max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM {reader}", {"path": str(path)}
        ).fetchall()
    except duckdb.Error as exc:
        if _not_the_files_fault(exc):
            raise
        raise MalformedFileError(_unreadable(path, fmt, exc)) from exc
    ts = "try(" + _ts_expr(_quote("timestamp"), "VARCHAR") + ")"
    start, end = window
    span = f"the plausible window {start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC)"
    checks = [
        ("timestamp", "trim(timestamp) IS NULL OR trim(timestamp) = ''", "is empty"),
        ("timestamp", f"{ts} IS NULL", "is not an ISO-8601 timestamp or epoch seconds/milliseconds"),
        ("timestamp", f"{ts} < $start OR {ts} >= $end", f"is outside {span}"),
        ("service", "trim(service) IS NULL OR trim(service) = ''", "is empty"),
        ("service", _unsafe_condition("service"), None),
        ("metric", "trim(metric) IS NULL OR trim(metric) = ''", "is empty"),
        ("metric", _unsafe_condition("metric"), None),
        ("value", "trim(value) IS NULL OR trim(value) = ''", "is empty"),
        ("value", "TRY_CAST(trim(value) AS DOUBLE) IS NULL", "is not a number"),
        ("value", "NOT isfinite(TRY_CAST(trim(value) AS DOUBLE))", "is not a finite number"),
    ]
    con.create_function(
        "sreops_unsafe_name",
        _unsafe_name,
        ["VARCHAR"],
        "VARCHAR",
        null_handling="special",
        side_effects=False,
    )
    # one scan answers every check: per check, its first bad row, how many, and the first value
    found = ", ".join(
        f"min(row_no) FILTER (WHERE {condition}), count(*) FILTER (WHERE {condition}),"
        f" arg_min({column}, row_no) FILTER (WHERE {condition})"
        for column, condition, _ in checks
    )
    try:
        answers = con.execute(
            f"SELECT {found} FROM ({sql})", {"path": str(path), "start": start, "end": end}
        ).fetchall()[0]
    finally:
        con.remove_function("sreops_unsafe_name")
    for i, (column, _, problem) in enumerate(checks):
        row_no, count, raw = answers[3 * i : 3 * i + 3]
        if not count:
            continue
        if problem is None:  # a name check_name refuses: its own reason quotes it
            said = f" {_unsafe_name(raw)}"
        else:
            said = ("" if raw is None or not raw.strip() else f" {_shown(raw.strip())}") + f" {problem}"
        line = f" (line {row_no + 1})" if fmt in _CSV_OPTIONS else ""
        more = f"; {count} bad rows in all" if count > 1 else ""
        where = f"row {row_no}{line}, column {_shown_column(resolved[column])}"
        return f"metrics file {_label(path)}, {where}:{said}{more}"
    return None


def _shown_column(name: str) -> str:
    return name if name.isprintable() and len(name) <= 60 else _shown(name)


def _insert(
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

    Raises duckdb.Error when a row cannot be converted, `_RowProblem` for a row the checks
    refuse (an unsafe name, a timestamp outside `window`), MalformedFileError for no rows.
    """
    insert, reader, table = _select_sql(columns, resolved, fmt, text=text)
    con.execute(f"INSERT INTO {insert} FROM {reader}", {"path": str(path), "file_id": file_id})
    if _has_unsafe_names(con, table, file_id):
        raise _RowProblem("a service or metric name is refused (see sreops.names.check_name)")
    per_hour = con.execute(
        f"SELECT date_trunc('hour', ts) AS hour, count(*), min(ts), max(ts) FROM metric_samples_{table}"
        " WHERE file_id = ? GROUP BY hour ORDER BY hour",
        [file_id],
    ).fetchall()
    if not per_hour:
        raise MalformedFileError(f"metrics file {_label(path)}: has a header but no rows")
    if per_hour[0][2] < window[0] or per_hour[-1][3] >= window[1]:
        raise _RowProblem(
            f"a timestamp is outside the plausible window {window[0]:%Y-%m-%d} to {window[1]:%Y-%m-%d} (UTC)"
        )
    return table, per_hour


def _load(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    fmt: str,
    source: str,
    digest: str,
    window: tuple[dt.datetime, dt.datetime],
) -> FileResult:
    """Insert one file's rows with its record and hour marks; raises MalformedFileError.

    The fast path reads with the types DuckDB sniffs from a sample. When it fails, the file is
    read again as text: a bad row is reported; a file whose every row is fine (the sample only
    guessed a type too narrow for a later row) is loaded as text, so the outcome never depends
    on where the sample ended.
    """
    if path.name.lower().endswith(".gz"):
        _check_gzip(path)
    columns = _columns(con, path, fmt)
    resolved = _resolve_columns(path, columns)
    file_id = con.execute("SELECT nextval('ingested_files_seq')").fetchone()[0]
    for text in (False, True):
        con.execute("BEGIN TRANSACTION")
        try:
            table, per_hour = _insert(con, path, columns, resolved, fmt, file_id, window, text)
            break
        except MalformedFileError:
            con.execute("ROLLBACK")
            raise
        except (duckdb.Error, _RowProblem) as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error) and _not_the_files_fault(exc):
                raise
            reason = _diagnose(con, path, fmt, columns, resolved, window)
            if reason:
                raise MalformedFileError(reason) from exc
            if text:
                if isinstance(exc, _RowProblem):
                    raise MalformedFileError(f"metrics file {_label(path)}: {exc}") from exc
                if isinstance(exc, _DATA_ERRORS):
                    raise MalformedFileError(_unreadable(path, fmt, exc)) from exc
                # every row passed the checks, read as text, and the error is not about data:
                # the warehouse's (disk full, I/O), which quarantining the file would not cure
                raise
            log.info("%s: sniffed types do not fit every row; loading it as text", path.name)
    rows = sum(row[1] for row in per_hour)
    hours = [row[0] for row in per_hour]
    try:
        con.execute(
            "INSERT INTO ingested_files (file_id, path, sha256, size_bytes, rows, status, error, ingested_at,"
            " min_ts, max_ts, source) VALUES (?, ?, ?, ?, ?, 'ingested', NULL, now()::TIMESTAMP, ?, ?, ?)",
            [file_id, str(path), digest, path.stat().st_size, rows, per_hour[0][2], per_hour[-1][3], source],
        )
        con.executemany(
            "INSERT INTO partition_marks VALUES (nextval('partition_marks_seq'), ?, ?, ?, ?, now()::TIMESTAMP)",
            [[FEATURES_ASSET, hour, f"samples from {path.name}", file_id] for hour in hours],
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return FileResult(path=path, status="ingested", rows=rows, file_id=file_id, hours=hours)


def _record_rejection(
    con: duckdb.DuckDBPyConnection, path: Path, digest: str, status: str, error: str | None
) -> int:
    file_id = con.execute("SELECT nextval('ingested_files_seq')").fetchone()[0]
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


def _copy_to_free_name(folder: Path, name: str, source: Path) -> Path:
    """A second name for `source` in `folder`, one no other file (or concurrent ingest) holds."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, "".join(Path(name).suffixes[-1:])
    n = 0
    while True:
        target = folder / (name if n == 0 else f"{stem}.{n}{suffix}")
        n += 1
        try:
            # a hard link is made only if the name is free: two ingests never overwrite each other
            os.link(source, target)
            return target
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise
        except OSError:  # another file system, or one without hard links
            try:
                with source.open("rb") as src, target.open("xb") as dst:
                    shutil.copyfileobj(src, dst)
            except FileExistsError:
                continue
            return target


def _release(source: Path, target: Path) -> None:
    """Drop the landing name once the file has its new one."""
    try:
        source.unlink()
    except FileNotFoundError:
        # a concurrent ingest took it first: exactly one unlink succeeds, so one copy stays
        target.unlink()
        raise


def _move(result: FileResult) -> None:
    """Archive an ingested or duplicate file; quarantine a malformed one beside its reason.

    The landing name goes last, so a process killed half-way leaves the file in landing, where
    the next run takes it again (a duplicate by its hash, or quarantined anew), never lost.
    """
    try:
        if result.status == "quarantined":
            target = _copy_to_free_name(paths.quarantine_metrics(), result.path.name, result.path)
            target.with_name(target.name + ".reason.txt").write_text((result.error or "") + "\n")
        else:
            day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            target = _copy_to_free_name(paths.archive_metrics() / day, result.path.name, result.path)
        _release(result.path, target)
    except FileNotFoundError:
        # another ingest moved it first: its rows are in once (the content hash saw to that)
        log.info("%s: already moved by another ingest", result.path)
        return
    result.moved_to = target


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
    try:
        digest = sha256_of(path) if not path.is_dir() else ""
    except FileNotFoundError:
        return _vanished(path)
    with warehouse.connect(warehouse_path) as con:
        if not path.exists():  # taken while this ingest waited for the warehouse
            return _vanished(path)
        try:
            if fmt is None:
                raise MalformedFileError(
                    f"metrics file {_label(path)}: unsupported type; use .csv, .parquet or .jsonl (optionally .gz)"
                )
            if not path.is_file():
                raise MalformedFileError(f"metrics file {_label(path)}: is not a regular file")
            if path.stat().st_size == 0:
                raise MalformedFileError(f"metrics file {_label(path)}: is empty (0 bytes)")
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
                result = _load(con, path, _dialect(path, fmt), source, digest, window)
        except FileNotFoundError:
            return _vanished(path)
        except MalformedFileError as exc:
            if not path.exists():  # the read failed because the file went, not because of it
                return _vanished(path)
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
    window: tuple[dt.datetime, dt.datetime] = PLAUSIBLE,
) -> list[FileResult]:
    """Ingest each file on its own, so one bad file never blocks the others."""
    return [ingest_file(Path(f), warehouse_path, source=source, move=move, window=window) for f in files]


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

    try:
        files = expand(args.paths) if args.paths else discover()
    except FileNotFoundError as exc:
        print(f"sreops ingest: {exc}", file=sys.stderr)
        return 2
    move = args.move or not args.paths
    if not files:
        print("no metric files to ingest")
        return 0
    counts = dict.fromkeys(("ingested", "duplicate", "quarantined", "vanished"), 0)
    for path in tqdm(files, desc="ingesting", unit="file", disable=len(files) < 2):
        result = ingest_file(path, source=args.source, move=move)
        counts[result.status] += 1
        if result.status == "quarantined":
            print(f"QUARANTINED {path}: {result.error}")
        elif result.status in ("duplicate", "vanished"):
            print(f"skipped     {path}: {result.error}")
        else:
            print(f"ingested    {path}: {result.rows} samples over {len(result.hours)} hour(s)")
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    return 1 if counts["quarantined"] else 0
