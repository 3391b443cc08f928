"""The feedback spool: button presses land here first, so a busy warehouse never loses one.

The interactivity endpoint appends each verified press to a JSON-lines file under the data
directory; `drain_spool` (run by the endpoint's worker and by every delivery pass) validates each
line and writes it through :func:`sreops.alerting.feedback.store.record`, setting aside the lines that
cannot be applied, with their reasons.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sreops import paths, warehouse
from sreops.alerting.feedback.labels import (
    ACTIONS,
    MAX_CLOCK_SKEW,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    BadFeedbackRecordError,
    UnknownActionError,
    UnknownAlertError,
    snooze_length,
)
from sreops.alerting.feedback.store import record
from sreops.alerting.model import parse_time

log = logging.getLogger(__name__)


def spool_path() -> Path:
    """Where verified interactivity payloads wait to be written into `alert_feedback`."""
    return paths.home() / "alerting" / "feedback-spool.jsonl"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """The spool's append lock: held for an append or a read, never across a warehouse transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextlib.contextmanager
def _draining(path: Path) -> Iterator[bool]:
    """One drainer at a time (the endpoint's worker and delivery passes both drain); False if busy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".drain.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def spool(entry: dict[str, Any], path: Path | None = None) -> None:
    """Append one feedback entry durably."""
    target = path or spool_path()
    with _locked(target), open(target, "ab") as handle:
        # A writer killed mid-line left a fragment without its newline: end it, so that this
        # entry stays a line of its own and only the fragment is set aside.
        torn = handle.tell() > 0 and _last_byte(target) != b"\n"
        handle.write((b"\n" if torn else b"") + json.dumps(entry, default=str).encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def rejected_path(path: Path | None = None) -> Path:
    """Where spooled feedback that cannot be applied is set aside, one JSON object per line with its reason."""
    return (path or spool_path()).with_name("feedback-rejected.jsonl")


@dataclass(frozen=True)
class SpooledPress:
    """One validated spool line, ready for :func:`record`."""

    feedback_id: str
    alert_id: str
    action: str
    user_id: str | None
    user_name: str | None
    at: dt.datetime
    snooze_minutes: int


def _text(entry: dict[str, Any], key: str, limit: int, required: bool) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadFeedbackRecordError(f"{key} must be a non-empty string of at most {limit} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadFeedbackRecordError(f"{key} is not valid Unicode text") from None
    return value


def parse_spooled(line: bytes, now: dt.datetime, snooze_minutes: int = 60) -> SpooledPress:
    """A spool line as a press, or BadFeedbackRecordError saying what is wrong with it."""
    try:
        entry = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadFeedbackRecordError("not UTF-8 text (a torn write?)") from None
    except (ValueError, RecursionError) as exc:
        raise BadFeedbackRecordError(f"not JSON (a torn write?): {str(exc)[:120]}") from None
    if not isinstance(entry, dict):
        raise BadFeedbackRecordError(f"a JSON {type(entry).__name__}, not an object")
    action = _text(entry, "action", 32, True)
    if action not in ACTIONS:
        raise BadFeedbackRecordError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    try:
        at = parse_time(entry.get("at")) or now
    except (TypeError, ValueError, OverflowError):
        raise BadFeedbackRecordError(f"at {str(entry.get('at'))[:40]!r} is not an ISO timestamp") from None
    if at > now + MAX_CLOCK_SKEW:
        raise BadFeedbackRecordError(f"at {at:%Y-%m-%d %H:%M} is in the future")
    return SpooledPress(
        feedback_id=_text(entry, "feedback_id", MAX_ID_CHARS, True) or "",
        alert_id=_text(entry, "alert_id", MAX_ID_CHARS, True) or "",
        action=action,
        user_id=_text(entry, "user_id", MAX_ID_CHARS, False),
        user_name=_text(entry, "user_name", MAX_NAME_CHARS, False),
        at=at,
        snooze_minutes=snooze_length(entry.get("snooze_minutes"), snooze_length(snooze_minutes)),
    )


def _apply(con: duckdb.DuckDBPyConnection, press: SpooledPress) -> bool:
    return record(
        con,
        alert_id=press.alert_id,
        action=press.action,
        user_id=press.user_id,
        user_name=press.user_name,
        feedback_id=press.feedback_id,
        now=press.at,
        snooze_minutes=press.snooze_minutes,
    )


def drain_spool(
    warehouse_path: str | os.PathLike[str] | None,
    now: dt.datetime,
    path: Path | None = None,
    snooze_minutes: int = 60,
    patience_s: float | None = None,
) -> int:
    """Write spooled feedback into `alert_feedback`; returns how many were new.

    One bad line never holds up the others: a line that cannot be applied (torn, malformed,
    for an unknown alert, or failing in the warehouse on its own) is appended to
    :func:`rejected_path` with its reason and dropped from the spool; the rest are stored. Only a
    warehouse that cannot be opened keeps everything spooled for the next drain.
    """
    target = path or spool_path()
    if not target.exists():
        return 0
    with _draining(target) as mine:
        return _drain(warehouse_path, target, now, snooze_minutes, patience_s) if mine else 0


def _drain(
    warehouse_path: str | os.PathLike[str] | None,
    target: Path,
    now: dt.datetime,
    snooze_minutes: int,
    patience_s: float | None,
) -> int:
    with _locked(target):
        data = target.read_bytes()
    lines = data.split(b"\n")
    rejected: list[tuple[bytes, str]] = []
    good: list[tuple[bytes, SpooledPress]] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            good.append((line, parse_spooled(line, now, snooze_minutes)))
        except BadFeedbackRecordError as exc:
            rejected.append((line, str(exc)))
    stored = 0
    if good:
        try:
            stored, failed = _apply_all(warehouse_path, good, patience_s)
        except warehouse.WarehouseLockedError:
            raise
        except duckdb.Error as exc:
            # One statement failed and took the transaction with it: apply the lines one by one.
            log.warning("spooled feedback failed as a batch (%s); applying it line by line", exc)
            stored, failed = _apply_each(warehouse_path, good, patience_s)
        rejected += failed
    # Only after the commit: entries appended meanwhile stay for the next drain.
    with _locked(target):
        if rejected:
            _set_aside(rejected_path(target), rejected, now)
        # Writers only append (under this lock), so what came after the bytes read is new.
        remaining = target.read_bytes()[len(data) :].split(b"\n") if target.exists() else []
        _replace(target, b"".join(line + b"\n" for line in remaining if line.strip()))
    return stored


def _apply_all(
    warehouse_path: str | os.PathLike[str] | None,
    good: list[tuple[bytes, SpooledPress]],
    patience_s: float | None,
) -> tuple[int, list[tuple[bytes, str]]]:
    stored, failed = 0, []
    with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
        for line, press in good:
            try:
                stored += _apply(con, press)
            except (UnknownAlertError, UnknownActionError, OverflowError) as exc:
                failed.append((line, _reason(exc)))
    return stored, failed


def _apply_each(
    warehouse_path: str | os.PathLike[str] | None,
    good: list[tuple[bytes, SpooledPress]],
    patience_s: float | None,
) -> tuple[int, list[tuple[bytes, str]]]:
    stored, failed = 0, []
    for line, press in good:
        try:
            with warehouse.transaction(warehouse_path, patience_s=patience_s) as con:
                stored += _apply(con, press)
        except warehouse.WarehouseLockedError:
            raise
        except (UnknownAlertError, UnknownActionError, OverflowError, duckdb.Error) as exc:
            failed.append((line, f"{type(exc).__name__}: {_reason(exc)}"))
    if failed and len(failed) == len(good) > 1:
        # Every line failing alone is the warehouse's problem, not theirs: keep them spooled.
        raise duckdb.Error(f"no spooled feedback could be stored: {failed[0][1]}")
    return stored, failed


def _reason(exc: BaseException) -> str:
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)  # KeyError's str() adds quotes


def _set_aside(path: Path, rejected: list[tuple[bytes, str]], now: dt.datetime) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        for line, reason in rejected:
            text = line.decode("utf-8", errors="backslashreplace")
            handle.write(json.dumps({"set_aside_at": now.isoformat(), "reason": reason, "line": text}) + "\n")
            log.warning("spooled feedback set aside (%s): %s", reason, text[:200])
        handle.flush()
        os.fsync(handle.fileno())


def _replace(path: Path, data: bytes) -> None:
    """Rewrite the spool atomically: a crash leaves the old or the new file, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
