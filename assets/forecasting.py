"""Forecasting assets: `forecasts` (Prophet, refitted daily) and `scaling_recommendations` (hourly advice).

One hourly schedule drives both: it refits when a fit is `refit_hours` old (or missing) and
otherwise only re-advises, combining the latest fit with the hours observed since.
"""

import dagster as dg
import pandas as pd

from assets.metadata import bar_plot, png, preview
from assets.resources import ConfigResource, WarehouseResource
from sreops.forecasting import run

WITHIN_LIMITS = "within_replica_limits"


@dg.asset(
    group_name="forecasting",
    pool="warehouse",
    kinds={"duckdb", "prophet"},
    deps=["metric_features_1m"],
)
def forecasts(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> dg.MaterializeResult:
    """Hourly-peak forecasts of every service's scaling metric (Prophet, warm-started, in parallel)."""
    report = run.refit(warehouse.path, sreops_config.load())
    for name, why in report.skipped.items():
        context.log.warning(f"{name}: {why}")
    accuracy = report.accuracy()
    mase = accuracy["mase"].dropna() if not accuracy.empty else pd.Series(dtype=float)
    return dg.MaterializeResult(
        metadata={
            "series": len(report.fits) + len(report.skipped),
            "fitted": len(report.fits),
            "skipped": len(report.skipped),
            "seconds": round(report.seconds, 2),
            "warm_started": int(accuracy["warm_started"].sum()) if not accuracy.empty else 0,
            "median_mase": float(mase.median()) if len(mase) else None,
            "accuracy": preview(accuracy, rows=50),
            "plot": png(
                bar_plot(
                    [f"{r.service} {r.metric}" for r in accuracy.itertuples()] if not accuracy.empty else [],
                    [float(m) for m in accuracy["mase"].fillna(0)] if not accuracy.empty else [],
                    "holdout MASE by service (below 1 beats naive)",
                    "MASE",
                ),
                "forecast accuracy",
            ),
        }
    )


@dg.asset(
    group_name="forecasting",
    pool="warehouse",
    kinds={"duckdb"},
    deps=[forecasts, "metric_features_1m"],
    check_specs=[
        dg.AssetCheckSpec(
            WITHIN_LIMITS,
            asset="scaling_recommendations",
            description="Every recommendation is a whole number within the service's min/max replicas.",
        )
    ],
)
def scaling_recommendations(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
):
    """Replicas per service for each hour ahead: forecast band + headroom, recent-load floor, stabilized."""
    advice, skipped = run.advise(warehouse.path, sreops_config.load())
    for name, why in skipped.items():
        context.log.warning(f"{name}: {why}")
    exports = run.write_exports(advice)
    table = run.advice_frame(advice)
    first_hour = table.groupby("service").head(1) if not table.empty else table
    metadata: dict = {
        "rows": len(table),
        "services": len(advice),
        "skipped": len(skipped),
        "next_hour": preview(first_hour, rows=50),
        "exports": ", ".join(str(p) for p in exports),
    }
    if advice:
        metadata["plot"] = png(run.picture(warehouse.path, advice[0]), f"{advice[0].service} forecast")
        metadata["hpa_schedule"] = dg.MetadataValue.md(
            f"```yaml\n{exports[0].read_text()}```" if exports else "_none_"
        )
    yield dg.MaterializeResult(metadata=metadata)
    stored = run.read_recommendations(warehouse.path)
    bad = stored[
        (stored["recommended_replicas"] < stored["min_replicas"].clip(lower=1))
        | (stored["recommended_replicas"] > stored["max_replicas"])
    ]
    yield dg.AssetCheckResult(
        check_name=WITHIN_LIMITS, passed=bad.empty, metadata={"outside_limits": len(bad)}
    )


ASSETS = [forecasts, scaling_recommendations]

forecasting_job = dg.define_asset_job(
    "forecast_and_advise",
    selection=[forecasts, scaling_recommendations],
    description="Refit Prophet when due and advise replicas for the hours ahead.",
)
JOBS = [forecasting_job]


@dg.schedule(
    cron_schedule="5 * * * *",
    job=forecasting_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def hourly_scaling_advice(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource, sreops_config: ConfigResource
):
    """Every hour: new advice; a Prophet refit too once the latest fit is `refit_hours` old."""
    hour = context.scheduled_execution_time.strftime("%Y-%m-%dT%H")
    if run.refit_due(warehouse.path, sreops_config.load()):
        return dg.RunRequest(run_key=f"refit-{hour}")
    return dg.RunRequest(run_key=f"advise-{hour}", asset_selection=[scaling_recommendations.key])


SCHEDULES = [hourly_scaling_advice]
