"""Validation metrics on hand-made cases, k auto-selection, post-hoc tables and figures."""

from __future__ import annotations

import functools
import io

import numpy as np
import pandas as pd
import pytest
from dtaidistance import dtw as dtai_dtw
from matplotlib.figure import Figure
from sklearn.metrics import davies_bouldin_score, silhouette_score

from meterflow.clustering import all_metrics, fit_clustering, select_k
from meterflow.clustering import metrics as metrics_module
from meterflow.clustering.composition import (
    assignment_table,
    cluster_sizes,
    composition_by_month,
    composition_by_type,
    composition_by_weekday,
    composition_tables,
)
from meterflow.clustering.distances import square_dtw
from meterflow.clustering.figures import (
    plot_cluster_members,
    plot_cluster_sizes,
    plot_som_map,
)
from meterflow.clustering.peaks import (
    PEAK_SCORE_NAMES,
    f1,
    peak_agreement,
    peak_scores,
    prominent_peaks,
)
from meterflow.clustering.selection import stability
from meterflow.errors import ConfigError


def four_shapes(n_per: int, n_slots: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four clearly different daily shapes with level and noise, and their group labels."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_slots) * 24 / n_slots
    shapes = [
        np.exp(-(((t - 8) / 1.5) ** 2)) + 1.2 * np.exp(-(((t - 20) / 1.5) ** 2)),
        1 / (1 + np.exp(-(t - 8) * 2)) / (1 + np.exp((t - 18) * 2)),
        np.exp(-(((t - 3) / 2) ** 2)),
        np.exp(-(((t - 13) / 1.0) ** 2)),
    ]
    X = np.array(
        [
            rng.uniform(0.9, 1.1) * s + rng.normal(0, 0.03, n_slots)
            for s in shapes
            for _ in range(n_per)
        ]
    )
    return X, np.repeat(np.arange(4), n_per)


# --- peaks -------------------------------------------------------------------------------------


def test_prominent_peaks_on_hand_made_profiles():
    assert prominent_peaks(np.array([0, 1, 0, 0, 3, 0, 0.0])).tolist() == [1, 4]
    assert prominent_peaks(np.array([0, 0.3, 0, 0, 3, 0.0])).tolist() == [4]  # 0.3 < 0.2 * 3
    assert prominent_peaks(np.array([5, 1, 0, 0, 2, 0.0])).tolist() == [0, 4]  # edge peak
    assert prominent_peaks(np.array([0, 0, 1, 2.0])).tolist() == [3]
    assert prominent_peaks(np.full(6, 2.0)).tolist() == []
    p = np.array([0, 1, 0, 0, 3, 0, 0.7, 0.0])
    assert prominent_peaks(3 * p + 7).tolist() == prominent_peaks(p).tolist() == [1, 4, 6]
    assert prominent_peaks(p, prominence=0.25).tolist() == [1, 4]


def test_peak_agreement_and_f1():
    member, centre = np.array([2, 10]), np.array([2, 11, 20])
    assert peak_agreement(member, centre) == (0.5, pytest.approx(2 / 3))
    assert peak_agreement(member, centre, tolerance=1) == (1.0, pytest.approx(1 / 3))
    assert f1(0.5, 2 / 3) == pytest.approx(0.4)
    assert f1(1.0, 1 / 3) == pytest.approx(0.8)
    none = np.array([], dtype=np.int64)
    assert peak_agreement(none, none) == (1.0, 0.0) and f1(1.0, 0.0) == 1.0
    assert peak_agreement(none, np.array([3])) == (1.0, 1.0) and f1(1.0, 1.0) == 0.0
    assert peak_agreement(np.array([3]), none) == (0.0, 0.0) and f1(0.0, 0.0) == 0.0


def test_peak_scores_by_hand():
    def spikes(**at: float) -> np.ndarray:
        p = np.zeros(10)
        for slot, value in at.items():
            p[int(slot[1:])] = value
        return p

    centers = np.stack([spikes(s2=1, s7=2), spikes(s5=1)])
    X = np.stack([spikes(s2=1, s7=2), spikes(s3=1, s7=2), spikes(s6=1), np.ones(10)])
    labels = np.array([0, 0, 1, 1])
    scores = peak_scores(X, labels, centers)
    assert set(scores) == set(PEAK_SCORE_NAMES)
    expected = {
        "peak_match": 0.5,
        "peak_match_relaxed": 0.75,
        "prominent_peak_detection": 0.625,
        "prominent_peak_detection_relaxed": 1.0,
        "prominent_peak_overdetection": 0.625,
        "prominent_peak_overdetection_relaxed": 0.25,
        "peak_performance": 0.375,
        "peak_performance_relaxed": 0.75,
    }
    assert scores == pytest.approx(expected)


# --- all_metrics -------------------------------------------------------------------------------


def test_all_metrics_values_and_names():
    X, truth = four_shapes(10)
    centers = np.stack([X[truth == c].mean(axis=0) for c in range(4)])
    D = square_dtw(dtai_dtw.distance_matrix_fast(X, window=3))
    shuffled = np.random.default_rng(0).permutation(truth)
    m = all_metrics(X, truth, centers, dtw=D, truth=shuffled)
    assert set(m) == {
        "davies_bouldin", "silhouette", "silhouette_dtw", *PEAK_SCORE_NAMES,
        "ari", "nmi", "rand_index",
    }  # fmt: skip
    assert all(np.isfinite(v) for v in m.values())
    assert m["davies_bouldin"] == pytest.approx(davies_bouldin_score(X, truth))
    assert m["silhouette"] == pytest.approx(silhouette_score(X, truth))
    assert m["silhouette"] > 0.5 and m["silhouette_dtw"] > 0.5
    assert m["peak_match_relaxed"] >= 0.85 and m["peak_performance_relaxed"] >= 0.85
    wrong = all_metrics(X, np.random.default_rng(1).integers(0, 4, len(X)), centers)
    for name in ("peak_match", "peak_performance_relaxed", "prominent_peak_detection"):
        assert wrong[name] < m[name] - 0.3  # the scores see a wrong clustering
    assert wrong["prominent_peak_overdetection"] > m["prominent_peak_overdetection"] + 0.3
    assert abs(m["ari"]) < 0.2  # random truth: about chance
    perfect = all_metrics(X, truth, centers, truth=np.array(list("abcd"))[truth])
    assert perfect["ari"] == pytest.approx(1.0) and perfect["nmi"] == pytest.approx(1.0)
    assert perfect["rand_index"] == pytest.approx(1.0)
    assert "silhouette_dtw" not in perfect  # no matrix, no crash
    one = all_metrics(X, np.zeros(len(X), dtype=int), centers[:1])
    assert "silhouette" not in one and "davies_bouldin" not in one
    assert set(PEAK_SCORE_NAMES) <= set(one)


def test_silhouette_dtw_by_hand_and_sampling(monkeypatch):
    D = np.array([[0, 1, 4, 4], [1, 0, 4, 4], [4, 4, 0, 1], [4, 4, 1, 0.0]])
    assert metrics_module.silhouette_dtw(D, np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    X, truth = four_shapes(50)
    full = metrics_module.silhouette(X, truth)
    monkeypatch.setattr(metrics_module, "SILHOUETTE_SAMPLE", 60)
    sampled = metrics_module.silhouette(X, truth, seed=1)
    assert sampled == metrics_module.silhouette(X, truth, seed=1)  # fixed seed
    assert sampled != full and abs(sampled - full) < 0.1


# --- k selection -------------------------------------------------------------------------------


def test_select_k_picks_the_true_k():
    X, _ = four_shapes(12)
    sel = select_k("kmeans", X, k_min=2, k_max=7, seed=0)
    assert sel.k == 4 and sel.result.k == 4 and sel.criterion == "silhouette"
    assert sel.table["k"].tolist() == [2, 3, 4, 5, 6, 7]
    assert sel.table["score"].idxmax() == 2
    assert (sel.table["dispersion"].diff().dropna() < 0).all()  # the elbow curve falls
    assert isinstance(sel.figure, Figure) and len(sel.figure.axes) == 2
    D = square_dtw(dtai_dtw.distance_matrix_fast(X, window=3))
    dtw_sel = select_k("kmedoids", X, distance_metric="dtw", dtw=D, window=3, k_max=6)
    assert dtw_sel.k == 4 and dtw_sel.criterion == "silhouette_dtw"
    assert np.isfinite(dtw_sel.table["silhouette"]).all()
    with pytest.raises(ConfigError, match="som_grid"):
        select_k("som", X, options={"som_grid": "2x2"})


@pytest.mark.parametrize("criterion", ["davies_bouldin", "stability"])
def test_every_k_criterion_finds_the_true_k(criterion):
    X, _ = four_shapes(12)
    sel = select_k("kmeans", X, k_min=2, k_max=6, seed=0, criterion=criterion)
    assert sel.k == 4 and sel.criterion == criterion
    best = sel.table["score"].idxmin() if criterion == "davies_bouldin" else None
    assert best is None or sel.table["k"][best] == 4
    assert {"silhouette", "davies_bouldin"} <= set(sel.table.columns)
    with pytest.raises(ConfigError, match="criterion"):
        select_k("kmeans", X, criterion="gap")


def test_stability_is_high_for_real_structure_and_low_for_noise():
    X, _ = four_shapes(15)
    fit = functools.partial(fit_clustering, "kmeans", seed=0)
    real = stability(fit, X, None, fit(X, k=4, dtw=None), seed=0)
    noise = np.random.default_rng(0).normal(size=X.shape)
    blur = stability(fit, noise, None, fit(noise, k=4, dtw=None), seed=0)
    assert real > 0.95 and blur < 0.7 and real > blur


# --- composition -------------------------------------------------------------------------------


@pytest.fixture
def assignment() -> tuple[pd.DataFrame, pd.DataFrame]:
    assign = pd.DataFrame(
        {
            "meter_id": ["m1", "m1", "m2", "m2", "m3"],
            "date": pd.to_datetime(
                ["2024-01-01", "2024-01-02", "2024-01-06", "2024-02-05", "2024-03-10"]
            ),  # Mon, Tue, Sat, Mon, Sun
            "cluster": [0, 0, 1, 0, 1],
        }
    )
    meters = pd.DataFrame({"meter_id": ["m1", "m2"], "type": ["household", "commercial"]})
    return assign, meters


def test_composition_tables(assignment):
    assign, meters = assignment
    sizes = cluster_sizes(assign, k=3)
    assert sizes["cluster"].tolist() == [0, 1, 2]
    assert sizes["profiles"].tolist() == [3, 2, 0]
    assert sizes["meters"].tolist() == [2, 2, 0]
    assert sizes["share"].tolist() == pytest.approx([0.6, 0.4, 0.0])
    by_type = composition_by_type(assign, meters, k=3)
    assert list(by_type.columns) == ["cluster", "commercial", "household", "unknown"]
    assert by_type.iloc[:, 1:].to_numpy().tolist() == [[1, 2, 0], [1, 0, 1], [0, 0, 0]]
    shares = composition_by_type(assign, meters, share=True)
    assert shares.iloc[0, 1:].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    weekday = composition_by_weekday(assign).set_index("cluster")
    assert list(weekday.columns) == ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                    "Saturday", "Sunday"]  # fmt: skip
    assert weekday.loc[0, "Monday"] == 2 and weekday.loc[0, "Tuesday"] == 1
    assert weekday.loc[1, "Saturday"] == 1 and weekday.loc[1, "Sunday"] == 1
    assert weekday.to_numpy().sum() == 5
    month = composition_by_month(assign).set_index("cluster")
    assert len(month.columns) == 12
    assert (month.loc[0, "Jan"], month.loc[0, "Feb"], month.loc[1, "Mar"]) == (2, 1, 1)
    tables = composition_tables(assign, meters, k=3)
    assert set(tables) == {"cluster_sizes", "by_type", "by_weekday", "by_month"}
    assert set(composition_tables(assign.drop(columns="date"))) == {"cluster_sizes"}


def test_assignment_table_keeps_keys_in_order():
    profiles = pd.DataFrame(
        {
            "meter_id": ["a", "b"],
            "date": pd.to_datetime(["2024-05-01"] * 2),
            "source": "sql",
            "slot_00": [1.0, 2.0],
        }
    )
    table = assignment_table(profiles, np.array([1, 0]))
    assert list(table.columns) == ["meter_id", "date", "source", "cluster"]
    assert table["cluster"].tolist() == [1, 0] and table["meter_id"].tolist() == ["a", "b"]


# --- figures -----------------------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_figures():
    X, truth = four_shapes(6)
    X5 = np.vstack([X, X[:3] + 0.5])
    labels = np.concatenate([truth, [4, 4, 4]])
    centers = np.stack([X5[labels == c].mean(axis=0) for c in range(5)])
    fig = plot_cluster_members(X5, labels, centers, max_members=4)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 6 and len(visible) == 5
    assert [len(ax.lines) for ax in visible] == [5, 5, 5, 5, 4]  # <= 4 members + centre
    assert visible[4].get_title() == "cluster 4\n3 days (11.1 %)"
    assert _png(fig).startswith(b"\x89PNG")
    sizes = plot_cluster_sizes(labels, k=6)
    heights = [bar.get_height() for bar in sizes.axes[0].patches]
    assert heights == [6, 6, 6, 6, 3, 0]


def test_both_size_figures_count_every_assigned_profile_and_show_the_names():
    """The members figure draws fitted profiles only, but its panel titles count the same
    profiles as the size bars: every assigned one."""
    X, truth = four_shapes(6)
    centers = np.stack([X[truth == c].mean(axis=0) for c in range(4)])
    assigned = np.concatenate([truth, [0] * 10])  # 10 more days assigned to cluster 0
    names = ["evening peak", "night load", "flat (baseload)", "midday peak"]
    members = plot_cluster_members(X, truth, centers, names=names, assigned=assigned)
    titles = [ax.get_title() for ax in members.axes if ax.get_visible()]
    assert titles[0] == "evening peak\n16 days (47.1 %)"
    assert "all 34 assigned profiles" in members.get_suptitle()
    bars = plot_cluster_sizes(assigned, 4, names=names).axes[0]
    assert [b.get_height() for b in bars.patches] == [16, 6, 6, 6]
    assert [label.get_text() for label in bars.get_xticklabels()] == names
    assert "all 34 assigned" in bars.get_title()
    som = fit_clustering("som", X, k=4, options={"som_grid": "2x2", "som_epochs": 3})
    som_fig = plot_som_map(som.assigner.weights_grid, som.labels)
    hits = som_fig.axes[0].images[0].get_array()
    assert hits.sum() == len(X) and hits.shape == (2, 2)
    assert _png(som_fig).startswith(b"\x89PNG")
