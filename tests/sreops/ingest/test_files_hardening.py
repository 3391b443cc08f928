"""Metric-file ingestion under hostile input (issue 12): data-derived names, rows past DuckDB's
sniffing sample, implausible timestamps, files taken by a concurrent ingest."""

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sreops import paths, warehouse
from sreops.ingest import formats
from sreops.ingest import landing as metric_landing
from sreops.ingest import run as ingest_run

REPO = Path(__file__).resolve().parents[3]  # the tree under test, also for subprocesses
HEADER = "timestamp,service,metric,value\n"
GOOD_ROW = "2026-11-20T10:00:00Z,api,cpu,1\n"


def landing(name: str) -> Path:
    folder = paths.landing_metrics()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def good_file(name: str = "good.csv", rows: int = 3) -> Path:
    path = landing(name)
    path.write_text(HEADER + "".join(f"2026-11-20T10:00:{i:02d}Z,api,cpu,{i}\n" for i in range(rows)))
    return path


def sample_count(warehouse_path: Path) -> int:
    return warehouse.table_count("metric_sample_values", warehouse_path)


def assert_safe_reason(reason: str) -> None:
    """Quoted data is escaped and cut short: no raw control characters, no huge strings."""
    assert reason.isprintable(), ascii(reason)
    assert len(reason) < 400, len(reason)


def assert_quarantined_beside_good(
    results: list[ingest_run.FileResult], expected: str, warehouse_path: Path
) -> None:
    bad, good = results
    assert bad.status == "quarantined", bad
    assert expected in bad.error, bad.error
    assert_safe_reason(bad.error)
    assert bad.moved_to is not None and bad.moved_to.parent == paths.quarantine_metrics()
    assert (bad.moved_to.parent / (bad.moved_to.name + ".reason.txt")).read_text().strip() == bad.error
    assert good.status == "ingested" and good.rows == 3
    assert sample_count(warehouse_path) == 3


# --- 1. names from the data -------------------------------------------------------------------

UNSAFE_NAMES = {
    "nul": ("a\x00b", r"'a\x00b' holds a control character (U+0000)"),
    "newline": ("a\nb", r"'a\nb' holds a control character (U+000A)"),
    "escape": ("red\x1b[31m", r"'red\x1b[31m' holds a control character (U+001B)"),
    "bidi": ("evil\u202egnp.exe", r"'evil\u202egnp.exe' holds a bidirectional override (U+202E)"),
    "line_separator": ("a\u2028b", r"holds a control character (U+2028)"),
    "too_long": ("x" * 5000, "has 5000 characters; at most 200 are allowed"),
}


@pytest.mark.parametrize("column", ["service", "metric"])
@pytest.mark.parametrize("kind", sorted(UNSAFE_NAMES))
def test_unsafe_name_quarantines_the_file_naming_row_and_column_and_keeps_others(
    warehouse_path: Path, column: str, kind: str
) -> None:
    name, said = UNSAFE_NAMES[kind]
    quoted = '"' + name.replace('"', '""') + '"'
    row = (
        f"2026-11-20T10:00:05Z,{quoted},cpu,2\n"
        if column == "service"
        else f"2026-11-20T10:00:05Z,api,{quoted},2\n"
    )
    bad = landing("names.csv")
    bad.write_text(HEADER + GOOD_ROW + GOOD_ROW + row, newline="")

    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)

    assert_quarantined_beside_good(
        results, f"metrics file names.csv, row 3 (line 4), column {column}: name", warehouse_path
    )
    assert said in results[0].error


def test_unsafe_name_in_json_lines_and_parquet_is_refused_too(warehouse_path: Path) -> None:
    import pandas as pd

    jsonl = landing("names.jsonl")
    record = {"timestamp": "2026-11-20T10:00:00Z", "service": "api", "metric": "cpu", "value": 1}
    jsonl.write_text(json.dumps(record) + "\n" + json.dumps(record | {"service": "api\u202e"}) + "\n")
    parquet = landing("names.parquet")
    pd.DataFrame([record, record | {"metric": "cpu\x00"}]).to_parquet(parquet, index=False)

    results = ingest_run.ingest_files([jsonl, parquet, good_file()], warehouse_path)

    assert [r.status for r in results] == ["quarantined", "quarantined", "ingested"]
    assert (
        "names.jsonl, row 2, column service: name 'api\\u202e' holds a bidirectional override"
        in results[0].error
    )
    assert (
        "names.parquet, row 2, column metric: name 'cpu\\x00' holds a control character" in results[1].error
    )
    assert sample_count(warehouse_path) == 3


def test_a_label_column_name_with_control_characters_is_refused(warehouse_path: Path) -> None:
    bad = landing("labels.csv")
    bad.write_text(
        'timestamp,service,metric,value,"ho\x07st"\n2026-11-20T10:00:00Z,api,cpu,1,h1\n', newline=""
    )
    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)
    assert_quarantined_beside_good(
        results, "labels.csv, header: label column name 'ho\\x07st' holds a control character", warehouse_path
    )


def test_huge_bad_values_are_quoted_cut_short(warehouse_path: Path) -> None:
    bad = landing("huge.csv")
    bad.write_text(HEADER + GOOD_ROW + f"2026-11-20T10:00:01Z,api,cpu,{'z' * 100_000}\n")
    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)
    assert_quarantined_beside_good(results, "row 2 (line 3), column value: 'zzzz", warehouse_path)
    assert "(100000 characters) is not a number" in results[0].error


def test_plain_and_international_names_still_land(warehouse_path: Path) -> None:
    path = landing("intl.csv")
    names = ["checkout", "支付", "Zahlungsdienst", "svc:9090/v1", "a,b", 'q"uote', "x" * 200]
    rows = "".join(
        f'2026-11-20T10:00:0{i}Z,"{n.replace(chr(34), chr(34) * 2)}",cpu,{i}\n' for i, n in enumerate(names)
    )
    path.write_text(HEADER + rows)
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "ingested", result.error
    with warehouse.connect(warehouse_path) as con:
        stored = [r[0] for r in con.execute("SELECT service FROM metric_samples ORDER BY value").fetchall()]
    assert stored == names


# --- 5. a malformed row past DuckDB's sniffing sample -------------------------------------------

GOOD_ROWS = "".join(f"2026-11-20T10:{i // 60 % 60:02d}:{i % 60:02d}Z,api,cpu,{i}\n" for i in range(30_000))


def json_rows(n: int) -> str:
    return "".join(
        json.dumps({"timestamp": "2026-11-20T10:00:00Z", "service": "api", "metric": "cpu", "value": i})
        + "\n"
        for i in range(n)
    )


POISON = {
    "ragged.csv": (
        (HEADER + GOOD_ROWS + "2026-11-20T10:00:00Z,api,cpu,1,extra\n").encode(),
        "line 30002: has 5 fields where the header has 4",
    ),
    "short.csv": (
        (HEADER + GOOD_ROWS + "2026-11-20T10:00:00Z,api\n").encode(),
        "line 30002: has 2 fields where the header has 4",
    ),
    "latin1.csv": (
        (HEADER + GOOD_ROWS).encode() + "2026-11-20T10:00:00Z,café,cpu,1\n".encode("latin-1"),
        "line 30002: is not valid UTF-8",
    ),
    "latin1.csv.gz": (
        gzip.compress((HEADER + GOOD_ROWS).encode() + "2026-11-20T10:00:00Z,café,cpu,1\n".encode("latin-1")),
        "line 30002: is not valid UTF-8",
    ),
    "type_change.jsonl": (
        (
            json_rows(25_000)
            + json.dumps(
                {"timestamp": "2026-11-20T10:00:00Z", "service": "api", "metric": "cpu", "value": "n/a"}
            )
            + "\n"
        ).encode(),
        "row 25001, column value: 'n/a' is not a number",
    ),
    "broken.jsonl": (
        (json_rows(25_000) + '{"timestamp": "2026-11-20T10:00:00Z", "service": \n').encode(),
        "line 25001: is not valid JSON",
    ),
    "array.jsonl": (
        (json_rows(25_000) + "[1, 2, 3]\n").encode(),
        "line 25001: is a JSON list, not an object",
    ),
}


@pytest.mark.parametrize("name", sorted(POISON))
def test_a_bad_row_past_the_sniffing_sample_quarantines_only_its_file(
    warehouse_path: Path, name: str
) -> None:
    content, expected = POISON[name]
    poison = landing(name)
    poison.write_bytes(content)
    good = good_file()

    results = ingest_run.ingest_files([poison, good], warehouse_path)  # no exception: the batch goes on

    assert_quarantined_beside_good(results, f"metrics file {name}, {expected}", warehouse_path)
    # out of the landing folder, so neither the sensor nor the next `sreops ingest` retries it
    assert metric_landing.discover() == []


def test_the_cli_lands_the_good_files_of_a_batch_with_a_poison_file(sreops_home: Path, capsys) -> None:
    from sreops.cli import main

    landing("ragged.csv").write_bytes(POISON["ragged.csv"][0])
    good_file("a.csv")
    good_file("b.csv", rows=4)

    assert main(["ingest", "--move", str(paths.landing_metrics())]) == 1

    out = capsys.readouterr().out
    assert "QUARANTINED" in out and "line 30002: has 5 fields where the header has 4" in out
    assert "2 ingested, 0 duplicate, 1 quarantined, 0 vanished" in out
    assert sample_count(sreops_home / "warehouse.duckdb") == 7
    assert metric_landing.discover() == []


def test_a_quoted_field_past_the_sniffing_sample_is_read_as_csv(warehouse_path: Path) -> None:
    path = landing("quoted.csv")
    path.write_text(HEADER + GOOD_ROWS + '2026-11-20T11:00:00Z,"api,eu",cpu,1\n')
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "ingested", result.error
    assert result.rows == 30_001


def test_a_type_the_sample_never_saw_still_lands_when_every_row_is_valid(warehouse_path: Path) -> None:
    # epoch numbers for 25,000 rows, then an ISO string: both valid timestamp forms
    path = landing("mixed.jsonl")
    rows = [
        json.dumps({"timestamp": 1763632800 + i, "service": "api", "metric": "cpu", "value": i})
        for i in range(25_000)
    ]
    rows.append(
        json.dumps({"timestamp": "2026-11-20T12:00:00Z", "service": "api", "metric": "cpu", "value": "2.5"})
    )
    path.write_text("\n".join(rows) + "\n")
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "ingested", result.error
    assert result.rows == 25_001
    assert dt.datetime(2026, 11, 20, 12) in result.hours


def test_rows_unlike_the_header_are_refused_not_read_as_zero_rows(warehouse_path: Path) -> None:
    # sniffed, the header would be skipped as a preamble and the file read as empty of rows
    bad = landing("wide.csv")
    bad.write_text(HEADER + "2026-11-20T10:00:00Z,api,cpu,1,extra\n")
    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)
    assert_quarantined_beside_good(
        results, "wide.csv, line 2: has 5 fields where the header has 4", warehouse_path
    )


def test_a_row_starting_with_a_hash_is_a_bad_row_not_a_silent_comment(warehouse_path: Path) -> None:
    bad = landing("hash.csv")
    bad.write_text(HEADER + GOOD_ROW + "#2026-11-20T10:00:01Z,api,cpu,2\n")
    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)
    assert_quarantined_beside_good(
        results, "hash.csv, row 2 (line 3), column timestamp: '#2026-11-20T10:00:01Z' is not", warehouse_path
    )


def test_a_corrupt_gzip_block_is_quarantined_not_silently_short(warehouse_path: Path) -> None:
    payload = bytearray(gzip.compress((HEADER + GOOD_ROWS).encode()))
    payload[len(payload) // 2] ^= 0xFF  # DuckDB does not check the CRC and would read fewer rows
    bad = landing("flipped.csv.gz")
    bad.write_bytes(bytes(payload))
    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)
    assert_quarantined_beside_good(results, "flipped.csv.gz: is not a complete gzip stream", warehouse_path)


# --- 10a. implausible timestamps --------------------------------------------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "-86400",
        "infinity",
    ],
)
def test_a_timestamp_outside_the_plausible_window_quarantines_the_file_naming_the_row(
    warehouse_path: Path, stamp: str
) -> None:
    bad = landing("when.csv")
    bad.write_text(HEADER + GOOD_ROW + f"{stamp},api,cpu,2\n")

    results = ingest_run.ingest_files([bad, good_file()], warehouse_path)

    assert_quarantined_beside_good(
        results,
        f"when.csv, row 2 (line 3), column timestamp: '{stamp}' is outside the plausible window 1970-01-01 to 2100-01-01 (UTC)",
        warehouse_path,
    )
    with warehouse.connect(warehouse_path) as con:
        years = con.execute("SELECT DISTINCT year(hour) FROM partition_marks").fetchall()
    assert years == [(2026,)]  # no partition marked in year 1 or 9999


def test_the_window_edges_and_a_caller_supplied_clock_bound(warehouse_path: Path) -> None:
    edge = landing("edge.csv")
    edge.write_text(HEADER + "1970-01-01T00:00:00Z,api,cpu,1\n2099-12-31T23:59:59Z,api,cpu,2\n")
    assert ingest_run.ingest_file(edge, warehouse_path).status == "ingested"

    now = dt.datetime(2026, 11, 20, 12)  # injected, never the test machine's clock
    window = (formats.PLAUSIBLE[0], now + dt.timedelta(days=1))
    ahead = landing("ahead.csv")
    ahead.write_text(HEADER + "2026-11-21T11:59:59Z,api,cpu,1\n2026-11-21T12:00:00Z,api,cpu,2\n")
    result = ingest_run.ingest_file(ahead, warehouse_path, window=window)
    assert result.status == "quarantined"
    assert (
        "row 2 (line 3), column timestamp: '2026-11-21T12:00:00Z' is outside the plausible window 1970-01-01 to 2026-11-21"
        in result.error
    )


# --- 10b. files taken by a concurrent ingest --------------------------------------------------


def test_a_file_gone_before_it_is_read_is_skipped_without_a_record(warehouse_path: Path) -> None:
    gone = landing("gone.csv")  # listed, then moved away by another ingest
    results = ingest_run.ingest_files([gone, good_file()], warehouse_path)
    assert [r.status for r in results] == ["vanished", "ingested"]
    with warehouse.connect(warehouse_path) as con:
        assert (
            con.execute("SELECT count(*) FROM ingested_files WHERE path = ?", [str(gone)]).fetchone()[0] == 0
        )


def test_a_file_taken_while_waiting_for_the_warehouse_is_skipped(warehouse_path: Path, monkeypatch) -> None:
    path = good_file("raced.csv")
    elsewhere = paths.home() / "other-ingest-took-it.csv"
    real_hash = metric_landing.sha256_of

    def hash_then_lose_the_race(p: Path) -> str:
        digest = real_hash(p)
        p.rename(elsewhere)  # the other ingest archives it while this one waits for the lock
        return digest

    monkeypatch.setattr(metric_landing, "sha256_of", hash_then_lose_the_race)
    result = ingest_run.ingest_file(path, warehouse_path)
    assert result.status == "vanished" and result.moved_to is None
    assert sample_count(warehouse_path) == 0 and elsewhere.exists()


def test_discover_skips_a_file_taken_between_listing_and_stat(sreops_home: Path, monkeypatch) -> None:
    taken, kept = good_file("taken.csv"), good_file("kept.csv")
    real = metric_landing.is_candidate

    def listed_then_taken(p: Path) -> bool:
        answer = real(p)
        if p.name == "taken.csv":
            p.unlink()
        return answer

    monkeypatch.setattr(metric_landing, "is_candidate", listed_then_taken)
    assert metric_landing.discover() == [kept]
    assert not taken.exists()


def test_two_concurrent_move_ingests_of_one_folder_land_every_file_exactly_once(warehouse_path: Path) -> None:
    count = 60
    for i in range(count):
        path = landing(f"f{i:03d}.csv")
        path.write_text(
            HEADER + "".join(f"2026-11-20T10:{i:02d}:{s:02d}Z,api,cpu,{i}.{s}\n" for s in range(5))
        )
    env = os.environ | {"SREOPS_HOME": str(paths.home()), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "sreops.cli", "ingest", "--move", str(paths.landing_metrics())]
    procs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]

    summaries = []
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert "Traceback" not in err
        last = out.strip().splitlines()[-1]  # "N ingested, N duplicate, N quarantined, N vanished"
        summaries.append("0 ingested" if last == "no metric files to ingest" else last)
    counted = [dict(reversed(part.split()) for part in line.split(", ")) for line in summaries]
    assert sum(int(c["ingested"]) for c in counted) == count
    # each run lists what is still there when it starts, and accounts for every file it listed
    assert all(sum(map(int, c.values())) <= count for c in counted)
    with warehouse.connect(warehouse_path) as con:
        landed = con.execute(
            "SELECT count(*), count(DISTINCT sha256) FROM ingested_files WHERE status = 'ingested'"
        ).fetchone()
    assert landed == (count, count)
    assert sample_count(warehouse_path) == count * 5
    archived = [p.name for p in paths.archive_metrics().rglob("*.csv")]
    assert sorted(archived) == sorted(f"f{i:03d}.csv" for i in range(count))  # each exactly once
    assert metric_landing.discover() == []
