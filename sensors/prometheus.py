"""The Prometheus sensor: every few seconds, read the configured queries into the landing folder.

Its cursor is the watermark (`sreops.ingest.prometheus` explains why each sample lands once):
a tick reads (watermark, Prometheus's now - lag], lands one file, then moves the cursor. A
failed tick keeps the cursor, so after an outage the next tick catches up from where it was.
"""

import datetime as dt
from pathlib import Path

import dagster as dg

from assets.resources import ConfigResource
from sreops import paths
from sreops.config import environment
from sreops.ingest import prometheus


def _landed_folders() -> list[Path]:
    """Where a window's file may be now: the landing folder and the archive of today and yesterday."""
    today = dt.datetime.now(dt.UTC)
    days = [f"{day:%Y-%m-%d}" for day in (today, today - dt.timedelta(days=1))]
    return [paths.landing_metrics(), *(paths.archive_metrics() / day for day in days)]


def _clock(ms: int) -> str:
    return f"{dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms):%H:%M:%S.%f}"[:-3]


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
    watermark = prometheus.parse_cursor(context.cursor)
    try:
        secret = environment.secret(cfg.auth_secret_env) if cfg.auth_secret_env else None
        client = prometheus.Client.from_config(cfg, secret)
        # a tick whose cursor was not saved (the process died after its file landed) left that
        # file behind: resume from its end rather than read the window twice
        landed = prometheus.landed_until(_landed_folders(), watermark)
        if landed is not None:
            context.update_cursor(prometheus.format_cursor(landed))
            return dg.SkipReason(f"resumed after {_clock(landed)}: that window had already landed")
        window = prometheus.next_window(watermark, prometheus.server_time_ms(client), cfg)
        if window is None:
            return dg.SkipReason("nothing new to read yet")
        result = prometheus.scrape(cfg, *window, paths.landing_metrics(), client)
    except prometheus.PrometheusError as exc:
        context.log.warning(str(exc))
        span = "the first window" if watermark is None else f"from {_clock(watermark)}"
        return dg.SkipReason(f"will retry {span}: {exc}")
    for problem in result.problems:
        context.log.warning(f"skipped series: {problem}")
    context.update_cursor(prometheus.format_cursor(window[1]))
    return dg.SkipReason(
        f"landed {result.samples} samples for {_clock(window[0])}–{_clock(window[1])} ({result.skipped_non_finite} NaN/stale"
        f" points, {result.skipped_series} unusable series skipped); the landing sensor ingests them"
    )


SENSORS = [prometheus_scrape_sensor]
