"""The clustering run's description, its validation table and its named model."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from meterflow.clustering import fit_clustering
from meterflow.clustering.assign import PROFILE_KEYS, NamedClusters
from meterflow.clustering.auto import null_silhouette
from meterflow.clustering.holdout import cluster_labels, holdout_silhouette
from meterflow.clustering.metrics import silhouette
from meterflow.clustering.scores import run_metrics, validation_table
from meterflow.clustering.story import Summary, clusters_line, describe
from meterflow.errors import InputError, SchemaError
from meterflow.schemas import slot_columns

DEMO = {
    "k": 2.0,
    "silhouette": 0.6855,
    "silhouette_null": 0.2113,
    "silhouette_dtw": 0.7483,
    "davies_bouldin": 0.5075,
    "ari": -0.04188,
    "nmi": 0.05287,
    "peak_match": 0.1625,
    "profiles": 74527.0,
    "profiles_fitted": 10000.0,
}


def summary(**changes) -> Summary:
    base = {
        "model": "kmeans",
        "distance_metric": "euclidean",
        "k": 2,
        "names": ["midday export (PV)", "daytime plateau"],
        "shares": [0.169, 0.831],
        "metrics": DEMO,
        "source": "harmonization run `c8367fd8`",
        "fitted_on": "a seeded random sample of max_profiles=10000",
        "k_choice": "silhouette",
        "k_range": (2, 12),
        "runner_up": (3, 0.5642),
        "meters": 200,
        "period": ("2024-10-01", "2025-03-31"),
        "truth": "the meter types",
        "look_next": ["figures/cluster_members.png", "previews/validation.csv"],
    }
    return Summary(**(base | changes))


def test_the_description_leads_with_the_named_clusters_against_shapeless_data():
    text = describe(summary())
    first, *rest = text.splitlines()
    assert first == (
        "**2 clusters: daytime plateau 83.1 % of days; midday export (PV) 16.9 %; silhouette "
        "0.685 vs 0.211 for k-means with the same k on shapeless (slot-shuffled) days.**"
    )
    body = "\n".join(rest)
    assert "74,527 daily profiles (meter-days) of 200 meters, 2024-10-01 .. 2025-03-31" in body
    assert "chosen by silhouette among k=2..12 (next best k=3: 0.564)" in body
    assert "DTW 0.748" in body and "ARI -0.0419" in body
    assert "`figures/cluster_members.png`" in body
    assert "nan" not in text.lower() and "None" not in text and len(text) < 1500


def test_clusters_no_better_than_shapeless_data_are_said_to_be_rough():
    text = describe(summary(metrics=DEMO | {"silhouette": 0.2, "silhouette_null": 0.25}))
    assert text.startswith("**The 2 clusters are no better separated than shapeless data")


def test_missing_numbers_read_n_a_and_a_given_k_says_so():
    text = describe(
        summary(metrics={"silhouette": math.nan}, k_choice="", runner_up=None, truth="")
    )
    assert "silhouette n/a" in text and "k=2 (given)" in text and "ARI" not in text


def test_a_long_cluster_list_is_cut():
    names = [f"shape {c}" for c in range(9)]
    line = clusters_line(names, [0.1] * 9)
    assert line.startswith("shape 0 10 % of days; shape 1 10 %")
    assert line.endswith("3 more in `previews/cluster_sizes.csv`")


def test_variants_go_to_the_table_and_headline_scores_stay_run_metrics():
    scores = DEMO | {
        "ari_fitted": 0.1,
        "peak_match_relaxed": 0.4,
        "peak_performance": 0.16,
        "silhouette_wddtw": 0.5,
        "fit_seconds": 3.0,
    }
    logged = run_metrics(scores)
    assert set(logged) == set(DEMO) | {"silhouette_wddtw", "fit_seconds"}
    table = validation_table(scores).set_index("metric")
    assert len(table) == len(scores) and table["run_metric"].sum() == len(logged)
    assert table.loc["ari", "rows"] == "all" and table.loc["ari_fitted", "rows"] == "fitted"
    assert table.loc["peak_match_relaxed", "meaning"].endswith("(within one slot)")
    assert "WDDTW" in table.loc["silhouette_wddtw", "meaning"]
    assert table.loc["silhouette_wddtw", "rows"] == "matrix"
    assert table.loc["profiles_fitted", "meaning"].endswith("fitted on")
    assert list(table.index[: len(logged)]) == [  # run metrics first
        "k", "silhouette", "silhouette_null", "davies_bouldin", "ari", "nmi", "peak_match",
        "profiles", "profiles_fitted", "fit_seconds", "silhouette_dtw", "silhouette_wddtw",
    ]  # fmt: skip


def test_shapeless_data_gives_the_silhouette_reference():
    rng = np.random.default_rng(0)
    h = np.arange(24)
    X = np.vstack(
        [np.exp(-((h - 19) ** 2) / 4) + rng.normal(0, 0.05, 24) for _ in range(40)]
        + [np.exp(-((h - 8) ** 2) / 4) + rng.normal(0, 0.05, 24) for _ in range(40)]
    )
    real = fit_clustering("kmeans", X, k=2, seed=0)
    assert silhouette(X, real.labels) > null_silhouette(X, 2, 0) + 0.2
    assert math.isnan(null_silhouette(X[:2], 2, 0))


@pytest.fixture(scope="module")
def model() -> NamedClusters:
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(0, 0.1, (10, 24)), rng.normal(1, 0.1, (10, 24))])
    result = fit_clustering("kmeans", X, k=2, seed=0)
    names = ("low", "high") if result.centers[0].mean() < 0.5 else ("high", "low")
    return NamedClusters(result.assigner, names)


def test_the_model_names_each_profile_and_lists_its_input_columns(model):
    out = model.predict(model.input_example())
    assert list(out.columns) == ["cluster", "cluster_name"] and out["cluster"].dtype == np.int64
    X = np.vstack([np.zeros(24), np.ones(24)])
    assert model.predict(X)["cluster_name"].tolist() == ["low", "high"]
    keys = list(PROFILE_KEYS)  # a profile table's rows go in as they are
    assert model.input_columns() == [(c, "double", True) for c in slot_columns(24)] + keys
    model.assigner.slot_names = tuple(f"h{j}" for j in range(24))
    try:
        columns = model.input_columns()[: -len(keys)]
        assert [c for c, _, _ in columns] == [f"h{j}" for j in range(24)] + slot_columns(24)
        assert not any(required for _, _, required in columns)  # either layout
    finally:
        model.assigner.slot_names = ()
    with pytest.raises(InputError, match="1 cluster names for 2 clusters"):
        NamedClusters(model.assigner, ("one",))


def test_the_holdout_score_reads_the_cluster_column_of_named_and_older_models(model):
    X = np.vstack([np.zeros((5, 24)), np.ones((5, 24))])
    holdout = pd.DataFrame(X, columns=slot_columns(24))
    named = model.predict(holdout)
    np.testing.assert_array_equal(cluster_labels(named), model.assigner.predict(X))
    older = named["cluster"].to_numpy()
    assert holdout_silhouette(holdout, named) == holdout_silhouette(holdout, older) == 1.0
    np.testing.assert_array_equal(cluster_labels(pd.DataFrame({"0": older})), older)
    with pytest.raises(SchemaError):
        model.predict(holdout.iloc[:, :5])
