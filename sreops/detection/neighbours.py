"""Context pairs and nearest-earlier-neighbour search: the geometry under the novelty member.

Each point becomes a pair `(context, value)`: the mean of the `context` points before it, and the
value itself. `nearest_earlier` finds, for each query, the nearest reference ordered before the
query minus an exclusion zone (as in a left matrix profile), a k-d tree serving the references
older than a whole block of queries. Pure numpy and scipy: scoring code imports it without PyOD.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLOCK = 64  # queries per block: refs older than the block's cut-off use a tree, the rest a mask


def context_pairs(values: np.ndarray, context: int, history: np.ndarray | None = None) -> np.ndarray:
    """(n, 2): the mean of the finite values among the `context` points before each point, and the value.

    Where those are all missing, the last earlier finite value; `history` (values before the first)
    serves the first points' context.
    """
    values = np.asarray(values, dtype=float)
    before = np.asarray(history if history is not None else [], dtype=float)
    full = np.concatenate([before, values])
    n, offset = len(values), len(before)
    pairs = np.full((n, 2), np.nan)
    pairs[:, 1] = values
    if n == 0:
        return pairs
    finite = np.isfinite(full)
    cum = np.concatenate([[0.0], np.cumsum(np.where(finite, full, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(finite)])
    right = np.arange(offset, offset + n)
    left = np.maximum(right - context, 0)
    count = cnt[right] - cnt[left]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cum[right] - cum[left]) / count
    last_index = np.maximum.accumulate(np.where(finite, np.arange(len(full)), -1))
    previous_index = np.where(right > 0, last_index[np.maximum(right - 1, 0)], -1)
    previous = np.where(previous_index >= 0, full[np.maximum(previous_index, 0)], np.nan)
    pairs[:, 0] = np.where(count > 0, mean, previous)
    return pairs


def nearest_earlier(
    queries: np.ndarray, query_order: np.ndarray, refs: np.ndarray, ref_order: np.ndarray, exclusion: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: distance to, and index of, the nearest ref with order < query order - exclusion.

    Queries and refs are sorted by order. For each block of queries, the refs older than the whole
    block's cut-off go through a k-d tree and only the few in between are masked by brute force.
    Returns inf / -1 where no ref qualifies or the query has a missing coordinate.
    """
    m = len(queries)
    dist = np.full(m, np.inf)
    index = np.full(m, -1, dtype=np.int64)
    ok_refs = np.isfinite(refs).all(axis=1) if len(refs) else np.zeros(0, dtype=bool)
    if m == 0 or not ok_refs.any():
        return dist, index
    ref_pos = np.flatnonzero(ok_refs)
    r = refs[ok_refs]
    rt = np.asarray(ref_order, dtype=float)[ok_refs]
    qt = np.asarray(query_order, dtype=float)
    ok_q = np.isfinite(queries).all(axis=1)
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        q = np.where(ok_q[start:stop, None], queries[start:stop], 0.0)
        block_t = qt[start:stop]
        older = int(np.searchsorted(rt, block_t.min() - exclusion, side="left"))  # valid for every query
        newer = int(np.searchsorted(rt, block_t.max() - exclusion, side="left"))  # valid for some
        best_d = np.full(stop - start, np.inf)
        best_i = np.full(stop - start, -1, dtype=np.int64)
        if older > 0:
            if older > 4 * BLOCK:
                from scipy.spatial import cKDTree

                d, i = cKDTree(r[:older]).query(q, k=1)
            else:
                d2 = (
                    (q**2).sum(axis=1)[:, None]
                    + (r[:older] ** 2).sum(axis=1)[None, :]
                    - 2.0 * q @ r[:older].T
                )
                i = d2.argmin(axis=1)
                d = np.sqrt(np.clip(d2[np.arange(stop - start), i], 0.0, None))
            best_d, best_i = d, i
        if newer > older:
            part = r[older:newer]
            d2 = (q**2).sum(axis=1)[:, None] + (part**2).sum(axis=1)[None, :] - 2.0 * q @ part.T
            d2[rt[None, older:newer] >= block_t[:, None] - exclusion] = np.inf
            i = d2.argmin(axis=1)
            d = np.sqrt(np.clip(d2[np.arange(stop - start), i], 0.0, None))
            closer = d < best_d
            best_d = np.where(closer, d, best_d)
            best_i = np.where(closer, i + older, best_i)
        good = np.isfinite(best_d) & ok_q[start:stop]
        dist[start:stop] = np.where(good, best_d, np.inf)
        index[start:stop] = np.where(good, ref_pos[np.clip(best_i, 0, None)], -1)
    return dist, index


@dataclass
class ReferenceIndex:
    """Reference rows: a k-d tree over those ordered before `tree_until`, the rest brute force.

    Queries at or after `tree_until + exclusion` may use every tree row, so only the few refs of
    the last context window (and the recent rows the caller adds) need an order mask.
    """

    refs: np.ndarray  # (n, d)
    order: np.ndarray  # (n,), ascending
    tree_until: float
    _tree: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ok = np.isfinite(self.refs).all(axis=1) if len(self.refs) else np.zeros(0, dtype=bool)
        self.refs = np.asarray(self.refs, dtype=float)[ok]
        self.order = np.asarray(self.order, dtype=float)[ok]
        self.split = int(np.searchsorted(self.order, self.tree_until, side="left"))

    @property
    def tree(self):  # noqa: ANN201 (scipy's cKDTree, imported lazily)
        if self._tree is None and self.split > 0:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.refs[: self.split])
        return self._tree

    def query(
        self, queries: np.ndarray, query_order: np.ndarray, exclusion: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest ref ordered before each query's order - exclusion: (distance, index into refs)."""
        m = len(queries)
        dist = np.full(m, np.inf)
        index = np.full(m, -1, dtype=np.int64)
        if m == 0 or len(self.refs) == 0:
            return dist, index
        tree_ok = self.split > 0 and float(np.min(query_order)) - exclusion >= self.tree_until
        split = self.split if tree_ok else 0
        ok_q = np.isfinite(queries).all(axis=1)
        if split and ok_q.any():
            d, i = self.tree.query(queries[ok_q], k=1)
            dist[ok_q] = d
            index[ok_q] = i
        if split < len(self.refs):
            d, i = nearest_earlier(queries, query_order, self.refs[split:], self.order[split:], exclusion)
            better = d < dist
            dist[better] = d[better]
            index[better] = i[better] + split
        return dist, index


def leave_out_distances(refs: np.ndarray, order: np.ndarray, exclusion: float, k: int = 16) -> np.ndarray:
    """Novelty of every ref against all the others beyond `exclusion` in order (both directions).

    The calibration sample (PyOD's `decision_scores_`). One tree query of k neighbours serves
    almost every row; rows whose k nearest all sit inside their own exclusion zone (runs of
    identical values) are resolved by brute force.
    """
    from scipy.spatial import cKDTree

    refs = np.asarray(refs, dtype=float)
    order = np.asarray(order, dtype=float)
    n = len(refs)
    if n < 2:
        return np.full(n, np.nan)
    tree = cKDTree(refs)
    k = min(k, n)
    dist, index = tree.query(refs, k=k)
    far = np.abs(order[index] - order[:, None]) > exclusion
    out = np.where(far, dist, np.inf).min(axis=1)
    for row in np.flatnonzero(~np.isfinite(out)):
        away = np.abs(order - order[row]) > exclusion
        out[row] = np.sqrt(((refs[away] - refs[row]) ** 2).sum(axis=1)).min() if away.any() else np.nan
    return out
