"""Apply the numbered migrations a warehouse lacks, one transaction each, recorded in `schema_migrations`.

`sreops.warehouse` calls `migrate_connection` on the first connection a process opens to a file.
"""

from __future__ import annotations

import logging

import duckdb

from sreops import ducklake
from sreops.integrity import WarehouseDamagedError, path_of, refuse_newer
from sreops.migrations import MIGRATIONS
from sreops.migrations.base import Migration
from sreops.migrations.dialect import for_lake

log = logging.getLogger(__name__)


class MigrationError(RuntimeError):
    """A schema migration failed; the warehouse was left at its previous version."""


def migrate_connection(
    con: duckdb.DuckDBPyConnection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply, in version order, each migration this warehouse lacks; one transaction each.

    Refuses a database sreops did not create (tables but no schema_migrations) and one that a
    newer sreops migrated (versions this code does not know), before changing anything.
    """
    lake = ducklake.is_lake(con)
    done = recorded_versions(con)
    if done is None:
        _run(
            con,
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)",
            lake,
        )
        done = set()
    refuse_newer(path_of(con), done, {m.version for m in migrations})
    applied = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        if _recorded(con, migration.version):  # another process applied it meanwhile (a lake)
            con.execute("ROLLBACK")
            continue
        try:
            for statement in migration.statements:
                _run(con, statement, lake)
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


def _recorded(con: duckdb.DuckDBPyConnection, version: int) -> bool:
    return (
        con.execute("SELECT count(*) FROM schema_migrations WHERE version = ?", [version]).fetchone()[0] > 0
    )


def _run(con: duckdb.DuckDBPyConnection, statement: str, lake: bool) -> None:
    """Run one migration statement, as DuckLake takes it on a lake."""
    if not lake:
        con.execute(statement)
        return
    translated, sequence = for_lake(statement)
    if sequence:
        ducklake.create_sequence(con, sequence)
    if translated:
        con.execute(translated)


def recorded_versions(con: duckdb.DuckDBPyConnection) -> set[int] | None:
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
                f"warehouse {path_of(con)} is a DuckDB database that sreops did not create: it has"
                f" {len(tables)} table(s) ({shown}) and no schema_migrations. Point --warehouse or"
                " SREOPS_HOME at the sreops warehouse; sreops will not write into another database."
            )
        return None
    try:
        return {int(row[0]) for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    except (duckdb.BinderException, duckdb.CatalogException, duckdb.ConversionException) as exc:
        raise WarehouseDamagedError(
            f"warehouse {path_of(con)} has a schema_migrations table sreops did not write ({exc});"
            " point --warehouse or SREOPS_HOME at the sreops warehouse"
        ) from exc
