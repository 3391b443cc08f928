"""The log stage's tables: every read and write of `log_lines`, `log_offsets`, `log_clusters` (with
its version in `log_cluster_state`), `log_embeddings` and `log_cluster_counts_1m` (whose builds
are recorded through `sreops.marks`, the one writer of partition marks and builds).

Functions take an open DuckDB connection (`sreops.warehouse.connect` / `transaction`, opened by
`sreops.logs.run`) and are short: heavy work (reading files, clustering, embeddings) happens
between a read and a write, never while a connection is held. Nothing here decides anything; this
is the only module that writes these tables. (The alerting stage reads some of them for its own
messages: `sreops.alerting.context`, `digest`, `health`.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd

from sreops import marks, warehouse
from sreops.logs.state import Cluster, ClusterStats, ServiceState

if TYPE_CHECKING:
    from sreops.ingest.logfiles import Offset

COUNTS_ASSET = "log_cluster_counts_1m"
OFFSET_COLUMNS = (
    "service, path, device, inode, fingerprint, fingerprint_bytes, byte_offset, line_no, header, updated_at"
)


class ConcurrentClusteringError(RuntimeError):
    """Another clustering run changed a service's clusters while this one worked; run again."""


@dataclass(frozen=True)
class CountsBuild:
    """One hour of `log_cluster_counts_1m` rebuilt."""

    hour: dt.datetime
    rows: int
    lines: int
    unclustered: int


# -- log_offsets and the new log_lines of an ingestion run -----------------------------------
def read_offsets(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every `log_offsets` row (columns as `OFFSET_COLUMNS`), in a stable order."""
    return con.execute(
        f"SELECT {OFFSET_COLUMNS} FROM log_offsets ORDER BY device, inode, service, path"
    ).fetchall()


def write_ingest(
    con: duckdb.DuckDBPyConnection, rows: list[dict], offsets: list[Offset], now: dt.datetime
) -> None:
    """Append the records read (`log_lines`) and replace `log_offsets` with where reading stopped."""
    if rows:
        frame = pd.DataFrame(rows)
        frame["ingested_at"] = now
        frame["line_id"] = warehouse.next_ids(con, "log_lines_seq", len(frame))
        con.register("new_log_lines", frame)
        con.execute(
            "INSERT INTO log_lines (line_id, ts, service, source_file, line_no, message, level,"
            " cluster_id, byte_offset, ingested_at)"
            " SELECT line_id, ts, service, source_file, line_no, message, level, NULL,"
            " byte_offset, ingested_at FROM new_log_lines"
        )
        con.unregister("new_log_lines")
    con.execute("DELETE FROM log_offsets")
    if offsets:
        con.executemany(
            f"INSERT INTO log_offsets ({OFFSET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    o.service,
                    o.path,
                    o.device,
                    o.inode,
                    o.fingerprint,
                    o.fingerprint_bytes,
                    o.byte_offset,
                    o.line_no,
                    o.header,
                    o.updated_at or now,
                ]
                for o in offsets
            ],
        )


# -- log_lines waiting for a cluster, and their cluster ids ----------------------------------
def pending_lines(con: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
    """Up to `limit` lines with no cluster yet, oldest first: line_id, ts, service, message, level."""
    return con.execute(
        "SELECT line_id, ts, service, message, level FROM log_lines WHERE cluster_id IS NULL"
        " ORDER BY line_id LIMIT ?",
        [limit],
    ).df()


def service_starts(con: duckdb.DuckDBPyConnection, services: list[str]) -> dict[str, dt.datetime]:
    """The time of each service's first stored line."""
    return dict(
        con.execute(
            "SELECT service, min(ts) FROM log_lines WHERE service IN (SELECT unnest(?)) GROUP BY service",
            [services],
        ).fetchall()
    )


def assign_clusters(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Set the cluster id of lines still without one (`frame`: line_id, cluster_id)."""
    con.register("assigned_lines", frame)
    con.execute(
        "UPDATE log_lines SET cluster_id = a.cluster_id FROM assigned_lines a"
        " WHERE log_lines.line_id = a.line_id AND log_lines.cluster_id IS NULL"
    )
    con.unregister("assigned_lines")


def relabel(con: duckdb.DuckDBPyConnection, service: str, absorbed: str, into: str) -> list[dt.datetime]:
    """Move a merged cluster's stored lines to the cluster that absorbed it; returns the hours touched."""
    hours = con.execute(
        "SELECT DISTINCT date_trunc('hour', ts) FROM log_lines WHERE service = ? AND cluster_id = ?",
        [service, absorbed],
    ).fetchall()
    con.execute(
        "UPDATE log_lines SET cluster_id = ? WHERE service = ? AND cluster_id = ?",
        [into, service, absorbed],
    )
    return [h[0] for h in hours]


# -- log_clusters and log_cluster_state ------------------------------------------------------
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


# -- log_embeddings ---------------------------------------------------------------------------
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


# -- log_cluster_counts_1m --------------------------------------------------------------------
def build_counts_hour(con: duckdb.DuckDBPyConnection, hour: dt.datetime) -> CountsBuild:
    """Rebuild one hour of per-minute cluster counts and record the build (call in a transaction)."""
    start = hour.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    end = start + dt.timedelta(hours=1)
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
    marks.record_build(con, COUNTS_ASSET, start, rows, lines)
    return CountsBuild(start, int(rows), int(lines), int(unclustered))


def counts_match_lines(
    con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime
) -> tuple[int, int]:
    """(lines counted in the counts table, clustered lines in log_lines) over [start, end)."""
    counted = con.execute(
        "SELECT coalesce(sum(count), 0) FROM log_cluster_counts_1m WHERE minute >= ? AND minute < ?",
        [start, end],
    ).fetchall()[0][0]
    lines = con.execute(
        "SELECT count(*) FROM log_lines WHERE ts >= ? AND ts < ? AND cluster_id IS NOT NULL", [start, end]
    ).fetchall()[0][0]
    return int(counted), int(lines)


def read_counts(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime) -> pd.DataFrame:
    """Counts of [start, end) with each cluster's template, largest first."""
    return con.execute(
        "SELECT c.minute, c.service, c.cluster_id, c.count, k.template FROM log_cluster_counts_1m c"
        " LEFT JOIN log_clusters k USING (cluster_id) WHERE c.minute >= ? AND c.minute < ?"
        " ORDER BY c.minute, c.count DESC",
        [start, end],
    ).df()


def top_clusters(con: duckdb.DuckDBPyConnection, limit: int = 10) -> pd.DataFrame:
    """The largest live clusters of every service."""
    return con.execute(
        "SELECT service, cluster_id, size, max_level, template, first_seen, last_seen FROM log_clusters"
        " WHERE merged_into IS NULL ORDER BY size DESC LIMIT ?",
        [limit],
    ).df()
