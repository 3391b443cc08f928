"""Detection assets: `detector_models` (daily), `anomalies` (hourly scores) and `alerts` (incidents).

Thin adapters over `sreops.detection`: `anomalies` scores one hour of every series with the models
trained before it (training any that are missing) and `alerts` turns the service-minute scores
into incidents in the outbox. Both follow new `metric_features_1m` partitions automatically.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from assets.metadata import bar_plot, line_plot, png, preview, timeline_plot
from assets.partitions import hour_key, hourly_partitions
from assets.resources import ConfigResource, WarehouseResource
from sreops.config import Config
from sreops.detection import run, versions
from sreops.detection.artifacts import FileModelStore
from sreops.detection.store import SERVICE_METRIC
from sreops.features import hours_between
from sreops.timeutil import naive_utc, utc_now

SCORES_IN_RANGE = "scores_in_range"
# Eager on every hour, not only the latest: a late-data rebuild of an old features hour re-scores it.
FOLLOW_FEATURES = dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())
ONE_ROW_PER_MINUTE = "one_row_per_series_minute"
TOP_COLUMNS = [
    "minute",
    "service",
    "metric",
    "score",
    "severity",
    "value",
    "expected_low",
    "expected_high",
    "event",
]


class TrainingConfig(dg.Config):
    """When to train as of (ISO-8601 UTC); empty means now."""

    as_of: str = ""


class DetectionRunConfig(dg.Config):
    """Which detector version scores; empty means the current one (a replay names a candidate)."""

    version: str = ""


def _events(path: str, start: dt.datetime, end: dt.datetime, lookback_s: float, cfg: Config) -> list:
    settle = dt.timedelta(minutes=cfg.detection.deploy_settle_minutes)
    return run.load_events(path, start - dt.timedelta(seconds=lookback_s), end, cfg.events, settle)


@dg.asset(group_name="detection", pool="warehouse", kinds={"duckdb", "numpy"}, deps=["metric_features_1m"])
def detector_models(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    warehouse: WarehouseResource,
    sreops_config: ConfigResource,
) -> dg.MaterializeResult:
    """Per series: the model it scores with from now on (trailing training window, one file each)."""
    cfg = sreops_config.load()
    settings, _ = versions.current(warehouse.path, cfg)
    now = naive_utc(dt.datetime.fromisoformat(config.as_of)) if config.as_of else utc_now()
    events = _events(warehouse.path, now, now, run.events_lookback(settings), cfg)
    report = run.train_as_of(warehouse.path, now, settings, FileModelStore(), events)
    context.log.info(
        f"{report.trained} trained, {report.reused} already trained, {report.too_short} too short"
    )
    trained = pd.DataFrame(
        [{"service": k[1], "metric": k[2], "trained_until": k[3]} for k in report.keys]
        or [{"service": "", "metric": "", "trained_until": None}]
    )
    return dg.MaterializeResult(
        metadata={
            "version": settings.version,
            "trained": report.trained,
            "reused": report.reused,
            "too_short": report.too_short,
            "training_points": report.points,
            "models": preview(trained.dropna(), rows=20),
            "plot": png(
                bar_plot(
                    *_counts(trained.dropna()["service"]),
                    f"series trained now, by service ({report.reused} reused)",
                    "models",
                ),
                "models per service",
            ),
        }
    )


train_detector_models = dg.define_asset_job(
    "train_detector_models", selection=[detector_models], description="Retrain every series' detector model."
)


@dg.schedule(
    cron_schedule="10 0 * * *",
    job=train_detector_models,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def daily_detector_training(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Once a day, shortly after the UTC day the models are aligned to begins."""
    return dg.RunRequest(run_key=f"detector-models-{context.scheduled_execution_time:%Y-%m-%d}")


@dg.asset(
    partitions_def=hourly_partitions,
    deps=["metric_features_1m"],
    group_name="detection",
    pool="warehouse",
    kinds={"duckdb", "numpy"},
    automation_condition=FOLLOW_FEATURES,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(SCORES_IN_RANGE, asset="anomalies", description="Every score lies in [0, 100]."),
        dg.AssetCheckSpec(
            ONE_ROW_PER_MINUTE,
            asset="anomalies",
            description="One row per scored entity-minute and version (no duplicates after re-runs).",
        ),
    ],
)
def anomalies(
    context: dg.AssetExecutionContext,
    config: DetectionRunConfig,
    warehouse: WarehouseResource,
    sreops_config: ConfigResource,
):
    """A 0–100 score per series-minute and per service-minute, with explanations, for each hour."""
    window = context.partition_time_window
    start, end = naive_utc(window.start), naive_utc(window.end)
    cfg = sreops_config.load()
    settings, policy = versions.current(warehouse.path, cfg)
    if config.version:
        settings = versions.settings_of(warehouse.path, config.version)
    events = _events(warehouse.path, start, end, run.events_lookback(settings), cfg)
    store = FileModelStore()
    # A window (at most run.WINDOW) at a time, each series' history read once per window, keeping only
    # what the metadata shows: a ranged run's memory stays flat in its length.
    hours = rows = series = anomalous_series = anomalous_services = trained = out_of_range = 0
    top, plotted = pd.DataFrame(), pd.DataFrame()
    for scored in run.score_range(warehouse.path, start, end, settings, policy, store, events):
        window_end = scored.end
        hours += len(hours_between(scored.hour, window_end))
        rows, trained = rows + scored.rows, trained + scored.trained
        series = max(series, scored.series)
        frame = scored.frame
        del scored  # only the running totals below outlive the hour
        if not len(frame):
            continue
        out_of_range += int(((frame["score"] < 0) | (frame["score"] > 100)).sum())
        is_service = frame["metric"] == SERVICE_METRIC
        anomalous_services += int(frame.loc[is_service, "is_anomaly"].sum())
        anomalous_series += int(frame.loc[~is_service, "is_anomaly"].sum())
        top = pd.concat([top, frame[~is_service].nlargest(10, "score")[TOP_COLUMNS]]).nlargest(10, "score")
        last_hour = window_end - dt.timedelta(hours=1)
        plotted = frame[is_service & (frame["minute"] >= last_hour)]  # the plot shows the range's last hour
    metadata: dict = {
        "version": settings.version,
        "hours": hours,
        "rows": rows,
        "series": series,
        "anomalous_series_minutes": anomalous_series,
        "anomalous_service_minutes": anomalous_services,
        "top_scores": preview(top),
    }
    if len(plotted):
        last = plotted["minute"].max().floor("h")
        metadata["plot"] = png(
            line_plot(plotted, "minute", "score", "service", f"service scores, {last:%Y-%m-%d %H:00} UTC"),
            "service scores",
        )
    yield dg.MaterializeResult(metadata=metadata)
    if trained:  # the models this run trained are `detector_models`' too: the UI shows them there
        context.log_event(
            dg.AssetMaterialization(
                asset_key=detector_models.key,
                description=f"models trained on demand by `anomalies` {context.partition_key_range.start}",
                metadata={"version": settings.version, "trained": trained},
            )
        )
    yield dg.AssetCheckResult(
        check_name=SCORES_IN_RANGE, passed=out_of_range == 0, metadata={"out_of_range": out_of_range}
    )
    duplicates = run.duplicate_rows(warehouse.path, start, end, settings.version)
    yield dg.AssetCheckResult(
        check_name=ONE_ROW_PER_MINUTE, passed=duplicates == 0, metadata={"duplicate_rows": duplicates}
    )


@dg.asset(
    name="alerts",
    partitions_def=hourly_partitions,
    deps=[anomalies],
    group_name="detection",
    pool="warehouse",
    kinds={"duckdb"},
    automation_condition=FOLLOW_FEATURES,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def alerts_asset(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, sreops_config: ConfigResource
) -> dg.MaterializeResult:
    """Anomaly incidents (N-of-M to open, hysteresis and a quiet period to resolve) in the alerts outbox."""
    window = context.partition_time_window
    start, end = naive_utc(window.start), naive_utc(window.end)
    settings, policy = versions.current(warehouse.path, sreops_config.load())
    found, totals = [], run.ReconcileReport()
    for hour in hours_between(start, end):
        hour_found, report = run.update_incidents(
            warehouse.path,
            hour,
            hour + dt.timedelta(hours=1),
            settings.version,
            policy,
            partition=hour_key(hour),
        )
        found = hour_found
        for name in ("opened", "updated", "escalated", "resolved", "withdrawn"):
            setattr(totals, name, getattr(totals, name) + getattr(report, name))
    table = pd.DataFrame(
        [
            {
                "service": i.service,
                "first_minute": i.first_minute,
                "last_minute": i.last_minute,
                "peak": round(i.peak_score, 1),
                "severity": i.severity,
                "status": "resolved" if i.resolved else "firing",
                "metrics": ", ".join(i.metrics),
            }
            for i in found
        ]
    )
    still_open = pd.DataFrame(
        [
            {
                "service": a.service,
                "severity": a.severity,
                "opened_at": a.opened_at,
                "updated_at": a.updated_at,
                "score": a.peak_score,
            }
            for a in run.open_incidents(warehouse.path)
        ]
    )
    return dg.MaterializeResult(
        metadata={
            "version": settings.version,
            "open_incidents": len(still_open),
            "open_incidents_now": preview(still_open, rows=20),
            "incidents_in_window": len(found),
            "opened": totals.opened,
            "escalated": totals.escalated,
            "resolved": totals.resolved,
            "withdrawn": totals.withdrawn,
            "incidents": preview(table, rows=20),
            "plot": png(
                timeline_plot(table, f"incidents {start:%Y-%m-%d %H:00}–{end:%H:00} UTC (red: firing)"),
                "incident timeline",
            ),
        }
    )


def detect_live(warehouse_path: str, cfg: Config, hours: list[dt.datetime]) -> list[dg.AssetMaterialization]:
    """Score `hours` and update their incidents in the run that just built their features.

    What the `anomalies` and `alerts` runs the automation sensor would launch next do, without
    their tick and launch; returned as those assets' materializations, for the caller to log after
    the features' own (so the automation sensor sees the scores as newer than the features and
    requests nothing more).
    """
    settings, policy = versions.current(warehouse_path, cfg)
    store = FileModelStore()
    found: list[dg.AssetMaterialization] = []
    for hour in hours:
        end = hour + dt.timedelta(hours=1)
        events = _events(warehouse_path, hour, end, run.events_lookback(settings), cfg)
        scored = run.score_hour(warehouse_path, hour, settings, policy, store, events)
        incidents, report = run.update_incidents(
            warehouse_path, hour, end, settings.version, policy, partition=hour_key(hour)
        )
        live = "scored in the ingest run that brought its samples"
        found.append(
            dg.AssetMaterialization(
                asset_key=anomalies.key,
                partition=hour_key(hour),
                description=live,
                metadata={"version": settings.version, "rows": scored.rows, "series": scored.series},
            )
        )
        found.append(
            dg.AssetMaterialization(
                asset_key=alerts_asset.key,
                partition=hour_key(hour),
                description=live,
                metadata={
                    "version": settings.version,
                    "incidents_in_window": len(incidents),
                    "opened": report.opened,
                    "escalated": report.escalated,
                    "resolved": report.resolved,
                    "withdrawn": report.withdrawn,
                },
            )
        )
        if scored.trained:
            found.append(
                dg.AssetMaterialization(
                    asset_key=detector_models.key,
                    description=f"models trained on demand for {hour_key(hour)}",
                    metadata={"version": settings.version, "trained": scored.trained},
                )
            )
    return found


def _counts(values: pd.Series) -> tuple[list[str], list[float]]:
    counts = values.value_counts()
    return [str(k) for k in counts.index], [float(v) for v in counts.to_numpy()]


ASSETS = [detector_models, anomalies, alerts_asset]
JOBS = [
    train_detector_models,
    dg.define_asset_job(
        "score_anomalies",
        selection=[anomalies, alerts_asset],
        description="Score an hour and update its incidents (also: a version replay, with run config).",
    ),
]
SCHEDULES = [daily_detector_training]
