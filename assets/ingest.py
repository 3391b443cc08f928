"""`metric_samples`: landing files into the warehouse (one run is one ingestion batch)."""

from pathlib import Path

import dagster as dg
import pandas as pd

from assets.detection import detect_live
from assets.metadata import bar_plot, png, preview
from assets.partitions import hour_key, hourly_partitions
from assets.resources import ConfigResource, SlackResource, WarehouseResource
from sreops import features
from sreops import warehouse as sreops_warehouse
from sreops.alerting.delivery.run import deliver_pending
from sreops.ingest import landing as metric_landing
from sreops.ingest import run as ingest_run

# A batch that touched at most this many hours (live data: the hour in progress, maybe the one
# before) gets its features built, scored and its incidents updated in the same run, saving two
# sensor ticks and two run launches on the way to an alert; a larger batch (late data, history)
# is rebuilt by the features runs the landing sensor requests and the anomalies and alerts runs
# the automation sensor requests after them, exactly as before.
INLINE_FEATURE_HOURS = 2
# A live run that opened or updated incidents posts them itself, within this budget, instead of
# leaving them for the delivery sensor's next tick (about 5 s later); see `_deliver_now`.
IN_RUN_DELIVERY_BUDGET_S = 10.0
IN_RUN_LOCK_PATIENCE_S = 2.0


class IngestConfig(dg.Config):
    """Which files to ingest; empty means every finished file in the landing folder."""

    files: list[str] = []


@dg.asset(group_name="metrics", pool="warehouse", kinds={"duckdb"})
def metric_samples(
    context: dg.AssetExecutionContext,
    config: IngestConfig,
    warehouse: WarehouseResource,
    sreops_config: ConfigResource,
    slack: SlackResource,
):
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
    inline = _inline_hours(hours)
    yield dg.MaterializeResult(
        metadata={
            "files": len(results),
            "ingested": sum(r.status == "ingested" for r in results),
            "quarantined": sum(r.status == "quarantined" for r in results),
            "duplicates": sum(r.status == "duplicate" for r in results),
            "rows": sum(r.rows for r in results),
            "hours_touched": len(hours),
            "first_hour": str(hours[0]) if hours else "",
            "last_hour": str(hours[-1]) if hours else "",
            "features_built_inline": len(inline),
            "results": preview(table, rows=50),
            "plot": png(
                bar_plot(
                    [f"{r.path.name} ({r.status})" for r in results],
                    [r.rows for r in results],
                    f"rows per file, {len(results)} file(s)",
                    "rows",
                ),
                "rows per file",
            ),
        }
    )
    if _live_chain(context, warehouse.path, sreops_config, inline):
        _deliver_now(context, warehouse.path, sreops_config, slack)


def _inline_hours(hours: list) -> list:
    """The hours of a live batch whose features this run builds itself (none for a larger batch)."""
    keys = {hour_key(hour) for hour in hours}
    if not 0 < len(hours) <= INLINE_FEATURE_HOURS or not keys <= set(hourly_partitions.get_partition_keys()):
        return []
    return hours


def _live_chain(
    context: dg.AssetExecutionContext, warehouse_path: str, sreops_config: ConfigResource, hours: list
) -> bool:
    """Build the features of `hours`, score them and update their incidents.

    Each step is reported as a materialization of its asset's partition: the features first, then
    the scores and incidents, all logged once the work is done, so that the automation sensor
    never sees the features without the scores after them.
    """
    built = []
    for hour in hours:
        build = features.build_hour(warehouse_path, hour)
        built.append(
            dg.AssetMaterialization(
                asset_key="metric_features_1m",
                partition=hour_key(hour),
                description="built in the ingest run that brought its samples",
                metadata={"rows": build.rows, "samples": build.samples, "series": build.series},
            )
        )
    detected = detect_live(warehouse_path, sreops_config.load(), hours) if hours else []
    for event in built + detected:
        context.log_event(event)
    return bool(detected)


def _deliver_now(
    context: dg.AssetExecutionContext,
    warehouse_path: str,
    sreops_config: ConfigResource,
    slack: SlackResource,
) -> None:
    """Post what the live chain just wrote to the outbox, when this run can safely be the one to do it.

    Only with a bot token (dry-run stays with the sensor) and a DuckDB-file warehouse: one pass at a
    time holds the outbox through a lock file beside the warehouse, which every process that can open
    a DuckDB file shares, but hosts sharing a DuckLake catalog do not. A pass already holding the
    outbox (the sensor's) makes this one a no-op; what is left, the sensor's next tick posts.
    """
    settings = slack.settings
    if not settings.bot_token or not isinstance(sreops_warehouse.location(warehouse_path), Path):
        return
    try:
        report = deliver_pending(
            warehouse_path,
            config=sreops_config.load(),
            slack=settings,
            budget_s=IN_RUN_DELIVERY_BUDGET_S,
            patience_s=IN_RUN_LOCK_PATIENCE_S,
        )
    except sreops_warehouse.WarehouseLockedError as exc:
        context.log.info(f"warehouse busy; the delivery sensor posts these alerts: {exc}")
        return
    except Exception as exc:  # the samples are in: a delivery fault is the sensor's to retry, not this run's
        context.log.warning(f"delivery from the run failed, the delivery sensor retries: {exc!r}")
        return
    for error in dict.fromkeys(report.errors):
        context.log.warning(error)
    context.log.info(f"delivered from the run: {report.summary()}")


ASSETS = [metric_samples]
ingest_job = dg.define_asset_job(
    "ingest_metrics", selection=[metric_samples], description="Ingest landing files."
)
JOBS = [ingest_job]
