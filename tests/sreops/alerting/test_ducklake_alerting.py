"""Alert delivery, feedback and run-health suites, run again on a DuckLake warehouse (see `test_ducklake_suites`)."""

from __future__ import annotations

import pytest

from sreops import warehouse
from tests.sreops.alerting import test_delivery, test_feedback, test_health
from tests.sreops.test_ducklake_suites import adopt


@pytest.fixture
def warehouse_path(lake: str) -> str:
    """A migrated DuckLake warehouse, this test's default, where the suites expect the file."""
    warehouse.migrate(lake)
    return lake


# Hundreds of small delivery transactions each (a lake commits through PostgreSQL): they run on
# the file only, so the suite stays fast; the behaviour they check is the same code on both.
SLOW = (
    "test_outage_with_500s_delays_500_incidents_then_delivers_each_exactly_once",
    "test_rate_limit_honours_retry_after_then_delivers_each_once",
    "test_bounded_pass_leaves_the_rest_for_the_next",
)
adopt((test_delivery, test_feedback, test_health), globals(), leave_out=SLOW)
