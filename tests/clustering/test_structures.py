"""Agreement, consensus and distinct structures among partitions; the structures figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.metrics import adjusted_rand_score

from meterflow.clustering.structure_figures import plot_structures
from meterflow.clustering.structures import (
    agreement_matrix,
    ari_fast,
    consensus,
    distinct_structures,
)


def test_ari_fast_is_the_adjusted_rand_index():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.integers(0, 4, 50), rng.integers(0, 3, 50)
        assert ari_fast(a, b) == pytest.approx(adjusted_rand_score(a, b))
    a = rng.integers(0, 4, 50)
    assert ari_fast(a, a + 7) == pytest.approx(1.0)
    assert ari_fast(np.zeros(5), np.zeros(5)) == adjusted_rand_score(np.zeros(5), np.zeros(5))


def test_agreement_matrix_is_symmetric_with_ones_on_the_diagonal():
    rng = np.random.default_rng(1)
    labelings = [rng.integers(0, 3, 30) for _ in range(4)]
    A = agreement_matrix(labelings)
    np.testing.assert_allclose(A, A.T)
    np.testing.assert_allclose(np.diag(A), 1.0)
    assert A[0, 2] == pytest.approx(adjusted_rand_score(labelings[0], labelings[2]))


def test_consensus_gives_one_vote_per_family_of_the_other_owners_voters():
    A = np.array(
        [
            [1.0, 0.2, 0.8, 0.1],
            [0.2, 1.0, 0.3, 0.5],
            [0.8, 0.3, 1.0, 0.4],
            [0.1, 0.5, 0.4, 1.0],
        ]
    )
    owners = ["a", "a", "b", "c"]  # a has two partitions (two k)
    families = ["f", "f", "g", "g"]  # b and c are near-duplicates: one vote between them
    got = consensus(A, owners, families, [0, 1, 2, 3])
    by_family = [(0.8 + 0.1) / 2, (0.3 + 0.5) / 2, ((0.8 + 0.3) / 2 + 0.4) / 2, (0.3 + 0.4) / 2]
    np.testing.assert_allclose(got, by_family)
    np.testing.assert_allclose(consensus(A, owners, families, [2, 3])[:2], [0.45, 0.4])
    assert np.isnan(consensus(A[:2, :2], ["a", "a"], ["f", "f"], [0, 1])).all()


def test_consensus_with_strata_counts_only_the_voters_of_the_same_stratum():
    A = np.array(
        [
            [1.0, 0.2, 0.8, 0.1],
            [0.2, 1.0, 0.3, 0.5],
            [0.8, 0.3, 1.0, 0.4],
            [0.1, 0.5, 0.4, 1.0],
        ]
    )
    owners, families = ["a", "a", "b", "c"], ["f", "f", "g", "h"]
    ks = [2, 3, 2, 3]  # a's k=2 partition meets only b's, its k=3 one only c's
    got = consensus(A, owners, families, [0, 1, 2, 3], strata=ks)
    np.testing.assert_allclose(got, [0.8, 0.5, 0.8, 0.5])
    alone = consensus(A, owners, families, [0, 1, 2, 3], strata=[2, 3, 4, 5])
    assert np.isnan(alone).all()  # no other owner at the same k


def test_distinct_structures_keep_the_best_of_each_agreeing_group():
    A = np.array(
        [
            [1.0, 0.9, 0.1, 0.0],
            [0.9, 1.0, 0.2, 0.1],
            [0.1, 0.2, 1.0, 0.7],
            [0.0, 0.1, 0.7, 1.0],
        ]
    )
    order = [1, 0, 3, 2]

    def best(left: np.ndarray) -> int:
        return min(left, key=order.index)

    found = distinct_structures(best, A, threshold=0.5)
    assert found.leaders == [1, 3] and found.sizes == [2, 2]
    np.testing.assert_allclose(found.agreement, [[1.0, 0.1], [0.1, 1.0]])
    assert distinct_structures(best, A, threshold=0.95).leaders == [1, 0, 3]
    assert distinct_structures(best, A, threshold=0.95, top=2).leaders == [1, 0]


def test_structures_figure_has_a_panel_per_cluster_and_the_heatmap():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 24))
    labelings = [rng.integers(0, 3, 40), rng.integers(0, 2, 40)]
    fig = plot_structures(X, labelings, ["kmeans k=3", "kshape k=2"], np.eye(2))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 + 2 + 2  # panels, heatmap, colour bar
