"""The DuckLake backend of the warehouse: opening a lake, ids, conflicts. Only `sreops.warehouse` calls it.

A lake is a catalog in PostgreSQL and Parquet files under a data path that every writer can
reach. Each process keeps one in-memory DuckDB instance per lake, with the `postgres` and
`ducklake` extensions loaded from the pinned pip packages (never downloaded) and the lake
attached and made the default database, so every caller's SQL runs unchanged on the same table
names; a connection is a cursor on that instance. DuckLake has no sequences, so ids come from
PostgreSQL sequences in the catalog's database (`next_ids`): unique and increasing across every
process and host, like DuckDB's own.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from sreops.integrity import WarehouseUnusableError, mask_secrets

PREFIX = "ducklake:"
CATALOG_PREFIX = "ducklake:postgres:"
ALIAS = "sreops_lake"  # the attached lake, the connections' default database
IDS = "sreops_ids"  # the catalog's PostgreSQL database, attached for its sequences
EXTENSIONS = (("duckdb_extension_postgres", "postgres"), ("duckdb_extension_ducklake", "ducklake"))
_SEQUENCE = re.compile(r"[a-z][a-z0-9_]*_seq")
T = TypeVar("T")


class WarehouseConflictError(RuntimeError):
    """A DuckLake commit conflicted with another writer's; nothing was written, the work may run again."""


@dataclass(frozen=True)
class Lake:
    """A DuckLake warehouse: its catalog (a libpq connection string) and where its Parquet files go.

    `data_path` is the configured one, else None: the catalog knows its own, and `new_data_path`
    is used only when this process creates the lake.
    """

    catalog: str
    data_path: str | None
    new_data_path: str

    def __str__(self) -> str:
        return CATALOG_PREFIX + mask_secrets(self.catalog)


def parse(location: str, data_path: str | None, new_data_path: str) -> Lake:
    """The lake a `ducklake:postgres:<libpq>` location names; WarehouseUnusableError for another catalog."""
    if not location.startswith(CATALOG_PREFIX):
        raise WarehouseUnusableError(
            f"warehouse {location.split(' ')[0]}: only a PostgreSQL catalog is supported for a DuckLake"
            " warehouse; write SREOPS_WAREHOUSE=ducklake:postgres:host=… port=… dbname=… user=…"
        )
    return Lake(location[len(CATALOG_PREFIX) :].strip(), data_path, data_path or new_data_path)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def extension_file(module: str, name: str) -> Path:
    """The extension binary a pip package ships for this DuckDB version (they are pinned together)."""
    package = Path(importlib.import_module(module).__file__).parent
    wanted = package / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not wanted.exists():
        shipped = sorted(p.parent.name for p in package.glob("extensions/*/*.duckdb_extension"))
        raise WarehouseUnusableError(
            f"the {module} package ships the {name} extension for DuckDB {', '.join(shipped) or 'no version'},"
            f" not for the installed duckdb {duckdb.__version__}: install the versions pinned together"
            " in pyproject.toml"
        )
    return wanted


def _load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET autoinstall_known_extensions = false")  # never reach the network
    for module, name in EXTENSIONS:
        try:
            con.execute(f"LOAD {name}")
        except duckdb.Error:
            con.execute(f"INSTALL {_literal(str(extension_file(module, name)))}")
            con.execute(f"LOAD {name}")


_bases: dict[tuple[int, Lake], duckdb.DuckDBPyConnection] = {}
_bases_guard = threading.Lock()


def _base(lake: Lake) -> duckdb.DuckDBPyConnection:
    """This process's instance with `lake` attached (made once per process: a fork makes its own)."""
    key = (os.getpid(), lake)
    with _bases_guard:
        con = _bases.get(key)
        if con is not None:
            return con
        con = _attach(lake)
        # Commits that do not conflict but raced another's snapshot are retried by DuckLake itself.
        con.execute("SET ducklake_max_retry_count = 200")
        con.execute("SET ducklake_retry_wait_ms = 5")
        con.execute("SET ducklake_retry_backoff = 1.2")
        _bases[key] = con
        return con


_RACED = ("already exists", "duplicate key")  # another process created the catalog's tables meanwhile


def _attach(lake: Lake, attempts: int = 10) -> duckdb.DuckDBPyConnection:
    """A new instance with the lake attached; a fresh catalog that another process creates at the same moment is retried."""
    for attempt in range(1, attempts + 1):
        con = duckdb.connect()
        try:
            _load_extensions(con)
            attach = f"ATTACH {_literal(CATALOG_PREFIX + lake.catalog)} AS {ALIAS}"
            try:
                con.execute(attach + (f" (DATA_PATH {_literal(lake.data_path)})" if lake.data_path else ""))
            except duckdb.InvalidInputException as exc:
                if lake.data_path or "data_path is not set" not in str(exc):
                    raise
                con.execute(f"{attach} (DATA_PATH {_literal(lake.new_data_path)})")  # a new lake: create it
            con.execute(f"ATTACH {_literal(lake.catalog)} AS {IDS} (TYPE postgres)")
            return con
        except duckdb.Error as exc:
            con.close()
            if not _raced(exc) or attempt == attempts:
                raise unreachable(lake, exc) from exc
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def open_cursor(
    lake: Lake, settings: Callable[[duckdb.DuckDBPyConnection], None]
) -> duckdb.DuckDBPyConnection:
    """A new connection on this process's instance of `lake`, working in the lake."""
    base = _base(lake)
    with _bases_guard:  # one thread at a time makes a cursor of the shared instance
        cursor = base.cursor()
    cursor.execute(f"USE {ALIAS}")
    settings(cursor)
    return cursor


def unreachable(lake: Lake, exc: Exception) -> WarehouseUnusableError:
    """What is wrong when the lake would not attach: usually the catalog's PostgreSQL."""
    said = mask_secrets(" ".join(str(exc).split()))[:400]
    return WarehouseUnusableError(
        f"warehouse {lake} cannot be opened (DuckDB: {said}). Check that its PostgreSQL server runs"
        " and this host may reach it, and that the database exists; SREOPS_WAREHOUSE_DATA, if set"
        f" ({lake.data_path or 'not set'}), must be the lake's data path or left unset."
    )


def unreadable(lake: Lake, table: str, exc: Exception) -> WarehouseUnusableError:
    """A lake table whose files do not read: a data path this host cannot reach, or files removed."""
    return WarehouseUnusableError(
        f"warehouse {lake} has a table {table} that cannot be read (DuckDB: {str(exc).splitlines()[0]})."
        " Check that this host reaches the lake's data path with the same name as the writers."
    )


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `con` works in a DuckLake database."""
    row = con.execute(
        "SELECT type FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchone()
    return bool(row) and row[0] == "ducklake"


def is_conflict(exc: BaseException) -> bool:
    """Whether a DuckDB error is a DuckLake transaction conflict (the work may run again)."""
    return isinstance(exc, duckdb.TransactionException) and "conflict" in str(exc).lower()


def next_ids(con: duckdb.DuckDBPyConnection, sequence: str, count: int = 1) -> list[int]:
    """`count` new ids from `sequence`, increasing: DuckDB's sequence on a file, PostgreSQL's on a lake."""
    if not _SEQUENCE.fullmatch(sequence):
        raise ValueError(f"not a warehouse sequence name: {sequence!r}")
    if count <= 0:
        return []
    if is_lake(con):
        query = f"SELECT nextval('{sequence}') FROM generate_series(1, {int(count)})"
        rows = con.execute(f"SELECT * FROM postgres_query('{IDS}', {_literal(query)})").fetchall()
    else:
        rows = con.execute(f"SELECT nextval('{sequence}') FROM range(?)", [count]).fetchall()
    return sorted(int(row[0]) for row in rows)


def create_sequence(con: duckdb.DuckDBPyConnection, sequence: str) -> None:
    """Create a sequence `next_ids` draws from in the lake's PostgreSQL database (if it is not there yet)."""
    if not _SEQUENCE.fullmatch(sequence):
        raise ValueError(f"not a warehouse sequence name: {sequence!r}")
    try:
        con.execute(f"CALL postgres_execute('{IDS}', 'CREATE SEQUENCE IF NOT EXISTS {sequence}')")
    except duckdb.Error as exc:
        if not _raced(exc):  # else another process created it at the same moment: it is there
            raise


def _raced(exc: BaseException) -> bool:
    """Whether an error says another process did the same thing first (created a table, a sequence)."""
    return is_conflict(exc) or any(marker in str(exc).lower() for marker in _RACED)


def migrate_retrying(con: duckdb.DuckDBPyConnection, migrate: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """Run `migrate`, again while it races another process migrating the same lake (it reads what that one did)."""
    attempts = 20
    for attempt in range(1, attempts + 1):
        try:
            return migrate(con)
        except Exception as exc:  # a MigrationError whose cause raced, or a conflicting commit
            if attempt == attempts or not (_raced(exc) or (exc.__cause__ and _raced(exc.__cause__))):
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def data_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The bytes of the lake's live Parquet and delete files."""
    row = con.execute(
        "SELECT coalesce(sum(file_size_bytes + delete_file_size_bytes), 0)"
        f" FROM ducklake_table_info({_literal(ALIAS)})"
    ).fetchone()
    return int(row[0])


def close(lake: Lake) -> None:
    """Close this process's instance of `lake` (its PostgreSQL connections); the next use opens it again."""
    with _bases_guard:
        con = _bases.pop((os.getpid(), lake), None)
    if con is not None:
        con.close()
