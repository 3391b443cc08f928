"""Log ingestion from `$SREOPS_HOME/landing/logs/<service>/`: appended lines, each read exactly once.

Files are `*.log` and `*.jsonl`, and their rotated siblings (`app.log.1`, `app.log-20261120`;
compressed ones are skipped). Where reading stopped is kept in `log_offsets` per file identity
(device and inode), together with a hash of the file's first bytes, so that:

- a renamed file (`app.log` → `app.log.1`) is read on from where it stopped;
- a truncated file (size below the offset, or new first bytes) is read again from the start;
- a copy made by copytruncate rotation (a new file whose first bytes match a file that was just
  truncated) is read on from the old offset, so its lines are not read twice;
- a partial last line (no newline yet) waits for its end; a record that may still get
  continuation lines (a stack trace) waits until the file has been idle `flush_idle_seconds`.

The rows and the new offsets are written in one transaction, so a crash never loses or repeats
a line. Each record gets a timestamp and a level from its header: the service's configured
pattern (`services.<name>.log_pattern`, a regex with named groups ts, level, message) or the
first of the common formats that fits the file (ISO 8601 with a level, Python logging, Apache
and bracketed timestamps, syslog, JSON Lines). Lines that do not start a record (stack frames,
`Caused by:`, indented lines) are joined to the record before them. Undecodable bytes become
U+FFFD; nothing here stops on bad input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sreops import config as config_module
from sreops import paths, warehouse

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
PARTIAL_LINE_IDLE_SECONDS = 60.0
MAX_MESSAGE_CHARS = 64_000
DETECT_LINES = 50
_LOG_NAME = re.compile(r".+\.(log|jsonl|ndjson)(?:[.-][\w-]+)?")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")

LEVELS = ("trace", "debug", "info", "notice", "warning", "error", "critical")
_LEVEL_NAMES = {
    "trace": "trace", "finest": "trace", "finer": "trace", "verbose": "trace", "v": "trace",
    "debug": "debug", "fine": "debug", "dbg": "debug", "d": "debug",
    "info": "info", "information": "info", "informational": "info", "i": "info",
    "notice": "notice", "config": "info",
    "warn": "warning", "warning": "warning", "w": "warning",
    "error": "error", "err": "error", "severe": "error", "e": "error",
    "critical": "critical", "crit": "critical", "fatal": "critical", "alert": "critical",
    "emerg": "critical", "emergency": "critical", "panic": "critical", "f": "critical",
}  # fmt: skip
_LEVEL_WORD = (
    r"TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|CRITICAL|CRIT|FATAL|ALERT|EMERG"
    r"|trace|debug|info|notice|warn|warning|error|err|severe|critical|crit|fatal|alert|emerg"
    r"|Trace|Debug|Info|Notice|Warn|Warning|Error|Severe|Critical|Fatal"
)
_LEVEL_IN_TEXT = re.compile(rf"\b({_LEVEL_WORD})\b")
_ISO = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
_CONTINUATION = re.compile(
    r"\s|at\s|Caused by:|\.\.\. \d+ (?:more|common frames omitted)|Traceback \(most recent"
)


class LogFormatError(ValueError):
    """A configured log pattern is not a usable regex; the message names the service."""


@dataclass(frozen=True)
class HeaderFormat:
    """A way log records start: a regex with named groups `message` and optionally `ts`, `level`."""

    name: str
    pattern: re.Pattern[str]


HEADER_FORMATS: tuple[HeaderFormat, ...] = tuple(
    HeaderFormat(name, re.compile(regex))
    for name, regex in (
        ("python", rf"^(?P<ts>{_ISO})\s+-\s+\S+\s+-\s+(?P<level>{_LEVEL_WORD})\s+-\s+(?P<message>.*)$"),
        ("iso-level", rf"^(?P<ts>{_ISO})\s+\[?(?P<level>{_LEVEL_WORD})\]?\s*[:\-|]?\s*(?P<message>.*)$"),
        (
            "iso-thread-level",
            rf"^(?P<ts>{_ISO})\s+\[[^\]]*\]\s+(?P<level>{_LEVEL_WORD})\s*[:\-|]?\s*(?P<message>.*)$",
        ),
        (
            "level-iso",
            rf"^\[?(?P<level>{_LEVEL_WORD})\]?\s+\[?(?P<ts>{_ISO})\]?\s*[:\-|]?\s*(?P<message>.*)$",
        ),
        (
            "bracketed",
            rf"^\[(?P<ts>[^\]]{{8,40}})\]\s+\[?(?P<level>{_LEVEL_WORD})\]?\s*[:\-|]?\s*(?P<message>.*)$",
        ),
        ("syslog", r"^(?P<ts>[A-Z][a-z]{2}\s+\d{1,2} \d{2}:\d{2}:\d{2})\s+\S+\s+[^:\s]+:\s*(?P<message>.*)$"),
        ("iso", rf"^(?P<ts>{_ISO})\s+(?P<message>.*)$"),
    )
)
_FORMATS_BY_NAME = {f.name: f for f in HEADER_FORMATS}
_JSON_MESSAGE_KEYS = ("message", "msg", "log", "text", "event")
_JSON_TS_KEYS = ("ts", "timestamp", "time", "@timestamp", "t", "datetime", "date")
_JSON_LEVEL_KEYS = ("level", "severity", "lvl", "log.level", "loglevel", "levelname")


@dataclass
class Record:
    """One log record: its first line's number and byte offset, its time, level and text."""

    line_no: int
    byte_offset: int
    ts: dt.datetime | None
    level: str | None
    message: str


@dataclass
class FileRead:
    """What one ingestion run read from one file."""

    service: str
    path: Path
    records: int = 0
    bytes_read: int = 0
    start_offset: int = 0
    note: str = ""


@dataclass
class LogIngestResult:
    """What one ingestion run did."""

    files: list[FileRead] = field(default_factory=list)
    rows: int = 0
    hours: set[dt.datetime] = field(default_factory=set)

    @property
    def services(self) -> list[str]:
        return sorted({f.service for f in self.files if f.records})


# -- levels and timestamps -------------------------------------------------------------------
def normalize_level(text: str | None) -> str | None:
    """`WARN`, `Warning`, `W` → `warning`; None when the text names no level."""
    if not text:
        return None
    return _LEVEL_NAMES.get(str(text).strip().strip("[]").lower())


def level_rank(level: str | None) -> int:
    """Order of a normalised level (-1 for none): trace < debug < info < notice < warning < …"""
    return LEVELS.index(level) if level in LEVELS else -1


def level_in_text(text: str) -> str | None:
    """A level named as a word near the start of a message (`… ERROR …`), if any."""
    match = _LEVEL_IN_TEXT.search(text[:80])
    return normalize_level(match.group(1)) if match else None


_TEXT_FORMATS = (
    "%a %b %d %H:%M:%S %Y",
    "%a %b %d %H:%M:%S.%f %Y",
    "%d/%b/%Y:%H:%M:%S %z",
    "%d/%b/%Y:%H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%y/%m/%d %H:%M:%S",
    "%b %d %H:%M:%S",
    "%b %d, %Y %I:%M:%S %p",
)


def parse_timestamp(text: object, now: dt.datetime | None = None) -> dt.datetime | None:
    """A naive UTC datetime from ISO 8601, common log formats or epoch seconds/ms; None if unreadable."""
    if text is None or text == "":
        return None
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
        if value > 1e17:
            value /= 1e9
        elif value > 1e14:
            value /= 1e6
        elif value > 1e11:
            value /= 1e3
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            return None
    raw = str(text).strip()
    if re.fullmatch(r"\d{9,19}(?:\.\d+)?", raw):
        return parse_timestamp(float(raw), now)
    candidate = raw.replace(",", ".", 1) if re.match(r"\d{4}-\d{2}-\d{2}", raw) else raw
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    stamp: dt.datetime | None = None
    try:
        stamp = dt.datetime.fromisoformat(candidate)
    except ValueError:
        for fmt in _TEXT_FORMATS:
            try:
                stamp = dt.datetime.strptime(re.sub(r"\s+", " ", raw), fmt)
            except ValueError:
                continue
            if "%Y" not in fmt and "%y" not in fmt:
                # syslog carries no year: the latest one that does not put the line in the future.
                stamp = stamp.replace(year=now.year)
                if stamp > now + dt.timedelta(days=1):
                    stamp = stamp.replace(year=now.year - 1)
            break
    if stamp is None:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


# -- headers and records ---------------------------------------------------------------------
def compile_pattern(service: str, regex: str) -> HeaderFormat:
    """The service's configured header pattern, checked for a `message` group."""
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise LogFormatError(f"services.{service}.log_pattern is not a valid regex: {exc}") from exc
    if "message" not in pattern.groupindex:
        raise LogFormatError(
            f"services.{service}.log_pattern needs a named group (?P<message>…); it has "
            f"{sorted(pattern.groupindex) or 'none'}"
        )
    return HeaderFormat(f"configured:{service}", pattern)


def detect_format(lines: Sequence[str]) -> HeaderFormat | None:
    """The common header format that starts most of these lines (at least a third), if any."""
    sample = [line for line in lines[:DETECT_LINES] if line.strip()]
    if not sample:
        return None
    best, best_hits = None, 0
    for fmt in HEADER_FORMATS:
        hits = sum(1 for line in sample if fmt.pattern.match(line))
        if hits > best_hits:
            best, best_hits = fmt, hits
    return best if best_hits * 3 >= len(sample) else None


def _header(
    fmt: HeaderFormat | None, line: str, now: dt.datetime
) -> tuple[dt.datetime | None, str | None, str] | None:
    if fmt is None:
        return None
    match = fmt.pattern.match(line)
    if match is None:
        return None
    groups = match.groupdict()
    message = groups.get("message") or ""
    level = normalize_level(groups.get("level")) or level_in_text(message)
    return parse_timestamp(groups.get("ts"), now), level, message


def _json_record(line: str, now: dt.datetime) -> tuple[dt.datetime | None, str | None, str]:
    try:
        data = json.loads(line)
    except ValueError:
        return None, level_in_text(line), line
    if not isinstance(data, dict):
        return None, None, line
    message = next((data[k] for k in _JSON_MESSAGE_KEYS if k in data), None)
    if message is None:
        message = line
    ts = next((data[k] for k in _JSON_TS_KEYS if k in data), None)
    level = next((data[k] for k in _JSON_LEVEL_KEYS if k in data), None)
    text = message if isinstance(message, str) else json.dumps(message, sort_keys=True)
    return parse_timestamp(ts, now), normalize_level(level) or level_in_text(text), text


def split_records(
    lines: Sequence[tuple[int, int, str]], fmt: HeaderFormat | None, *, jsonl: bool, now: dt.datetime
) -> list[Record]:
    """Records from (line_no, byte_offset, text) lines: continuation lines join the record before."""
    records: list[Record] = []
    for line_no, offset, text in lines:
        if not text.strip():
            continue
        if jsonl:
            ts, level, message = _json_record(text, now)
            records.append(Record(line_no, offset, ts, level, message))
            continue
        header = _header(fmt, text, now)
        if header is not None:
            ts, level, message = header
            records.append(Record(line_no, offset, ts, level, message))
        elif records and (fmt is not None or _CONTINUATION.match(text)):
            previous = records[-1]
            if len(previous.message) < MAX_MESSAGE_CHARS:
                previous.message += "\n" + text
        else:
            records.append(Record(line_no, offset, None, level_in_text(text), text))
    for record in records:
        if len(record.message) > MAX_MESSAGE_CHARS:
            record.message = record.message[:MAX_MESSAGE_CHARS]
    return records


# -- files -----------------------------------------------------------------------------------
def is_log_file(path: Path) -> bool:
    """A log file or a rotated one, not compressed, not hidden."""
    name = path.name
    return (
        not name.startswith(".")
        and not name.lower().endswith(_COMPRESSED)
        and _LOG_NAME.fullmatch(name) is not None
        and path.is_file()
    )


def discover(root: Path | None = None) -> list[tuple[str, Path]]:
    """(service, path) of every log file under `root/<service>/`, oldest modified first."""
    root = root or paths.landing_logs()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in folder.iterdir():
            try:
                if is_log_file(path):
                    found.append((folder.name, path, path.stat().st_mtime_ns))
            except FileNotFoundError:
                continue
    found.sort(key=lambda item: (item[2], str(item[1])))
    return [(service, path) for service, path, _ in found]


def _fingerprint(path: Path, size: int) -> tuple[str, int]:
    length = min(size, FINGERPRINT_BYTES)
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(length)).hexdigest(), length


def _prefix_matches(path: Path, fingerprint: str, length: int) -> bool:
    try:
        with path.open("rb") as fh:
            return hashlib.sha256(fh.read(length)).hexdigest() == fingerprint
    except OSError:
        return False


@dataclass
class _Offset:
    service: str
    path: str
    device: int
    inode: int
    fingerprint: str
    fingerprint_bytes: int
    byte_offset: int
    line_no: int
    header: str | None


def _read_lines(
    path: Path, start: int, limit: int, consume_partial: bool
) -> tuple[list[tuple[int, str]], int]:
    """Complete lines from byte `start` as (offset, text), and the offset after the last one read."""
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(limit)
    end = data.rfind(b"\n")
    if end < 0 and len(data) >= limit:
        end = len(data) - 1  # one enormous line: take it whole rather than stall
    if consume_partial and data and end < len(data) - 1:
        end = len(data) - 1
        data = data + b"\n"
    if end < 0:
        return [], start
    lines = []
    position = 0
    body = data[: end + 1]
    while position <= end:
        newline = body.find(b"\n", position)
        if newline < 0:
            newline = len(body)
        raw = body[position:newline]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        lines.append((start + position, raw.decode("utf-8", errors="replace")))
        position = newline + 1
    consumed = min(end + 1, len(data))
    return lines, start + consumed


def _header_for(service: str, stored: str | None, first_lines: Sequence[str], cfg) -> HeaderFormat | None:
    configured = cfg.service(service).log_pattern
    if configured:
        return compile_pattern(service, configured)
    if stored and stored in _FORMATS_BY_NAME:
        return _FORMATS_BY_NAME[stored]
    if stored == "":
        return None
    return detect_format(first_lines)


def _header_to_store(fmt: HeaderFormat | None, jsonl: bool, lines_seen: int) -> str | None:
    """The format name kept with the offset: "" means "no header" (decided), None "not decided yet"."""
    if jsonl:
        return "jsonl"
    if fmt is not None:
        return None if fmt.name.startswith("configured:") else fmt.name
    return "" if lines_seen >= 5 else None


def ingest(
    warehouse_path: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    *,
    cfg: config_module.Config | None = None,
    now: dt.datetime | None = None,
    clock: float | None = None,
) -> LogIngestResult:
    """Read every appended record under `root` into `log_lines`; offsets and rows commit together.

    `now` stamps records without a readable time (naive UTC); `clock` is the wall time used to
    decide whether a file is idle (both default to the present).
    """
    import time

    cfg = cfg or config_module.current()
    settings = cfg.logs
    root = root or paths.landing_logs()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    clock = time.time() if clock is None else clock
    files = discover(root)
    result = LogIngestResult()
    if not files:
        return result
    with warehouse.transaction(warehouse_path) as con:
        stored = [
            _Offset(*row)
            for row in con.execute(
                "SELECT service, path, device, inode, fingerprint, fingerprint_bytes, byte_offset, line_no,"
                " header FROM log_offsets"
            ).fetchall()
        ]
        by_identity = {(o.device, o.inode): o for o in stored}
        stats = {}
        for _, path in files:
            try:
                stats[path] = path.stat()
            except FileNotFoundError:
                continue
        # Files truncated since the last run: a new file starting with their bytes is their copy.
        truncated = [
            o
            for o in stored
            for path, st in stats.items()
            if (st.st_dev, st.st_ino) == (o.device, o.inode) and st.st_size < o.byte_offset
        ]
        kept: dict[tuple[int, int], _Offset] = {}
        rows: list[dict] = []
        for service, path in files:
            st = stats.get(path)
            if st is None:
                continue
            identity = (st.st_dev, st.st_ino)
            read = FileRead(service, path)
            result.files.append(read)
            previous = by_identity.get(identity)
            start, line_no, header_name = 0, 0, None
            if previous is not None and previous.service == service:
                if st.st_size < previous.byte_offset:
                    read.note = "truncated: read from the start"
                elif not _prefix_matches(path, previous.fingerprint, previous.fingerprint_bytes):
                    read.note = "replaced (new first bytes): read from the start"
                else:
                    start, line_no, header_name = previous.byte_offset, previous.line_no, previous.header
            else:
                for old in truncated:
                    if (
                        old.service == service
                        and old.byte_offset <= st.st_size
                        and _prefix_matches(path, old.fingerprint, old.fingerprint_bytes)
                    ):
                        start, line_no, header_name = old.byte_offset, old.line_no, old.header
                        read.note = f"copy of truncated {Path(old.path).name}: read on from its offset"
                        break
            read.start_offset = start
            idle = clock - st.st_mtime >= settings.flush_idle_seconds
            consume_partial = clock - st.st_mtime >= PARTIAL_LINE_IDLE_SECONDS
            lines, end = _read_lines(path, start, settings.max_bytes_per_file, consume_partial)
            jsonl = ".jsonl" in path.name or ".ndjson" in path.name
            if header_name is None and not jsonl:
                first = lines if start == 0 else _read_lines(path, 0, 64 << 10, False)[0]
                fmt = _header_for(service, None, [text for _, text in first], cfg)
            else:
                fmt = None if jsonl else _header_for(service, header_name, [], cfg)
            numbered = [(line_no + i + 1, offset, text) for i, (offset, text) in enumerate(lines)]
            records = split_records(numbered, fmt, jsonl=jsonl, now=now)
            if records and not jsonl and not idle and end >= st.st_size:
                # The last record may still grow (a stack trace being written): keep it for later.
                held = records.pop()
                end = held.byte_offset
                numbered = [n for n in numbered if n[1] < end]
            read.records = len(records)
            read.bytes_read = end - start
            relative = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
            for record in records:
                ts = record.ts or now
                rows.append(
                    {
                        "ts": ts,
                        "service": service,
                        "source_file": relative,
                        "line_no": record.line_no,
                        "message": record.message,
                        "level": record.level,
                        "byte_offset": record.byte_offset,
                    }
                )
                result.hours.add(ts.replace(minute=0, second=0, microsecond=0))
            fingerprint, length = _fingerprint(path, st.st_size)
            kept[identity] = _Offset(
                service,
                str(path),
                st.st_dev,
                st.st_ino,
                fingerprint,
                length,
                end,
                numbered[-1][0] if numbered else line_no,
                _header_to_store(fmt, jsonl, len(numbered) + line_no),
            )
        if rows:
            frame = pd.DataFrame(rows)
            frame["ingested_at"] = now
            con.register("new_log_lines", frame)
            con.execute(
                "INSERT INTO log_lines (line_id, ts, service, source_file, line_no, message, level,"
                " cluster_id, byte_offset, ingested_at)"
                " SELECT nextval('log_lines_seq'), ts, service, source_file, line_no, message, level, NULL,"
                " byte_offset, ingested_at FROM new_log_lines"
            )
            con.unregister("new_log_lines")
        result.rows = len(rows)
        con.execute("DELETE FROM log_offsets")
        if kept:
            con.executemany(
                "INSERT INTO log_offsets VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [
                        o.service,
                        o.path,
                        o.device,
                        o.inode,
                        o.fingerprint,
                        o.fingerprint_bytes,
                        o.byte_offset,
                        o.line_no,
                        o.header,
                        now,
                    ]
                    for o in kept.values()
                ],
            )
    return result


def pending_signature(root: Path | None = None) -> dict[str, str]:
    """path → `mtime_ns:size` of every log file: what a sensor compares between ticks."""
    out = {}
    for _, path in discover(root):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out[str(path)] = f"{st.st_mtime_ns}:{st.st_size}"
    return out


def records_of(texts: Iterable[str], *, jsonl: bool = False, now: dt.datetime | None = None) -> list[Record]:
    """Records of in-memory lines (the format detected from them), e.g. for previews and tests."""
    lines = list(texts)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    fmt = None if jsonl else detect_format(lines)
    return split_records([(i + 1, 0, t) for i, t in enumerate(lines)], fmt, jsonl=jsonl, now=now)
