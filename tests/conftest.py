"""Shared fixtures: every test gets its own data directory and warehouse."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sreops.devtools.postgres_server import PostgresServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Fixed first partition, so tests that use November 2026 hours do not depend on today's date.
os.environ.setdefault("SREOPS_PARTITIONS_START", "2026-01-01")


@pytest.fixture
def sreops_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty `$SREOPS_HOME` for one test; no config file, no Slack token."""
    home = tmp_path / "sreops-home"
    home.mkdir()
    monkeypatch.setenv("SREOPS_HOME", str(home))
    monkeypatch.delenv("SREOPS_CONFIG", raising=False)
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    from sreops import config

    config.current.cache_clear()
    return home


@pytest.fixture
def warehouse_path(sreops_home: Path) -> Path:
    """The (migrated) warehouse file inside the test's data directory."""
    from sreops import warehouse

    path = sreops_home / "warehouse.duckdb"
    warehouse.migrate(path)
    return path


# ---- DuckLake: one PostgreSQL server per session, a fresh catalog database per test ------------
_lake_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session (DuckLake catalogs); skips without PostgreSQL."""
    from sreops.devtools import postgres_server

    if not postgres_server.available():
        pytest.skip("PostgreSQL is not installed here (apt-get install postgresql)")
    # Not under pytest's temporary folder: as root the server runs as `postgres`, which may not enter it.
    root = Path(tempfile.mkdtemp(prefix="sreops-postgres-"))
    root.chmod(0o755)
    try:
        with postgres_server.postgres_server(root / "server") as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def lake(postgres: PostgresServer, sreops_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty DuckLake warehouse (its own catalog database, data under the home) as this test's default."""
    from sreops import warehouse
    from sreops.devtools.postgres_server import create_database

    catalog = create_database(postgres, f"lake_{os.getpid()}_{next(_lake_numbers)}")
    location = f"ducklake:postgres:{catalog.libpq}"
    monkeypatch.setenv("SREOPS_WAREHOUSE", location)
    monkeypatch.setenv("SREOPS_WAREHOUSE_DATA", f"{sreops_home / 'lake'}/")
    yield location
    warehouse.release(location)


@pytest.fixture(params=["duckdb", "ducklake"])
def backend(request: pytest.FixtureRequest, sreops_home: Path) -> str:
    """Each backend in turn as this test's default warehouse, not yet created: the file, then a lake."""
    if request.param == "ducklake":
        return request.getfixturevalue("lake")
    return str(sreops_home / "warehouse.duckdb")


@pytest.fixture
def any_warehouse(backend: str) -> str:
    """A migrated warehouse on each backend in turn (its location: a file path or a `ducklake:` string)."""
    from sreops import warehouse

    warehouse.migrate(backend)
    return backend
