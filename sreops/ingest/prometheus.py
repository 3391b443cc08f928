"""Prometheus as a source: configured PromQL queries, read through `/api/v1/query_range`.

A scrape writes what it read as a Parquet file into the metrics landing folder, so samples
from Prometheus take exactly the path of every other file (hash, atomic load, hour marks).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sreops.config import PrometheusConfig, PrometheusQuery

TIMEOUT_S = 20.0


class PrometheusError(RuntimeError):
    """Prometheus could not be read; the message names the URL and query."""


@dataclass(frozen=True)
class Scrape:
    """What one scrape read and where it put it."""

    path: Path | None
    samples: int
    skipped_non_finite: int


def query_range(base_url: str, query: str, start: dt.datetime, end: dt.datetime, step_s: int) -> list[dict]:
    """The `result` of a range query (a list of series with `metric` labels and `values`)."""
    params = urllib.parse.urlencode(
        {"query": query, "start": start.timestamp(), "end": end.timestamp(), "step": f"{step_s}s"}
    )
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:200]
        raise PrometheusError(f"Prometheus {base_url} answered {exc.code} to {query!r}: {detail}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise PrometheusError(
            f"Prometheus {base_url} is unreachable ({exc}); check sources.prometheus.url"
        ) from exc
    except json.JSONDecodeError as exc:
        raise PrometheusError(f"Prometheus {base_url} sent a body that is not JSON for {query!r}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus {base_url} rejected {query!r}: {body.get('error', body)}")
    data = body.get("data", {})
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"query {query!r} gave a {data.get('resultType')}, not a range vector (matrix)")
    return data.get("result", [])


def to_samples(result: list[dict], spec: PrometheusQuery) -> tuple[pd.DataFrame, int]:
    """Long-format samples (labels other than the service label kept as columns) and the NaN/Inf dropped."""
    rows: list[dict] = []
    dropped = 0
    for series in result:
        labels = dict(series.get("metric", {}))
        labels.pop("__name__", None)
        service = labels.pop(spec.service_label, None) or labels.get("job") or "unknown"
        for stamp, raw in series.get("values", []):
            value = float(raw)
            if not math.isfinite(value):  # staleness markers and gaps: not samples
                dropped += 1
                continue
            rows.append(
                {
                    "timestamp": float(stamp),
                    "service": service,
                    "metric": spec.metric,
                    "value": value,
                    **{f"label_{k}": v for k, v in labels.items()},
                }
            )
    return pd.DataFrame(rows), dropped


def scrape(cfg: PrometheusConfig, start: dt.datetime, end: dt.datetime, folder: Path) -> Scrape:
    """Read every configured query over [start, end) and land the samples as one Parquet file."""
    if not cfg.url:
        raise PrometheusError("sources.prometheus.url is not set")
    frames, dropped = [], 0
    for spec in cfg.queries:
        frame, skipped = to_samples(query_range(cfg.url, spec.query, start, end, cfg.step_seconds), spec)
        frames.append(frame)
        dropped += skipped
    frames = [f for f in frames if not f.empty]
    if not frames:
        return Scrape(path=None, samples=0, skipped_non_finite=dropped)
    samples = pd.concat(frames, ignore_index=True)
    # the window end is exclusive, so consecutive scrapes never repeat a sample
    samples = samples[samples["timestamp"] < end.timestamp()]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"prometheus-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.parquet"
    partial = target.with_name(target.name + ".part")
    samples.to_parquet(partial, index=False)
    partial.rename(target)
    return Scrape(path=target, samples=len(samples), skipped_non_finite=dropped)
