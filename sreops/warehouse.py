"""The only module that opens DuckDB: connections, schema migrations, lock retries, transactions.

DuckDB lets one process hold a database file at a time. Every caller therefore opens a
short-lived connection through :func:`connect` (which retries a held lock with backoff and
bounded patience), does its work, and closes it. Multi-statement writes go through
:func:`transaction`, so a failure leaves the warehouse as it was.

A file that cannot be the warehouse fails here, once, with `WarehouseDamagedError` (empty,
truncated, corrupt, not a DuckDB database, or a DuckDB database sreops did not create) or
`WarehouseTooNewError` (migrated by a newer sreops), each naming the file, what is wrong and
what to do, so no command shows DuckDB's raw error. A lock held by another process is never
damage: it is retried, then `WarehouseLockedError`. :func:`verify` is the full check
`sreops doctor` runs.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from sreops import paths
from sreops.config import environment
from sreops.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

_LOCK_MARKERS = (
    "could not set lock",
    "conflicting lock",
    "database is locked",
    "unique file handle conflict",
)
_migrated: set[Path] = set()
_migrate_guard = threading.Lock()
# DuckDB shares one database instance per file inside a process; two threads attaching the
# same file at the same moment (sensors run in threads) conflict, so attaching is serialized.
_attach_guard = threading.Lock()


class WarehouseLockedError(RuntimeError):
    """Another process held the warehouse for longer than we were willing to wait."""


class MigrationError(RuntimeError):
    """A schema migration failed; the warehouse was left at its previous version."""


class WarehouseUnusableError(RuntimeError):
    """The warehouse file cannot be used as it is; the message names it, says why and what to do."""


class WarehouseDamagedError(WarehouseUnusableError):
    """The file is empty, truncated or corrupt, or is not an sreops warehouse at all."""


class WarehouseTooNewError(WarehouseUnusableError):
    """The warehouse holds schema migrations this sreops does not know: a newer sreops wrote it."""


# DuckDB's file starts with three 4 KiB headers (main, then two alternating database headers),
# followed by `total_blocks` blocks of `block_size`; the magic sits at bytes 8-11 of the first.
_HEADER_BYTES = 3 * 4096
_MAGIC = b"DUCK"
_MAGIC_AT = 8
_DAMAGE_MARKERS = ("could not read enough bytes", "corrupt database file", "checksum")


def _todo(path: Path) -> str:
    return (
        f"Restore it from a backup, or move it aside (mv {path} {path}.damaged) and sreops starts a"
        " fresh, empty warehouse (re-ingest or backfill what you need)."
    )


def _damage(path: Path, detail: str) -> WarehouseDamagedError:
    return WarehouseDamagedError(f"warehouse {path} {detail}. {_todo(path)}")


def _unusable(path: Path, exc: Exception) -> WarehouseUnusableError:
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
        return _damage(
            path,
            "is empty (0 bytes), so it is not a DuckDB database: it was cut off while being created or copied",
        )
    if head[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] != _MAGIC:
        kind = "text" if _looks_like_text(head) else "data of another kind"
        return _damage(
            path,
            f"is not a DuckDB database: it holds {kind} ({size:,} bytes, starting {head[:16]!r}); if"
            " --warehouse or SREOPS_HOME points at the wrong file, fix that; if it is the warehouse, it"
            " was overwritten",
        )
    if size < _HEADER_BYTES or "could not read enough bytes" in lowered:
        return _damage(
            path, f"is truncated: its {size:,} bytes end before the data it lists (DuckDB: {said})"
        )
    if ".wal" in lowered or "write-ahead" in lowered or "replaying wal" in lowered:
        return _damage(
            path,
            f"cannot replay its write-ahead log {path}.wal (DuckDB: {said}); moving the .wal file aside"
            " opens the warehouse as of its last checkpoint, losing the writes after it",
        )
    if any(marker in lowered for marker in _DAMAGE_MARKERS):
        return _damage(path, f"is corrupt (DuckDB: {said})")
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


def _damaged_while_reading(path: Path, exc: Exception) -> WarehouseDamagedError | None:
    """The damage a DuckDB error met while reading shows, if it shows any."""
    said = str(exc).splitlines()[0] if str(exc) else ""
    lowered = said.lower()
    if _is_lock_error(exc) or not any(marker in lowered for marker in _DAMAGE_MARKERS):
        return None
    what = "is truncated" if "could not read enough bytes" in lowered else "is corrupt"
    return _damage(path, f"{what}: reading it failed (DuckDB: {said})")


def _check_complete(con: duckdb.DuckDBPyConnection, path: Path) -> None:
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
        raise _damage(
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


def resolve(path: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file to use: `path` if given, else `$SREOPS_HOME/warehouse.duckdb`."""
    return Path(path).resolve() if path else paths.warehouse_path()


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc).lower() for marker in _LOCK_MARKERS)


def _lock_patience() -> float:
    return environment.lock_patience_s()


def _open(path: Path, patience_s: float) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying a lock held by another process with jittered backoff."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + patience_s
    delay = 0.02
    attempts = 0
    while True:
        attempts += 1
        try:
            with _attach_guard:
                con = duckdb.connect(str(path))
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise _unusable(path, exc) from exc
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(
                    f"warehouse {path} stayed locked by another process for {patience_s:.0f} s "
                    f"({attempts} attempts); is a long run holding it? Raise "
                    "SREOPS_LOCK_PATIENCE_S or wait for that run to finish."
                ) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 1.0)
    if attempts > 1:
        log.debug("opened %s after %d attempts", path, attempts)
    tmp = path.parent / "tmp"
    con.execute("SET temp_directory = ?", [str(tmp)])
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    memory = environment.duckdb_memory_limit()
    if memory:
        con.execute("SET memory_limit = ?", [memory])
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def connect(
    path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to a migrated warehouse; closed (and the lock released) on exit."""
    target = resolve(path)
    con = _open(target, _lock_patience() if patience_s is None else patience_s)
    try:
        if target not in _migrated:
            with _migrate_guard:
                if target not in _migrated:  # another thread may have done it meanwhile
                    _first_open(con, target)
                    _migrated.add(target)
        yield con
    except duckdb.Error as exc:
        damage = _damaged_while_reading(target, exc)
        if damage is not None:
            raise damage from exc
        raise
    finally:
        con.close()


def _first_open(con: duckdb.DuckDBPyConnection, target: Path) -> list[int]:
    """What the first connection of a process checks: the file is whole; then it migrates."""
    try:
        _check_complete(con, target)
        return migrate_connection(con)
    except duckdb.Error as exc:
        damage = _damaged_while_reading(target, exc)
        if damage is not None:
            raise damage from exc
        raise


@contextmanager
def transaction(
    path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection inside BEGIN … COMMIT; any exception rolls every statement back."""
    with connect(path, patience_s=patience_s) as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:  # the connection is gone with the error; nothing was committed
                log.debug("rollback after an error failed too", exc_info=True)
            raise
        con.execute("COMMIT")


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this warehouse (0 for an empty file)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchone()[0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def applied_versions(con: duckdb.DuckDBPyConnection) -> set[int]:
    """Every migration version recorded in this warehouse."""
    if schema_version(con) == 0:
        return set()
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate_connection(
    con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply, in version order, each migration this warehouse lacks; one transaction each.

    Refuses a database sreops did not create (tables but no schema_migrations) and one that a
    newer sreops migrated (versions this code does not know), before changing anything.
    """
    done = _recorded_versions(con)
    if done is None:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
        )
        done = set()
    _refuse_newer(_path_of(con), done, {m.version for m in migrations})
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, now()::TIMESTAMP)",
                [migration.version, migration.name],
            )
        except Exception as exc:
            con.execute("ROLLBACK")
            raise MigrationError(f"migration {migration.version} ({migration.name}) failed: {exc}") from exc
        con.execute("COMMIT")
        applied.append(migration.version)
        log.info("warehouse migrated to %d (%s)", migration.version, migration.name)
    return applied


def _path_of(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return str(row[0]) if row and row[0] else "(in memory)"


def _refuse_newer(where: str, done: set[int], known: set[int]) -> None:
    """WarehouseTooNewError if the warehouse records migrations this code does not have."""
    unknown = sorted(done - known)
    if unknown:
        shown = ", ".join(map(str, unknown[:5])) + ("…" if len(unknown) > 5 else "")
        raise WarehouseTooNewError(
            f"warehouse {where} has schema version {max(done)}, newer than this sreops (whose latest"
            f" is {max(known, default=0)}; unknown here: {shown}): a newer sreops migrated it. Upgrade"
            " sreops to use it; an older one would misread its tables."
        )


def _recorded_versions(con: duckdb.DuckDBPyConnection) -> set[int] | None:
    """The versions in schema_migrations; None for a database without any table yet."""
    tables = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_catalog = current_database() AND table_schema = 'main'"
        ).fetchall()
    ]
    if "schema_migrations" not in tables:
        if tables:
            shown = ", ".join(sorted(tables)[:5]) + ("…" if len(tables) > 5 else "")
            raise WarehouseDamagedError(
                f"warehouse {_path_of(con)} is a DuckDB database that sreops did not create: it has"
                f" {len(tables)} table(s) ({shown}) and no schema_migrations. Point --warehouse or"
                " SREOPS_HOME at the sreops warehouse; sreops will not write into another database."
            )
        return None
    try:
        return {int(row[0]) for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    except (duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException) as exc:
        raise WarehouseDamagedError(
            f"warehouse {_path_of(con)} has a schema_migrations table sreops did not write ({exc});"
            " point --warehouse or SREOPS_HOME at the sreops warehouse"
        ) from exc


def migrate(path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None) -> list[int]:
    """Bring the warehouse at `path` up to date; returns the versions applied now."""
    target = resolve(path)
    con = _open(target, _lock_patience() if patience_s is None else patience_s)
    try:
        with _migrate_guard:
            applied = _first_open(con, target)
            _migrated.add(target)
    finally:
        con.close()
    return applied


@dataclass(frozen=True)
class Verified:
    """What :func:`verify` found: a warehouse that opens, is whole and whose tables read."""

    schema_version: int
    latest_known: int
    tables: int
    size_bytes: int


def verify(path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None) -> Verified:
    """Open the warehouse without changing it and check it: whole, schema not newer, each table reads.

    Raises WarehouseDamagedError / WarehouseTooNewError / WarehouseUnusableError (or
    WarehouseLockedError) with what is wrong and what to do.
    """
    target = resolve(path)
    con = _open(target, _lock_patience() if patience_s is None else patience_s)
    try:
        _check_complete(con, target)
        done = _recorded_versions(con) or set()
        known = {m.version for m in MIGRATIONS}
        _refuse_newer(str(target), done, known)
        tables = [
            row[0]
            for row in con.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_catalog = current_database() AND table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            try:
                con.execute(f"SELECT * FROM {quoted} LIMIT 1").fetchall()
            except duckdb.Error as exc:
                damage = _damaged_while_reading(target, exc)
                raise (
                    damage or _damage(target, f"has a table {table} that cannot be read (DuckDB: {exc})")
                ) from exc
        return Verified(max(done, default=0), max(known), len(tables), target.stat().st_size)
    except duckdb.Error as exc:
        damage = _damaged_while_reading(target, exc)
        if damage is not None:
            raise damage from exc
        raise
    finally:
        con.close()


def table_count(table: str, path: str | os.PathLike[str] | None = None) -> int:
    """Row count of one warehouse table (`table` must be a known table name)."""
    with connect(path) as con:
        known = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if table not in known:
            raise KeyError(f"no table {table!r} in the warehouse; known tables: {sorted(known)}")
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
