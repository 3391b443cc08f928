"""Shared fixtures: every test gets its own data directory and warehouse."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
