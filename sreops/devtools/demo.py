"""A realistic demo fleet: a week of metrics for five services, with incidents whose truth is known.

Load follows a daily and weekly rhythm with noise; CPU, saturation and latency follow load;
deploys shift levels for good; and incidents of several kinds are injected: a spike, a level
shift, a slow memory leak, an error burst and a latency degradation. `sreops demo` writes the
samples as landing files (one per day, in each supported format) and the ground truth as
`$SREOPS_HOME/demo/incidents.json`, so detection can be scored against it.

An optional live source beside the file fleet: the host's own CPU and memory, from node exporter
through Prometheus (`node_exporter_source`; `python -m sreops.devtools.prometheus_server` starts
both on loopback and prints the config section; docs/prometheus.md).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = (
    "cpu_utilization",
    "memory_utilization",
    "latency_p95_ms",
    "request_rate",
    "error_rate",
    "saturation",
)
# name: (peak requests/s, base p95 latency ms, base memory %, replicas)
SERVICES = {
    "checkout": (420.0, 180.0, 48.0, 6),
    "payments": (160.0, 240.0, 55.0, 4),
    "search": (900.0, 95.0, 62.0, 8),
    "catalog": (600.0, 60.0, 40.0, 5),
    "auth": (1200.0, 35.0, 35.0, 6),
}


# Range functions over a minute, so a Prometheus outage leaves a gap, never a repeated value.
NODE_EXPORTER_QUERIES = (
    {
        "query": '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[1m])))',
        "metric": "cpu_utilization",
        "service": "node-{instance}",
    },
    {
        "query": "100 * (1 - avg_over_time(node_memory_MemAvailable_bytes[1m])"
        " / avg_over_time(node_memory_MemTotal_bytes[1m]))",
        "metric": "memory_utilization",
        "service": "node-{instance}",
    },
)


def node_exporter_source(prometheus_url: str, step_seconds: int = 15) -> dict:
    """The `sources.prometheus` section that reads node exporter's CPU and memory (percent) as `node-<instance>`."""
    return {
        "url": prometheus_url,
        "step_seconds": step_seconds,
        "queries": [dict(q) for q in NODE_EXPORTER_QUERIES],
    }


@dataclass
class DemoFleet:
    """Samples in long format and the injected incidents (ground truth)."""

    samples: pd.DataFrame
    incidents: list[dict]


def _incident(service: str, kind: str, metrics: list[str], start: dt.datetime, minutes: float) -> dict:
    end = start + dt.timedelta(minutes=minutes)
    return {
        "service": service,
        "kind": kind,
        "metrics": metrics,
        "start": start.isoformat() + "Z",
        "end": end.isoformat() + "Z",
    }


def _plan(start: dt.datetime, days: float, rng: np.random.Generator) -> list[dict]:
    """Deploys and incidents, spread over the week after two days of clean history."""
    names = list(SERVICES)
    plan: list[dict] = []
    span_h = days * 24
    for service in names:
        for _ in range(2):
            at = start + dt.timedelta(hours=float(rng.uniform(12, span_h - 6)))
            at = at.replace(second=0, microsecond=0)
            plan.append(_incident(service, "deploy", ["memory_utilization", "latency_p95_ms"], at, 0))
    kinds = [
        ("spike", ["latency_p95_ms", "cpu_utilization"], 6),
        ("level_shift", ["request_rate", "cpu_utilization"], 120),
        ("memory_leak", ["memory_utilization"], 360),
        ("error_burst", ["error_rate"], 15),
        ("latency_degradation", ["latency_p95_ms", "saturation"], 90),
    ]
    first_h = min(48.0, span_h * 0.3)
    slots = np.linspace(first_h, span_h - 8, len(kinds) + 1)[:-1]
    order = rng.permutation(len(names))
    for (kind, metrics, minutes), slot, service_idx in zip(kinds, slots, order, strict=True):
        at = start + dt.timedelta(hours=float(slot + rng.uniform(0, 4)))
        at = at.replace(second=0, microsecond=0)
        plan.append(_incident(names[service_idx], kind, metrics, at, minutes))
    return sorted(plan, key=lambda item: item["start"])


def _series(
    ts: pd.DatetimeIndex, service: str, plan: list[dict], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    peak_rps, base_latency, base_memory, replicas = SERVICES[service]
    n = len(ts)
    hours = ts.hour.to_numpy() + ts.minute.to_numpy() / 60.0
    weekday = ts.day_of_week.to_numpy()
    daily = 0.55 + 0.45 * np.clip(np.sin((hours - 7.0) / 24.0 * 2 * np.pi), -0.6, 1.0)
    weekly = np.where(weekday >= 5, 0.65, 1.0)
    # slow random walk: load that wanders a little from day to day
    wander = 1.0 + 0.04 * np.cumsum(rng.normal(0, 1, n)) / np.sqrt(n)
    requests = peak_rps * daily * weekly * wander * (1 + rng.normal(0, 0.04, n))
    memory = base_memory + 2.0 * np.sin(2 * np.pi * np.arange(n) / (n / 7)) + rng.normal(0, 0.6, n)
    latency_shift = np.ones(n)
    errors_base = 0.002 + np.abs(rng.normal(0, 0.0006, n))
    error_extra = np.zeros(n)
    latency_factor = np.ones(n)
    cpu_extra = np.zeros(n)
    saturation_extra = np.zeros(n)

    def window(item: dict) -> tuple[np.ndarray, np.ndarray]:
        begin = pd.Timestamp(item["start"]).tz_localize(None)
        finish = pd.Timestamp(item["end"]).tz_localize(None)
        inside = (ts >= begin) & (ts < finish)
        progress = np.clip(
            (ts - begin).total_seconds().to_numpy() / max((finish - begin).total_seconds(), 1), 0, 1
        )
        return np.asarray(inside), progress

    for item in plan:
        if item["service"] != service:
            continue
        inside, progress = window(item)
        kind = item["kind"]
        if kind == "deploy":
            after = np.asarray(ts >= pd.Timestamp(item["start"]).tz_localize(None))
            memory = memory + after * rng.uniform(2.0, 4.0)
            latency_shift = latency_shift * np.where(after, rng.uniform(0.92, 1.06), 1.0)
        elif kind == "spike":
            latency_factor = latency_factor + inside * 2.5
            cpu_extra = cpu_extra + inside * 35.0
        elif kind == "level_shift":
            requests = requests * np.where(inside, 0.45, 1.0)
        elif kind == "memory_leak":
            memory = memory + inside * progress * (93.0 - base_memory)
        elif kind == "error_burst":
            error_extra = error_extra + inside * rng.uniform(0.06, 0.1)
        elif kind == "latency_degradation":
            ramp = np.clip(progress * 4.0, 0, 1)
            latency_factor = latency_factor + inside * ramp * 1.4
            saturation_extra = saturation_extra + inside * ramp * 0.3
    utilization = requests / (peak_rps * 1.15)
    cpu = np.clip(8.0 + 70.0 * utilization + cpu_extra + rng.normal(0, 2.0, n), 0, 100)
    saturation = np.clip(0.1 + 0.6 * utilization**2 + saturation_extra + rng.normal(0, 0.02, n), 0, 1)
    latency = base_latency * latency_shift * (1 + 0.6 * utilization**3) * latency_factor
    latency = latency * np.exp(rng.normal(0, 0.06, n))
    return {
        "cpu_utilization": cpu,
        "memory_utilization": np.clip(memory, 0, 100),
        "latency_p95_ms": latency,
        "request_rate": np.maximum(requests, 0),
        "error_rate": np.clip(errors_base + error_extra, 0, 1),
        "saturation": saturation,
    }


def generate(start: dt.datetime, days: float = 7, step_seconds: int = 30, seed: int = 7) -> DemoFleet:
    """The whole fleet from `start` (naive UTC) for `days`, one sample per series every `step_seconds`."""
    if not 10 <= step_seconds <= 60:
        raise ValueError("step_seconds must be between 10 and 60")
    rng = np.random.default_rng(seed)
    start = start.replace(tzinfo=None)
    plan = _plan(start, days, rng)
    ts = pd.date_range(start, start + dt.timedelta(days=days), freq=f"{step_seconds}s", inclusive="left")
    frames = []
    for service in SERVICES:
        values = _series(ts, service, plan, rng)
        for metric in METRICS:
            frames.append(
                pd.DataFrame({"ts": ts, "service": service, "metric": metric, "value": values[metric]})
            )
    samples = pd.concat(frames, ignore_index=True).sort_values(["ts", "service", "metric"], kind="stable")
    return DemoFleet(samples=samples.reset_index(drop=True), incidents=plan)


def write_landing_files(fleet: DemoFleet, folder: Path) -> list[Path]:
    """One file per day, cycling through CSV.gz, Parquet and JSON Lines; written then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    days = fleet.samples["ts"].dt.floor("D")
    for index, (day, frame) in enumerate(fleet.samples.groupby(days, sort=True)):
        out = frame.rename(columns={"ts": "timestamp"})
        kind = ("csv.gz", "parquet", "jsonl")[index % 3]
        target = folder / f"demo-{day:%Y-%m-%d}.{kind}"
        partial = target.with_name(target.name + ".part")
        if kind == "csv.gz":
            out.assign(timestamp=out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
                partial, index=False, compression="gzip"
            )
        elif kind == "parquet":
            out.to_parquet(partial, index=False)
        else:
            out.assign(timestamp=(out["timestamp"] - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_json(
                partial, orient="records", lines=True
            )
        partial.rename(target)
        written.append(target)
    return written


def write_ground_truth(fleet: DemoFleet, folder: Path) -> Path:
    """`incidents.json` beside the data: what was injected, where and when."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "incidents.json"
    target.write_text(json.dumps(fleet.incidents, indent=2) + "\n")
    return target


def record_deploys(fleet: DemoFleet, warehouse_path: Path | None = None) -> int:
    """Record the fleet's deploys in the `events` table, as a CI pipeline would announce them."""
    from sreops.detection.run import record_event

    deploys = [i for i in fleet.incidents if i["kind"] == "deploy"]
    for deploy in deploys:
        record_event(
            warehouse_path,
            "deploy",
            dt.datetime.fromisoformat(deploy["start"].removesuffix("Z")),
            service=deploy["service"],
            note="demo deploy",
            source="demo",
        )
    return len(deploys)


def default_start(days: float, now: dt.datetime | None = None) -> dt.datetime:
    """The demo week ends at the current hour."""
    now = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return now - dt.timedelta(days=days)
