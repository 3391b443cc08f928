"""`metric_samples`: landing files into the warehouse (one run is one ingestion batch)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.metadata import preview
from assets.resources import WarehouseResource
from sreops.ingest import landing as metric_landing
from sreops.ingest import run as ingest_run


class IngestConfig(dg.Config):
    """Which files to ingest; empty means every finished file in the landing folder."""

    files: list[str] = []


@dg.asset(group_name="metrics", pool="warehouse", kinds={"duckdb"})
def metric_samples(
    context: dg.AssetExecutionContext, config: IngestConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Raw samples from landing files; malformed files are quarantined with the reason."""
    targets = [Path(f) for f in config.files] if config.files else metric_landing.discover()
    present = [p for p in targets if p.exists()]
    if len(present) < len(targets):
        context.log.info(f"{len(targets) - len(present)} file(s) already moved by an earlier run")
    results = ingest_run.ingest_files(present, warehouse.path, source="landing", move=True)
    for result in results:
        if result.status == "quarantined":
            context.log.warning(result.error)
    table = pd.DataFrame(
        [
            {
                "file": r.path.name,
                "status": r.status,
                "rows": r.rows,
                "hours": len(r.hours),
                "error": r.error or "",
            }
            for r in results
        ]
    )
    hours = sorted({h for r in results for h in r.hours})
    return dg.MaterializeResult(
        metadata={
            "files": len(results),
            "ingested": sum(r.status == "ingested" for r in results),
            "quarantined": sum(r.status == "quarantined" for r in results),
            "duplicates": sum(r.status == "duplicate" for r in results),
            "rows": sum(r.rows for r in results),
            "hours_touched": len(hours),
            "first_hour": str(hours[0]) if hours else "",
            "last_hour": str(hours[-1]) if hours else "",
            "results": preview(table, rows=50),
        }
    )


ASSETS = [metric_samples]
ingest_job = dg.define_asset_job(
    "ingest_metrics", selection=[metric_samples], description="Ingest landing files."
)
JOBS = [ingest_job]
