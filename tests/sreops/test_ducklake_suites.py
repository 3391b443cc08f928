"""The warehouse's suites, run again with a DuckLake warehouse in place of the DuckDB file.

These suites take their warehouse from the `warehouse_path` fixture; here it is a fresh lake (a
`ducklake:` location, also the test's default), so the same assertions hold on both backends:
marks and features, file ingestion, events and incidents, the log pipeline. Their own modules
run them on the file. `alerting/test_ducklake_alerting.py` does the same for alert delivery.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from sreops import warehouse
from tests.sreops import test_features, test_marks
from tests.sreops.detection import test_events, test_incidents
from tests.sreops.ingest import test_files
from tests.sreops.logs import test_pipeline

SUITES: tuple[ModuleType, ...] = (
    test_marks,
    test_features,
    test_files,
    test_events,
    test_incidents,
    test_pipeline,
)


def adopt(suites: tuple[ModuleType, ...], into: dict, leave_out: tuple[str, ...] = ()) -> None:
    """Collect the suites' tests and fixtures here, where `warehouse_path` is a lake."""
    for suite in suites:
        into.update(
            {
                name: value
                for name, value in vars(suite).items()
                if not name.startswith("_") and name not in into and name not in leave_out
            }
        )


@pytest.fixture
def warehouse_path(lake: str) -> str:
    """A migrated DuckLake warehouse, this test's default, where the suites expect the file."""
    warehouse.migrate(lake)
    return lake


adopt(SUITES, globals())
