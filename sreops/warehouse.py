"""The only module that opens DuckDB: connections, lock retries, transactions, migration on first open.

DuckDB lets one process hold a database file at a time. Every caller therefore opens a
short-lived connection through :func:`connect` (which retries a held lock with backoff and
bounded patience), does its work, and closes it. Multi-statement writes go through
:func:`transaction`, so a failure leaves the warehouse as it was.

The first connection of a process to a file checks that it is whole (`sreops.integrity`, whose
errors name the file, what is wrong and what to do) and applies the migrations it lacks
(`sreops.migrations.runner`). A lock held by another process is never damage: it is retried,
then `WarehouseLockedError`. :func:`verify` is the full check `sreops doctor` runs.
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
from sreops.integrity import (
    check_complete,
    damage,
    damaged_while_reading,
    is_lock_error,
    refuse_newer,
    unusable,
)
from sreops.migrations import MIGRATIONS
from sreops.migrations.runner import migrate_connection, recorded_versions

log = logging.getLogger(__name__)

_migrated: set[Path] = set()
_migrate_guard = threading.Lock()
# DuckDB shares one database instance per file inside a process; two threads attaching the
# same file at the same moment (sensors run in threads) conflict, so attaching is serialized.
_attach_guard = threading.Lock()


class WarehouseLockedError(RuntimeError):
    """Another process held the warehouse for longer than we were willing to wait."""


def resolve(path: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file to use: `path` if given, else `$SREOPS_HOME/warehouse.duckdb`."""
    return Path(path).resolve() if path else paths.warehouse_path()


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
            if not is_lock_error(exc):
                raise unusable(path, exc) from exc
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
        damaged = damaged_while_reading(target, exc)
        if damaged is not None:
            raise damaged from exc
        raise
    finally:
        con.close()


def _first_open(con: duckdb.DuckDBPyConnection, target: Path) -> list[int]:
    """What the first connection of a process checks: the file is whole; then it migrates."""
    try:
        check_complete(con, target)
        return migrate_connection(con)
    except duckdb.Error as exc:
        damaged = damaged_while_reading(target, exc)
        if damaged is not None:
            raise damaged from exc
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
        check_complete(con, target)
        done = recorded_versions(con) or set()
        known = {m.version for m in MIGRATIONS}
        refuse_newer(str(target), done, known)
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
                damaged = damaged_while_reading(target, exc)
                raise (
                    damaged or damage(target, f"has a table {table} that cannot be read (DuckDB: {exc})")
                ) from exc
        return Verified(max(done, default=0), max(known), len(tables), target.stat().st_size)
    except duckdb.Error as exc:
        damaged = damaged_while_reading(target, exc)
        if damaged is not None:
            raise damaged from exc
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
