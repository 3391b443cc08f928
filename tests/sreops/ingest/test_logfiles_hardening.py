"""Log ingestion under hostile landing folders: links, rotation races, user patterns, unsafe names.

Each test names the hardening item it keeps (issue 12): 1 unsafe service folder names, 2 symbolic
links, 6 rotation between looking at a file and reading it, 7 slow or invalid `log_pattern`s.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest

from sreops import config, paths, warehouse
from sreops.ingest import logfiles
from sreops.logs import formats, landing
from sreops.logs import run as logs_run

IDLE = 5.0
SECRET = "root:x:0:0:SECRET-7f3a:/root:/bin/bash"


def service_dir(name: str = "api") -> Path:
    folder = paths.landing_logs() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def line(text: str) -> str:
    return f"2026-11-20 13:00:00,000 INFO {text}\n"


def ingest(warehouse_path: Path, cfg: config.Config | None = None) -> logfiles.LogIngestResult:
    return logs_run.ingest(warehouse_path, cfg=cfg or config.Config(), clock=time.time() + IDLE)


def stored(warehouse_path: Path) -> list[tuple[str, str]]:
    with warehouse.connect(warehouse_path) as con:
        return con.execute("SELECT service, message FROM log_lines ORDER BY line_id").fetchall()


def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "private" / "shadow"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SECRET + "\n" + line("private detail"))
    return path


def reasons(result: logfiles.LogIngestResult) -> str:
    return "\n".join(getattr(result, "skipped", []))


# -- item 2: symbolic links -------------------------------------------------------------------
def test_a_link_to_a_file_outside_the_landing_folder_is_skipped_without_quoting_it(
    warehouse_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = service_dir()
    (folder / "app.log").write_text(line("served"))
    (folder / "shadow.log").symlink_to(secret_file(tmp_path))
    (folder / "passwd.log").symlink_to("/etc/passwd")
    with caplog.at_level(logging.WARNING):
        result = ingest(warehouse_path)
    assert stored(warehouse_path) == [("api", "served")]
    assert "'api/shadow.log' is a symbolic link" in reasons(result)
    assert "'api/passwd.log' is a symbolic link" in reasons(result)
    assert "SECRET" not in reasons(result) + caplog.text and "root:x" not in caplog.text


def test_a_symlinked_service_folder_is_not_followed(warehouse_path: Path, tmp_path: Path) -> None:
    (service_dir() / "app.log").write_text(line("served"))
    secret_file(tmp_path)
    (tmp_path / "private" / "app.log").write_text(SECRET + "\n")
    (paths.landing_logs() / "private").symlink_to(tmp_path / "private", target_is_directory=True)
    result = ingest(warehouse_path)
    assert stored(warehouse_path) == [("api", "served")]
    assert "service folder 'private' is a symbolic link" in reasons(result)


def test_a_file_replaced_by_a_link_after_its_first_read_is_not_read(
    warehouse_path: Path, tmp_path: Path
) -> None:
    log = service_dir() / "app.log"
    log.write_text(line("first"))
    assert ingest(warehouse_path).rows == 1
    staged = log.with_name(".staged")
    staged.symlink_to(secret_file(tmp_path))
    os.replace(staged, log)  # the link takes the file's place atomically, as an attacker would
    result = ingest(warehouse_path)
    assert result.rows == 0
    assert stored(warehouse_path) == [("api", "first")]
    assert "'api/app.log' is a symbolic link" in reasons(result)


def test_a_link_swapped_in_after_listing_is_refused_by_the_open(
    warehouse_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = service_dir() / "app.log"
    log.write_text(line("first"))
    secret = secret_file(tmp_path)
    real_list = landing._list_service

    def list_then_swap(dir_fd: int, service: str):
        listed = real_list(dir_fd, service)
        if log.exists() and not log.is_symlink():
            staged = log.with_name(".staged")
            staged.symlink_to(secret)
            os.replace(staged, log)
        return listed

    monkeypatch.setattr(landing, "_list_service", list_then_swap)
    result = ingest(warehouse_path)
    assert result.rows == 0 and stored(warehouse_path) == []
    assert "'api/app.log' was replaced by a symbolic link since it was listed" in reasons(result)


# -- item 6: rotation between looking at a file and reading it ----------------------------------
class RotatingWriter:
    """An application writing numbered lines to app.log, rotated as logrotate does."""

    def __init__(self, folder: Path, mode: str) -> None:
        self.folder, self.mode = folder, mode
        self.log = folder / "app.log"
        self.written = 0
        self.rotations = 0
        self.fh = self.log.open("ab", buffering=0)

    def inode(self, fstat=os.fstat) -> int:
        return fstat(self.fh.fileno()).st_ino

    def append(self, n: int) -> None:
        for _ in range(n):
            self.fh.write(line(f"line {self.written:06d}").encode())
            self.written += 1

    def rotate(self, during: int = 0) -> None:
        """Rotate once; `during` lines are written at the worst moment (old file, then new one)."""
        for k in sorted((int(p.name.rsplit(".", 1)[1]) for p in self.folder.glob("app.log.*")), reverse=True):
            os.rename(self.folder / f"app.log.{k}", self.folder / f"app.log.{k + 1}")
        if self.mode == "rename":
            os.rename(self.log, self.folder / "app.log.1")
            self.append(during)  # the application still holds the renamed file
            self.fh.close()
            self.fh = self.log.open("ab", buffering=0)
        else:
            shutil.copyfile(self.log, self.folder / "app.log.1")
            os.truncate(self.log, 0)
        self.append(during)
        self.rotations += 1


@pytest.mark.parametrize("mode", ["rename", "copytruncate"])
def test_rotation_between_stat_and_read_stores_every_line_once(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    writer = RotatingWriter(service_dir(), mode)
    armed = {"on": False, "busy": False}
    real_stat, real_fstat = os.stat, os.fstat

    def rotate_after_looking(result: os.stat_result) -> os.stat_result:
        # The race of the issue: the file was just identified (stat or fstat), it is rotated and
        # written to before its bytes are read.
        if armed["on"] and not armed["busy"] and result.st_ino == writer.inode(real_fstat):
            armed.update(on=False, busy=True)
            try:
                writer.rotate(during=40)
            finally:
                armed["busy"] = False
        return result

    monkeypatch.setattr(os, "stat", lambda *a, **k: rotate_after_looking(real_stat(*a, **k)))
    monkeypatch.setattr(os, "fstat", lambda *a, **k: rotate_after_looking(real_fstat(*a, **k)))
    for cycle in range(12):  # bounded: 12 runs, 8 of them with a rotation in the middle
        writer.append(1500)
        if cycle % 3 == 2:
            writer.rotate(during=25)  # rotation between two runs, lines on both sides
        else:
            armed["on"] = True
        ingest(warehouse_path)
    armed["on"] = False
    writer.append(100)
    ingest(warehouse_path)
    ingest(warehouse_path)
    writer.fh.close()
    assert writer.rotations == 12 and writer.written > 18_000
    messages = [m for _, m in stored(warehouse_path)]
    assert len(messages) == len(set(messages)), f"{len(messages) - len(set(messages))} duplicate lines"
    assert sorted(messages) == [f"line {i:06d}" for i in range(writer.written)]


def test_a_copy_caught_half_written_waits_for_its_original_to_be_truncated(warehouse_path: Path) -> None:
    folder = service_dir()
    log = folder / "app.log"
    log.write_text("".join(line(f"line {i}") for i in range(3)))
    ingest(warehouse_path)
    with log.open("a") as fh:
        fh.write(line("line 3"))
    (folder / "app.log.1").write_bytes(log.read_bytes()[:70])  # copytruncate, caught mid-copy
    result = ingest(warehouse_path)
    assert result.rows == 1 and any("still being written" in f.note for f in result.files)
    shutil.copyfile(log, folder / "app.log.1")  # the copy completes, then the original is truncated
    log.write_text(line("line 4"))
    ingest(warehouse_path)
    assert sorted(m for _, m in stored(warehouse_path)) == [f"line {i}" for i in range(5)]


# -- item 7: a service's log_pattern is slow or invalid ----------------------------------------
def with_pattern(service: str, pattern: str) -> config.Config:
    """A config holding `pattern` as written (not validated: one that slipped past the config check)."""
    svc = config.ServiceConfig().model_copy(update={"log_pattern": pattern})
    return config.Config().model_copy(update={"services": {service: svc}})


@pytest.mark.timeout(60)
def test_a_catastrophic_pattern_times_out_and_only_its_own_service_reads_without_it(
    warehouse_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # With `re` this line backtracks for longer than the test may run; here it costs one line's limit.
    (service_dir("slow") / "app.log").write_text(line("before") + "a" * 60 + "!\n" + line("after"))
    (service_dir("api") / "app.log").write_text(line("served"))
    cfg = with_pattern("slow", r"^(?P<message>(a|aa)+)$")
    with caplog.at_level(logging.WARNING):
        result = ingest(warehouse_path, cfg)
    rows = stored(warehouse_path)
    assert ("api", "served") in rows
    slow = "\n".join(m for s, m in rows if s == "slow")
    assert all(part in slow for part in ("before", "a" * 60 + "!", "after"))
    assert "services.slow.log_pattern took longer than" in caplog.text
    assert any("built-in header detection" in w for w in result.warnings)


def test_header_patterns_are_never_matched_inside_the_warehouse_transaction(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (service_dir("legacy") / "app.log").write_text("20261120T130000|E|disk full\n20261120T130001|I|ok\n")
    cfg = with_pattern("legacy", r"^(?P<ts>\d{8}T\d{6})\|(?P<level>\w)\|(?P<message>.*)$")
    holding = {"now": False, "while_held": []}
    real_transaction, real_split = warehouse.transaction, formats.split_records

    class Held:
        def __init__(self, *args, **kwargs) -> None:
            self.inner = real_transaction(*args, **kwargs)

        def __enter__(self):
            holding["now"] = True
            return self.inner.__enter__()

        def __exit__(self, *exc):
            holding["now"] = False
            return self.inner.__exit__(*exc)

    def split(*args, **kwargs):
        holding["while_held"].append(holding["now"])
        return real_split(*args, **kwargs)

    monkeypatch.setattr(warehouse, "transaction", Held)
    monkeypatch.setattr(formats, "split_records", split)
    ingest(warehouse_path, cfg)
    assert holding["while_held"] == [False]
    with warehouse.connect(warehouse_path) as con:
        assert con.execute("SELECT level, message FROM log_lines ORDER BY line_id").fetchall() == [
            ("error", "disk full"),
            ("info", "ok"),
        ]


def test_a_run_that_commits_while_another_is_reading_is_not_repeated(
    warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading and parsing happen with no transaction held, so another run may commit meanwhile;
    # the commit notices the moved offsets and reads again from them.
    (service_dir() / "app.log").write_text(line("one") + line("two"))
    real_plan, plans = logfiles._plan, []

    def plan_while_another_run_commits(*args, **kwargs):
        plans.append(1)
        planned = real_plan(*args, **kwargs)
        if len(plans) == 1:
            assert ingest(warehouse_path).rows == 2  # the other run, start to commit
        return planned

    monkeypatch.setattr(logfiles, "_plan", plan_while_another_run_commits)
    assert ingest(warehouse_path).rows == 0
    assert len(plans) == 3 and stored(warehouse_path) == [("api", "one"), ("api", "two")]


@pytest.mark.parametrize(
    "pattern", ["(?P<message>unclosed", r"^(?P<ts>\S+) (.*)$"], ids=["invalid", "no-message"]
)
def test_an_unusable_pattern_affects_only_its_own_service(
    warehouse_path: Path, pattern: str, caplog: pytest.LogCaptureFixture
) -> None:
    (service_dir("legacy") / "app.log").write_text(line("legacy one") + line("legacy two"))
    (service_dir("api") / "app.log").write_text(line("served"))
    with caplog.at_level(logging.WARNING):
        result = ingest(warehouse_path, with_pattern("legacy", pattern))
    assert sorted(stored(warehouse_path)) == [
        ("api", "served"),
        ("legacy", "legacy one"),
        ("legacy", "legacy two"),
    ]
    assert "services.legacy.log_pattern" in caplog.text
    assert any("built-in header detection" in w for w in result.warnings)


# -- item 1: service folder names that cannot be service names ---------------------------------
def test_service_folders_with_unsafe_names_are_skipped_and_others_continue(
    warehouse_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    landing = os.fsencode(paths.landing_logs())
    bad = [b"esc\x1bname", "rtl\u202etxt".encode(), b"x" * 201, b"not-utf8-\xff", b"tab\tname"]
    for name in bad:
        folder = os.path.join(landing, name)
        os.makedirs(folder)
        with open(os.path.join(folder, b"app.log"), "w") as fh:
            fh.write(line("must not land"))
    (service_dir() / "app.log").write_text(line("served"))
    with caplog.at_level(logging.WARNING):
        result = ingest(warehouse_path)
    assert stored(warehouse_path) == [("api", "served")]
    skipped = getattr(result, "skipped", [])
    assert len(skipped) == len(bad) and all("nothing read from it" in r for r in skipped)
    assert all(r.isprintable() for r in skipped)  # names quoted escaped: no control or bidi characters
    assert "control character" in caplog.text and "bidirectional" in caplog.text
    assert "at most 200" in caplog.text and "not valid UTF-8" in caplog.text
