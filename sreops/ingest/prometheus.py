"""Prometheus as a source: configured PromQL queries, read incrementally from a watermark.

A scrape reads every sample with a timestamp in (watermark, until] and writes them as one
Parquet file into the metrics landing folder, so samples from Prometheus take exactly the path
of every other file (hash, atomic load, hour marks). The sensor keeps the watermark as its
cursor and moves it to `until` only once the file is landed.

Why each sample lands exactly once, with its real timestamp:
- `samples` queries (a plain series selector) are read as a range selector through
  `/api/v1/query` (`selector[<until - watermark>ms]` at time `until`): Prometheus returns the raw
  samples it stored, with their own timestamps. `/api/v1/query_range` would not do: it evaluates
  at step points and, within the 5-minute lookback, repeats the last value across a gap, so an
  outage would be filled with fabricated samples, and a sample would be seen at several points.
- `range` queries (any other expression) are evaluated through `/api/v1/query_range` at the
  multiples of `step_seconds` in (watermark, until]; each evaluation point belongs to exactly one
  window. Such a point is computed, not stored; write expressions with range functions
  (`rate(x[1m])`, `avg_over_time(x[1m])`) so a gap yields no points instead of the lookback's
  repeated value, or record the expression as a Prometheus recording rule and read that series
  as `samples`.
- Both bounds come from Prometheus's own clock (`time()`), less `lag_seconds`: a scrape is
  stamped when it starts and written when it ends, so what is younger than the lag may still
  grow. Reading only older samples means the watermark never passes one not yet written.
- While Prometheus is down every tick fails and the watermark stays; the next good tick reads
  from it, so what Prometheus kept (its TSDB survives restarts) is read, and nothing twice.
- A window is named in its file (`prometheus-<watermark>-<until>.parquet`); if the sensor died
  after landing a file but before moving its cursor, `landed_until` finds the file and the
  watermark resumes from it instead of reading the window again.

Label mapping: `service` and `metric` are templates over the series labels (`node-{instance}`);
without `service`, `service_label` (then `job`) names it. Other labels become `label_*` columns.
A series whose names `sreops.names.check_name` refuses, or whose template needs a label it lacks,
is skipped and reported, so one odd series never quarantines the whole file.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sreops.config import PrometheusConfig, PrometheusQuery
from sreops.names import UnsafeName, check_name

FIRST_WINDOW_MS = 3_600_000  # with no watermark yet, read the last hour
MAX_WINDOW_MS = 3_600_000  # at most an hour per scrape, so catching up after an outage stays bounded
_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FILE = re.compile(r"prometheus-(\d{8}T\d{9})-(\d{8}T\d{9})(?:\.\d+)?\.parquet")


class PrometheusError(RuntimeError):
    """Prometheus could not be read; the message names the URL and query."""


@dataclass(frozen=True)
class Scrape:
    """What one scrape read and where it put it."""

    path: Path | None
    samples: int
    skipped_non_finite: int
    skipped_series: int = 0
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Client:
    """How to reach one Prometheus: its base URL, request timeout and headers (auth)."""

    url: str
    timeout_s: float = 20.0
    headers: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, cfg: PrometheusConfig, secret: str | None = None) -> Client:
        """The client `cfg` describes; `secret` is the value of `$<auth_secret_env>` when configured."""
        if not cfg.url:
            raise PrometheusError("sources.prometheus.url is not set")
        headers = {}
        if cfg.auth_secret_env:
            if not secret:
                raise PrometheusError(
                    f"sources.prometheus.auth_secret_env names ${cfg.auth_secret_env}, which is not set"
                    " in the environment: set it to the credential, or remove auth_secret_env"
                )
            headers[cfg.auth_header] = f"{cfg.auth_scheme} {secret}" if cfg.auth_scheme else secret
        return cls(cfg.url.rstrip("/"), cfg.timeout_seconds, headers)

    def get(self, path: str, params: dict[str, str], what: str) -> dict:
        """The `data` of one API call; PrometheusError saying what failed."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:200]
            hint = "; check sources.prometheus.auth_*" if exc.code in (401, 403) else ""
            raise PrometheusError(
                f"Prometheus {self.url} answered {exc.code} to {what}: {detail}{hint}"
            ) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise PrometheusError(
                    f"Prometheus {self.url} did not answer {what} within {self.timeout_s:g} s"
                    " (sources.prometheus.timeout_seconds)"
                ) from exc
            raise PrometheusError(
                f"Prometheus {self.url} is unreachable ({reason}); check sources.prometheus.url"
            ) from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PrometheusError(f"Prometheus {self.url} sent a body that is not JSON for {what}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error", body) if isinstance(body, dict) else body
            raise PrometheusError(f"Prometheus {self.url} rejected {what}: {error}")
        return body.get("data") or {}


def _seconds(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _matrix(data: dict, what: str) -> list[dict]:
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"{what} gave a {data.get('resultType')}, not a range vector (matrix)")
    return data.get("result") or []


def server_time_ms(client: Client) -> int:
    """Prometheus's own clock (epoch ms): windows follow it, so this host's clock does not matter."""
    data = client.get("query", {"query": "time()"}, "time()")
    try:
        return round(float(data["result"][0]) * 1000)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"Prometheus {client.url} gave no time for time(): {data}") from exc


def read_samples(client: Client, selector: str, after_ms: int, until_ms: int) -> list[dict]:
    """The raw samples of `selector` in (after, until], as a matrix `result` (series with `values`)."""
    params = {"query": f"{selector}[{until_ms - after_ms}ms]", "time": _seconds(until_ms)}
    return _matrix(client.get("query", params, repr(selector)), f"query {selector!r}")


def query_range(client: Client, query: str, after_ms: int, until_ms: int, step_s: int) -> list[dict]:
    """`query` evaluated at the multiples of `step_s` in (after, until], as a matrix `result`."""
    step = step_s * 1000
    first, last = (after_ms // step + 1) * step, until_ms // step * step
    if first > last:
        return []
    params = {"query": query, "start": _seconds(first), "end": _seconds(last), "step": f"{step_s}s"}
    return _matrix(client.get("query_range", params, repr(query)), f"query {query!r}")


def _render(template: str, labels: dict[str, str]) -> str | None:
    """`template` with `{label}` filled in from `labels`; None when a label is missing."""
    missing = [name for name in _TEMPLATE.findall(template) if not labels.get(name)]
    return None if missing else _TEMPLATE.sub(lambda m: labels[m.group(1)], template)


def series_names(labels: dict[str, str], spec: PrometheusQuery) -> tuple[str, str, dict[str, str]]:
    """The service, metric and remaining labels of one series; UnsafeName when they cannot be names."""
    named = dict(labels)
    labels = {k: v for k, v in labels.items() if k != "__name__"}
    if spec.service is not None:
        service = _render(spec.service, named)
    else:
        service = labels.pop(spec.service_label, None) or labels.get("job") or "unknown"
    metric = _render(spec.metric, named)
    if service is None or metric is None:
        template = spec.metric if metric is None else spec.service
        raise UnsafeName(f"series {_brief(named)} lacks a label that {template!r} needs")
    return check_name(service, "service"), check_name(metric, "metric"), labels


def _brief(labels: dict[str, str]) -> str:
    return ascii(dict(sorted(labels.items())))[:120]


def to_samples(
    result: Iterable[dict], spec: PrometheusQuery, after_ms: int, until_ms: int
) -> tuple[pd.DataFrame, int, list[str]]:
    """Long-format samples in (after, until], the NaN/Inf dropped, and why series were skipped."""
    rows: list[dict] = []
    dropped, problems = 0, []
    for series in result:
        try:
            service, metric, labels = series_names(dict(series.get("metric", {})), spec)
        except UnsafeName as exc:
            problems.append(f"{spec.query[:60]!r}: {exc}")
            continue
        extra = {f"label_{k}": v for k, v in labels.items()}
        for stamp, raw in series.get("values", []):
            ms = round(float(stamp) * 1000)
            if not after_ms < ms <= until_ms:  # a range selector's bounds are closed in Prometheus 2
                continue
            value = float(raw)
            if not math.isfinite(value):  # staleness markers and gaps: not samples
                dropped += 1
                continue
            rows.append({"timestamp": ms, "service": service, "metric": metric, "value": value, **extra})
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms")  # naive UTC, exact to the ms
    return frame, dropped, problems


def stamp(ms: int) -> str:
    """An epoch-ms instant as it appears in a file name: `20261120T100000123` (UTC, to the ms)."""
    moment = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)
    return f"{moment:%Y%m%dT%H%M%S}{ms % 1000:03d}"


def _parse_stamp(text: str) -> int:
    moment = dt.datetime.strptime(text[:15], "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    return int(moment.timestamp()) * 1000 + int(text[15:])


def scrape(
    cfg: PrometheusConfig, after_ms: int, until_ms: int, folder: Path, client: Client | None = None
) -> Scrape:
    """Read every configured query over (after, until] and land the samples as one Parquet file."""
    client = client or Client.from_config(cfg)
    frames, dropped, problems = [], 0, []
    for spec in cfg.queries:
        if spec.read_mode == "samples":
            result = read_samples(client, spec.query, after_ms, until_ms)
        else:
            result = query_range(client, spec.query, after_ms, until_ms, cfg.step_seconds)
        frame, skipped, issues = to_samples(result, spec, after_ms, until_ms)
        frames.append(frame)
        dropped += skipped
        problems += issues
    frames = [f for f in frames if not f.empty]
    if not frames:
        return Scrape(None, 0, dropped, len(problems), tuple(problems[:5]))
    samples = pd.concat(frames, ignore_index=True)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"prometheus-{stamp(after_ms)}-{stamp(until_ms)}.parquet"
    partial = target.with_name(target.name + ".part")
    samples.to_parquet(partial, index=False)
    partial.rename(target)
    return Scrape(target, len(samples), dropped, len(problems), tuple(problems[:5]))


def next_window(watermark_ms: int | None, now_ms: int, cfg: PrometheusConfig) -> tuple[int, int] | None:
    """(after, until] to read now: from the watermark to `now - lag` on the step grid, at most an hour."""
    step = cfg.step_seconds * 1000
    until = (now_ms - round(cfg.lag_seconds * 1000)) // step * step
    after = watermark_ms if watermark_ms is not None else until - FIRST_WINDOW_MS
    until = min(until, after + MAX_WINDOW_MS)
    return (after, until) if until > after else None


def landed_until(folders: Iterable[Path], after_ms: int | None) -> int | None:
    """The end of a window from `after_ms` (None: from anywhere) already landed in `folders`, if any."""
    ends = []
    start = "*" if after_ms is None else stamp(after_ms)
    for folder in folders:
        for path in folder.glob(f"prometheus-{start}-*.parquet"):
            if match := _FILE.fullmatch(path.name):
                ends.append(_parse_stamp(match.group(2)))
    return max(ends, default=None)


def parse_cursor(cursor: str | None) -> int | None:
    """The watermark (epoch ms) kept in a sensor cursor; an older ISO cursor meant [start, end)."""
    if not cursor:
        return None
    if cursor.startswith("{"):
        return int(json.loads(cursor)["watermark_ms"])
    moment = dt.datetime.fromisoformat(cursor)  # the exclusive end of the last window read
    return round(moment.timestamp() * 1000) - 1


def format_cursor(watermark_ms: int) -> str:
    """The cursor that keeps `watermark_ms` (with the instant, readable, beside it)."""
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=watermark_ms)
    return json.dumps({"watermark_ms": watermark_ms, "watermark": moment.isoformat(timespec="milliseconds")})
