"""Log ingestion fed anything: random bytes, invalid UTF-8, NUL, very long and partial lines, CRLF,
broken JSON Lines, appended in random chunks. Never a traceback; every complete line stored once.

What "stored once" means for a `.log` file: records start at distinct, increasing line numbers;
every non-blank line is either a record's first line (its message a suffix of that line) or, in
order, a continuation line joined to the record before it. For `.jsonl`, every non-blank line is
exactly one record. A last line without its newline is stored only once the file has been idle.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from sreops import config, paths, warehouse
from sreops.ingest import logfiles
from sreops.logs import formats
from sreops.logs import run as logs_run

IDLE = 5.0
MAX = formats.MAX_MESSAGE_CHARS
HEADER = b"2026-11-20 13:00:00,000 INFO "

junk_line = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),  # any bytes: NUL, invalid UTF-8
    st.text(max_size=40).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
    st.binary(max_size=40).map(lambda b: HEADER + b.replace(b"\n", b"")),
    st.sampled_from(
        [
            b"\tat com.example.Handler.handle(Handler.java:42)",
            b"Caused by: java.io.IOException: boom",
            b"Traceback (most recent call last):",
            b"   ",
            b"",
            b"\x00\x00\x00",
            b"\xff\xfe\xc3(\xed\xa0\x80",
            b"\r",
            b"Nov 20 13:00:00 host sshd[1]: accepted",
            b"[Fri Nov 20 13:00:00 2026] [error] child died",
        ]
    ),
    st.integers(min_value=1_000, max_value=70_000).map(lambda n: b"y" * n),  # beyond MAX_MESSAGE_CHARS
)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
json_object = st.dictionaries(
    st.sampled_from(["ts", "timestamp", "time", "level", "severity", "msg", "message", "log", "x"]),
    json_value,
    max_size=4,
).map(lambda d: json.dumps(d).encode())
json_line = st.one_of(
    json_object,
    st.tuples(json_object, st.integers(min_value=0, max_value=30)).map(lambda t: t[0][: t[1]]),  # cut short
    st.sampled_from(
        [
            b'{"message": "\\ud800 lone surrogate"}',
            b'{"ts": 1e999, "msg": "infinite time"}',
            b'{"ts": 1' + b"0" * 400 + b', "msg": "huge time"}',
            b'{"ts": "0001-01-01T00:00:00+05:00", "msg": "before year one in UTC"}',
            b'{"level": ["x"], "msg": {"nested": [1, 2]}}',
            b"[" * 3000 + b"]" * 3000,
            b'{"msg": ' + b"[" * 3000 + b"]" * 3000 + b"}",
            b"null",
            b"42",
        ]
    ),
    junk_line,
)
terminator = st.sampled_from([b"\n", b"\n", b"\r\n", b"\r\r\n"])


def body(lines: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """Lines with mixed endings, and maybe a last line still without its newline."""
    return st.tuples(st.lists(st.tuples(lines, terminator), max_size=12), lines | st.just(b"")).map(
        lambda t: b"".join(text + end for text, end in t[0]) + t[1]
    )


def complete_lines(data: bytes, with_partial: bool = False) -> list[str]:
    """The lines a reader must deliver: split at newlines, one trailing CR dropped, U+FFFD for bad bytes."""
    parts = data.split(b"\n")
    tail = parts.pop()
    if with_partial and tail:
        parts.append(tail)
    return [(p[:-1] if p.endswith(b"\r") else p).decode("utf-8", errors="replace") for p in parts]


def check_log_records(records: list[tuple[int, str]], lines: list[str]) -> None:
    numbers = [n for n, _ in records]
    assert numbers == sorted(set(numbers)), "a line started two records"
    assert all(1 <= n <= len(lines) for n in numbers), "a partial or unknown line was stored"
    first = numbers[0] if numbers else len(lines) + 1
    assert not any(text.strip() for text in lines[: first - 1]), "lines before the first record were lost"
    for (n, message), after in zip(records, [*numbers[1:], len(lines) + 1][: len(records)], strict=True):
        head = lines[n - 1]
        assert head.strip(), "a blank line became a record"
        joined = "".join("\n" + text for text in lines[n : after - 1] if text.strip())
        if len(message) < MAX:
            assert message.endswith(joined), f"continuation lines of line {n} lost or repeated"
            assert head.endswith(message[: len(message) - len(joined)])
        else:
            assert message.split("\n", 1)[0] in head


def json_message_key(text: str) -> bool:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and any(k in data for k in formats._JSON_MESSAGE_KEYS)


def check_jsonl_records(records: list[tuple[int, str]], lines: list[str]) -> None:
    expected = [i + 1 for i, text in enumerate(lines) if text.strip()]
    assert [n for n, _ in records] == expected, "a JSON line was lost or stored twice"
    for n, message in records:
        if not json_message_key(lines[n - 1]):
            assert message == lines[n - 1][:MAX]


# -- the line reader and the record splitter, no files ---------------------------------------
@seed(20261120)
@settings(max_examples=300, deadline=None, database=None)
@given(data=body(junk_line), cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=8))
def test_the_line_reader_returns_every_complete_line_once_however_appends_are_cut(
    data: bytes, cuts: list[int]
) -> None:
    offset, seen = 0, []
    for cut in [*sorted(min(c, len(data)) for c in cuts), len(data)]:
        if cut < offset:
            continue
        lines, offset = logfiles._lines_of(data[offset:cut], offset, 64 << 20, consume_partial=False)
        seen.extend(lines)
    assert [text for _, text in seen] == complete_lines(data)
    assert all(data[o:].startswith(text.encode()) for o, text in seen if text.isascii())
    rest, end = logfiles._lines_of(data[offset:], offset, 64 << 20, consume_partial=True)
    assert [text for _, text in seen + rest] == complete_lines(data, with_partial=True)
    assert end == len(data)


@seed(20261121)
@settings(max_examples=250, deadline=None, database=None)
@given(data=body(junk_line))
def test_records_of_any_log_text_cover_every_line_once(data: bytes) -> None:
    lines = complete_lines(data)
    records = formats.records_of(lines, now=formats.parse_timestamp("2026-11-21T00:00:00"))
    check_log_records([(r.line_no, r.message) for r in records], lines)


@seed(20261122)
@settings(max_examples=250, deadline=None, database=None)
@given(data=body(json_line))
def test_records_of_any_json_lines_are_one_per_line(data: bytes) -> None:
    lines = complete_lines(data)
    records = formats.records_of(lines, jsonl=True, now=formats.parse_timestamp("2026-11-21T00:00:00"))
    check_jsonl_records([(r.line_no, r.message) for r in records], lines)


# -- whole ingestion runs over files appended in chunks --------------------------------------
def reset(warehouse_path: Path) -> None:
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM log_lines")
        con.execute("DELETE FROM log_offsets")
    shutil.rmtree(paths.landing_logs(), ignore_errors=True)


def stored(warehouse_path: Path, service: str) -> list[tuple[int, str]]:
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT line_no, message FROM log_lines WHERE service = ? ORDER BY line_no", [service]
        ).fetchall()


@seed(20261123)
@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    log_data=body(junk_line),
    jsonl_data=body(json_line),
    steps=st.lists(st.tuples(st.floats(min_value=0, max_value=1), st.booleans()), max_size=3),
)
def test_files_of_any_bytes_appended_in_chunks_store_every_complete_line_once(
    warehouse_path: Path, log_data: bytes, jsonl_data: bytes, steps: list[tuple[float, bool]]
) -> None:
    reset(warehouse_path)
    files = {}
    for service, name, data in (("plain", "app.log", log_data), ("json", "events.jsonl", jsonl_data)):
        folder = paths.landing_logs() / service
        folder.mkdir(parents=True)
        files[service] = (folder / name, data, [0])
    cfg = config.Config()
    for fraction, idle in sorted(steps):
        for path, data, written in files.values():
            point = max(written[0], int(len(data) * fraction))
            with path.open("ab") as fh:
                fh.write(data[written[0] : point])
            written[0] = point
        logs_run.ingest(warehouse_path, cfg=cfg, clock=time.time() + (IDLE if idle else 0.0))
    for path, data, written in files.values():
        with path.open("ab") as fh:
            fh.write(data[written[0] :])
    logs_run.ingest(warehouse_path, cfg=cfg, clock=time.time() + IDLE)
    check_log_records(stored(warehouse_path, "plain"), complete_lines(log_data))
    check_jsonl_records(stored(warehouse_path, "json"), complete_lines(jsonl_data))
    # Idle for longer than a partial line may wait: the last line, newline or not, is read too.
    logs_run.ingest(warehouse_path, cfg=cfg, clock=time.time() + 2 * logfiles.PARTIAL_LINE_IDLE_SECONDS)
    check_log_records(stored(warehouse_path, "plain"), complete_lines(log_data, with_partial=True))
    check_jsonl_records(stored(warehouse_path, "json"), complete_lines(jsonl_data, with_partial=True))
