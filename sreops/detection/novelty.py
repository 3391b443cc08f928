"""Novelty: how far a value, seen from its recent level, is from everything seen before it.

Each point becomes a pair `(context, value)`: the mean of the values in the `context` seconds
before it, and the value itself. A pair's novelty is the Euclidean distance to the nearest pair
that ended earlier than its own context began (an exclusion zone, as in a left matrix profile, so a
point is never "explained" by the samples it is made of). A new level, a spike, a dip that never
happened from this level, all sit far from every earlier pair; a daily transition seen every day
does not. This is k-nearest-neighbour outlier detection (PyOD's `KNN` with k = 1) whose reference
set grows with the stream, so what has been seen once is no longer novel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

BLOCK = 64  # queries per block: refs older than the block's cut-off use a tree, the rest a mask


def context_pairs(times_s: np.ndarray, values: np.ndarray, context_s: float) -> np.ndarray:
    """(n, 2): the mean of the values in [t - context_s, t) (else the previous value) and the value."""
    times_s = np.asarray(times_s, dtype=float)
    values = np.asarray(values, dtype=float)
    n = len(values)
    pairs = np.full((n, 2), np.nan)
    pairs[:, 1] = values
    if n == 0:
        return pairs
    finite = np.isfinite(values)
    cum = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])
    cnt = np.concatenate([[0], np.cumsum(finite)])
    left = np.searchsorted(times_s, times_s - context_s, side="left")
    right = np.searchsorted(times_s, times_s, side="left")  # excludes the point and its duplicates
    count = cnt[right] - cnt[left]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (cum[right] - cum[left]) / count
    # a gap longer than the context: fall back to the last earlier finite value
    last_index = np.maximum.accumulate(np.where(finite, np.arange(n), -1))
    previous = np.full(n, np.nan)
    has_previous = right > 0
    previous_index = np.where(has_previous, last_index[np.maximum(right - 1, 0)], -1)
    ok = previous_index >= 0
    previous[ok] = values[previous_index[ok]]
    pairs[:, 0] = np.where(count > 0, mean, previous)
    return pairs


def nearest_earlier(
    queries: np.ndarray, query_times: np.ndarray, refs: np.ndarray, ref_times: np.ndarray, exclusion_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: distance to, and index of, the nearest ref with time < query time - exclusion_s.

    Queries and refs are in time order. For each block of queries, the refs older than the whole
    block's cut-off go through a k-d tree and only the few in between are masked by brute force.
    Returns inf / -1 where no ref qualifies or the query has a missing coordinate.
    """
    m = len(queries)
    dist = np.full(m, np.inf)
    index = np.full(m, -1, dtype=np.int64)
    ok_refs = np.isfinite(refs).all(axis=1)
    if m == 0 or not ok_refs.any():
        return dist, index
    ref_pos = np.flatnonzero(ok_refs)
    r = refs[ok_refs]
    rt = np.asarray(ref_times, dtype=float)[ok_refs]
    qt = np.asarray(query_times, dtype=float)
    ok_q = np.isfinite(queries).all(axis=1)
    for start in range(0, m, BLOCK):
        stop = min(m, start + BLOCK)
        q = np.where(ok_q[start:stop, None], queries[start:stop], 0.0)
        block_t = qt[start:stop]
        older = int(np.searchsorted(rt, block_t.min() - exclusion_s, side="left"))  # valid for every query
        newer = int(np.searchsorted(rt, block_t.max() - exclusion_s, side="left"))  # valid for some
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
            d2[rt[None, older:newer] >= block_t[:, None] - exclusion_s] = np.inf
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
    """A model's reference pairs: a k-d tree over those older than `tree_until`, the rest brute force.

    Queries at or after `tree_until + exclusion_s` may use every tree point, so only the few refs
    of the last context window (and the recent points the caller adds) need a time mask.
    """

    refs: np.ndarray  # (n, 2)
    times_s: np.ndarray  # (n,), ascending
    tree_until: float
    _tree: object | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        ok = np.isfinite(self.refs).all(axis=1)
        self.refs = np.asarray(self.refs, dtype=float)[ok]
        self.times_s = np.asarray(self.times_s, dtype=float)[ok]
        self.split = int(np.searchsorted(self.times_s, self.tree_until, side="left"))

    @property
    def tree(self):
        if self._tree is None and self.split > 0:
            from scipy.spatial import cKDTree

            self._tree = cKDTree(self.refs[: self.split])
        return self._tree

    def query(
        self, queries: np.ndarray, query_times: np.ndarray, exclusion_s: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest ref older than each query's time - exclusion_s: (distance, index into refs)."""
        m = len(queries)
        dist = np.full(m, np.inf)
        index = np.full(m, -1, dtype=np.int64)
        if m == 0 or len(self.refs) == 0:
            return dist, index
        tree_ok = self.split > 0 and float(np.min(query_times)) - exclusion_s >= self.tree_until
        split = self.split if tree_ok else 0
        ok_q = np.isfinite(queries).all(axis=1)
        if split and ok_q.any():
            d, i = self.tree.query(queries[ok_q], k=1)
            dist[ok_q] = d
            index[ok_q] = i
        if split < len(self.refs):
            d, i = nearest_earlier(queries, query_times, self.refs[split:], self.times_s[split:], exclusion_s)
            better = d < dist
            dist[better] = d[better]
            index[better] = i[better] + split
        return dist, index


def leave_out_distances(
    refs: np.ndarray, times_s: np.ndarray, exclusion_s: float, k: int = 32, max_points: int = 2000
) -> np.ndarray:
    """Novelty of (at most `max_points`, evenly spaced) refs against all others beyond exclusion_s in time.

    The calibration sample. Two-sided, so one tree query serves every sampled point; a sample of a
    few thousand resolves tail probabilities to 1/max_points, beyond which the calibration's
    extrapolation takes over anyway.
    """
    from scipy.spatial import cKDTree

    refs = np.asarray(refs, dtype=float)
    times_s = np.asarray(times_s, dtype=float)
    n = len(refs)
    if n < 2:
        return np.full(n, np.nan)
    rows = np.unique(np.linspace(0, n - 1, min(n, max_points)).round().astype(int))
    tree = cKDTree(refs)
    k = min(k, n)
    dist, index = tree.query(refs[rows], k=k)
    far = np.abs(times_s[index] - times_s[rows, None]) > exclusion_s
    out = np.where(far, dist, np.inf).min(axis=1)
    # rows whose k nearest all fall inside their own exclusion zone: brute force, rare
    for position in np.flatnonzero(~np.isfinite(out)):
        row = rows[position]
        away = np.abs(times_s - times_s[row]) > exclusion_s
        out[position] = np.sqrt(((refs[away] - refs[row]) ** 2).sum(axis=1)).min() if away.any() else np.nan
    return out
