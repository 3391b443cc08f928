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

Each file is opened once and everything about it comes from that descriptor: its identity and
size (fstat), its first bytes and its lines (pread). A rotation between looking at a file and
reading it therefore cannot pair one file's offset with another file's bytes. Nothing in the
landing folders is reached through a symbolic link (the services may run as root and the files
may be theirs): service folders and files are opened relative to their parent with O_NOFOLLOW,
links are skipped with a logged reason that names the link, never its target's contents, and the
kernel is asked that each descriptor lies under the landing root. A service folder whose name
cannot be a service name (`sreops.names.check_name`) is skipped, with its reason logged.

Files are read and parsed with no warehouse connection held; the rows and the new offsets are
then written in one transaction (which first checks that no other run moved the offsets), so a
crash never loses or repeats a line. Each record gets a timestamp and a level from its header:
the service's configured pattern (`services.<name>.log_pattern`, a regex with named groups ts,
level, message, matched with a time limit per line and per run: `sreops.logs.patterns`) or the
first of the common formats that fits the file (ISO 8601 with a level, Python logging, Apache
and bracketed timestamps, syslog, JSON Lines). A configured pattern that does not compile or
runs out of time affects only its own service: its lines are read with the built-in detection,
with a warning. Lines that do not start a record (stack frames, `Caused by:`, indented lines)
are joined to the record before them. Undecodable bytes become U+FFFD; nothing here stops on
bad input.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sreops import config as config_module
from sreops import names, paths, warehouse
from sreops.logs.patterns import InvalidPattern, PatternTooSlow, TimedPattern, compile_timed

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 1024
PARTIAL_LINE_IDLE_SECONDS = 60.0
MAX_MESSAGE_CHARS = 64_000
DETECT_LINES = 50
LISTING_PASSES = 2
COMMIT_ATTEMPTS = 3
OFFSET_RETENTION = dt.timedelta(days=7)
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted in a landing folder must not block the open.
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
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


class LogIngestConflict(RuntimeError):
    """Another log ingestion kept moving the offsets while this one read the files."""


@dataclass(frozen=True)
class HeaderFormat:
    """A way log records start: a regex with named groups `message` and optionally `ts`, `level`."""

    name: str
    pattern: re.Pattern[str] | TimedPattern


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
    skipped: list[str] = field(default_factory=list)  # landing entries not read, and why
    warnings: list[str] = field(default_factory=list)  # e.g. a service's pattern not used this run

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
        try:
            value = float(text)
            if value > 1e17:
                value /= 1e9
            elif value > 1e14:
                value /= 1e6
            elif value > 1e11:
                value /= 1e3
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
        try:
            stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:  # e.g. year 1 east of UTC
            return None
    return stamp


# -- headers and records ---------------------------------------------------------------------
def compile_pattern(service: str, regex: str) -> HeaderFormat:
    """The service's configured header pattern (matched with a time limit), checked for a `message` group."""
    try:
        pattern = compile_timed(regex)
    except InvalidPattern as exc:
        raise LogFormatError(f"services.{service}.log_pattern is {exc}") from exc
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


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_record(line: str, now: dt.datetime) -> tuple[dt.datetime | None, str | None, str]:
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        return None, level_in_text(line), line
    if not isinstance(data, dict):
        return None, None, line
    message = next((data[k] for k in _JSON_MESSAGE_KEYS if k in data), None)
    if message is None:
        message = line
    ts = next((data[k] for k in _JSON_TS_KEYS if k in data), None)
    level = next((data[k] for k in _JSON_LEVEL_KEYS if k in data), None)
    try:
        text = message if isinstance(message, str) else json.dumps(message, sort_keys=True)
    except (ValueError, RecursionError):
        text = line
    # JSON escapes can spell lone surrogates ("\ud800"), which no UTF-8 column can hold.
    text = _SURROGATE.sub("\ufffd", text)
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


# -- landing folders: listed and opened without following links -----------------------------
def is_log_name(name: str) -> bool:
    """A log file's name or a rotated one's, not compressed, not hidden."""
    return (
        not name.startswith(".")
        and not name.lower().endswith(_COMPRESSED)
        and _LOG_NAME.fullmatch(name) is not None
    )


def is_log_file(path: Path) -> bool:
    """A log file or a rotated one, not compressed, not hidden, and not a symbolic link."""
    return is_log_name(path.name) and not path.is_symlink() and path.is_file()


def _shown(service: str, name: str | None = None) -> str:
    """A landing path as it can be quoted in a message: escaped (no control or bidi characters)."""
    text = service if name is None else f"{service}/{name}"
    return ascii(text[:120]) + ("..." if len(text) > 120 else "")


def _name_problem(name: str, what: str) -> str | None:
    """Why a folder or file name cannot name a service or log file, or None if it can."""
    try:
        names.check_name(name, what)
    except names.UnsafeName as exc:
        return str(exc)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} {_shown(name)} is not valid UTF-8"
    return None


def _outside(fd: int, real_root: str) -> bool:
    """Whether an open descriptor's real path lies outside the landing root.

    Opening every component relative to its parent with O_NOFOLLOW already keeps us inside;
    this asks the kernel where the descriptor really is (Linux /proc), as a second check.
    """
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False  # no /proc (macOS): the O_NOFOLLOW chain is the guarantee
    return not target.startswith(real_root.rstrip(os.sep) + os.sep)


def _list_root(root_fd: int) -> tuple[list[str], list[str]]:
    """Service folder names under the landing root, and why others were skipped."""
    services, skipped = [], []
    with os.scandir(root_fd) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_symlink():
                skipped.append(
                    f"service folder {_shown(name)} is a symbolic link; links are not followed "
                    "(make it a real folder holding the log files)"
                )
            elif not entry.is_dir(follow_symlinks=False):
                continue
            elif problem := _name_problem(name, "service"):
                skipped.append(f"service folder {_shown(name)} skipped, nothing read from it: {problem}")
            else:
                services.append(name)
    return sorted(services), skipped


def _list_service(dir_fd: int, service: str) -> tuple[list[str], list[str]]:
    """Log file names in one service folder, and why others were skipped."""
    found, skipped = [], []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            name = entry.name
            if not is_log_name(name):
                continue
            if entry.is_symlink():
                skipped.append(f"{_shown(service, name)} is a symbolic link; links are not followed")
            elif not entry.is_file(follow_symlinks=False):
                continue
            elif problem := _name_problem(name, "log file name"):
                skipped.append(f"{_shown(service, name)} skipped: {problem}")
            else:
                found.append(name)
    return sorted(found), skipped


def _open_error(exc: OSError, what: str) -> str | None:
    """The reason to log for a landing entry that could not be opened (None: it just went away)."""
    if isinstance(exc, FileNotFoundError):
        return None
    if exc.errno in (errno.ELOOP, errno.EMLINK):  # EMLINK: what BSDs answer O_NOFOLLOW with
        return f"{what} was replaced by a symbolic link since it was listed; links are not followed"
    if exc.errno == errno.ENOTDIR:
        return f"{what} is no longer a folder; skipped"
    return f"{what} cannot be opened ({exc.strerror or exc}); skipped"


def _open_dir(name: str, parent_fd: int, real_root: str) -> tuple[int | None, str | None]:
    """A descriptor of the service folder `name` (never through a link), or why there is none."""
    try:
        fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
    except OSError as exc:
        return None, _open_error(exc, f"service folder {_shown(name)}")
    if _outside(fd, real_root):
        os.close(fd)
        return None, f"service folder {_shown(name)} resolves outside the landing folder; skipped"
    return fd, None


def discover(root: Path | None = None) -> list[tuple[str, Path]]:
    """(service, path) of every log file under `root/<service>/`, oldest modified first; links skipped."""
    return [(service, path) for service, path, _ in _walk(root or paths.landing_logs())[0]]


def _walk(root: Path) -> tuple[list[tuple[str, Path, os.stat_result]], list[str]]:
    """(service, path, lstat) of every log file, oldest modified first, and what was skipped and why."""
    if not root.is_dir():
        return [], []
    real_root = os.path.realpath(root)
    found, skipped = [], []
    root_fd = os.open(root, _OPEN_DIR & ~os.O_NOFOLLOW)  # the root itself is the operator's choice
    try:
        services, skipped = _list_root(root_fd)
        for service in services:
            dir_fd, problem = _open_dir(service, root_fd, real_root)
            if dir_fd is None:
                skipped.extend([problem] if problem else [])
                continue
            try:
                files, skipped_here = _list_service(dir_fd, service)
                skipped.extend(skipped_here)
                for name in files:
                    try:
                        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    if stat.S_ISREG(st.st_mode):
                        found.append((service, root / service / name, st))
            finally:
                os.close(dir_fd)
    finally:
        os.close(root_fd)
    found.sort(key=lambda item: (item[2].st_mtime_ns, str(item[1])))
    return found, skipped


# -- one open descriptor per file: identity, size, first bytes and lines all come from it ----
@dataclass
class _OpenFile:
    """A log file opened once: what is known of it comes from this descriptor only."""

    service: str
    name: str
    path: Path
    fd: int
    st: os.stat_result
    prefix: bytes

    @property
    def identity(self) -> tuple[int, int]:
        return (self.st.st_dev, self.st.st_ino)

    def look(self) -> None:
        """Take (again) the size, times and first bytes from the open descriptor."""
        self.st = os.fstat(self.fd)
        self.prefix = _pread(self.fd, min(self.st.st_size, FINGERPRINT_BYTES), 0)

    def unchanged(self, end: int) -> bool:
        """Whether the file still holds what was looked at: same first bytes, at least `end` bytes."""
        return os.fstat(self.fd).st_size >= end and _pread(self.fd, len(self.prefix), 0) == self.prefix


def _pread(fd: int, length: int, offset: int) -> bytes:
    """Up to `length` bytes at `offset` of an open file (fewer only at its end)."""
    chunks = []
    while length > 0:
        chunk = os.pread(fd, min(length, 1 << 24), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def _open_file(
    service: str, name: str, dir_fd: int, root: Path, real_root: str
) -> tuple[_OpenFile | None, str | None]:
    """`name` in the service folder opened without following a link, or why it was not."""
    what = _shown(service, name)
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as exc:
        return None, _open_error(exc, what)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None, f"{what} is not a regular file; skipped"
        if _outside(fd, real_root):
            os.close(fd)
            return None, f"{what} resolves outside the landing folder; skipped"
        opened = _OpenFile(service, name, root / service / name, fd, st, b"")
        opened.look()
        return opened, None
    except BaseException:
        os.close(fd)
        raise


def _open_service(
    service: str, root_fd: int, root: Path, real_root: str, seen: set[tuple[int, int]], skipped: list[str]
) -> list[_OpenFile]:
    """Every log file of one service, each opened once (one descriptor per identity).

    The folder is listed twice: a copy made by copytruncate rotation just before its original was
    truncated is then always among the files, so the truncation is never seen without the copy.
    """
    dir_fd, problem = _open_dir(service, root_fd, real_root)
    if dir_fd is None:
        skipped.extend([problem] if problem else [])
        return []
    opened: list[_OpenFile] = []
    try:
        reasons: dict[str, None] = {}
        for _ in range(LISTING_PASSES):
            files, skipped_here = _list_service(dir_fd, service)
            reasons.update(dict.fromkeys(skipped_here))
            for name in files:
                found, problem = _open_file(service, name, dir_fd, root, real_root)
                if problem:
                    reasons[problem] = None
                if found is None:
                    continue
                if found.identity in seen:  # the same file under a second name, or listed again
                    os.close(found.fd)
                    continue
                seen.add(found.identity)
                opened.append(found)
        skipped.extend(reasons)
    except BaseException:
        for f in opened:
            os.close(f.fd)
        raise
    finally:
        os.close(dir_fd)
    return opened


# -- offsets ---------------------------------------------------------------------------------
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
    updated_at: dt.datetime | None = None

    @property
    def identity(self) -> tuple[int, int]:
        return (self.device, self.inode)

    def starts(self, prefix: bytes) -> bool:
        """Whether `prefix` begins with the bytes this offset was fingerprinted on."""
        return len(prefix) >= self.fingerprint_bytes and _fingerprint(prefix[: self.fingerprint_bytes])[
            0
        ] == (self.fingerprint)


_OFFSET_COLUMNS = (
    "service, path, device, inode, fingerprint, fingerprint_bytes, byte_offset, line_no, header, updated_at"
)


def _offset_rows(con) -> list[tuple]:
    return con.execute(
        f"SELECT {_OFFSET_COLUMNS} FROM log_offsets ORDER BY device, inode, service, path"
    ).fetchall()


def _fingerprint(prefix: bytes) -> tuple[str, int]:
    """The hash kept with an offset: of a file's first bytes (up to FINGERPRINT_BYTES)."""
    return hashlib.sha256(prefix).hexdigest(), len(prefix)


def _lines_of(
    data: bytes, start: int, limit: int, consume_partial: bool
) -> tuple[list[tuple[int, str]], int]:
    """Complete lines of `data` (read from byte `start`) as (offset, text), and the offset after them."""
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


def _read_lines(
    opened: _OpenFile, start: int, limit: int, consume_partial: bool
) -> tuple[list[tuple[int, str]], int]:
    """Complete lines from byte `start` up to the size looked at, read through the open descriptor."""
    length = max(0, min(limit, opened.st.st_size - start))
    return _lines_of(_pread(opened.fd, length, start), start, limit, consume_partial)


# -- header patterns: per service, time-limited, never fatal to another service --------------
@dataclass
class _ServiceHeader:
    """A service's configured header pattern for this run, or why it is not used."""

    service: str
    configured: HeaderFormat | None = None
    problem: str | None = None


def _service_header(service: str, cfg: config_module.Config) -> _ServiceHeader:
    text = cfg.service(service).log_pattern
    if not text:
        return _ServiceHeader(service)
    try:
        return _ServiceHeader(service, compile_pattern(service, text))
    except LogFormatError as exc:
        return _ServiceHeader(
            service, problem=f"{exc}; its lines are read with the built-in header detection"
        )


def _builtin_header(stored: str | None, first_lines: Sequence[str]) -> HeaderFormat | None:
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


def _split(
    header: _ServiceHeader,
    opened: _OpenFile,
    numbered: list[tuple[int, int, str]],
    stored: str | None,
    first_lines: Callable[[], list[str]],
    *,
    jsonl: bool,
    now: dt.datetime,
    warnings: list[str],
) -> tuple[list[Record], HeaderFormat | None]:
    """The records of one file's new lines, with the service's pattern while it keeps to its time."""
    if jsonl:
        return split_records(numbered, None, jsonl=True, now=now), None
    if header.configured is not None:
        try:
            return split_records(numbered, header.configured, jsonl=False, now=now), header.configured
        except PatternTooSlow as exc:
            header.configured = None
            header.problem = (
                f"services.{header.service}.log_pattern {exc} in {_shown(opened.service, opened.name)}; "
                "the service's lines are read with the built-in header detection for the rest of this "
                "run (simplify the pattern: nested quantifiers such as (a|aa)+ backtrack without end)"
            )
            warnings.append(header.problem)
            log.warning(header.problem)
    fmt = _builtin_header(stored, [] if stored is not None else first_lines())
    return split_records(numbered, fmt, jsonl=False, now=now), fmt


# -- one run: open and read every file with no connection held, then commit rows and offsets --
@dataclass
class _Plan:
    result: LogIngestResult
    rows: list[dict]
    offsets: list[_Offset]


@dataclass(frozen=True)
class _Start:
    """Where a file's reading starts this run, and the note that explains it."""

    offset: int = 0
    line_no: int = 0
    header: str | None = None
    note: str = ""


def _starts(
    service: str,
    files: list[_OpenFile],
    by_identity: dict[tuple[int, int], _Offset],
    unseen: list[_Offset],
    opened_identities: set[tuple[int, int]],
    result: LogIngestResult,
) -> tuple[dict[tuple[int, int], _Start], set[tuple[int, int]]]:
    """Where each file of one service starts (files left out wait), and the offsets taken over by copies."""
    starts: dict[tuple[int, int], _Start] = {}
    # Offsets whose content is gone from their file (truncated, replaced, or the file is gone):
    # a new file starting with that content is its copy, read on from where reading stopped.
    gone: list[_Offset] = []
    live: list[_OpenFile] = []
    new: list[_OpenFile] = []
    for f in files:
        previous = by_identity.get(f.identity)
        if previous is None or previous.service != service:
            new.append(f)
        elif f.st.st_size < previous.byte_offset:
            gone.append(previous)
            starts[f.identity] = _Start(note="truncated: read from the start")
        elif not previous.starts(f.prefix):
            gone.append(previous)
            starts[f.identity] = _Start(note="replaced (new first bytes): read from the start")
        else:
            live.append(f)
            starts[f.identity] = _Start(previous.byte_offset, previous.line_no, previous.header)
    gone.extend(unseen)
    consumed: set[tuple[int, int]] = set()
    for f in new:
        if f.st.st_size == 0:
            result.files.append(FileRead(service, f.path))  # nothing to read, nothing to remember yet
            continue
        source = next(
            (
                o
                for o in gone
                if o.fingerprint_bytes > 0 and o.byte_offset <= f.st.st_size and o.starts(f.prefix)
            ),
            None,
        )
        if source is not None:
            gone.remove(source)
            consumed.add(source.identity)
            how = "truncated" if source.identity in opened_identities else "vanished"
            note = f"copy of {how} {Path(source.path).name}: read on from its offset"
            starts[f.identity] = _Start(source.byte_offset, source.line_no, source.header, note)
            continue
        original = next((g for g in live if _copy_of_live(f.prefix, g.prefix)), None)
        if original is not None:
            note = (
                f"starts like {original.name}, which is still being written (copytruncate in progress?): "
                "read once that file is truncated"
            )
            result.files.append(FileRead(service, f.path, note=note))
            continue
        starts[f.identity] = _Start()
    return starts, consumed


def _plan(
    opened: list[_OpenFile],
    stored: list[_Offset],
    cfg: config_module.Config,
    now: dt.datetime,
    clock: float,
    result: LogIngestResult,
) -> _Plan:
    """What this run reads: the rows of every file and where each file's reading stops."""
    settings = cfg.logs
    by_identity = {o.identity: o for o in stored}
    opened_identities = {f.identity for f in opened}
    # Files first seen now are looked at again after all the known ones: a copy that copytruncate
    # finished before a truncation we saw is then seen whole.
    for f in opened:
        if f.identity not in by_identity:
            f.look()
    kept: dict[tuple[int, int], _Offset] = {}
    consumed: set[tuple[int, int]] = set()
    rows: list[dict] = []
    by_service: dict[str, list[_OpenFile]] = {}
    for f in sorted(opened, key=lambda f: (f.st.st_mtime_ns, str(f.path))):
        by_service.setdefault(f.service, []).append(f)
    for service, files in by_service.items():
        header = _service_header(service, cfg)
        if header.problem:
            result.warnings.append(header.problem)
            log.warning(header.problem)
        unseen = [o for o in stored if o.service == service and o.identity not in opened_identities]
        starts, taken = _starts(service, files, by_identity, unseen, opened_identities, result)
        consumed |= taken
        for f in files:
            if f.identity not in starts:
                continue
            begin = starts[f.identity]
            start, line_no = begin.offset, begin.line_no
            read = FileRead(service, f.path, start_offset=start, note=begin.note)
            result.files.append(read)
            idle = clock - f.st.st_mtime >= settings.flush_idle_seconds
            consume_partial = clock - f.st.st_mtime >= PARTIAL_LINE_IDLE_SECONDS
            lines, end = _read_lines(f, start, settings.max_bytes_per_file, consume_partial)
            jsonl = ".jsonl" in f.name or ".ndjson" in f.name
            numbered = [(line_no + i + 1, offset, text) for i, (offset, text) in enumerate(lines)]

            def first_lines(f: _OpenFile = f, start: int = start, lines=lines) -> list[str]:
                first = lines if start == 0 else _read_lines(f, 0, 64 << 10, False)[0]
                return [text for _, text in first]

            records, fmt = _split(
                header, f, numbered, begin.header, first_lines, jsonl=jsonl, now=now, warnings=result.warnings
            )
            if records and not jsonl and not idle and end >= f.st.st_size:
                # The last record may still grow (a stack trace being written): keep it for later.
                held = records.pop()
                end = held.byte_offset
                numbered = [n for n in numbered if n[1] < end]
            if not f.unchanged(end):
                read.note = "changed while being read (rotated or truncated): read again next run"
                previous = by_identity.get(f.identity)
                if previous is not None and previous.service == service:
                    kept[f.identity] = previous
                continue
            read.records = len(records)
            read.bytes_read = end - start
            relative = f"{service}/{f.name}"
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
            fingerprint, length = _fingerprint(f.prefix)
            kept[f.identity] = _Offset(
                service,
                str(f.path),
                f.st.st_dev,
                f.st.st_ino,
                fingerprint,
                length,
                end,
                numbered[-1][0] if numbered else line_no,
                _header_to_store(fmt, jsonl, len(numbered) + line_no),
            )
    # Offsets of files not seen this run stay for a while: a file renamed while the folder was
    # being listed is read on from its offset next time, not again from the start.
    for o in stored:
        if o.identity in kept or o.identity in consumed or o.identity in opened_identities:
            continue
        if o.updated_at is not None and now - o.updated_at > OFFSET_RETENTION:
            continue
        kept[o.identity] = o
    result.rows = len(rows)
    return _Plan(result, rows, list(kept.values()))


def _copy_of_live(prefix: bytes, original_prefix: bytes) -> bool:
    """Whether a new file's first bytes are those of a file still being written (its copy so far)."""
    length = min(len(prefix), len(original_prefix))
    return length > 0 and prefix[:length] == original_prefix[:length]


def _write(con, plan: _Plan, now: dt.datetime) -> None:
    if plan.rows:
        frame = pd.DataFrame(plan.rows)
        frame["ingested_at"] = now
        con.register("new_log_lines", frame)
        con.execute(
            "INSERT INTO log_lines (line_id, ts, service, source_file, line_no, message, level,"
            " cluster_id, byte_offset, ingested_at)"
            " SELECT nextval('log_lines_seq'), ts, service, source_file, line_no, message, level, NULL,"
            " byte_offset, ingested_at FROM new_log_lines"
        )
        con.unregister("new_log_lines")
    con.execute("DELETE FROM log_offsets")
    if plan.offsets:
        con.executemany(
            f"INSERT INTO log_offsets ({_OFFSET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                    o.updated_at or now,
                ]
                for o in plan.offsets
            ],
        )


def _open_all(root: Path, result: LogIngestResult) -> list[_OpenFile]:
    """Every log file under `root`, opened once; skipped entries and why go to `result.skipped`."""
    real_root = os.path.realpath(root)
    root_fd = os.open(root, _OPEN_DIR & ~os.O_NOFOLLOW)  # the root itself is the operator's choice
    opened: list[_OpenFile] = []
    try:
        services, skipped = _list_root(root_fd)
        seen: set[tuple[int, int]] = set()
        for service in services:
            opened.extend(_open_service(service, root_fd, root, real_root, seen, skipped))
    except BaseException:
        for f in opened:
            os.close(f.fd)
        raise
    finally:
        os.close(root_fd)
    for reason in skipped:
        log.warning("log ingestion: %s", reason)
    result.skipped.extend(skipped)
    return opened


def ingest(
    warehouse_path: str | os.PathLike[str] | None = None,
    root: Path | None = None,
    *,
    cfg: config_module.Config | None = None,
    now: dt.datetime | None = None,
    clock: float | None = None,
) -> LogIngestResult:
    """Read every appended record under `root` into `log_lines`; offsets and rows commit together.

    Files are opened, read and parsed with no warehouse connection held; the transaction then
    checks that `log_offsets` is still what the run started from (else it reads again, up to
    COMMIT_ATTEMPTS times) and writes the rows and the new offsets. `now` stamps records without
    a readable time (naive UTC); `clock` is the wall time used to decide whether a file is idle
    (both default to the present).
    """
    import time

    cfg = cfg or config_module.current()
    root = root or paths.landing_logs()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    clock = time.time() if clock is None else clock
    if not root.is_dir():
        return LogIngestResult()
    for _ in range(COMMIT_ATTEMPTS):
        result = LogIngestResult()
        opened = _open_all(root, result)
        try:
            if not opened:
                return result
            with warehouse.connect(warehouse_path) as con:
                snapshot = _offset_rows(con)
            plan = _plan(opened, [_Offset(*row) for row in snapshot], cfg, now, clock, result)
        finally:
            for f in opened:
                os.close(f.fd)
        with warehouse.transaction(warehouse_path) as con:
            if _offset_rows(con) != snapshot:
                continue  # another run moved the offsets meanwhile: read again from its offsets
            _write(con, plan, now)
        return plan.result
    raise LogIngestConflict(
        f"log_offsets changed while this run read the log files, {COMMIT_ATTEMPTS} times in a row: "
        "another log ingestion is running at the same time; let one finish (runs of ingest_logs "
        "share the warehouse pool) and run it again"
    )


def pending_signature(root: Path | None = None) -> dict[str, str]:
    """path → `mtime_ns:size` of every log file: what a sensor compares between ticks."""
    return {
        str(path): f"{st.st_mtime_ns}:{st.st_size}" for _, path, st in _walk(root or paths.landing_logs())[0]
    }


def records_of(texts: Iterable[str], *, jsonl: bool = False, now: dt.datetime | None = None) -> list[Record]:
    """Records of in-memory lines (the format detected from them), e.g. for previews and tests."""
    lines = list(texts)
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    fmt = None if jsonl else detect_format(lines)
    return split_records([(i + 1, 0, t) for i, t in enumerate(lines)], fmt, jsonl=jsonl, now=now)
