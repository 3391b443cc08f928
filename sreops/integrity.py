"""Is this file a whole sreops warehouse? The checks, and the errors that say what is wrong and what to do.

A file that cannot be the warehouse fails once, with `WarehouseDamagedError` (empty, truncated,
corrupt, not a DuckDB database, or a DuckDB database sreops did not create) or
`WarehouseTooNewError` (migrated by a newer sreops), each naming the file, so no command shows
DuckDB's raw error. A lock held by another process is never damage (`is_lock_error`).
`sreops.warehouse` runs these checks when it opens a file.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

_LOCK_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "database is locked",
    "unique file handle conflict",
)


class WarehouseUnusableError(RuntimeError):
    """The warehouse file cannot be used as it is; the message names it, says why and what to do."""


class WarehouseDamagedError(WarehouseUnusableError):
    """The file is empty, truncated or corrupt, or is not an sreops warehouse at all."""


class WarehouseTooNewError(WarehouseUnusableError):
    """The warehouse holds schema migrations this sreops does not know: a newer sreops wrote it."""


_HEADER_BYTES = 3 * 4096
_MAGIC = b"DUCK"
_MAGIC_AT = 8
_DAMAGE_MARKERS = ("could not read enough bytes", "corrupt database file", "checksum")


def _todo(path: Path) -> str:
    return (
        f"Restore it from a backup, or move it aside (mv {path} {path}.damaged) and sreops starts a"
        " fresh, empty warehouse (re-ingest or backfill what you need)."
    )


def damage(path: Path, detail: str) -> WarehouseDamagedError:
    """The damage error for `path`: what is wrong (`detail`) and what to do."""
    return WarehouseDamagedError(f"warehouse {path} {detail}. {_todo(path)}")


def unusable(path: Path, exc: Exception) -> WarehouseUnusableError:
    """What is wrong with a file DuckDB would not open (a held lock is handled before this)."""
    said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not path.exists():
        return WarehouseUnusableError(
            f"warehouse {path} cannot be created (DuckDB: {said}). Check that {path.parent} is a"
            " folder this user may write to, or point --warehouse / SREOPS_HOME elsewhere."
        )
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as err:
        return WarehouseUnusableError(
            f"warehouse {path} cannot be opened: {err.strerror or err}. Check that it is a file this"
            " user may read and write, or point --warehouse / SREOPS_HOME elsewhere."
        )
    lowered = said.lower()
    if size == 0:
        return damage(
            path,
            "is empty (0 bytes), so it is not a DuckDB database: it was cut off while being created or copied",
        )
    if head[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] != _MAGIC:
        kind = "text" if _looks_like_text(head) else "data of another kind"
        return damage(
            path,
            f"is not a DuckDB database: it holds {kind} ({size:,} bytes, starting {head[:16]!r}); if"
            " --warehouse or SREOPS_HOME points at the wrong file, fix that; if it is the warehouse, it"
            " was overwritten",
        )
    if size < _HEADER_BYTES or "could not read enough bytes" in lowered:
        return damage(path, f"is truncated: its {size:,} bytes end before the data it lists (DuckDB: {said})")
    if ".wal" in lowered or "write-ahead" in lowered or "replaying wal" in lowered:
        return damage(
            path,
            f"cannot replay its write-ahead log {path}.wal (DuckDB: {said}); moving the .wal file aside"
            " opens the warehouse as of its last checkpoint, losing the writes after it",
        )
    if any(marker in lowered for marker in _DAMAGE_MARKERS):
        return damage(path, f"is corrupt (DuckDB: {said})")
    if "version" in lowered:
        return WarehouseUnusableError(
            f"warehouse {path} uses a DuckDB storage format this sreops (duckdb {duckdb.__version__})"
            f" cannot read (DuckDB: {said}). Upgrade sreops (and its duckdb) to open it."
        )
    return WarehouseUnusableError(
        f"warehouse {path} cannot be opened (DuckDB: {said}). Check that no other program holds it"
        " with other settings; `sreops doctor` checks the file in full."
    )


def _looks_like_text(head: bytes) -> bool:
    for cut in range(4):  # the 64 bytes read may end inside a multi-byte character
        try:
            text = head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)
    return False


def damaged_while_reading(path: Path, exc: Exception) -> WarehouseDamagedError | None:
    """The damage a DuckDB error met while reading shows, if it shows any."""
    said = str(exc).splitlines()[0] if str(exc) else ""
    lowered = said.lower()
    if is_lock_error(exc) or not any(marker in lowered for marker in _DAMAGE_MARKERS):
        return None
    what = "is truncated" if "could not read enough bytes" in lowered else "is corrupt"
    return damage(path, f"{what}: reading it failed (DuckDB: {said})")


def check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """WarehouseDamagedError if the file is shorter than the blocks its header lists (a cut copy).

    A short file is only refused when its tables do not read to their end (`_reads_whole`).
    """
    row = con.execute(
        "SELECT block_size, total_blocks FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchone()
    if row is None or row[0] is None or row[1] is None:
        return
    expected = _HEADER_BYTES + int(row[0]) * int(row[1])
    try:
        size = path.stat().st_size
    except OSError:
        return
    if size < expected and not _reads_whole(con):
        raise damage(
            path,
            f"is truncated: it has {size:,} bytes but its header lists {int(row[1]):,} blocks"
            f" ({expected:,} bytes); the end of the file is missing",
        )


def _reads_whole(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether every column of every table reads to its end.

    A file shorter than its header says is not always cut: DuckDB may list blocks it allocated
    but had not yet written when its process was killed, and a whole warehouse reads fine then.
    """
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database() AND table_schema = 'main' AND table_type = 'BASE TABLE'"
        ).fetchall()
    ]
    try:
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            con.execute(f"SELECT count(*), max(hash(COLUMNS(*))) FROM {quoted}").fetchall()
    except duckdb.Error:
        return False
    return True


def path_of(con: duckdb.DuckDBPyConnection) -> str:
    """The file (or DuckLake catalog, its password hidden) the connection has open, for messages."""
    row = con.execute(
        "SELECT path, type FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    if row and row[1] == "ducklake":
        return "ducklake:" + mask_secrets(str(row[0]))
    return str(row[0]) if row and row[0] else "(in memory)"


_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_secrets(connection: str) -> str:
    """A libpq connection string with its password shown as `***`."""
    return _PASSWORD.sub(r"\1***", connection)


def refuse_newer(where: str, done: set[int], known: set[int]) -> None:
    """WarehouseTooNewError if the warehouse records migrations this code does not have."""
    unknown = sorted(done - known)
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + ("…" if len(unknown) > 5 else "")
        raise WarehouseTooNewError(
            f"warehouse {where} has schema version {max(done)}, newer than this sreops (whose latest"
            f" is {max(known, default=0)}; unknown here: {shown}): a newer sreops migrated it. Upgrade"
            " sreops to use it; an older one would misread its tables."
        )


def is_lock_error(exc: Exception) -> bool:
    """Whether a DuckDB error says another process holds the file (to retry, never damage)."""
    return any(marker in str(exc).lower() for marker in _LOCK_MARKERS)
