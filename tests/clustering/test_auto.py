"""model=auto: every candidate is fitted and scored without labels; the planted structure wins."""

from __future__ import annotations

import numpy as np
import pytest

from meterflow.clustering.auto import (
    AUTO_CANDIDATES,
    Candidate,
    choose_configuration,
    null_reference,
)
from meterflow.clustering.metrics import ari, nmi
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from tests.clustering.test_models import make_profiles


def matrices(X: np.ndarray, window: int):
    def matrix(metric: str) -> np.ndarray:
        return condensed_to_square(distance_condensed(metric, X, window), len(X))

    return matrix


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    X = make_profiles(15, 24, seed=4)
    return X, np.repeat(np.arange(4), 15)


def test_auto_picks_a_configuration_that_recovers_the_planted_clusters(planted):
    X, truth = planted
    best, scored = choose_configuration(X, matrices(X, 3), k=4, window=3, seed=0)
    assert [s.candidate for s in scored] == list(AUTO_CANDIDATES)
    assert best.gap == max(s.gap for s in scored)
    assert ari(truth, best.result.labels) > 0.9
    assert best.silhouette > best.null_silhouette
    for s in scored:  # every candidate fitted at k and scored in its own space
        assert s.result.k == 4 and -1 <= s.stability <= 1 and np.isfinite(s.gap)


def test_auto_chooses_k_per_candidate_when_k_is_not_given(planted):
    X, truth = planted
    few = (
        Candidate("kmeans"),
        Candidate("kmedoids", "dtw"),
        Candidate("kmeans", representation="shape"),
    )
    best, scored = choose_configuration(
        X, matrices(X, 3), candidates=few, k=0, window=3, seed=0, k_range=(2, 6)
    )
    assert all(s.k_selection is not None for s in scored)
    assert best.result.k == 4 and ari(truth, best.result.labels) > 0.9


def test_shape_features_cluster_shapeless_data_too_so_they_do_not_win_by_silhouette(planted):
    """The null reference is why: eight shape features give a high silhouette on shuffled
    profiles as well, so their gap stays small."""
    X, _ = planted
    shape = (Candidate("kmeans", representation="shape"),)
    (scored,) = choose_configuration(X, matrices(X, 3), candidates=shape, k=4, seed=0)[1]
    assert scored.null_silhouette > 0.3


def test_null_reference_keeps_each_slots_values_and_breaks_the_shapes(planted):
    X, _ = planted
    null = null_reference(X, seed=1)
    np.testing.assert_array_equal(np.sort(null, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(null, X)
    np.testing.assert_array_equal(null, null_reference(X, seed=1))


def test_consensus_is_each_candidates_mean_nmi_with_the_others(planted):
    X, _ = planted
    few = (Candidate("kmeans"), Candidate("kmedoids", "dtw"), Candidate("kshape"))
    _, scored = choose_configuration(X, matrices(X, 3), candidates=few, k=4, seed=0)
    for s in scored:
        others = [nmi(s.result.labels, o.result.labels) for o in scored if o is not s]
        assert s.consensus == pytest.approx(np.mean(others)) and 0 <= s.consensus <= 1
