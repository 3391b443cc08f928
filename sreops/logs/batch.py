"""The pure core of a clustering run: one service's pending lines → cluster ids, stats, new patterns.

`cluster_service` clusters the lines in arrival order (with the service's stored clusters
restored), reviews the stream, and works out what the run writes for the service: each line's
cluster id, the stored lines a merge relabels, the clusters' stats, and the `new_log_pattern`
alerts. Nothing here reads or writes a table; `sreops.logs.run` does, before and after.

A cluster is *new* when this run created it and it absorbed no older cluster. Alerts go out for
new clusters with a line at `new_pattern_min_level` or above, first seen more than
`new_pattern_warmup_minutes` after the service's first line (before that, every pattern is new:
that is the service's baseline). A new cluster gets its nearest older cluster by embedding
(`similar_cluster_id`, `similarity`) when it is alerted, and every new cluster does from the
service's second run on (a first import of history skips the embeddings).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sreops.logs.clustering import ClusteringConfig, StreamingClusterer
from sreops.logs.formats import level_rank
from sreops.logs.slots import embedding_text
from sreops.logs.state import Cluster, ClusterStats, ServiceState

if TYPE_CHECKING:
    from sreops import config as config_module
    from sreops.logs.embedding import Embedder

ALERT_KIND = "new_log_pattern"


@dataclass
class ServiceRun:
    """What one clustering run did for one service."""

    service: str
    lines: int = 0
    clusters: int = 0
    new_clusters: list[str] = field(default_factory=list)
    merges: int = 0
    alerts: int = 0


@dataclass
class ClusterRun:
    """What one clustering run did."""

    services: list[ServiceRun] = field(default_factory=list)
    hours: set[dt.datetime] = field(default_factory=set)
    embedded: int = 0

    @property
    def lines(self) -> int:
        return sum(s.lines for s in self.services)

    @property
    def new_clusters(self) -> int:
        return sum(len(s.new_clusters) for s in self.services)

    @property
    def alerts(self) -> int:
        return sum(s.alerts for s in self.services)


def clustering_config(cfg: config_module.Config) -> ClusteringConfig:
    """The clusterer's settings from the `logs` section of the config."""
    base = ClusteringConfig()
    return ClusteringConfig(
        min_distinct_values=cfg.logs.min_distinct_values,
        embedding_gate=cfg.logs.embedding_gate,
        similarity_threshold=cfg.logs.similarity_threshold or base.similarity_threshold,
    )


@dataclass
class ServiceBatch:
    """What clustering one service's pending lines gives: what the run writes for that service."""

    outcome: ServiceRun
    assignments: pd.DataFrame  # line_id, cluster_id of every pending line
    relabels: list[tuple[str, str, str]]  # (service, absorbed, into): stored lines of merged clusters
    clusters: list[Cluster]  # the clusterer's state after the run, merged clusters included
    stats: dict[str, ClusterStats]
    alerts: list[dict]  # `new_log_pattern` alert rows
    hours: set[dt.datetime]  # hours of the pending lines


def cluster_service(
    service: str,
    lines: pd.DataFrame,
    state: ServiceState,
    settings: ClusteringConfig,
    cache: Embedder | None,
    logs: config_module.LogsConfig,
    service_start: dt.datetime,
    now: dt.datetime,
) -> ServiceBatch:
    """Cluster one service's pending lines (line_id, ts, message, level; oldest first) onto its state."""
    clusterer = StreamingClusterer(service, settings, cache, state.clusters)
    before = {c.cluster_id for c in state.clusters}
    arrival = [clusterer.add(_first_line(m)).cluster_id for m in lines["message"]]
    clusterer.review()  # rare variants join their event; merges relabel stored lines below
    merges = clusterer.drain_merges()
    final = {cid: clusterer.resolve(cid).cluster_id for cid in set(arrival) | {m.absorbed for m in merges}}
    lines = lines.assign(cluster_id=[final[c] for c in arrival])
    relabels = [(service, m.absorbed, final[m.absorbed]) for m in merges if m.absorbed in before]

    stats = dict(state.stats)
    for merge in merges:
        gone = stats.pop(merge.absorbed, None)
        if gone is not None:
            survivor = stats.setdefault(final[merge.absorbed], ClusterStats())
            survivor.first_seen = min(filter(None, [survivor.first_seen, gone.first_seen]), default=None)
            survivor.last_seen = max(filter(None, [survivor.last_seen, gone.last_seen]), default=None)
            survivor.max_level = _max_level(survivor.max_level, gone.max_level)
            survivor.example = survivor.example or gone.example
    batch_levels: dict[str, str | None] = {}
    for cid, part in lines.groupby("cluster_id", sort=False):
        s = stats.setdefault(cid, ClusterStats())
        first, last = part["ts"].min().to_pydatetime(), part["ts"].max().to_pydatetime()
        s.first_seen = min(filter(None, [s.first_seen, first]))
        s.last_seen = max(filter(None, [s.last_seen, last]))
        level = max(part["level"].dropna(), key=level_rank, default=None)
        batch_levels[cid] = level
        s.max_level = _max_level(s.max_level, level)
        if s.example is None:
            s.example = _first_line(part["message"].iloc[0])[:1000]

    live = clusterer.clusters
    absorbed_old = {final[m.absorbed] for m in merges if m.absorbed in before}
    new = [c for c in live if c.cluster_id not in before and c.cluster_id not in absorbed_old]
    outcome = ServiceRun(service, len(lines), len(live), [c.cluster_id for c in new], len(merges))
    alerted = []
    if logs.new_pattern_alerts:
        threshold = level_rank(logs.new_pattern_min_level)
        baseline_end = service_start + dt.timedelta(minutes=logs.new_pattern_warmup_minutes)
        for cluster in new:
            first_seen = stats[cluster.cluster_id].first_seen
            if level_rank(batch_levels.get(cluster.cluster_id)) >= threshold and first_seen >= baseline_end:
                alerted.append(cluster)
        alerted = alerted[: logs.max_new_pattern_alerts]
    if cache is not None:
        described = new if state.clusters else alerted
        for cid, (similar, score) in _nearest_older(described, live, cache).items():
            stats[cid].similar_cluster_id, stats[cid].similarity = similar, score
    by_id = {c.cluster_id: c for c in live}
    alerts = [
        _alert_row(
            service, cluster, stats[cluster.cluster_id], batch_levels.get(cluster.cluster_id), by_id, now
        )
        for cluster in alerted
    ]
    outcome.alerts = len(alerted)
    return ServiceBatch(
        outcome,
        lines[["line_id", "cluster_id"]],
        relabels,
        clusterer.snapshot(),
        stats,
        alerts,
        set(pd.to_datetime(lines["ts"]).dt.floor("h").dt.to_pydatetime()),
    )


def _first_line(message: str) -> str:
    return message.partition("\n")[0]


def _max_level(a: str | None, b: str | None) -> str | None:
    return a if level_rank(a) >= level_rank(b) else b


def _nearest_older(
    new: list[Cluster], live: list[Cluster], embedder: Embedder
) -> dict[str, tuple[str, float]]:
    """For each new cluster, the most similar other live cluster older than it (by embedding)."""
    if not new or len(live) < 2:
        return {}
    texts = [embedding_text(c.origin) for c in live]
    vectors = embedder.encode(texts)
    index = {c.cluster_id: i for i, c in enumerate(live)}
    out = {}
    for cluster in new:
        i = index.get(cluster.cluster_id)
        older = [j for j, c in enumerate(live) if c.seq < cluster.seq]
        if i is None or not older:
            continue
        scores = vectors[older] @ vectors[i]
        best = int(np.argmax(scores))
        out[cluster.cluster_id] = (live[older[best]].cluster_id, float(scores[best]))
    return out


def _alert_row(
    service: str,
    cluster: Cluster,
    stats: ClusterStats,
    level: str | None,
    by_id: dict[str, Cluster],
    now: dt.datetime,
) -> dict:
    similar = by_id.get(stats.similar_cluster_id or "")
    details = {
        "cluster_id": cluster.cluster_id,
        "template": cluster.template,
        "example": stats.example,
        "level": level,
        "count": cluster.size,
        "first_seen": stats.first_seen,
        "last_seen": stats.last_seen,
        "first_minute": stats.first_seen,
        "last_minute": stats.last_seen,
        "similar_cluster_id": stats.similar_cluster_id,
        "similar_template": similar.template if similar else None,
        "similarity": stats.similarity,
    }
    return {
        "alert_id": uuid.uuid4().hex,
        "fingerprint": f"{ALERT_KIND}:{service}:{cluster.cluster_id}",
        "service": service,
        "summary": f"New {level or 'log'} pattern in {service}: {cluster.template[:160]}",
        "details": json.dumps(details, default=str, sort_keys=True),
        "opened_at": now,
    }
