"""Why a metrics file cannot land: read it to its end and name the first bad line or row.

The slow path, taken only for files the load refused. DuckDB's messages say where a file is
bad only sometimes, so a plain scan finds the line; a file that reads to its end is checked
row by row, as text, so the verdict never depends on where DuckDB's sniffing sample ended.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from sreops.ingest.formats import (
    CSV_OPTIONS,
    REQUIRED_COLUMNS,
    MalformedFileError,
    column_label,
    excerpt,
    file_label,
    quote_identifier,
    sniffing_reader,
    text_reader,
    ts_expr,
    unsafe_condition,
    unsafe_name,
)


class RowProblem(Exception):
    """The load found a row it must refuse; `diagnose` says which one."""


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
        if fmt not in CSV_OPTIONS:
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


def unreadable(path: Path, fmt: str, exc: BaseException) -> str:
    """The reason for a file DuckDB cannot read to the end: where, when it can be told, and what."""
    found = _first_unreadable_line(path, fmt)
    if found:
        return f"metrics file {file_label(path)}, line {found[0]}: {found[1]}"
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
    return f"metrics file {file_label(path)}{where}: {problem}"


def not_the_files_fault(exc: BaseException) -> bool:
    """Errors of the warehouse or the process, which quarantining the file would not cure."""
    return isinstance(exc, duckdb.OutOfMemoryException | duckdb.InterruptException)


DATA_ERRORS = (
    duckdb.InvalidInputException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.ConstraintException,
)


def check_gzip(path: Path) -> None:
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
            f"metrics file {file_label(path)}: is not a complete gzip stream (cut short or corrupt):"
            f" {ascii(str(exc)[:200])[1:-1]}"
        ) from exc


def read_columns(con: duckdb.DuckDBPyConnection, path: Path, fmt: str) -> dict[str, str]:
    """Column name → DuckDB type as the reader detects them."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM {sniffing_reader(fmt)}", {"path": str(path)}).fetchall()
    except duckdb.Error as exc:
        if not_the_files_fault(exc):
            raise
        raise MalformedFileError(unreadable(path, fmt, exc)) from exc
    return {row[0]: row[1] for row in rows}


def diagnose(
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
    reader = text_reader(fmt, columns, resolved)
    q = {name: quote_identifier(resolved[name]) for name in REQUIRED_COLUMNS}
    picked = ", ".join(f"CAST({q[c]} AS VARCHAR) AS {c}" for c in REQUIRED_COLUMNS)
    sql = f"SELECT row_number() OVER () AS row_no, {picked} FROM {reader}"
    try:
        # every column is touched: a count alone would let DuckDB skip decoding them
        con.execute(
            f"SELECT count(*), max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM {reader}", {"path": str(path)}
        ).fetchall()
    except duckdb.Error as exc:
        if not_the_files_fault(exc):
            raise
        raise MalformedFileError(unreadable(path, fmt, exc)) from exc
    ts = "try(" + ts_expr(quote_identifier("timestamp"), "VARCHAR") + ")"
    start, end = window
    span = f"the plausible window {start:%Y-%m-%d} to {end:%Y-%m-%d} (UTC)"
    checks = [
        ("timestamp", "trim(timestamp) IS NULL OR trim(timestamp) = ''", "is empty"),
        ("timestamp", f"{ts} IS NULL", "is not an ISO-8601 timestamp or epoch seconds/milliseconds"),
        ("timestamp", f"{ts} < $start OR {ts} >= $end", f"is outside {span}"),
        ("service", "trim(service) IS NULL OR trim(service) = ''", "is empty"),
        ("service", unsafe_condition("service"), None),
        ("metric", "trim(metric) IS NULL OR trim(metric) = ''", "is empty"),
        ("metric", unsafe_condition("metric"), None),
        ("value", "trim(value) IS NULL OR trim(value) = ''", "is empty"),
        ("value", "TRY_CAST(trim(value) AS DOUBLE) IS NULL", "is not a number"),
        ("value", "NOT isfinite(TRY_CAST(trim(value) AS DOUBLE))", "is not a finite number"),
    ]
    con.create_function(
        "sreops_unsafe_name",
        unsafe_name,
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
            said = f" {unsafe_name(raw)}"
        else:
            said = ("" if raw is None or not raw.strip() else f" {excerpt(raw.strip())}") + f" {problem}"
        line = f" (line {row_no + 1})" if fmt in CSV_OPTIONS else ""
        more = f"; {count} bad rows in all" if count > 1 else ""
        where = f"row {row_no}{line}, column {column_label(resolved[column])}"
        return f"metrics file {file_label(path)}, {where}:{said}{more}"
    return None
