"""The public clustering benchmark's helpers (benchmarks/clustering_defaults.py, public_profiles,
published_clustering): the defaults' choice, the printed lines, gap filling; fast, no data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """The benchmark modules, imported as the scripts import each other (by bare name)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import clustering_defaults
        import public_profiles
        import published_clustering
    finally:
        sys.path.remove(str(BENCHMARKS))
    return clustering_defaults, public_profiles, published_clustering


def fit(cd, name: str, config: str, normalize: str, window: float | None, ari: float):
    return cd.Fit(name, config, normalize, window, ari, 1.0)


def test_gaps_are_filled_linearly_within_a_profile(bench):
    _, pp, _ = bench
    X = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan], [np.nan] * 5, [1.0, 2.0, 3.0, 4.0, 5.0]])
    filled = pp.fill_gaps(X)
    np.testing.assert_allclose(filled[0], [1.0, 1.0, 2.0, 3.0, 3.0])
    np.testing.assert_array_equal(filled[1], np.zeros(5))
    np.testing.assert_array_equal(filled[2], X[2])
    assert np.isnan(X[0, 0])  # the input is left as it was


def test_development_and_held_back_sets_are_disjoint_and_each_has_a_sourced_value(bench):
    _, pp, pub = bench
    assert not set(pp.DEVELOPMENT) & set(pp.HELD_BACK)
    assert set(pp.DEVELOPMENT) | set(pp.HELD_BACK) == set(pp.SETS)
    assert len(pp.HELD_BACK) >= 6 and pp.DEVELOPMENT[0] == "ItalyPowerDemand"
    for name in pp.SETS:
        published = pub.PUBLISHED[name]
        assert 0 < published.ari <= 1 and published.method and published.source
    assert pub.published_ari("NoSuchSet") is None


def test_a_printed_line_parses_back_to_its_fit(bench):
    cd, _, _ = bench
    fits = [
        cd.Fit("ItalyPowerDemand", "kmedoids/ddtw", "none", 0.05, 0.891, 2.5),
        cd.Fit("ItalyPowerDemand", "kmeans/euclidean", "zscore", None, 0.004, 0.5),
    ]
    text = "\n".join(["# progress", *(cd.line(f, 0.5) for f in fits), "other"])
    assert cd.parse(text) == fits
    assert "seconds_vs_kmeans=5.0" in cd.line(fits[0], 0.5)
    assert "seconds_vs_kmeans=-" in cd.line(fits[0], float("nan"))


def test_a_fit_without_a_window_counts_at_every_fraction(bench):
    cd, _, _ = bench
    fits = [
        fit(cd, "A", "kmeans/euclidean", "none", None, 0.5),
        fit(cd, "A", "kmedoids/dtw", "none", 0.1, 0.7),
        fit(cd, "A", "kmedoids/dtw", "none", 0.2, 0.3),
    ]
    best = cd.best_per_setting(fits)
    assert best == {("none", 0.1): {"A": 0.7}, ("none", 0.2): {"A": 0.5}}


def test_defaults_are_the_lowest_mean_rank_ties_broken_by_mean_ari(bench):
    cd, _, _ = bench
    fits = [  # setting x wins on A, y on B (equal mean rank); y has the higher mean ARI
        fit(cd, "A", "kmedoids/dtw", "none", 0.1, 0.6),
        fit(cd, "B", "kmedoids/dtw", "none", 0.1, 0.2),
        fit(cd, "A", "kmedoids/dtw", "none", 0.2, 0.5),
        fit(cd, "B", "kmedoids/dtw", "none", 0.2, 0.9),
        fit(cd, "A", "kmedoids/dtw", "max", 0.1, 0.1),
        fit(cd, "B", "kmedoids/dtw", "max", 0.1, 0.1),
    ]
    ranks = cd.mean_ranks(cd.best_per_setting(fits))
    assert ranks == {("none", 0.1): 1.5, ("none", 0.2): 1.5, ("max", 0.1): 3.0}
    assert cd.choose(fits) == ("none", 0.2)
    assert "chosen normalize=none window=0.2" in cd.summary(fits)


def test_one_setting_fits_every_configuration_on_a_sample_and_scores_all_rows(bench):
    cd, _, _ = bench
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 16)
    X = np.vstack(
        [np.sin(t) + 0.05 * rng.normal(size=(20, 16)), np.cos(t) + 0.05 * rng.normal(size=(20, 16))]
    )
    y = np.repeat(["a", "b"], 20)
    rows = cd.sample_rows(len(X), 30, seed=0)
    configs = [("kmeans", "euclidean"), ("kmedoids", "dtw")]
    fits = list(cd.fit_setting("toy", (X, y, rows), configs, ("zscore", 0.1), 0))
    assert len(rows) == 30 and [f.config for f in fits] == ["kmeans/euclidean", "kmedoids/dtw"]
    assert [f.window for f in fits] == [None, 0.1]
    assert all(f.ari == 1.0 for f in fits)
    windowed = cd.fit_setting("toy", (X, y, rows), configs, ("zscore", 0.1), 0, windowless=False)
    assert [f.config for f in windowed] == ["kmedoids/dtw"]
