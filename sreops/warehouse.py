"""The only module that opens DuckDB: connections, schema migrations, lock retries, transactions.

DuckDB lets one process hold a database file at a time. Every caller therefore opens a
short-lived connection through :func:`connect` (which retries a held lock with backoff and
bounded patience), does its work, and closes it. Multi-statement writes go through
:func:`transaction`, so a failure leaves the warehouse as it was.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from sreops import paths
from sreops.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

DEFAULT_LOCK_PATIENCE_S = 300.0
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


def resolve(path: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file to use: `path` if given, else `$SREOPS_HOME/warehouse.duckdb`."""
    return Path(path).resolve() if path else paths.warehouse_path()


def _is_lock_error(exc: Exception) -> bool:
    return any(marker in str(exc).lower() for marker in _LOCK_MARKERS)


def _lock_patience() -> float:
    return float(os.environ.get("SREOPS_LOCK_PATIENCE_S", DEFAULT_LOCK_PATIENCE_S))


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
        except (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException) as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    raise WarehouseLockedError(
                        f"warehouse {path} stayed locked by another process for {patience_s:.0f} s "
                        f"({attempts} attempts); is a long run holding it? Raise "
                        "SREOPS_LOCK_PATIENCE_S or wait for that run to finish."
                    ) from exc
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 1.0)
    if attempts > 1:
        log.debug("opened %s after %d attempts", path, attempts)
    tmp = path.parent / "tmp"
    con.execute("SET temp_directory = ?", [str(tmp)])
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    memory = os.environ.get("SREOPS_DUCKDB_MEMORY")
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
                migrate_connection(con)
                _migrated.add(target)
        yield con
    finally:
        con.close()


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
            con.execute("ROLLBACK")
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
    """Apply, in version order, each migration this warehouse lacks; one transaction each."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = applied_versions(con)
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


def migrate(path: str | os.PathLike[str] | None = None) -> list[int]:
    """Bring the warehouse at `path` up to date; returns the versions applied now."""
    target = resolve(path)
    con = _open(target, _lock_patience())
    try:
        applied = migrate_connection(con)
    finally:
        con.close()
    _migrated.add(target)
    return applied


def table_count(table: str, path: str | os.PathLike[str] | None = None) -> int:
    """Row count of one warehouse table (`table` must be a known table name)."""
    with connect(path) as con:
        known = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if table not in known:
            raise KeyError(f"no table {table!r} in the warehouse; known tables: {sorted(known)}")
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
