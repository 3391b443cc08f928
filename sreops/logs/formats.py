"""Log record parsing: levels, timestamps, header formats, multi-line records, JSON Lines fields.

Pure: text in, records out; nothing here reads a file or a table. Each record gets a timestamp
and a level from its header: the service's configured pattern (`services.<name>.log_pattern`, a
regex with named groups ts, level, message, matched with a time limit per line and per run:
`sreops.logs.patterns`) or the first of the common formats that fits the file (ISO 8601 with a
level, Python logging, Apache and bracketed timestamps, syslog, JSON Lines). A configured pattern
that does not compile or runs out of time affects only its own service: its lines are read with
the built-in detection, with a warning. Lines that do not start a record (stack frames,
`Caused by:`, indented lines) are joined to the record before them. Nothing here stops on bad
input.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sreops.logs.patterns import InvalidPattern, PatternTooSlow, TimedPattern, compile_timed
from sreops.timeutil import utc_now

MAX_MESSAGE_CHARS = 64_000
DETECT_LINES = 50

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
    now = now or utc_now()
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


def records_of(texts: Iterable[str], *, jsonl: bool = False, now: dt.datetime | None = None) -> list[Record]:
    """Records of in-memory lines (the format detected from them), e.g. for previews and tests."""
    lines = list(texts)
    now = now or utc_now()
    fmt = None if jsonl else detect_format(lines)
    return split_records([(i + 1, 0, t) for i, t in enumerate(lines)], fmt, jsonl=jsonl, now=now)


# -- header patterns: per service, time-limited, never fatal to another service --------------
@dataclass
class ServiceHeader:
    """A service's configured header pattern for this run, or why it is not used."""

    service: str
    configured: HeaderFormat | None = None
    problem: str | None = None


def service_header(service: str, log_pattern: str | None) -> ServiceHeader:
    """The service's configured pattern (`services.<name>.log_pattern`) compiled for this run, if any."""
    if not log_pattern:
        return ServiceHeader(service)
    try:
        return ServiceHeader(service, compile_pattern(service, log_pattern))
    except LogFormatError as exc:
        return ServiceHeader(service, problem=f"{exc}; its lines are read with the built-in header detection")


def _builtin_header(stored: str | None, first_lines: Sequence[str]) -> HeaderFormat | None:
    if stored and stored in _FORMATS_BY_NAME:
        return _FORMATS_BY_NAME[stored]
    if stored == "":
        return None
    return detect_format(first_lines)


def header_to_store(fmt: HeaderFormat | None, jsonl: bool, lines_seen: int) -> str | None:
    """The format name kept with the offset: "" means "no header" (decided), None "not decided yet"."""
    if jsonl:
        return "jsonl"
    if fmt is not None:
        return None if fmt.name.startswith("configured:") else fmt.name
    return "" if lines_seen >= 5 else None


def split_file(
    header: ServiceHeader,
    source: str,
    numbered: list[tuple[int, int, str]],
    stored: str | None,
    first_lines: Callable[[], list[str]],
    *,
    jsonl: bool,
    now: dt.datetime,
    warnings: list[str],
) -> tuple[list[Record], HeaderFormat | None]:
    """The records of one file's new lines, with the service's pattern while it keeps to its time.

    `source` names the file in messages; `stored` is the header kept with its offset and
    `first_lines` gives the file's first lines when the format is still to be detected. A pattern
    that runs out of time is dropped for the rest of the run, with a warning added to `warnings`.
    """
    if jsonl:
        return split_records(numbered, None, jsonl=True, now=now), None
    if header.configured is not None:
        try:
            return split_records(numbered, header.configured, jsonl=False, now=now), header.configured
        except PatternTooSlow as exc:
            header.configured = None
            header.problem = (
                f"services.{header.service}.log_pattern {exc} in {source}; "
                "the service's lines are read with the built-in header detection for the rest of this "
                "run (simplify the pattern: nested quantifiers such as (a|aa)+ backtrack without end)"
            )
            warnings.append(header.problem)
    fmt = _builtin_header(stored, [] if stored is not None else first_lines())
    return split_records(numbered, fmt, jsonl=False, now=now), fmt
