"""`metric_features_1m`: per-minute aggregates of every series, one hourly partition at a time."""

import dagster as dg

from assets.metadata import line_plot, png, preview
from assets.partitions import hourly_partitions
from assets.resources import WarehouseResource
from sreops import features

NO_DUPLICATES = "no_duplicate_keys"
MATCHES_SAMPLES = "counts_match_samples"


@dg.asset(
    partitions_def=hourly_partitions,
    deps=["metric_samples"],
    group_name="metrics",
    pool="warehouse",
    kinds={"duckdb"},
    # Warehouse writes are serialized anyway, so a backfill is one run that rebuilds hour by hour
    # (and `dagster asset materialize --partition-range` works).
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            NO_DUPLICATES,
            asset="metric_features_1m",
            description="Each (minute, service, metric) appears once.",
        ),
        dg.AssetCheckSpec(
            MATCHES_SAMPLES,
            asset="metric_features_1m",
            description="The features count exactly the distinct samples of their hours.",
        ),
    ],
)
def metric_features_1m(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Per (minute, service, metric): n, mean, min, max, std, first, last, sum, delta, rate, gap."""
    window = context.partition_time_window
    builds = features.build_range(warehouse.path, window.start, window.end)
    last = builds[-1]
    frame = features.read_hour(warehouse.path, last.hour)
    metadata: dict = {
        "hours": len(builds),
        "rows": sum(b.rows for b in builds),
        "samples": sum(b.samples for b in builds),
        "series": max((b.series for b in builds), default=0),
        "preview": preview(frame),
    }
    if not frame.empty:
        first_metric = frame["metric"].iloc[0]
        sample = frame[frame["metric"] == first_metric]
        metadata["plot"] = png(
            line_plot(sample, "minute", "mean", "service", f"{first_metric}, {last.hour:%Y-%m-%d %H:00} UTC"),
            f"{first_metric} per service",
        )
    yield dg.MaterializeResult(metadata=metadata)
    duplicates = features.duplicate_keys(warehouse.path, window.start, window.end)
    yield dg.AssetCheckResult(
        check_name=NO_DUPLICATES, passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
    )
    counted, distinct = features.sample_count_mismatch(warehouse.path, window.start, window.end)
    yield dg.AssetCheckResult(
        check_name=MATCHES_SAMPLES,
        passed=counted == distinct,
        metadata={"samples_in_features": counted, "distinct_samples": distinct},
    )


ASSETS = [metric_features_1m]
features_job = dg.define_asset_job(
    "build_features",
    selection=[metric_features_1m],
    description="Rebuild minute features for hours touched by new samples.",
)
JOBS = [features_job]
