"""Context pairs and nearest-earlier-pair distances (the geometry under the novelty member)."""

from __future__ import annotations

import numpy as np
import pytest

from sreops.detection.neighbours import ReferenceIndex, context_pairs, leave_out_distances, nearest_earlier


def test_context_is_the_mean_of_the_points_before_each_point() -> None:
    values = np.array([1.0, 3.0, 5.0, 7.0, np.nan, 9.0])
    pairs = context_pairs(values, context=2)
    assert np.isnan(pairs[0, 0])
    assert pairs[1].tolist() == [1.0, 3.0]
    assert pairs[2].tolist() == [2.0, 5.0]  # mean of the two before
    assert pairs[3].tolist() == [4.0, 7.0]
    assert pairs[5].tolist() == [7.0, 9.0]  # a missing value does not count


def test_context_of_the_first_points_comes_from_history() -> None:
    pairs = context_pairs(np.array([10.0, 20.0]), context=2, history=np.array([2.0, 4.0]))
    assert pairs[:, 0].tolist() == [3.0, 7.0]


def test_nearest_earlier_ignores_references_inside_the_exclusion_zone() -> None:
    refs = np.array([[0.0, 0.0], [5.0, 5.0], [1.0, 1.0]])
    ref_times = np.array([0.0, 100.0, 190.0])
    query = np.array([[1.0, 1.0]])
    dist, index = nearest_earlier(query, np.array([200.0]), refs, ref_times, exclusion=50)
    assert index[0] == 0 and dist[0] == pytest.approx(np.sqrt(2))


def brute_force(queries, query_times, refs, ref_times, exclusion):
    """The definition, written out: nearest ref older than each query's time minus the exclusion."""
    out = []
    for q, t in zip(queries, query_times, strict=True):
        allowed = refs[ref_times < t - exclusion]
        out.append(np.sqrt(((allowed - q) ** 2).sum(axis=1)).min() if len(allowed) else np.inf)
    return np.array(out)


@pytest.mark.parametrize("n_refs", [50, 3000])
def test_nearest_earlier_and_reference_index_agree_with_the_definition(n_refs: int) -> None:
    rng = np.random.default_rng(n_refs)
    refs = rng.normal(size=(n_refs, 2))
    times = np.arange(n_refs, dtype=float) * 60
    queries = rng.normal(size=(300, 2))
    query_times = times[-1] - 200 * 60 + np.arange(300, dtype=float) * 60  # overlapping the refs in time
    expected = brute_force(queries, query_times, refs, times, 600)
    got, index = nearest_earlier(queries, query_times, refs, times, exclusion=600)
    assert np.allclose(got, expected)
    found = index >= 0
    assert np.allclose(np.sqrt(((refs[index[found]] - queries[found]) ** 2).sum(axis=1)), expected[found])
    later = query_times >= times[-1] - 600 + 600  # queries the model index may serve
    tree = ReferenceIndex(refs, times, tree_until=times[-1] - 600)
    fast, _ = tree.query(queries[later], query_times[later], exclusion=600)
    assert np.allclose(fast, expected[later])


def test_leave_out_distance_skips_the_neighbours_in_time() -> None:
    values = np.array([[0.0, 0.0], [0.0, 0.1], [10.0, 10.0], [0.0, 0.3]])
    times = np.array([0.0, 60.0, 3600.0, 7200.0])
    distances = leave_out_distances(values, times, exclusion=120)
    assert distances[0] == pytest.approx(0.3)  # not the point a minute later
    assert distances[2] == pytest.approx(np.hypot(10, 9.7))  # the nearest of the others
