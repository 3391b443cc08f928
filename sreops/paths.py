"""Where the platform keeps its files: everything lives under one data directory."""

from __future__ import annotations

import os
from pathlib import Path

from sreops.config import environment

DEFAULT_HOME = ".sreops"


def home() -> Path:
    """The data directory: `$SREOPS_HOME`, else `./.sreops`."""
    return Path(os.environ.get("SREOPS_HOME") or DEFAULT_HOME).resolve()


LAKE_PREFIX = "ducklake:"


def warehouse_path() -> Path:
    """The DuckDB warehouse file: `$SREOPS_WAREHOUSE` when that is a file path, else `$SREOPS_HOME/warehouse.duckdb`.

    While `$SREOPS_WAREHOUSE` names a DuckLake, this default path stands for that lake.
    """
    configured = environment.warehouse_setting()
    if configured and not configured.startswith(LAKE_PREFIX):
        return Path(configured).resolve()
    return home() / "warehouse.duckdb"


def warehouse_location() -> str:
    """The warehouse as one string, what `--warehouse` and the Dagster resource take: a file path or a `ducklake:` location."""
    configured = environment.warehouse_setting()
    return configured if configured and configured.startswith(LAKE_PREFIX) else str(warehouse_path())


def lake_data_path() -> str:
    """Where a new DuckLake warehouse keeps its Parquet files: `$SREOPS_WAREHOUSE_DATA` (a shared folder or an
    `s3://…` URL, kept as written), else `$SREOPS_HOME/lake/` (one host only)."""
    return environment.warehouse_data_path() or f"{home() / 'lake'}/"


def landing_metrics() -> Path:
    """Drop folder for metric files (CSV, Parquet, JSON Lines, optionally gzipped)."""
    return home() / "landing" / "metrics"


def landing_logs() -> Path:
    """Drop folder for log files, one subfolder per service."""
    return home() / "landing" / "logs"


def archive_metrics() -> Path:
    """Where ingested metric files are moved once their rows are in the warehouse."""
    return home() / "archive" / "metrics"


def quarantine_metrics() -> Path:
    """Where malformed metric files are moved, each beside a `.reason.txt`."""
    return home() / "quarantine" / "metrics"


def models_dir() -> Path:
    """Trained model artefacts (detectors, forecasts), versioned by subfolder."""
    return home() / "models"


def demo_dir() -> Path:
    """Ground truth and notes written by `sreops demo`."""
    return home() / "demo"


# Public benchmark data shared beside the repository: kind -> the variable that may move it.
SHARED_DATA_ENV = {"loghub": "SREOPS_LOGHUB_DIR", "demand": "SREOPS_DEMAND_DIR"}


def shared_data_dir(kind: str) -> Path:
    """A shared data folder (`loghub`, `demand`): its variable, else `../shared/data/<kind>` beside the repository."""
    configured = os.environ.get(SHARED_DATA_ENV[kind])
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / kind
