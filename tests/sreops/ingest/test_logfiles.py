"""Log ingestion: appended lines once, partial lines, rotation, truncation, crashes, formats."""

import datetime as dt
import os
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sreops import config, paths, warehouse
from sreops.ingest import logfiles
from sreops.logs import formats
from sreops.logs import run as logs_run

IDLE = 5.0  # seconds past the last write: idle for multi-line flushing, not for partial lines
LINES = [f"2026-11-20 13:0{i}:00,000 INFO request {i} served in {10 * i} ms" for i in range(6)]


def service_dir(name: str = "api") -> Path:
    folder = paths.landing_logs() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ingest(warehouse_path: Path, idle: float = IDLE) -> logfiles.LogIngestResult:
    return logs_run.ingest(warehouse_path, cfg=config.Config(), clock=time.time() + idle)


def messages(warehouse_path: Path) -> list[str]:
    with warehouse.connect(warehouse_path) as con:
        return [r[0] for r in con.execute("SELECT message FROM log_lines ORDER BY line_id").fetchall()]


def test_appended_lines_are_read_once(warehouse_path: Path) -> None:
    log = service_dir() / "app.log"
    log.write_text("\n".join(LINES[:3]) + "\n")
    assert ingest(warehouse_path).rows == 3
    assert ingest(warehouse_path).rows == 0
    with log.open("a") as fh:
        fh.write("\n".join(LINES[3:]) + "\n")
    assert ingest(warehouse_path).rows == 3
    assert messages(warehouse_path) == [f"request {i} served in {10 * i} ms" for i in range(6)]


def test_a_partial_last_line_waits_for_its_end(warehouse_path: Path) -> None:
    log = service_dir() / "app.log"
    log.write_text(LINES[0] + "\n" + LINES[1][:20])
    assert ingest(warehouse_path).rows == 1
    with log.open("a") as fh:
        fh.write(LINES[1][20:] + "\n")
    assert ingest(warehouse_path).rows == 1
    assert messages(warehouse_path)[-1] == "request 1 served in 10 ms"


def test_renamed_rotation_reads_the_old_file_to_its_end_then_the_new_one(warehouse_path: Path) -> None:
    folder = service_dir()
    log = folder / "app.log"
    log.write_text(LINES[0] + "\n" + LINES[1] + "\n")
    ingest(warehouse_path)
    with log.open("a") as fh:
        fh.write(LINES[2] + "\n")
    log.rename(folder / "app.log.1")
    log.write_text(LINES[3] + "\n" + LINES[4] + "\n")
    assert ingest(warehouse_path).rows == 3
    assert len(messages(warehouse_path)) == 5 == len(set(messages(warehouse_path)))


def test_copytruncate_rotation_does_not_repeat_lines(warehouse_path: Path) -> None:
    folder = service_dir()
    log = folder / "app.log"
    log.write_text(LINES[0] + "\n" + LINES[1] + "\n")
    ingest(warehouse_path)
    with log.open("a") as fh:
        fh.write(LINES[2] + "\n")
    shutil.copy(log, folder / "app.log.1")
    log.write_text(LINES[3] + "\n")  # truncate and start over
    result = ingest(warehouse_path)
    assert result.rows == 2
    assert any("copy of truncated" in f.note for f in result.files)
    assert sorted(messages(warehouse_path)) == sorted(f"request {i} served in {10 * i} ms" for i in range(4))


def test_a_truncated_file_is_read_again_from_the_start(warehouse_path: Path) -> None:
    log = service_dir() / "app.log"
    log.write_text("\n".join(LINES[:4]) + "\n")
    ingest(warehouse_path)
    log.write_text(LINES[5] + "\n")
    result = ingest(warehouse_path)
    assert result.rows == 1 and "truncated" in result.files[0].note


def test_a_failed_run_leaves_offsets_so_the_next_reads_everything_once(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (service_dir() / "app.log").write_text("\n".join(LINES) + "\n")

    def broken(*args, **kwargs):
        raise OSError("disk went away")

    with monkeypatch.context() as patch:
        patch.setattr(logfiles, "_fingerprint", broken)
        with pytest.raises(OSError):
            ingest(warehouse_path)
    assert messages(warehouse_path) == []
    assert ingest(warehouse_path).rows == 6
    assert ingest(warehouse_path).rows == 0


def test_stack_traces_join_their_record_and_wait_for_the_file_to_settle(warehouse_path: Path) -> None:
    log = service_dir() / "app.log"
    log.write_text(
        "2026-11-20 13:00:00,000 ERROR Request failed\n"
        "java.lang.IllegalStateException: boom\n"
        "\tat com.example.Handler.handle(Handler.java:42)\n"
        "2026-11-20 13:00:01,000 INFO next request\n"
        "Caused by: something\n"
    )
    busy = ingest(warehouse_path, idle=0.0)
    assert busy.rows == 1  # the last record may still grow
    with log.open("a") as fh:
        fh.write("\tat com.example.Other.run(Other.java:7)\n")
    assert ingest(warehouse_path).rows == 1
    first, second = messages(warehouse_path)
    assert first.splitlines() == [
        "Request failed",
        "java.lang.IllegalStateException: boom",
        "\tat com.example.Handler.handle(Handler.java:42)",
    ]
    assert second.splitlines() == [
        "next request",
        "Caused by: something",
        "\tat com.example.Other.run(Other.java:7)",
    ]
    with warehouse.connect(warehouse_path) as con:
        levels = [r[0] for r in con.execute("SELECT level FROM log_lines ORDER BY line_id").fetchall()]
    assert levels == ["error", "info"]


def test_undecodable_bytes_are_replaced_not_fatal(warehouse_path: Path) -> None:
    (service_dir() / "app.log").write_bytes(b"2026-11-20 13:00:00,000 WARN bad \xff\xfe bytes\n")
    assert ingest(warehouse_path).rows == 1
    assert messages(warehouse_path) == ["bad \ufffd\ufffd bytes"]


def test_json_lines_give_time_level_and_message(warehouse_path: Path) -> None:
    (service_dir("web") / "events.jsonl").write_text(
        '{"ts": "2026-11-20T13:00:00Z", "level": "ERROR", "msg": "upstream timeout"}\n'
        '{"timestamp": 1795179600000, "severity": "warning", "message": "slow"}\n'
        "not json at all\n"
    )
    assert ingest(warehouse_path).rows == 3
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute("SELECT ts, level, message, service FROM log_lines ORDER BY line_id").fetchall()
    assert rows[0] == (dt.datetime(2026, 11, 20, 13), "error", "upstream timeout", "web")
    assert rows[1][1:3] == ("warning", "slow") and rows[1][0] == dt.datetime(2026, 11, 20, 13)
    assert rows[2][2] == "not json at all"


def test_a_configured_pattern_wins_over_detection(warehouse_path: Path) -> None:
    (service_dir("legacy") / "app.log").write_text("20261120T130000|E|disk full\n20261120T130001|I|ok\n")
    cfg = config.Config.model_validate(
        {"services": {"legacy": {"log_pattern": r"^(?P<ts>\d{8}T\d{6})\|(?P<level>\w)\|(?P<message>.*)$"}}}
    )
    logs_run.ingest(warehouse_path, cfg=cfg, clock=time.time() + IDLE)
    with warehouse.connect(warehouse_path) as con:
        rows = con.execute("SELECT level, message FROM log_lines ORDER BY line_id").fetchall()
    assert rows == [("error", "disk full"), ("info", "ok")]


def test_a_pattern_without_a_message_group_is_refused() -> None:
    with pytest.raises(formats.LogFormatError, match="needs a named group"):
        formats.compile_pattern("legacy", r"^(?P<ts>\S+) (.*)$")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["2026-11-20 13:00:00,123 INFO a", "2026-11-20 13:00:01,000 ERROR b"], "iso-level"),
        (["2026-11-20 13:00:00,123 - app.db - WARNING - slow"], "python"),
        (["[Sun Dec 04 04:47:44 2005] [error] mod_jk child in error state 6"], "bracketed"),
        (["Jun 14 15:16:01 combo sshd(pam_unix)[19939]: check pass; user unknown"], "syslog"),
        (["no header here", "none at all"], None),
    ],
)
def test_common_formats_are_detected(lines: list[str], expected: str | None) -> None:
    fmt = formats.detect_format(lines)
    assert (fmt.name if fmt else None) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T13:00:00.5+02:00", dt.datetime(2026, 11, 20, 11, 0, 0, 500000)),
        ("2026-11-20 13:00:00,250", dt.datetime(2026, 11, 20, 13, 0, 0, 250000)),
        ("Sun Dec 04 04:47:44 2005", dt.datetime(2005, 12, 4, 4, 47, 44)),
        ("1795179600", dt.datetime(2026, 11, 20, 13)),
        ("Nov 20 12:00:00", dt.datetime(2026, 11, 20, 12)),
        ("yesterday", None),
    ],
)
def test_timestamps(text: str, expected: dt.datetime | None) -> None:
    assert formats.parse_timestamp(text, now=dt.datetime(2026, 11, 21)) == expected


def test_levels_are_normalised_and_ranked() -> None:
    assert [formats.normalize_level(x) for x in ("WARN", "Warning", "E", "fatal", "bogus")] == [
        "warning", "warning", "error", "critical", None
    ]  # fmt: skip
    assert formats.level_rank("error") > formats.level_rank("warning") > formats.level_rank("info")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=6))
def test_any_way_of_appending_reads_every_line_exactly_once(warehouse_path: Path, cuts: list[int]) -> None:
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM log_lines")
        con.execute("DELETE FROM log_offsets")
    folder = service_dir("prop")
    for old in folder.iterdir():
        old.unlink()
    body = "".join(f"2026-11-20 13:00:{i:02d},000 INFO événement {i} ✓\n" for i in range(40)).encode()
    log = folder / "app.log"
    log.write_bytes(b"")
    points = sorted({min(c, len(body)) for c in cuts}) + [len(body)]
    start = 0
    for point in points:
        with log.open("ab") as fh:
            fh.write(body[start:point])
        start = point
        os.utime(log, None)
        # never idle: the last record is kept back
        logs_run.ingest(warehouse_path, cfg=config.Config(), clock=time.time())
    logs_run.ingest(warehouse_path, cfg=config.Config(), clock=time.time() + IDLE)
    assert messages(warehouse_path) == [f"événement {i} ✓" for i in range(40)]
