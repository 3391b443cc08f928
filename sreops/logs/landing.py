"""The landing folders of log files, listed and opened without following links.

Nothing in `$SREOPS_HOME/landing/logs/<service>/` is reached through a symbolic link (the
services may run as root and the files may be theirs): service folders and files are opened
relative to their parent with O_NOFOLLOW, links are skipped with a logged reason that names the
link, never its target's contents, and the kernel is asked that each descriptor lies under the
landing root. A service folder whose name cannot be a service name (`sreops.names.check_name`)
is skipped, with its reason logged.

Each file is opened once (`OpenFile`) and everything about it comes from that descriptor: its
identity and size (fstat), its first bytes and its lines (pread). `sreops.ingest.logfiles`
decides what to read from each.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from sreops import names

FINGERPRINT_BYTES = 1024
LISTING_PASSES = 2
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO planted in a landing folder must not block the open.
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_LOG_NAME = re.compile(r".+\.(log|jsonl|ndjson)(?:[.-][\w-]+)?")
_COMPRESSED = (".gz", ".bz2", ".xz", ".zip", ".zst")


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


def shown(service: str, name: str | None = None) -> str:
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
        return f"{what} {shown(name)} is not valid UTF-8"
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
                    f"service folder {shown(name)} is a symbolic link; links are not followed "
                    "(make it a real folder holding the log files)"
                )
            elif not entry.is_dir(follow_symlinks=False):
                continue
            elif problem := _name_problem(name, "service"):
                skipped.append(f"service folder {shown(name)} skipped, nothing read from it: {problem}")
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
                skipped.append(f"{shown(service, name)} is a symbolic link; links are not followed")
            elif not entry.is_file(follow_symlinks=False):
                continue
            elif problem := _name_problem(name, "log file name"):
                skipped.append(f"{shown(service, name)} skipped: {problem}")
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
        return None, _open_error(exc, f"service folder {shown(name)}")
    if _outside(fd, real_root):
        os.close(fd)
        return None, f"service folder {shown(name)} resolves outside the landing folder; skipped"
    return fd, None


def walk(root: Path) -> tuple[list[tuple[str, Path, os.stat_result]], list[str]]:
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
class OpenFile:
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
        self.prefix = pread(self.fd, min(self.st.st_size, FINGERPRINT_BYTES), 0)

    def unchanged(self, end: int) -> bool:
        """Whether the file still holds what was looked at: same first bytes, at least `end` bytes."""
        return os.fstat(self.fd).st_size >= end and pread(self.fd, len(self.prefix), 0) == self.prefix


def pread(fd: int, length: int, offset: int) -> bytes:
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
) -> tuple[OpenFile | None, str | None]:
    """`name` in the service folder opened without following a link, or why it was not."""
    what = shown(service, name)
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
        opened = OpenFile(service, name, root / service / name, fd, st, b"")
        opened.look()
        return opened, None
    except BaseException:
        os.close(fd)
        raise


def _open_service(
    service: str, root_fd: int, root: Path, real_root: str, seen: set[tuple[int, int]], skipped: list[str]
) -> list[OpenFile]:
    """Every log file of one service, each opened once (one descriptor per identity).

    The folder is listed twice: a copy made by copytruncate rotation just before its original was
    truncated is then always among the files, so the truncation is never seen without the copy.
    """
    dir_fd, problem = _open_dir(service, root_fd, real_root)
    if dir_fd is None:
        skipped.extend([problem] if problem else [])
        return []
    opened: list[OpenFile] = []
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


def open_all(root: Path) -> tuple[list[OpenFile], list[str]]:
    """Every log file under `root`, opened once, and the entries skipped and why."""
    real_root = os.path.realpath(root)
    root_fd = os.open(root, _OPEN_DIR & ~os.O_NOFOLLOW)  # the root itself is the operator's choice
    opened: list[OpenFile] = []
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
    return opened, skipped
