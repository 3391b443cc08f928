"""The clustering stage: pending `log_lines` → cluster ids, `log_clusters`, new-pattern alerts.

One run reads the lines not clustered yet and each service's stored clusters, clusters the
lines in arrival order with no connection held (embeddings can take seconds), then writes in
one transaction: the cluster id of every line, relabelled lines of merged clusters, the
clusters, new embedding-cache rows, `new_log_pattern` alerts, and marks for the hours of
`log_cluster_counts_1m` to rebuild. A service's state version guards against two runs at once.

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
import logging
import os
import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sreops import config as config_module
from sreops import warehouse
from sreops.ingest.logfiles import level_rank
from sreops.logs import store
from sreops.logs.clustering import Cluster, ClusteringConfig, Embedder, StreamingClusterer, embedding_text

log = logging.getLogger(__name__)

MAX_LINES_PER_RUN = 2_000_000
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


def default_embedder(cfg: config_module.Config) -> Embedder | None:
    """The sentence-embedding model, unless the config turns embeddings off."""
    if not cfg.logs.use_embeddings:
        return None
    from sreops.logs.embedding import MiniLMEmbedder

    return MiniLMEmbedder()


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


def cluster_pending(
    warehouse_path: str | os.PathLike[str] | None = None,
    *,
    cfg: config_module.Config | None = None,
    embedder: Embedder | None = None,
    limit: int = MAX_LINES_PER_RUN,
    now: dt.datetime | None = None,
) -> ClusterRun:
    """Cluster every pending line (up to `limit`, oldest first) and write the results."""
    from sreops.logs.embedding import CachedEmbedder

    cfg = cfg or config_module.current()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    settings = clustering_config(cfg)
    model = embedder if embedder is not None else default_embedder(cfg)
    with warehouse.connect(warehouse_path) as con:
        pending = con.execute(
            "SELECT line_id, ts, service, message, level FROM log_lines WHERE cluster_id IS NULL"
            " ORDER BY line_id LIMIT ?",
            [limit],
        ).df()
        states = {s: store.load_state(con, s) for s in sorted(pending["service"].unique())}
        service_start = dict(
            con.execute(
                "SELECT service, min(ts) FROM log_lines WHERE service IN (SELECT unnest(?)) GROUP BY service",
                [list(states)],
            ).fetchall()
        )
        cache = None
        if model is not None:
            known = [
                embedding_text(c.origin) for st in states.values() for c in st.clusters if not c.merged_into
            ]
            cache = CachedEmbedder(model, store.load_vectors(con, model.model_name, known))
    run = ClusterRun()
    if pending.empty:
        return run

    assignments: list[pd.DataFrame] = []
    relabels: list[tuple[str, str, str]] = []
    alerts: list[dict] = []
    results: dict[str, tuple[list[Cluster], dict[str, store.ClusterStats]]] = {}
    for service, lines in pending.groupby("service", sort=True):
        state = states[service]
        clusterer = StreamingClusterer(service, settings, cache, state.clusters)
        before = {c.cluster_id for c in state.clusters}
        arrival = [clusterer.add(_first_line(m)).cluster_id for m in lines["message"]]
        clusterer.review()  # rare variants join their event; merges relabel stored lines below
        merges = clusterer.drain_merges()
        final = {
            cid: clusterer.resolve(cid).cluster_id for cid in set(arrival) | {m.absorbed for m in merges}
        }
        lines = lines.assign(cluster_id=[final[c] for c in arrival])
        assignments.append(lines[["line_id", "cluster_id"]])
        for merge in merges:
            if merge.absorbed in before:
                relabels.append((service, merge.absorbed, final[merge.absorbed]))

        stats = dict(state.stats)
        for merge in merges:
            gone = stats.pop(merge.absorbed, None)
            if gone is not None:
                survivor = stats.setdefault(final[merge.absorbed], store.ClusterStats())
                survivor.first_seen = min(filter(None, [survivor.first_seen, gone.first_seen]), default=None)
                survivor.last_seen = max(filter(None, [survivor.last_seen, gone.last_seen]), default=None)
                survivor.max_level = _max_level(survivor.max_level, gone.max_level)
                survivor.example = survivor.example or gone.example
        batch_levels: dict[str, str | None] = {}
        for cid, part in lines.groupby("cluster_id", sort=False):
            s = stats.setdefault(cid, store.ClusterStats())
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
        if cfg.logs.new_pattern_alerts:
            threshold = level_rank(cfg.logs.new_pattern_min_level)
            baseline_end = service_start[service] + dt.timedelta(minutes=cfg.logs.new_pattern_warmup_minutes)
            for cluster in new:
                first_seen = stats[cluster.cluster_id].first_seen
                if (
                    level_rank(batch_levels.get(cluster.cluster_id)) >= threshold
                    and first_seen >= baseline_end
                ):
                    alerted.append(cluster)
            alerted = alerted[: cfg.logs.max_new_pattern_alerts]
        if cache is not None:
            described = new if state.clusters else alerted
            for cid, (similar, score) in _nearest_older(described, live, cache).items():
                stats[cid].similar_cluster_id, stats[cid].similarity = similar, score
        by_id = {c.cluster_id: c for c in live}
        for cluster in alerted:
            level = batch_levels.get(cluster.cluster_id)
            alerts.append(_alert_row(service, cluster, stats[cluster.cluster_id], level, by_id, now))
        outcome.alerts = len(alerted)
        results[service] = (clusterer.snapshot(), stats)
        run.services.append(outcome)
        run.hours.update(pd.to_datetime(lines["ts"]).dt.floor("h").dt.to_pydatetime())
    if cache is not None:
        run.embedded = len(cache.fresh)

    with warehouse.transaction(warehouse_path) as con:
        for service, state in states.items():
            store.claim_version(con, service, state.version, now)
        frame = pd.concat(assignments, ignore_index=True)
        con.register("assigned_lines", frame)
        con.execute(
            "UPDATE log_lines SET cluster_id = a.cluster_id FROM assigned_lines a"
            " WHERE log_lines.line_id = a.line_id AND log_lines.cluster_id IS NULL"
        )
        con.unregister("assigned_lines")
        for service, absorbed, into in relabels:
            hours = con.execute(
                "SELECT DISTINCT date_trunc('hour', ts) FROM log_lines WHERE service = ? AND cluster_id = ?",
                [service, absorbed],
            ).fetchall()
            run.hours.update(h[0] for h in hours)
            con.execute(
                "UPDATE log_lines SET cluster_id = ? WHERE service = ? AND cluster_id = ?",
                [into, service, absorbed],
            )
        for service, (clusters, stats) in results.items():
            store.save_clusters(con, service, clusters, stats, now)
        if cache is not None:
            store.save_vectors(con, cache.model_name, cache.take_fresh(), now)
        for row in alerts:
            con.execute(
                "INSERT INTO alerts (alert_id, fingerprint, kind, service, severity, status, opened_at,"
                " updated_at, summary, details, delivery_status, attempts, revision, delivered_revision)"
                " SELECT ?, ?, ?, ?, 'warning', 'firing', ?, ?, ?, ?, 'pending', 0, 1, 0"
                " WHERE NOT EXISTS (SELECT 1 FROM alerts WHERE fingerprint = ?)",
                [row["alert_id"], row["fingerprint"], ALERT_KIND, row["service"], now, now, row["summary"],
                 row["details"], row["fingerprint"]],
            )  # fmt: skip
        store.mark_hours(con, run.hours, "log lines clustered")
    log.info("clustered %d log lines: %d new clusters, %d alerts", run.lines, run.new_clusters, run.alerts)
    return run


def _alert_row(
    service: str,
    cluster: Cluster,
    stats: store.ClusterStats,
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
    }
