"""What a metrics file is to DuckDB: its format, its columns, and the SQL that reads it (no I/O).

A file is long format `timestamp, service, metric, value`; extra columns become labels. The
readers here are table functions over the file at parameter `$path`; the expressions turn its
columns into samples (naive UTC `ts`, a finite DOUBLE `value`). `sreops.ingest.diagnosis`
explains the files these readers refuse, `sreops.ingest.store` runs the INSERT.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sreops.names import UnsafeName, check_name

REQUIRED_COLUMNS = ("timestamp", "service", "metric", "value")

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
# Printable ASCII without surrounding spaces, at most 200 characters: names that check_name
# always accepts, so only the others need a look from Python.
PLAIN_NAME = "[!-~]([ -~]{0,198}[!-~])?"
_SHOWN_CHARS = 60


class MalformedFileError(ValueError):
    """A metrics file cannot be ingested; the message says which row and column, and why."""


def file_format(path: Path) -> str | None:
    """`csv`, `parquet` or `jsonl` from the file name (a `.gz` suffix is looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return _FORMATS.get(suffixes[-1]) if suffixes else None


def excerpt(text: object) -> str:
    """Data as it may appear in a reason: escaped (ascii), cut short."""
    text = str(text)
    if len(text) <= _SHOWN_CHARS:
        return ascii(text)
    return f"{ascii(text[:_SHOWN_CHARS])}… ({len(text)} characters)"


def file_label(path: Path) -> str:
    """The file's name for a reason: as it is when printable, escaped otherwise."""
    name = path.name
    return name if name.isprintable() and len(name) <= 200 else excerpt(name)


# The dialect is fixed, not sniffed. Sniffed, a quoted "a,b" past the sample splits in two and
# refuses a good file; a first line unlike the rest is skipped as a preamble (a header with
# rows of five fields reads as zero rows); a row starting with '#' vanishes as a comment.
_CSV_DIALECT = "header = true, skip = 0, comment = '', quote = '\"', escape = '\"'"
CSV_OPTIONS = {"csv": f"{_CSV_DIALECT}, delim = ','", "tsv": f"{_CSV_DIALECT}, delim = '\t'"}


def dialect(path: Path, fmt: str) -> str:
    """`fmt`, with tab-separated files told apart from comma-separated ones."""
    if fmt == "csv" and ".tsv" in [s.lower() for s in path.suffixes[-2:]]:
        return "tsv"
    return fmt


def quote_identifier(identifier: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    """A SQL string literal, quoted (for reader options, which take no parameters)."""
    return "'" + text.replace("'", "''") + "'"


def sniffing_reader(fmt: str, types: dict[str, str] | None = None) -> str:
    """A table function over the file at parameter `$path`, with the types DuckDB detects."""
    if fmt == "parquet":
        return "read_parquet($path)"
    if fmt == "jsonl":
        return "read_json($path, format = 'newline_delimited', sample_size = 20480)"
    options = [CSV_OPTIONS[fmt]]
    if types:
        pairs = ", ".join(f"{_literal(name)}: '{kind}'" for name, kind in types.items())
        options.append(f"types = {{{pairs}}}")
    return f"read_csv($path, {', '.join(options)})"


def text_reader(fmt: str, columns: dict[str, str], resolved: dict[str, str]) -> str:
    """A reader that types nothing: the required columns come as text, so no sample decides."""
    if fmt == "parquet":
        return "read_parquet($path)"
    if fmt == "jsonl":
        required = set(resolved.values())
        pairs = ", ".join(
            f"{_literal(name)}: '{'VARCHAR' if name in required else 'JSON'}'" for name in columns
        )
        return f"read_json($path, format = 'newline_delimited', columns = {{{pairs}}})"
    return f"read_csv($path, {CSV_OPTIONS[fmt]}, all_varchar = true)"


def resolve_columns(path: Path, columns: dict[str, str]) -> dict[str, str]:
    """Map each required column to the file's own spelling (case and spaces ignored)."""
    by_norm = {name.strip().lower(): name for name in columns}
    missing = [c for c in REQUIRED_COLUMNS if c not in by_norm]
    if missing:
        shown = [excerpt(name) for name in list(columns)[:12]]
        found = ", ".join(shown) + (f" and {len(columns) - 12} more" if len(columns) > 12 else "") or "none"
        raise MalformedFileError(
            f"metrics file {file_label(path)}: missing column{'s' if len(missing) > 1 else ''} "
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
            raise MalformedFileError(f"metrics file {file_label(path)}, header: {exc}") from None
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


def ts_expr(col: str, kind: str) -> str:
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


def _reading(
    columns: dict[str, str], resolved: dict[str, str], fmt: str, text: bool
) -> tuple[str, dict[str, str], str, str]:
    """The reader, the quoted required columns, and the types the timestamp and value are read as."""
    q = {name: quote_identifier(resolved[name]) for name in REQUIRED_COLUMNS}
    if text:
        return text_reader(fmt, columns, resolved), q, "VARCHAR", "VARCHAR"
    if fmt in CSV_OPTIONS:
        types = {resolved["service"]: "VARCHAR", resolved["metric"]: "VARCHAR", resolved["value"]: "DOUBLE"}
        return sniffing_reader(fmt, types), q, columns[resolved["timestamp"]], "DOUBLE"
    return sniffing_reader(fmt), q, columns[resolved["timestamp"]], columns[resolved["value"]]


def _key_columns(q: dict[str, str], ts_kind: str) -> str:
    """`ts, service, metric` of a sample, as the INSERT writes them."""
    return (
        f"{ts_expr(q['timestamp'], ts_kind)} AS ts,"
        f" CAST({q['service']} AS VARCHAR) AS service, CAST({q['metric']} AS VARCHAR) AS metric"
    )


def keys_sql(columns: dict[str, str], resolved: dict[str, str], fmt: str, text: bool = False) -> str:
    """A subquery of the file's `ts, service, metric`, exactly as `select_sql` inserts them.

    For checks run on the file itself before its rows are inserted (a columnar file reads these
    three columns again faster than DuckDB scans the transaction's own uncommitted rows).
    """
    reader, q, ts_kind, _ = _reading(columns, resolved, fmt, text)
    return f"(SELECT {_key_columns(q, ts_kind)} FROM {reader})"


def select_sql(
    columns: dict[str, str], resolved: dict[str, str], fmt: str, text: bool = False
) -> tuple[str, str, str]:
    """The INSERT column list with its SELECT, the reader, and the target table ("core"/"extra").

    Files with only the four required columns go to the lean `metric_samples_core` table;
    files with extra columns (labels) go to `metric_samples_extra`. With `text`, every column
    is read as text and parsed here, so no sniffed type can reject a row that is fine.
    """
    reader, q, ts_kind, value_kind = _reading(columns, resolved, fmt, text)
    value = _value_expr(q["value"], value_kind)
    select = (
        f"SELECT {_key_columns(q, ts_kind)},"
        f" CASE WHEN isfinite({value}) THEN {value} ELSE error('value not finite') END AS value,"
        f" $file_id AS file_id"
    )
    extra = [c for c in columns if c not in resolved.values()]
    if not extra:
        return f"metric_samples_core (ts, service, metric, value, file_id) {select}", reader, "core"
    labels = ", ".join(f"{quote_identifier(c)} := {quote_identifier(c)}" for c in extra)
    select += f", CAST(to_json(struct_pack({labels})) AS VARCHAR) AS labels"
    return f"metric_samples_extra (ts, service, metric, value, file_id, labels) {select}", reader, "extra"


def unsafe_name(text: str | None) -> str | None:
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


def unsafe_condition(column: str) -> str:
    """SQL true for a name `check_name` refuses; Python sees only the names that are not plain."""
    return (
        f"CASE WHEN regexp_full_match({column}, '{PLAIN_NAME}') THEN false"
        f" ELSE sreops_unsafe_name({column}) IS NOT NULL END"
    )


def column_label(name: str) -> str:
    """A column's name for a reason: as it is when short and printable, escaped otherwise."""
    return name if name.isprintable() and len(name) <= 60 else excerpt(name)
