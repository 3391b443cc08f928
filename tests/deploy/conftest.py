"""Servers on loopback for the deployment tests, stopped at the end of each test (also on failure)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sreops.devtools import postgres_server


@pytest.fixture
def postgres() -> Iterator[postgres_server.PostgresServer]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (Debian's binaries).

    Its folder is not under pytest's tmp_path: as root the server runs as `postgres`, which may
    not enter pytest's 0700 folders.
    """
    if not postgres_server.available():
        pytest.skip("needs Debian's postgresql (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="sreops-pg-"))
    root.chmod(0o755)
    try:
        with postgres_server.postgres_server(root / "cluster") as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)
