"""The nearest table row by weighted Hamming distance (``problems/_tables.NearestRows``) against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from elasticnas.problems._tables import NearestRows


def brute_force(table: np.ndarray, queries: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dist = ((queries[:, None, :] != table[None, :, :]) * weights).sum(axis=2)
    return np.argmin(dist, axis=1), dist.min(axis=1)  # argmin: the lower row on ties


@pytest.mark.parametrize(
    "weights",
    [[8.0, 4.0, 4.0] + [1.0] * 9, [4.0, 4.0] + [1.0] * 10, [1.0] * 12, [2.0] * 6 + [1.0] * 6],
    ids=["three-levels", "two-heavy", "uniform", "half-heavy"],
)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("first_gene", ["varies", "constant"])  # constant: one value in the table, any in queries
def test_the_nearest_row_is_the_brute_force_one_near_and_far_from_the_table(
    weights: list[float], seed: int, first_gene: str
) -> None:
    rng = np.random.default_rng(seed)
    cardinalities = np.array([4, 3, 3] + [3] * 9)
    w = np.array(weights, dtype=np.float32)
    table = rng.integers(0, cardinalities, size=(300, 12))
    if first_gene == "constant":
        table[:, 0] = 2
    parents = table[rng.integers(len(table), size=400)]
    near = parents.copy()  # one to three genes changed: mostly matched among the rows sharing the heaviest genes
    for k, n_changes in enumerate(rng.integers(1, 4, size=len(near))):
        genes = rng.choice(12, size=n_changes, replace=False)
        near[k, genes] = (near[k, genes] + rng.integers(1, cardinalities[genes])) % cardinalities[genes]
    far = rng.integers(0, cardinalities, size=(200, 12))
    queries = np.vstack([near, far, table[:50], near[:30]])  # table rows (distance 0) and repeated queries too
    pos, dist = NearestRows(table, cardinalities, w)(queries)
    expected_pos, expected_dist = brute_force(table, queries, w)
    np.testing.assert_array_equal(pos, expected_pos)
    np.testing.assert_array_equal(dist, expected_dist)
    assert np.all(dist[len(near) + len(far) : len(near) + len(far) + 50] == 0)


def test_ties_go_to_the_lower_row_inside_and_outside_the_heaviest_genes_group() -> None:
    table = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 0]])
    w = np.array([4.0, 1.0, 1.0], dtype=np.float32)
    nearest = NearestRows(table, np.array([2, 2, 2]), w)
    # [0, 1, 0]: rows 1 and 2 share gene 0 and are 1 away (row 1 first); row 3 (gene 0 differs) is 4 away
    # [1, 0, 1]: rows 0 (1 away) and none else near; [0, 1, 0] again to check repeated queries
    pos, dist = nearest(np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]]))
    assert pos.tolist() == [1, 0, 1] and dist.tolist() == [1.0, 1.0, 1.0]
