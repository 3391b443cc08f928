"""Log files as a source: what to read from each file under `$SREOPS_HOME/landing/logs/<service>/`.

Files are `*.log` and `*.jsonl`, and their rotated siblings (`app.log.1`, `app.log-20261120`;
compressed ones are skipped). Where reading stopped is kept in `log_offsets` per file identity
(device and inode), together with a hash of the file's first bytes, so that:

- a renamed file (`app.log` → `app.log.1`) is read on from where it stopped;
- a truncated file (size below the offset, or new first bytes) is read again from the start;
- a copy made by copytruncate rotation (a new file whose first bytes match a file that was just
  truncated) is read on from the old offset, so its lines are not read twice;
- a partial last line (no newline yet) waits for its end; a record that may still get
  continuation lines (a stack trace) waits until the file has been idle `flush_idle_seconds`.

Files are found and opened by `sreops.logs.landing` (once each, never through a link); every
byte read here comes through that one descriptor, so a rotation between looking at a file and
reading it cannot pair one file's offset with another file's bytes. Records are parsed by
`sreops.logs.formats`. `read` does all of it with no warehouse connection held (the stored
offsets come from a callable); `sreops.logs.run.ingest` then writes the rows and the new offsets
in one transaction. Undecodable bytes become U+FFFD; nothing here stops on bad input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sreops import config as config_module
from sreops import paths
from sreops.logs import formats, landing
from sreops.logs.landing import OpenFile

log = logging.getLogger(__name__)

PARTIAL_LINE_IDLE_SECONDS = 60.0
OFFSET_RETENTION = dt.timedelta(days=7)


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


# -- offsets and the lines after them ------------------------------------------------------
@dataclass
class Offset:
    """Where reading stopped in one file (a row of `log_offsets`), by file identity."""

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


def _fingerprint(prefix: bytes) -> tuple[str, int]:
    """The hash kept with an offset: of a file's first bytes (up to `landing.FINGERPRINT_BYTES`)."""
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
    opened: OpenFile, start: int, limit: int, consume_partial: bool
) -> tuple[list[tuple[int, str]], int]:
    """Complete lines from byte `start` up to the size looked at, read through the open descriptor."""
    length = max(0, min(limit, opened.st.st_size - start))
    return _lines_of(landing.pread(opened.fd, length, start), start, limit, consume_partial)


# -- one run: what every file gives, and where each file's reading stops ----------------
@dataclass
class Plan:
    """What one run read: its report, the `log_lines` rows, the offsets to keep, the offsets it started from."""

    result: LogIngestResult
    rows: list[dict]
    offsets: list[Offset]
    snapshot: list[tuple] | None = None  # None: no file was open, nothing to write


@dataclass(frozen=True)
class _Start:
    """Where a file's reading starts this run, and the note that explains it."""

    offset: int = 0
    line_no: int = 0
    header: str | None = None
    note: str = ""


def _starts(
    service: str,
    files: list[OpenFile],
    by_identity: dict[tuple[int, int], Offset],
    unseen: list[Offset],
    opened_identities: set[tuple[int, int]],
    result: LogIngestResult,
) -> tuple[dict[tuple[int, int], _Start], set[tuple[int, int]]]:
    """Where each file of one service starts (files left out wait), and the offsets taken over by copies."""
    starts: dict[tuple[int, int], _Start] = {}
    # Offsets whose content is gone from their file (truncated, replaced, or the file is gone):
    # a new file starting with that content is its copy, read on from where reading stopped.
    gone: list[Offset] = []
    live: list[OpenFile] = []
    new: list[OpenFile] = []
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
    opened: list[OpenFile],
    stored: list[Offset],
    cfg: config_module.Config,
    now: dt.datetime,
    clock: float,
    result: LogIngestResult,
) -> Plan:
    """What this run reads: the rows of every file and where each file's reading stops."""
    settings = cfg.logs
    by_identity = {o.identity: o for o in stored}
    opened_identities = {f.identity for f in opened}
    # Files first seen now are looked at again after all the known ones: a copy that copytruncate
    # finished before a truncation we saw is then seen whole.
    for f in opened:
        if f.identity not in by_identity:
            f.look()
    kept: dict[tuple[int, int], Offset] = {}
    consumed: set[tuple[int, int]] = set()
    rows: list[dict] = []
    by_service: dict[str, list[OpenFile]] = {}
    for f in sorted(opened, key=lambda f: (f.st.st_mtime_ns, str(f.path))):
        by_service.setdefault(f.service, []).append(f)
    for service, files in by_service.items():
        header = formats.service_header(service, cfg.service(service).log_pattern)
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

            def first_lines(f: OpenFile = f, start: int = start, lines=lines) -> list[str]:
                first = lines if start == 0 else _read_lines(f, 0, 64 << 10, False)[0]
                return [text for _, text in first]

            warned = len(result.warnings)
            records, fmt = formats.split_file(
                header,
                landing.shown(f.service, f.name),
                numbered,
                begin.header,
                first_lines,
                jsonl=jsonl,
                now=now,
                warnings=result.warnings,
            )
            for problem in result.warnings[warned:]:
                log.warning(problem)  # a pattern that ran out of time: dropped for this run
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
            kept[f.identity] = Offset(
                service,
                str(f.path),
                f.st.st_dev,
                f.st.st_ino,
                fingerprint,
                length,
                end,
                numbered[-1][0] if numbered else line_no,
                formats.header_to_store(fmt, jsonl, len(numbered) + line_no),
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
    return Plan(result, rows, list(kept.values()))


def _copy_of_live(prefix: bytes, original_prefix: bytes) -> bool:
    """Whether a new file's first bytes are those of a file still being written (its copy so far)."""
    length = min(len(prefix), len(original_prefix))
    return length > 0 and prefix[:length] == original_prefix[:length]


def read(
    root: Path,
    stored_offsets: Callable[[], list[tuple]],
    cfg: config_module.Config,
    now: dt.datetime,
    clock: float,
) -> Plan:
    """Open every log file under `root` and read what was appended since the stored offsets.

    `stored_offsets` is called once the files are open and returns the `log_offsets` rows
    (`sreops.logs.store.read_offsets`); every file is closed again before this returns.
    """
    result = LogIngestResult()
    opened, skipped = landing.open_all(root)
    for reason in skipped:
        log.warning("log ingestion: %s", reason)
    result.skipped.extend(skipped)
    try:
        if not opened:
            return Plan(result, [], [])
        snapshot = stored_offsets()
        plan = _plan(opened, [Offset(*row) for row in snapshot], cfg, now, clock, result)
        plan.snapshot = snapshot
        return plan
    finally:
        for f in opened:
            os.close(f.fd)


# -- finding ---------------------------------------------------------------------------------
def discover(root: Path | None = None) -> list[tuple[str, Path]]:
    """(service, path) of every log file under `root/<service>/`, oldest modified first; links skipped."""
    return [(service, path) for service, path, _ in landing.walk(root or paths.landing_logs())[0]]


def pending_signature(root: Path | None = None) -> dict[str, str]:
    """path → `mtime_ns:size` of every log file: what a sensor compares between ticks."""
    return {
        str(path): f"{st.st_mtime_ns}:{st.st_size}"
        for _, path, st in landing.walk(root or paths.landing_logs())[0]
    }
