"""Log assets: `log_lines` (ingestion), `log_clusters` (clustering), `log_cluster_counts_1m` (hourly)."""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.metadata import bar_plot, line_plot, png, preview
from assets.partitions import hourly_partitions
from assets.resources import ConfigResource, WarehouseResource
from sreops.logs import run

COUNTS_MATCH_LINES = "counts_match_lines"


@dg.asset(group_name="logs", pool="warehouse", kinds={"duckdb"})
def log_lines(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> dg.MaterializeResult:
    """Records appended to the files under landing/logs/<service>/ since the last run, each once."""
    result = run.ingest(warehouse.path, cfg=sreops_config.load())
    for read in result.files:
        if read.note:
            context.log.info(f"{read.path.name}: {read.note}")
    table = pd.DataFrame(
        [
            {
                "service": r.service,
                "file": r.path.name,
                "records": r.records,
                "bytes": r.bytes_read,
                "note": r.note,
            }
            for r in result.files
        ]
    )
    hours = sorted(result.hours)
    return dg.MaterializeResult(
        metadata={
            "rows": result.rows,
            "files": len(result.files),
            "services": ", ".join(result.services),
            "first_hour": str(hours[0]) if hours else "",
            "last_hour": str(hours[-1]) if hours else "",
            "files_read": preview(table, rows=30),
            "plot": png(
                bar_plot(
                    [r.service for r in result.files],
                    [r.records for r in result.files],
                    f"records read per service, {result.rows} in all",
                    "records",
                ),
                "records per service",
            ),  # fmt: skip
        }
    )


@dg.asset(group_name="logs", pool="warehouse", kinds={"duckdb"}, deps=[log_lines])
def log_clusters(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> dg.MaterializeResult:
    """Each pending log line's cluster (streaming, embedding-assisted); new WARN+ patterns raise alerts."""
    clustered = run.cluster_pending(warehouse.path, cfg=sreops_config.load())
    table = pd.DataFrame(
        [
            {"service": s.service, "lines": s.lines, "clusters": s.clusters, "new": len(s.new_clusters),
             "merges": s.merges, "alerts": s.alerts}
            for s in clustered.services
        ]
    )  # fmt: skip
    top = run.top_clusters(warehouse.path, limit=15)
    context.log.info(
        f"clustered {clustered.lines} lines, {clustered.new_clusters} new clusters, {clustered.alerts} alerts"
    )
    return dg.MaterializeResult(
        metadata={
            "lines": clustered.lines,
            "new_clusters": clustered.new_clusters,
            "new_pattern_alerts": clustered.alerts,
            "embedded_texts": clustered.embedded,
            "hours_marked": len(clustered.hours),
            "services": preview(table, rows=30),
            "largest_clusters": preview(top[["service", "size", "max_level", "template"]], rows=15),
            "plot": png(
                bar_plot(
                    [f"{r.service}: {r.template}" for r in top.itertuples()],
                    list(top["size"]),
                    "largest clusters (lines)",
                    "lines",
                ),
                "largest clusters",
            ),  # fmt: skip
        }
    )


@dg.asset(
    partitions_def=hourly_partitions,
    deps=[log_clusters],
    group_name="logs",
    pool="warehouse",
    kinds={"duckdb"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            COUNTS_MATCH_LINES,
            asset="log_cluster_counts_1m",
            description="The minute counts add up to the clustered log lines of their hours.",
        )
    ],
)
def log_cluster_counts_1m(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Lines per (minute, service, cluster): a pattern's rate, for detection and alert context."""
    window = context.partition_time_window
    start = window.start.replace(tzinfo=None)
    end = window.end.replace(tzinfo=None)
    builds = run.recount_hours(warehouse.path, start, end)
    last = builds[-1]
    frame = run.read_counts(warehouse.path, last.hour, last.hour + dt.timedelta(hours=1))
    metadata: dict = {
        "hours": len(builds),
        "rows": sum(b.rows for b in builds),
        "lines": sum(b.lines for b in builds),
        "unclustered_lines": sum(b.unclustered for b in builds),
        "preview": preview(frame.drop(columns=["cluster_id"]), rows=10),
    }
    if not frame.empty:
        busiest = frame.groupby("cluster_id")["count"].sum().nlargest(5).index
        sample = frame[frame["cluster_id"].isin(busiest)].copy()
        sample["pattern"] = sample["template"].fillna(sample["cluster_id"]).str.slice(0, 40)
        metadata["plot"] = png(
            line_plot(
                sample, "minute", "count", "pattern", f"busiest patterns, {last.hour:%Y-%m-%d %H:00} UTC"
            ),
            "lines per minute of the busiest patterns",
        )
    yield dg.MaterializeResult(metadata=metadata)
    counted, clustered = run.counts_match_lines(warehouse.path, start, end)
    yield dg.AssetCheckResult(
        check_name=COUNTS_MATCH_LINES,
        passed=counted == clustered,
        metadata={"lines_in_counts": counted, "clustered_lines": clustered},
    )


ASSETS = [log_lines, log_clusters, log_cluster_counts_1m]
ingest_logs_job = dg.define_asset_job(
    "ingest_logs",
    selection=[log_lines, log_clusters],
    description="Read appended log lines and cluster them.",
)
log_counts_job = dg.define_asset_job(
    "build_log_counts",
    selection=[log_cluster_counts_1m],
    description="Rebuild per-minute log pattern counts for hours with newly clustered lines.",
)
JOBS = [ingest_logs_job, log_counts_job]
