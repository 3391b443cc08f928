"""Property-based fuzzing of metric-file ingestion: batches of good and bad files in every format.

Every generated file carries its own verdict (good, with its rows; or bad, with the rows,
columns or lines that make it so). Properties, for any batch:
- ingestion never raises: every file comes back ingested, duplicate or quarantined;
- a bad file is quarantined with a printable, bounded reason that names the file and, where
  the fault is a cell, a row and column that are bad; where it is a line, a line that is bad;
- every good file of the same batch lands, with exactly its rows and values, once (a file
  whose content landed before is a duplicate and adds nothing).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sreops import names, paths, warehouse
from sreops.ingest import run as ingest_run

COLUMNS = ("timestamp", "service", "metric", "value")
FORMATS = ("csv", "tsv", "csv.gz", "tsv.gz", "jsonl", "jsonl.gz", "parquet")
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- cells ------------------------------------------------------------------------------------

moments = st.datetimes(min_value=dt.datetime(1974, 1, 1), max_value=dt.datetime(2099, 6, 1))


def decompresses_to(data: bytes, plain: bytes) -> bool:
    """Whether a damaged gzip stream still reads back, CRC and all, as the original bytes."""
    try:
        return gzip.decompress(data) == plain
    except (OSError, EOFError, zlib.error):
        return False


@st.composite
def good_timestamp(draw) -> object:
    """A valid timestamp in one of the documented forms (text, or a JSON/Parquet integer)."""
    moment = draw(moments)
    form = draw(
        st.sampled_from(
            ["iso_z", "iso_offset", "naive", "epoch_s", "epoch_ms", "epoch_s_int", "epoch_ms_int"]
        )
    )
    epoch = moment.replace(tzinfo=dt.UTC).timestamp()
    if form == "iso_z":
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if form == "iso_offset":
        hours = draw(st.integers(-11, 12))
        local = moment + dt.timedelta(hours=hours)
        return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:00"
    if form == "naive":
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    if form.startswith("epoch_s"):
        whole = int(epoch)
        return whole if form.endswith("_int") else str(whole)
    ms = int(epoch * 1000)
    return ms if form.endswith("_int") else str(ms)


GOOD_NAMES = [
    "api",
    "db",
    "web-1",
    "svc.x",
    "支付",
    "café",
    "svc:9090/v1",
    "a,b",
    'q"uote',
    "<!channel>",
    "x" * 200,
]
good_name = st.one_of(
    st.sampled_from(GOOD_NAMES),
    st.text(st.characters(categories=("L", "N", "P", "S")), min_size=1, max_size=12),
).filter(lambda text: _is_safe(text))


def _is_safe(text: str) -> bool:
    try:
        names.check_name(text)
    except names.UnsafeName:
        return False
    return True


good_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(10**15), 10**15),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 5e-324]),
)

BAD_CELLS = {
    "timestamp": [
        "",
        "not-a-time",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1969-12-31T23:59:59Z",
        "-86400",
        "2026-13-45T00:00:00Z",
        "1e25",
        "infinity",
    ],
    "service": [
        "",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\tb",
        "x\u202ey",
        "a\u2028b",
        "n" * 201,
        " lead",
        "trail ",
        "\x1b[31m",
    ],
    "value": ["", "abc", "nan", "inf", "-inf", "1e400", "1,5", "--1", "z" * 5000],
}
BAD_CELLS["metric"] = BAD_CELLS["service"]
BAD_JSON_CELLS = {
    "timestamp": [None, True, [1]],
    "service": [None],
    "metric": [None],
    "value": [None, True, {"a": 1}],
}


@st.composite
def bad_cell(draw, column: str, fmt: str) -> object:
    choices = list(BAD_CELLS[column])
    if fmt.startswith("jsonl"):
        choices += BAD_JSON_CELLS[column]
    return draw(st.sampled_from(choices))


# --- files ------------------------------------------------------------------------------------


@dataclass
class Generated:
    """A file and its verdict."""

    name: str
    data: bytes
    rows: list[tuple] = field(default_factory=list)  # the rows as generated
    bad_cells: set[tuple[int, str]] = field(default_factory=set)  # (1-based row, column)
    bad_lines: set[int] = field(default_factory=set)  # physical lines that cannot be read
    whole_file: tuple[str, ...] = ()  # a defect of the whole file: phrases its reason may hold

    @property
    def good(self) -> bool:
        return not (self.bad_cells or self.bad_lines or self.whole_file)


def csv_field(value: object, delimiter: str) -> str:
    text = "" if value is None else str(value)
    if any(c in text for c in (delimiter, '"', "\n", "\r")):
        return '"' + text.replace('"', '""') + '"'
    return text


def render_csv(
    rows: list[tuple], header: tuple[str, ...], delimiter: str, ragged: dict[int, int], latin1: set[int]
):
    """(bytes, {row → first line}, {row → last line}); `ragged` maps a row to its change of field count."""
    out = io.BytesIO()
    line = 1
    out.write((delimiter.join(header) + "\n").encode())
    line += 1
    starts, ends = {}, {}
    for i, row in enumerate(rows, start=1):
        starts[i] = line
        cells = [csv_field(v, delimiter) for v in row]
        if i in ragged:
            cells = cells + ["extra"] * ragged[i] if ragged[i] > 0 else cells[: ragged[i]]
        text = delimiter.join(cells) + "\n"
        encoded = text.encode()
        if i in latin1:  # one byte of Latin-1 at the end of the row: not UTF-8
            encoded = encoded[:-1] + b"\xe9\n"
        out.write(encoded)
        line += text.count("\n")
        ends[i] = line - 1
    return out.getvalue(), starts, ends


@st.composite
def metric_file(draw, index: int) -> Generated:
    """One file of any format: good, or bad in one or more ways."""
    fmt = draw(st.sampled_from(FORMATS))
    base = fmt.removesuffix(".gz")
    gz = fmt.endswith(".gz")
    n = draw(st.integers(1, 6))
    rows = [[draw(good_timestamp()), draw(good_name), draw(good_name), draw(good_value)] for _ in range(n)]
    generated = Generated(name=f"f{index}.{fmt}", data=b"")
    # cell defects
    for _ in range(draw(st.integers(0, 2)) if draw(st.booleans()) else 0):
        row = draw(st.integers(1, n))
        column = draw(st.sampled_from(COLUMNS))
        rows[row - 1][COLUMNS.index(column)] = draw(bad_cell(column, fmt))
        generated.bad_cells.add((row, column))
    generated.rows = [tuple(r) for r in rows]
    defect = draw(
        st.sampled_from(
            ["none"] * 6 + ["ragged", "latin1", "truncate", "empty", "no_rows", "missing_column", "bitflip"]
        )
    )
    header = COLUMNS
    if defect == "missing_column":
        dropped = draw(st.sampled_from(COLUMNS))
        keep = [i for i, c in enumerate(COLUMNS) if c != dropped]
        header = tuple(COLUMNS[i] for i in keep)
        rows = [[r[i] for i in keep] for r in rows]
        generated.whole_file = (f"missing column '{dropped}'",)
    if defect == "no_rows":
        rows = []
        generated.whole_file = ("no rows",)

    if base in ("csv", "tsv"):
        delimiter = "\t" if base == "tsv" else ","
        ragged, latin1 = {}, set()
        if defect == "ragged" and rows:
            ragged[draw(st.integers(1, len(rows)))] = draw(st.sampled_from([-2, -1, 1, 2]))
        if defect == "latin1" and rows:
            latin1.add(draw(st.integers(1, len(rows))))
        data, starts, ends = render_csv(rows, header, delimiter, ragged, latin1)
        # a record with too few or many fields is placed at its first line, a bad byte at its own
        generated.bad_lines = {starts[i] for i in ragged} | {ends[i] for i in latin1}
    elif base == "jsonl":
        lines = []
        for row in rows:
            text = json.dumps(dict(zip(header, row, strict=True)), allow_nan=True)
            lines.append(text.encode())
        if defect == "latin1" and lines:
            at = draw(st.integers(0, len(lines) - 1))
            lines[at] = lines[at][:-1] + b', "host": "caf\xe9"}'
            generated.bad_lines.add(at + 1)
        data = b"".join(line + b"\n" for line in lines)
        if defect == "truncate" and lines and not gz:
            last = lines[-1]
            cut = draw(st.integers(1, len(last) - 1))  # inside the last object: never valid JSON
            data = b"".join(line + b"\n" for line in lines[:-1]) + last[:cut]
            generated.bad_lines.add(len(lines))
        if defect == "no_rows":  # an empty file; gzipped, a stream of nothing
            generated.whole_file = ("no rows", "missing columns") if gz else ("is empty (0 bytes)",)
    else:
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in header]
        arrays = {}
        for name, cells in zip(header, columns, strict=True):
            if cells and all(type(c) is int for c in cells) and name == "timestamp":
                arrays[name] = pa.array(cells, pa.int64())  # epoch numbers, typed
            elif name == "value" and all(type(c) in (int, float) for c in cells):
                arrays[name] = pa.array([float(c) for c in cells], pa.float64())
            else:
                arrays[name] = pa.array([None if c is None else str(c) for c in cells], pa.string())
        sink = io.BytesIO()
        pq.write_table(pa.table(arrays), sink)
        data = sink.getvalue()
        if defect == "truncate":
            data = data[: draw(st.integers(1, len(data) - 1))]
            generated.whole_file = ("parquet",)
            generated.bad_cells = set()
    if gz:
        plain = data
        data = gzip.compress(data, mtime=0)
        if defect == "bitflip":
            at = draw(st.integers(10, len(data) - 9))  # inside the deflate data, not the header
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
            if decompresses_to(data, plain):
                defect = "none"  # the flip hit the unused padding bits of the last deflate byte
        if defect in ("truncate", "bitflip"):
            generated.bad_lines = set()
        if defect == "truncate":
            data = data[: draw(st.integers(1, len(data) - 1))]
            generated.whole_file = ("gzip stream",)
        if defect == "bitflip":
            generated.whole_file = ("gzip stream",)
    if defect == "empty":
        data = b""
        generated.whole_file = ("is empty (0 bytes)",)
    if generated.whole_file or generated.bad_lines:
        generated.bad_cells = set()  # a fault of the file or a line is the one reported
    if generated.whole_file:
        generated.bad_lines = set()
    generated.data = data
    return generated


batches = st.integers(2, 5).flatmap(lambda k: st.tuples(*[metric_file(i) for i in range(k)]))

# --- checks -----------------------------------------------------------------------------------


ROW_COLUMN = re.compile(r", row (\d+)(?: \(line \d+\))?, column (\w+):")
LINE = re.compile(r", line (\d+):")


def check_reason(generated: Generated, reason: str) -> None:
    assert generated.name in reason, reason
    assert reason.isprintable() and len(reason) < 600, ascii(reason)
    if generated.whole_file:
        assert any(phrase in reason for phrase in generated.whole_file), (generated.whole_file, reason)
    elif generated.bad_lines:
        found = LINE.search(reason)
        assert found and int(found.group(1)) in generated.bad_lines, (generated.bad_lines, reason)
    else:
        found = ROW_COLUMN.search(reason)
        assert found, reason
        assert (int(found.group(1)), found.group(2)) in generated.bad_cells, (generated.bad_cells, reason)


@dataclass
class Landed:
    """What this test's warehouse holds so far (its examples share it): the oracle's memory."""

    hashes: set[str] = field(default_factory=set)
    samples: int = 0

    def resync(self, warehouse_path: Path) -> None:
        with warehouse.connect(warehouse_path) as con:
            rows = con.execute("SELECT sha256 FROM ingested_files WHERE status = 'ingested'").fetchall()
            self.samples = con.execute("SELECT count(*) FROM metric_sample_values").fetchone()[0]
        self.hashes = {digest for (digest,) in rows}


def ingest_and_check(
    batch: tuple[Generated, ...], warehouse_path: Path, landed: Landed, folder: Path
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    targets = []
    for generated in batch:
        path = folder / generated.name
        path.write_bytes(generated.data)
        targets.append(path)

    try:
        check_batch(
            batch, ingest_run.ingest_files(targets, warehouse_path, move=True), warehouse_path, landed
        )
    except BaseException:
        landed.resync(warehouse_path)  # so the examples Hypothesis replays to shrink start true
        raise
    assert not any(folder.iterdir())  # every file archived or quarantined, none left to retry


def check_batch(
    batch: tuple[Generated, ...], results: list[ingest_run.FileResult], warehouse_path: Path, landed: Landed
) -> None:
    expected_values: dict[int, list[float]] = {}
    for generated, result in zip(batch, results, strict=True):
        digest = hashlib.sha256(generated.data).hexdigest()
        if not generated.good:
            assert result.status == "quarantined", (generated, result)
            check_reason(generated, result.error)
            assert result.moved_to is not None and result.moved_to.parent == paths.quarantine_metrics()
            reason_file = result.moved_to.with_name(result.moved_to.name + ".reason.txt")
            assert reason_file.read_text() == result.error + "\n"
            continue
        if digest in landed.hashes:
            assert result.status == "duplicate", (generated, result)
            assert result.rows == 0
        else:
            assert result.status == "ingested", (generated, result.error)
            assert result.rows == len(generated.rows)
            expected_values[result.file_id] = sorted(float(row[3]) for row in generated.rows)
            landed.hashes.add(digest)
            landed.samples += len(generated.rows)
        assert result.moved_to is not None and result.moved_to.is_relative_to(paths.archive_metrics())

    with warehouse.connect(warehouse_path) as con:
        assert con.execute("SELECT count(*) FROM metric_sample_values").fetchone()[0] == landed.samples
        for file_id, values in expected_values.items():
            got = con.execute(
                "SELECT value FROM metric_sample_values WHERE file_id = ?", [file_id]
            ).fetchall()
            assert sorted(v for (v,) in got) == values, file_id


BATCHES = 620
AT_LEAST_FILES = 2_000


@pytest.fixture
def fuzz_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A warehouse in memory-backed storage where there is one: DuckDB syncs every commit to disk,
    and thousands of commits on a shared disk would time the disk, not the ingestion."""
    from sreops import config

    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    home = base / "sreops-home"
    home.mkdir()
    monkeypatch.setenv("SREOPS_HOME", str(home))
    monkeypatch.delenv("SREOPS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    config.current.cache_clear()
    path = home / "warehouse.duckdb"
    warehouse.migrate(path)
    yield path
    if base != tmp_path:
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
def test_any_batch_lands_its_good_files_exactly_and_quarantines_its_bad_ones(fuzz_warehouse: Path) -> None:
    landed = Landed()
    cases: Counter[str] = Counter()

    @settings(FUZZ, max_examples=BATCHES)
    @given(batch=batches)
    def one_batch(batch: tuple[Generated, ...]) -> None:
        cases["batches"] += 1
        ingest_and_check(batch, fuzz_warehouse, landed, paths.landing_metrics() / f"batch-{cases['batches']}")
        for generated in batch:
            cases["files"] += 1
            cases["good" if generated.good else "bad"] += 1

    one_batch()
    assert cases["files"] >= AT_LEAST_FILES, cases  # the fuzz is as large as it says
    assert cases["good"] > 300 and cases["bad"] > 300, cases
