"""The metric assets through Dagster on a DuckLake warehouse: the suite of `test_features_assets`, again.

The resource's `location` is the lake here; `test_the_default_resource_uses_the_configured_lake`
shows the resource with no location following `SREOPS_WAREHOUSE` too.
"""

from __future__ import annotations

import dagster as dg
import pytest

from assets.ingest import metric_samples
from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sreops import warehouse
from tests.assets import test_features_assets
from tests.sreops.test_ducklake_suites import adopt


@pytest.fixture
def warehouse_path(lake: str) -> str:
    """A migrated DuckLake warehouse, this test's default, where the suite expects the file."""
    warehouse.migrate(lake)
    return lake


adopt((test_features_assets,), globals())


def test_the_default_resource_uses_the_configured_lake(warehouse_path: str) -> None:
    test_features_assets.land("a.csv")
    result = dg.materialize(
        [metric_samples],
        resources={
            "warehouse": WarehouseResource(),
            "sreops_config": ConfigResource(),
            "slack": SlackResource(),
        },
    )
    assert result.success
    with warehouse.connect(warehouse_path) as con:
        assert warehouse.is_lake(con)
        assert con.execute("SELECT count(*) FROM metric_samples").fetchone()[0] == 1440
