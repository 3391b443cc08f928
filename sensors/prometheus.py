"""The Prometheus sensor: every few seconds, read the configured queries into the landing folder."""

import datetime as dt

import dagster as dg

from assets.resources import ConfigResource
from sreops import paths
from sreops.ingest import prometheus

MAX_WINDOW = dt.timedelta(hours=1)  # catch up an hour per tick after an outage
FIRST_WINDOW = dt.timedelta(hours=1)


def scrape_window(
    cursor: str | None, now: dt.datetime, step_s: int
) -> tuple[dt.datetime, dt.datetime] | None:
    """[start, end) to read now: from the cursor (or an hour back) to the last whole step, at most an hour."""
    step = dt.timedelta(seconds=step_s)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    end = epoch + ((now - epoch) // step) * step
    start = dt.datetime.fromisoformat(cursor) if cursor else end - FIRST_WINDOW
    end = min(end, start + MAX_WINDOW)
    return (start, end) if end > start else None


@dg.sensor(
    name="prometheus_scrape",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads sources.prometheus queries into landing files (idle when none are configured).",
)
def prometheus_scrape_sensor(context: dg.SensorEvaluationContext, sreops_config: ConfigResource):
    """Scrape the next window; on failure the cursor stays, so the window is read again next tick."""
    cfg = sreops_config.load().sources.prometheus
    if not cfg.url or not cfg.queries:
        return dg.SkipReason("no Prometheus configured (sources.prometheus.url and queries)")
    window = scrape_window(context.cursor, dt.datetime.now(dt.UTC), cfg.step_seconds)
    if window is None:
        return dg.SkipReason("nothing new to read yet")
    try:
        result = prometheus.scrape(cfg, *window, paths.landing_metrics())
    except prometheus.PrometheusError as exc:
        context.log.warning(str(exc))
        return dg.SkipReason(f"will retry {window[0]:%H:%M:%S}–{window[1]:%H:%M:%S}: {exc}")
    context.update_cursor(window[1].isoformat())
    return dg.SkipReason(
        f"landed {result.samples} samples for {window[0]:%H:%M:%S}–{window[1]:%H:%M:%S}"
        f" ({result.skipped_non_finite} NaN/stale points skipped); the landing sensor ingests them"
    )


SENSORS = [prometheus_scrape_sensor]
