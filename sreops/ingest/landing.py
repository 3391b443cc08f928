"""The metrics landing folder: which files are ready, their content hash, and where they go after.

An ingested or duplicate file is archived under `archive/<day>/`, a malformed one quarantined
beside a `.reason.txt`. Concurrent ingests of one folder are expected: every step here
tolerates a file another ingest took first, and never overwrites a name another one holds.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from sreops import paths
from sreops.ingest.formats import file_format

log = logging.getLogger(__name__)

_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


def is_candidate(path: Path) -> bool:
    """A finished data file: not hidden, not a partial download, a supported format."""
    name = path.name
    if name.startswith((".", "_")) or name.lower().endswith(_IN_PROGRESS_SUFFIXES):
        return False
    return path.is_file() and file_format(path) is not None


def discover(folder: Path | None = None) -> list[Path]:
    """Candidate files directly in the landing folder (subfolders are not scanned), oldest first."""
    folder = folder or paths.landing_metrics()
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except FileNotFoundError:
        return []
    found = []
    for path in entries:
        if not is_candidate(path):
            continue
        try:
            found.append((path.stat().st_mtime_ns, path.name, path))
        except FileNotFoundError:  # taken by a concurrent ingest since the listing
            continue
    return [path for _, _, path in sorted(found)]


def sha256_of(path: Path) -> str:
    """Content hash, streamed in 4 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(4 << 20):
            digest.update(block)
    return digest.hexdigest()


class BackgroundHash:
    """`sha256_of(path)` computed in a thread, so hashing a large file overlaps its load.

    `result()` waits for it and re-raises what the hashing raised (FileNotFoundError when the
    file went away before it was read).
    """

    def __init__(self, path: Path):
        self._digest: str | None = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, args=(path,), name="sreops-hash", daemon=True)
        self._thread.start()

    def _run(self, path: Path) -> None:
        try:
            self._digest = sha256_of(path)
        except Exception as exc:  # handed to whoever asks for the result
            self._error = exc

    def result(self) -> str:
        """The hex digest, once the whole file has been read."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._digest is not None
        return self._digest


def _copy_to_free_name(folder: Path, name: str, source: Path) -> Path:
    """A second name for `source` in `folder`, one no other file (or concurrent ingest) holds."""
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = Path(name).stem, "".join(Path(name).suffixes[-1:])
    n = 0
    while True:
        target = folder / (name if n == 0 else f"{stem}.{n}{suffix}")
        n += 1
        try:
            # a hard link is made only if the name is free: two ingests never overwrite each other
            os.link(source, target)
            return target
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise
        except OSError:  # another file system, or one without hard links
            try:
                with source.open("rb") as src, target.open("xb") as dst:
                    shutil.copyfileobj(src, dst)
            except FileExistsError:
                continue
            return target


def _release(source: Path, target: Path) -> None:
    """Drop the landing name once the file has its new one."""
    try:
        source.unlink()
    except FileNotFoundError:
        # a concurrent ingest took it first: exactly one unlink succeeds, so one copy stays
        target.unlink()
        raise


def move(path: Path, status: str, error: str | None) -> Path | None:
    """Archive an ingested or duplicate file; quarantine a malformed one beside its reason.

    Returns where the file went, or None when another ingest moved it first. The landing name
    goes last, so a process killed half-way leaves the file in landing, where the next run
    takes it again (a duplicate by its hash, or quarantined anew), never lost.
    """
    try:
        if status == "quarantined":
            target = _copy_to_free_name(paths.quarantine_metrics(), path.name, path)
            target.with_name(target.name + ".reason.txt").write_text((error or "") + "\n")
        else:
            day = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
            target = _copy_to_free_name(paths.archive_metrics() / day, path.name, path)
        _release(path, target)
    except FileNotFoundError:
        # another ingest moved it first: its rows are in once (the content hash saw to that)
        log.info("%s: already moved by another ingest", path)
        return None
    return target


def expand(targets: Sequence[str | Path]) -> list[Path]:
    """Files named directly plus the candidate files inside named folders."""
    found: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found.extend(sorted(p for p in target.rglob("*") if is_candidate(p)))
        elif target.exists():
            found.append(target)
        else:
            raise FileNotFoundError(f"{target}: no such file or folder")
    return found
