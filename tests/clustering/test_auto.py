"""model=auto: every candidate is screened at every k without labels; the planted structure
wins, k included, and the chosen partition is refitted on every profile."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from meterflow.clustering.auto import (
    AUTO_CANDIDATES,
    STABLE,
    Candidate,
    Scored,
    _refit,
    best_per_candidate,
    candidates_table,
    choose,
    choose_configuration,
    null_reference,
    screening_rows,
    structures_table,
)
from meterflow.clustering.fit import fit_clustering
from meterflow.clustering.metrics import ari
from meterflow.clustering.registry import ALGORITHMS, DISTANCE_METRICS
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from tests.clustering.test_models import make_profiles

FEW = (
    Candidate("kmeans"),
    Candidate("kmedoids", "dtw"),
    Candidate("kmeans", representation="shape"),
)


def matrices(X: np.ndarray, window: int, asked: list[str] | None = None):
    def matrix(metric: str) -> np.ndarray:
        if asked is not None:
            asked.append(metric)
        return condensed_to_square(distance_condensed(metric, X, window), len(X))

    return matrix


@pytest.fixture(scope="module")
def planted() -> tuple[np.ndarray, np.ndarray]:
    X = make_profiles(15, 24, seed=4)
    return X, np.repeat(np.arange(4), 15)


def test_auto_picks_a_configuration_that_recovers_the_planted_clusters(planted):
    X, truth = planted
    choice = choose_configuration(X, matrices(X, 3), k=4, window=3, seed=0)
    assert [s.candidate for s in choice.scored] == list(AUTO_CANDIDATES)
    assert ari(truth, choice.result.labels) > 0.85  # the elastic configurations: 0.87-1.0 here
    assert choice.chosen.credible and choice.chosen.gap > 0
    for s in choice.scored:  # every candidate fitted at k and scored in its own space
        assert s.result.k == 4 and -1 <= s.stability <= 1 and np.isfinite(s.gap)


def test_auto_chooses_k_too(planted):
    X, truth = planted
    choice = choose_configuration(X, matrices(X, 3), candidates=FEW, window=3, k_range=(2, 6))
    assert sorted({s.result.k for s in choice.scored}) == [2, 3, 4, 5, 6]
    assert len(choice.scored) == len(FEW) * 5
    assert choice.result.k == 4 and ari(truth, choice.result.labels) > 0.85


def test_screening_on_a_sample_then_the_chosen_one_is_refitted_on_every_profile(planted):
    X, truth = planted
    asked: list[str] = []
    choice = choose_configuration(
        X, matrices(X, 3, asked), candidates=FEW, k=4, window=3, screen_rows=40
    )
    assert len(choice.rows) == 40 and len(choice.chosen.result.labels) == 40
    assert len(choice.result.labels) == len(X) and ari(truth, choice.result.labels) > 0.9
    metric = choice.chosen.candidate.distance_metric  # only the chosen metric, if any
    assert asked == ([metric] if metric == "dtw" else [])


def test_screening_rows_are_a_seeded_sample_or_all():
    np.testing.assert_array_equal(screening_rows(5, 10, 0), np.arange(5))
    rows = screening_rows(100, 30, 1)
    assert len(np.unique(rows)) == 30 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, screening_rows(100, 30, 1))


def test_candidates_are_registered_configurations():
    assert AUTO_CANDIDATES and all(c.registered() for c in AUTO_CANDIDATES)
    assert all(c.model in ALGORITHMS and c.distance_metric in DISTANCE_METRICS for c in FEW)
    assert not Candidate("kmedoids", "no_such_metric").registered()


def _scored(name: str, labels: list[int], gap: float, steady: float) -> Scored:
    result = SimpleNamespace(k=len(set(labels)), labels=np.array(labels))
    model, _, metric = name.partition("/")
    candidate = Candidate(model, metric or "euclidean")
    return Scored(candidate, result, steady, gap, 0.0)  # silhouette = gap, null 0


def test_the_k_the_configurations_agree_on_most_wins_then_its_most_central_partition():
    two, other_two = [0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1]
    three, near_three = [0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 2, 2]
    scored = [
        _scored("kmeans", two, gap=0.9, steady=0.95),  # its largest gap, but the others differ
        _scored("kmeans", three, gap=0.5, steady=0.9),
        _scored("kmedoids/dtw", other_two, gap=0.6, steady=0.9),
        _scored("kmedoids/dtw", three, gap=0.6, steady=0.9),
        _scored("kshape", two, gap=0.4, steady=0.8),
        _scored("kshape", near_three, gap=0.4, steady=0.8),
        _scored("som", three, gap=-0.1, steady=1.0),  # not beyond the null: no vote
    ]
    order, structures = choose(scored)
    assert [s.credible for s in scored] == [True] * 6 + [False]
    # k=3: kmeans and kmedoids/dtw agree, k-Shape nearly; k=2: kmedoids/dtw disagrees
    assert order[:3] == [3, 1, 5]  # tied consensus at k=3: the larger gap first
    assert order[3:] == [0, 4, 2, 6]  # then k=2 by consensus; the non-credible one last
    assert [s.proposed for s in scored] == [s.result.k == 3 for s in scored]
    # only the credible partitions of the other configurations at the same k vote, one vote
    # per family: kmedoids/dtw's (DTW) and k-Shape's (shape-based distance)
    expected = np.mean([adjusted_rand_score(two, other_two), 1.0])
    assert scored[0].consensus == pytest.approx(expected)
    assert structures.leaders == [3, 0, 2]  # the choice, then the two k=2 structures
    assert structures.sizes == [3, 3, 1]  # "three" thrice (som's too); "two" and both k-Shape's


def test_tables_list_every_partition_and_the_distinct_structures(planted):
    X, truth = planted
    choice = choose_configuration(X, matrices(X, 3), candidates=FEW, window=3, k_range=(2, 5))
    table = candidates_table(choice, truth)
    assert len(table) == len(choice.scored) and table["chosen"].sum() == 1
    assert {"ari", "nmi", "credible", "proposed", "consensus"} <= set(table.columns)
    tops = best_per_candidate(choice)
    assert sorted(table.iloc[tops]["candidate"]) == sorted(c.name for c in FEW)
    assert choice.order[0] in tops
    found = structures_table(choice)
    assert found["rank"].tolist() == list(range(1, len(found) + 1))
    assert found.loc[0, "configuration"] == choice.chosen.candidate.name
    assert found.loc[0, "agreement_with_1"] == pytest.approx(1.0)
    assert (found["agreement_with_1"].iloc[1:] < 0.5).all()  # distinct from #1
    assert found["largest_cluster"].between(0, 1).all() and found["partitions"].ge(1).all()


def test_shape_features_cluster_shapeless_data_too_so_they_do_not_win_by_silhouette(planted):
    """The null reference is why: eight shape features give a high silhouette on shuffled
    profiles as well, so their gap stays small."""
    X, _ = planted
    shape = (Candidate("kmeans", representation="shape"),)
    (scored,) = choose_configuration(X, matrices(X, 3), candidates=shape, k=4).scored
    assert scored.null_silhouette > 0.3


def test_null_reference_keeps_each_slots_values_and_breaks_the_shapes(planted):
    X, _ = planted
    null = null_reference(X, seed=1)
    np.testing.assert_array_equal(np.sort(null, axis=0), np.sort(X, axis=0))
    assert not np.array_equal(null, X)
    np.testing.assert_array_equal(null, null_reference(X, seed=1))


def test_without_a_consensus_the_largest_gap_wins():
    """One configuration alone has no ensemble to agree with: its credible partition with the
    largest gap is chosen."""
    two, three = [0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]
    scored = [
        _scored("kmeans", two, gap=0.4, steady=0.9),
        _scored("kmeans", three, gap=0.7, steady=0.9),
        _scored("kmeans", [0, 0, 1, 2, 3, 3], gap=0.9, steady=STABLE - 0.1),  # unstable
    ]
    order, _ = choose(scored)
    assert order == [1, 0, 2] and all(np.isnan(s.consensus) for s in scored)


def test_the_screened_model_is_kept_where_the_refit_finds_another_structure(planted):
    X, _ = planted
    rows = np.arange(len(X))
    screened = fit_clustering("kmeans", X, k=4, seed=0)
    other = np.random.default_rng(0).integers(0, 4, len(X))  # what the screening "found"
    chosen = Scored(Candidate("kmeans"), replace(screened, labels=other), 0.9, 0.5, 0.0)
    kept = _refit(chosen, X, rows, matrices(X, 3), (3, 0, None, range(4, 5)))
    assert kept.centers is screened.centers  # the screened model, not a refit
    np.testing.assert_array_equal(kept.labels, screened.assigner.predict(X))
    agreeing = Scored(Candidate("kmeans"), screened, 0.9, 0.5, 0.0)
    refit = _refit(agreeing, X, rows, matrices(X, 3), (3, 0, None, range(4, 5)))
    assert refit.centers is not screened.centers and ari(screened.labels, refit.labels) > 0.9
