"""The deployment tests' PostgreSQL: the session's server (tests/conftest.py), a fresh database per test."""

from __future__ import annotations

import itertools

import pytest

from sreops.devtools import postgres_server

_numbers = itertools.count()


@pytest.fixture
def postgres(postgres: postgres_server.PostgresServer) -> postgres_server.PostgresServer:
    """The session's PostgreSQL server, connecting to a new, empty database of this test's own."""
    return postgres_server.create_database(postgres, f"dagster_{next(_numbers)}")
