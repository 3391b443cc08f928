"""Cluster state as plain data: what a clusterer saves and restores, and what the warehouse adds.

A service's state is a list of `Cluster` records (live and merged, so that merged ids still
resolve: `StreamingClusterer.snapshot()` and `restore()`), the `ClusterStats` the warehouse
keeps beside each, and the version that guards against two runs at once (`ServiceState`).
`sreops.logs.store` loads and saves them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sreops.logs.slots import render


@dataclass(eq=False)
class Cluster:
    """One event pattern: its template tokens and how many messages it holds."""

    cluster_id: str
    seq: int
    tokens: list[str]
    origin: str
    size: int = 0
    merged_into: str | None = None

    @property
    def template(self) -> str:
        """The readable template: constant text with `<*>` for each variable part."""
        return render(self.tokens)


@dataclass(frozen=True)
class Merge:
    """Cluster `absorbed` was merged into `into` (both ids stay valid; `absorbed` resolves to `into`)."""

    absorbed: str
    into: str


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
