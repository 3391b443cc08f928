"""Resources: the warehouse location, configured once per code location."""

import dagster as dg

from sreops import paths


class WarehouseResource(dg.ConfigurableResource):
    """Where the DuckDB warehouse lives; empty `location` means `$SREOPS_HOME/warehouse.duckdb`."""

    location: str = ""

    @property
    def path(self) -> str:
        """The warehouse file, resolved against `$SREOPS_HOME` when no location was configured."""
        return self.location or str(paths.warehouse_path())
