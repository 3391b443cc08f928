"""Warehouse tables of the log stage: cluster state, the embedding cache, per-minute counts.

Every function here takes an open connection (from `sreops.warehouse`) or a warehouse path and
is short: heavy work (clustering, embeddings) happens between a read and a write, never while
a connection is held.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from sreops import warehouse
from sreops.logs.clustering import Cluster

COUNTS_ASSET = "log_cluster_counts_1m"


class ConcurrentClusteringError(RuntimeError):
    """Another clustering run changed a service's clusters while this one worked; run again."""


@dataclass
class ClusterStats:
    """What the warehouse knows about a cluster besides its state."""

    first_seen: dt.datetime | None = None
    last_seen: dt.datetime | None = None
    max_level: str | None = None
    example: str | None = None
    similar_cluster_id: str | None = None
    similarity: float | None = None


@dataclass
class ServiceState:
    """A service's clusters as stored, their stats, and the state version read."""

    service: str
    clusters: list[Cluster]
    stats: dict[str, ClusterStats]
    version: int


def load_state(con: duckdb.DuckDBPyConnection, service: str) -> ServiceState:
    """The stored clusters (live and merged) of one service."""
    rows = con.execute(
        "SELECT cluster_id, seq, tokens, origin, size, merged_into, first_seen, last_seen, max_level,"
        " example, similar_cluster_id, similarity FROM log_clusters WHERE service = ? ORDER BY seq",
        [service],
    ).fetchall()
    clusters, stats = [], {}
    for cid, seq, tokens, origin, size, merged_into, first, last, level, example, similar, similarity in rows:
        clusters.append(Cluster(cid, int(seq), list(json.loads(tokens)), origin, int(size), merged_into))
        stats[cid] = ClusterStats(first, last, level, example, similar, similarity)
    version = con.execute(
        "SELECT max(version) FROM log_cluster_state WHERE service = ?", [service]
    ).fetchall()[0][0]
    return ServiceState(service, clusters, stats, int(version or 0))


def claim_version(con: duckdb.DuckDBPyConnection, service: str, expected: int, now: dt.datetime) -> None:
    """Move the service's state version from `expected` to the next, or raise if it moved meanwhile."""
    current = con.execute(
        "SELECT max(version) FROM log_cluster_state WHERE service = ?", [service]
    ).fetchall()[0][0]
    if int(current or 0) != expected:
        raise ConcurrentClusteringError(
            f"log clusters of {service} changed during this run (version {current}, expected {expected}); "
            "the next run will cluster the remaining lines"
        )
    con.execute("DELETE FROM log_cluster_state WHERE service = ?", [service])
    con.execute("INSERT INTO log_cluster_state VALUES (?, ?, ?)", [service, expected + 1, now])


def save_clusters(
    con: duckdb.DuckDBPyConnection,
    service: str,
    clusters: Iterable[Cluster],
    stats: dict[str, ClusterStats],
    now: dt.datetime,
) -> int:
    """Replace the service's stored clusters with these; returns the number written."""
    rows = []
    for c in clusters:
        s = stats.get(c.cluster_id, ClusterStats())
        rows.append(
            {
                "cluster_id": c.cluster_id,
                "service": service,
                "template": c.template,
                "size": c.size,
                "first_seen": s.first_seen,
                "last_seen": s.last_seen,
                "max_level": s.max_level,
                "example": s.example,
                "merged_into": c.merged_into,
                "similar_cluster_id": s.similar_cluster_id,
                "similarity": s.similarity,
                "seq": c.seq,
                "origin": c.origin,
                "tokens": json.dumps(c.tokens),
                "updated_at": now,
            }
        )
    con.execute("DELETE FROM log_clusters WHERE service = ?", [service])
    if rows:
        frame = pd.DataFrame(rows)
        frame["first_seen"] = pd.to_datetime(frame["first_seen"])
        frame["last_seen"] = pd.to_datetime(frame["last_seen"])
        frame["similarity"] = frame["similarity"].astype("float64")
        con.register("new_log_clusters", frame)
        con.execute(
            "INSERT INTO log_clusters (cluster_id, service, template, size, first_seen, last_seen, max_level,"
            " example, merged_into, similar_cluster_id, similarity, seq, origin, tokens, updated_at)"
            " SELECT cluster_id, service, template, size, first_seen, last_seen, max_level, example,"
            " merged_into, similar_cluster_id, similarity, seq, origin, tokens, updated_at"
            " FROM new_log_clusters"
        )
        con.unregister("new_log_clusters")
    return len(rows)


def _text_hash(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\x1f{text}".encode()).hexdigest()


def load_vectors(con: duckdb.DuckDBPyConnection, model: str, texts: Iterable[str]) -> dict[str, np.ndarray]:
    """Cached vectors of `texts` for `model` (those never embedded are absent)."""
    wanted = pd.DataFrame({"text_hash": [_text_hash(model, t) for t in dict.fromkeys(texts)]})
    if wanted.empty:
        return {}
    con.register("wanted_vectors", wanted)
    rows = con.execute(
        "SELECT e.text, e.vector FROM log_embeddings e JOIN wanted_vectors w USING (text_hash)"
        " WHERE e.model = ?",
        [model],
    ).fetchall()
    con.unregister("wanted_vectors")
    return {text: np.asarray(vector, dtype=np.float32) for text, vector in rows}


def save_vectors(
    con: duckdb.DuckDBPyConnection, model: str, vectors: dict[str, np.ndarray], now: dt.datetime
) -> int:
    """Add new vectors to the cache (texts already there are skipped); returns how many were added."""
    if not vectors:
        return 0
    frame = pd.DataFrame(
        {
            "text_hash": [_text_hash(model, t) for t in vectors],
            "model": model,
            "text": list(vectors),
            "vector": [np.asarray(v, dtype=np.float32).tolist() for v in vectors.values()],
            "created_at": now,
        }
    )
    con.register("new_vectors", frame)
    added = con.execute(
        "INSERT INTO log_embeddings"
        " SELECT n.text_hash, n.model, n.text, CAST(n.vector AS FLOAT[]), n.created_at FROM new_vectors n"
        " WHERE NOT EXISTS (SELECT 1 FROM log_embeddings e WHERE e.text_hash = n.text_hash)"
    ).fetchall()[0][0]
    con.unregister("new_vectors")
    return int(added)


def mark_hours(con: duckdb.DuckDBPyConnection, hours: Iterable[dt.datetime], reason: str) -> int:
    """Mark hours of `log_cluster_counts_1m` to rebuild (the log sensor requests them)."""
    distinct = sorted({h.replace(minute=0, second=0, microsecond=0) for h in hours})
    if distinct:
        con.executemany(
            "INSERT INTO partition_marks"
            " VALUES (nextval('partition_marks_seq'), ?, ?, ?, NULL, now()::TIMESTAMP)",
            [[COUNTS_ASSET, hour, reason] for hour in distinct],
        )
    return len(distinct)


@dataclass(frozen=True)
class CountsBuild:
    """One hour of `log_cluster_counts_1m` rebuilt."""

    hour: dt.datetime
    rows: int
    lines: int
    unclustered: int


def build_counts_hour(warehouse_path: str | os.PathLike[str] | None, hour: dt.datetime) -> CountsBuild:
    """Rebuild one hour of per-minute cluster counts atomically (idempotent)."""
    start = hour.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    end = start + dt.timedelta(hours=1)
    with warehouse.transaction(warehouse_path) as con:
        con.execute("DELETE FROM log_cluster_counts_1m WHERE minute >= ? AND minute < ?", [start, end])
        con.execute(
            "INSERT INTO log_cluster_counts_1m"
            " SELECT date_trunc('minute', ts), service, cluster_id, count(*) FROM log_lines"
            " WHERE ts >= ? AND ts < ? AND cluster_id IS NOT NULL GROUP BY ALL",
            [start, end],
        )
        rows, lines = con.execute(
            "SELECT count(*), coalesce(sum(count), 0) FROM log_cluster_counts_1m"
            " WHERE minute >= ? AND minute < ?",
            [start, end],
        ).fetchall()[0]
        unclustered = con.execute(
            "SELECT count(*) FROM log_lines WHERE ts >= ? AND ts < ? AND cluster_id IS NULL", [start, end]
        ).fetchall()[0][0]
        con.execute(
            "INSERT OR REPLACE INTO partition_builds VALUES (?, ?, ?, ?, now()::TIMESTAMP)",
            [COUNTS_ASSET, start, rows, lines],
        )
    return CountsBuild(start, int(rows), int(lines), int(unclustered))


def counts_match_lines(
    warehouse_path: str | os.PathLike[str] | None, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(lines counted in the counts table, clustered lines in log_lines) over [start, end)."""
    with warehouse.connect(warehouse_path) as con:
        counted = con.execute(
            "SELECT coalesce(sum(count), 0) FROM log_cluster_counts_1m WHERE minute >= ? AND minute < ?",
            [start, end],
        ).fetchall()[0][0]
        lines = con.execute(
            "SELECT count(*) FROM log_lines WHERE ts >= ? AND ts < ? AND cluster_id IS NOT NULL", [start, end]
        ).fetchall()[0][0]
    return int(counted), int(lines)


def read_counts(
    warehouse_path: str | os.PathLike[str] | None, start: dt.datetime, end: dt.datetime
) -> pd.DataFrame:
    """Counts of [start, end) with each cluster's template, largest first."""
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT c.minute, c.service, c.cluster_id, c.count, k.template FROM log_cluster_counts_1m c"
            " LEFT JOIN log_clusters k USING (cluster_id) WHERE c.minute >= ? AND c.minute < ?"
            " ORDER BY c.minute, c.count DESC",
            [start, end],
        ).df()


def top_clusters(warehouse_path: str | os.PathLike[str] | None, limit: int = 10) -> pd.DataFrame:
    """The largest live clusters of every service."""
    with warehouse.connect(warehouse_path) as con:
        return con.execute(
            "SELECT service, cluster_id, size, max_level, template, first_seen, last_seen FROM log_clusters"
            " WHERE merged_into IS NULL ORDER BY size DESC LIMIT ?",
            [limit],
        ).df()
