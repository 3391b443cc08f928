"""The only module that opens DuckDB: connections, lock retries, transactions, migration on first open.

Two backends hold the same tables (`docs/warehouse.md`). The default is one DuckDB file, which
one process at a time may hold: every caller opens a short-lived connection through
:func:`connect` (which retries a held lock with backoff and bounded patience), does its work,
and closes it. A fleet uses DuckLake (`SREOPS_WAREHOUSE=ducklake:postgres:…`): the catalog in
PostgreSQL, the data as Parquet files under a shared path, and any number of processes on any
number of hosts committing at once, optimistically: a commit that conflicts with another raises
`WarehouseConflictError`, and :func:`transact` runs a whole unit of work again until it commits.
Multi-statement writes go through :func:`transaction`, so a failure leaves the warehouse as it was.

The first connection of a process checks that a file is whole (`sreops.integrity`, whose errors
name the file, what is wrong and what to do) and applies the migrations it lacks
(`sreops.migrations.runner`). A lock held by another process is never damage: it is retried,
then `WarehouseLockedError`. :func:`verify` is the full check `sreops doctor` runs.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from sreops import ducklake, paths
from sreops.config import environment
from sreops.ducklake import Lake, WarehouseConflictError, is_conflict
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
T = TypeVar("T")
Target = Path | Lake

_migrated: set[Target] = set()
_migrate_guard = threading.Lock()
# DuckDB shares one database instance per file inside a process; two threads attaching the
# same file at the same moment (sensors run in threads) conflict, so attaching is serialized.
_attach_guard = threading.Lock()
# What this process waited for: lock retries (DuckDB file) and conflict retries (DuckLake).
waits: Counter[str] = Counter()
DEFAULT_CONFLICT_ATTEMPTS = 30


class WarehouseLockedError(RuntimeError):
    """Another process held the warehouse for longer than we were willing to wait."""


def location(path: str | os.PathLike[str] | None = None) -> Target:
    """The warehouse to use: `path` if given (a file, or a `ducklake:` location), else `$SREOPS_WAREHOUSE`.

    Unset, that is the DuckDB file `$SREOPS_HOME/warehouse.duckdb`. While the setting names a
    lake, the default file path stands for it, so code handed `paths.warehouse_path()` uses it.
    """
    configured = environment.warehouse_setting()
    if path is not None and str(path):
        if str(path).startswith(paths.LAKE_PREFIX):
            return ducklake.parse(str(path), environment.warehouse_data_path(), paths.lake_data_path())
        target = Path(path).resolve()
        if not (configured and configured.startswith(paths.LAKE_PREFIX) and target == paths.warehouse_path()):
            return target
    if configured and configured.startswith(paths.LAKE_PREFIX):
        return ducklake.parse(configured, environment.warehouse_data_path(), paths.lake_data_path())
    return paths.warehouse_path()


def resolve(path: str | os.PathLike[str] | None = None) -> Path:
    """The warehouse file to use: `path` if given, else `$SREOPS_HOME/warehouse.duckdb`.

    On DuckLake this is the host's own file beside which local locks live (see `lock_file`).
    """
    target = location(path)
    return target if isinstance(target, Path) else paths.warehouse_path()


def lock_file(path: str | os.PathLike[str] | None, purpose: str) -> Path:
    """A host-local lock file for `purpose` (e.g. `delivery`), beside the warehouse file or under `$SREOPS_HOME`."""
    anchor = resolve(path)
    return anchor.with_name(f"{anchor.name}.{purpose}.lock")


def exists(path: str | os.PathLike[str] | None = None) -> bool:
    """Whether the warehouse exists yet; a lake always does (its catalog is created on first use)."""
    target = location(path)
    return target.exists() if isinstance(target, Path) else True


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con` works on a DuckLake warehouse (else on a DuckDB file)."""
    return ducklake.is_lake(con)


def next_ids(con: duckdb.DuckDBPyConnection, sequence: str, count: int = 1) -> list[int]:
    """`count` new ids from `sequence`, increasing; unique across every process that writes the warehouse."""
    return ducklake.next_ids(con, sequence, count)


def release(path: str | os.PathLike[str] | None = None) -> None:
    """Let go of what this process keeps open for a lake (its PostgreSQL connections); a file keeps nothing."""
    target = location(path)
    if isinstance(target, Lake):
        ducklake.close(target)
        _migrated.discard(target)


def _lock_patience() -> float:
    return environment.lock_patience_s()


def _open(target: Target, patience_s: float) -> duckdb.DuckDBPyConnection:
    """A connection to `target`: a cursor on this process's lake instance, or the file (lock retried)."""
    if isinstance(target, Lake):
        return ducklake.open_cursor(target, _settings)
    path = target
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
            waits["lock"] += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.6, 1.0)
    if attempts > 1:
        log.debug("opened %s after %d attempts", path, attempts)
    _settings(con, path.parent / "tmp")
    return con


def _settings(con: duckdb.DuckDBPyConnection, tmp: Path | None = None) -> None:
    if tmp is not None:
        con.execute("SET temp_directory = ?", [str(tmp)])
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET enable_progress_bar = false")
    memory = environment.duckdb_memory_limit()
    if memory:
        con.execute("SET memory_limit = ?", [memory])
    threads = environment.duckdb_threads()
    if threads:
        con.execute("SET threads = ?", [threads])
    con.execute("SET TimeZone = 'UTC'")


def _damaged(target: Target, exc: Exception) -> Exception | None:
    return damaged_while_reading(target, exc) if isinstance(target, Path) else None


@contextmanager
def connect(
    path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection to a migrated warehouse; closed (and the lock released) on exit."""
    target = location(path)
    con = _open(target, _lock_patience() if patience_s is None else patience_s)
    try:
        if target not in _migrated:
            with _migrate_guard:
                if target not in _migrated:  # another thread may have done it meanwhile
                    _first_open(con, target)
                    _migrated.add(target)
        yield con
    except duckdb.Error as exc:
        damaged = _damaged(target, exc)
        if damaged is not None:
            raise damaged from exc
        raise
    finally:
        con.close()


def _first_open(con: duckdb.DuckDBPyConnection, target: Target) -> list[int]:
    """What the first connection of a process checks: a file is whole; then it migrates."""
    try:
        if isinstance(target, Path):
            check_complete(con, target)
            return migrate_connection(con)
        return ducklake.migrate_retrying(con, migrate_connection)
    except duckdb.Error as exc:
        damaged = _damaged(target, exc)
        if damaged is not None:
            raise damaged from exc
        raise


@contextmanager
def transaction(
    path: str | os.PathLike[str] | None = None, *, patience_s: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection inside BEGIN … COMMIT; any exception rolls every statement back.

    On DuckLake a commit that conflicts with another process's raises `WarehouseConflictError`
    (nothing was written); `transact` retries such work.
    """
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
        try:
            con.execute("COMMIT")
        except duckdb.Error as exc:
            if is_conflict(exc):
                raise WarehouseConflictError(
                    f"warehouse {location(path)}: the transaction conflicted with another writer's"
                    f" and was rolled back (DuckLake: {str(exc).splitlines()[-1]}); run it again"
                ) from exc
            raise


def transact(
    work: Callable[[duckdb.DuckDBPyConnection], T],
    path: str | os.PathLike[str] | None = None,
    *,
    patience_s: float | None = None,
    attempts: int = DEFAULT_CONFLICT_ATTEMPTS,
) -> T:
    """Run `work(con)` in one transaction, again (with jittered backoff) while it conflicts with another writer's.

    `work` must do all its reads and writes through `con`, so that running it again is the same
    as running it once after the other writer's commit. After `attempts` conflicts the last
    `WarehouseConflictError` is raised, saying how often it was tried.
    """
    delay = 0.01
    for attempt in range(1, attempts + 1):
        try:
            with transaction(path, patience_s=patience_s) as con:
                return work(con)
        except WarehouseConflictError as exc:
            if attempt == attempts:
                raise WarehouseConflictError(f"{exc} (gave up after {attempts} attempts)") from exc
            waits["conflict"] += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable")


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to this warehouse (0 for an empty one)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database()"
        " AND table_name = 'schema_migrations'"
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
    target = location(path)
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
    target = location(path)
    con = _open(target, _lock_patience() if patience_s is None else patience_s)
    try:
        if isinstance(target, Path):
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
                damaged = _damaged(target, exc)
                if damaged is None and isinstance(target, Lake):
                    raise ducklake.unreadable(target, table, exc) from exc
                raise (
                    damaged or damage(target, f"has a table {table} that cannot be read (DuckDB: {exc})")
                ) from exc
        size = target.stat().st_size if isinstance(target, Path) else ducklake.data_bytes(con)
        return Verified(max(done, default=0), max(known), len(tables), size)
    except duckdb.Error as exc:
        damaged = _damaged(target, exc)
        if damaged is not None:
            raise damaged from exc
        raise
    finally:
        con.close()


def table_count(table: str, path: str | os.PathLike[str] | None = None) -> int:
    """Row count of one warehouse table (`table` must be a known table name)."""
    with connect(path) as con:
        known = {
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()"
            ).fetchall()
        }
        if table not in known:
            raise KeyError(f"no table {table!r} in the warehouse; known tables: {sorted(known)}")
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
