"""Every registered clustering algorithm on synthetic daily profiles with known groups."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from dtaidistance import dtw as dtai_dtw
from scipy.spatial.distance import cdist
from sklearn.metrics import adjusted_rand_score

import meterflow.clustering
from meterflow.clustering import ALGORITHMS, fit_clustering, needs_dtw_matrix
from meterflow.clustering.assign import NeighbourAssigner, SOMAssigner, encode_lstm
from meterflow.clustering.base import ClusteringAlgorithm
from meterflow.clustering.distances import square_dtw
from meterflow.clustering.lstm_autoencoder import LSTMAutoencoderClustering, train_autoencoder
from meterflow.clustering.registry import algorithm, algorithm_names
from meterflow.errors import ConfigError, SchemaError
from meterflow.profiles.dtw import condensed_to_square, distance_condensed, dtw_cross
from meterflow.profiles.dtw.variants import distance_cross
from meterflow.schemas import slot_columns

WINDOW = {24: 3, 96: 9}
COMBOS = [
    ("kmeans", "euclidean", "mean"),
    ("kmeans", "dtw", "dba_barycentre"),
    ("kmedoids", "euclidean", "medoid"),
    ("kmedoids", "dtw", "medoid"),
    ("agglomerative", "euclidean", "medoid"),
    ("agglomerative", "dtw", "medoid"),
    ("som", "euclidean", "som_node"),
    ("kshape", "euclidean", "shape_centroid"),
    ("lstm_autoencoder", "euclidean", "member_mean"),
]
FAST = {"lstm_autoencoder": {"epochs": 30}, "kmeans": {"n_init": 2}}


def make_profiles(n_per: int, n_slots: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three daily shapes (evening-peak household, office plateau, night load) with random level,
    a time shift of up to half an hour and noise; returns profiles (3*n_per, L) and groups."""
    rng = np.random.default_rng(seed)
    rows, groups = [], []
    for g in range(3):
        for _ in range(n_per):
            t = np.arange(n_slots) * 24 / n_slots + rng.uniform(-0.5, 0.5)
            shape = [
                np.exp(-(((t - 8) / 1.5) ** 2)) + 1.2 * np.exp(-(((t - 20) / 1.5) ** 2)),
                1 / (1 + np.exp(-(t - 8) * 2)) / (1 + np.exp((t - 18) * 2)),
                np.exp(-(((t - 3) / 2) ** 2)),
            ][g]
            rows.append(rng.uniform(0.8, 1.2) * shape + 0.1 + rng.normal(0, 0.05, n_slots))
            groups.append(g)
    return np.array(rows), np.array(groups)


@pytest.fixture(scope="module", params=[24, 96])
def data(request):
    n_slots = request.param
    X, truth = make_profiles(20, n_slots, seed=7)
    matrix = square_dtw(dtai_dtw.distance_matrix_fast(X, window=WINDOW[n_slots]))
    return X, truth, matrix, WINDOW[n_slots]


@pytest.mark.parametrize(("name", "metric", "kind"), COMBOS)
def test_recovers_known_groups(data, name, metric, kind):
    X, truth, matrix, window = data
    result = fit_clustering(
        name,
        X,
        k=3,
        distance_metric=metric,
        dtw=matrix,
        window=window,
        seed=3,
        options=FAST.get(name),
    )
    assert adjusted_rand_score(truth, result.labels) >= 0.8
    assert result.labels.shape == (len(X),) and result.labels.dtype == np.int64
    assert result.centers.shape == (3, X.shape[1])
    assert result.center_kind == kind
    np.testing.assert_array_equal(result.assigner.predict(X), result.labels)
    assert result.sizes.sum() == len(X)
    assert result.options["model"] == name and result.options["k"] == 3


def test_dtw_centres_are_medoids_or_barycentres(data):
    X, _, matrix, window = data
    for name in ("kmedoids", "agglomerative"):
        result = fit_clustering(name, X, k=3, distance_metric="dtw", dtw=matrix, window=window)
        rows = result.info["medoid_rows"]
        np.testing.assert_array_equal(result.centers, X[rows])
        assert result.assigner.metric == "dtw" and result.assigner.window == window
    # k-medoids assigns by DTW to the medoids, in the run's band
    medoids = fit_clustering("kmedoids", X, k=3, distance_metric="dtw", dtw=matrix, window=window)
    expected = dtw_cross(X, X[medoids.info["medoid_rows"]], window).argmin(axis=1)
    np.testing.assert_array_equal(medoids.labels, expected)
    dba = fit_clustering("kmeans", X, k=3, distance_metric="dtw", window=window, seed=1)
    means = np.stack([X[dba.labels == c].mean(axis=0) for c in range(3)])
    assert np.abs(dba.centers - means).max() > 1e-3  # DBA barycentres, not Euclidean means
    assert dba.assigner.metric == "dtw" and dba.assigner.window == window


def test_missing_dtw_matrix_is_a_clear_error():
    X, _ = make_profiles(5, 24, seed=1)
    for name in ("kmedoids", "agglomerative"):
        assert needs_dtw_matrix(name, "dtw") and not needs_dtw_matrix(name, "euclidean")
        with pytest.raises(ConfigError, match="precomputed distance matrix"):
            fit_clustering(name, X, k=3, distance_metric="dtw", dtw=None)
    with pytest.raises(SchemaError, match="shape"):
        fit_clustering("kmedoids", X, k=3, distance_metric="dtw", dtw=np.zeros((4, 4)))
    upper = np.triu(dtai_dtw.distance_matrix_fast(X))
    upper[np.tril_indices(len(X), -1)] = np.inf  # triangle only: not a square matrix
    with pytest.raises(SchemaError, match="square_dtw"):
        fit_clustering("kmedoids", X, k=3, distance_metric="dtw", dtw=upper)
    result = fit_clustering("kmedoids", X, k=3, distance_metric="dtw", dtw=square_dtw(upper))
    assert result.center_kind == "medoid"


def test_bad_settings_are_config_errors():
    X, _ = make_profiles(5, 24, seed=1)
    D = square_dtw(dtai_dtw.distance_matrix_fast(X))
    cases = [
        (dict(name="nope", k=3), "unknown clustering model"),
        (dict(name="som", k=3, distance_metric="dtw"), "supports distance_metric euclidean"),
        (dict(name="kmeans", k=1), r"\[2, 15\]"),
        (dict(name="kmeans", k=16), r"\[2, 15\]"),
        (dict(name="kmeans", k=3, options={"n_clusterz": 2}), "unknown clustering option"),
        (dict(name="kmeans", k=3, options={"n_init": "many"}), "n_init"),
        (dict(name="kmeans", k=3, options={"normalize": "l7"}), "normalize"),
        (dict(name="agglomerative", k=3, distance_metric="dtw", dtw=D, options={"linkage": "ward"}),
         "ward"),
        (dict(name="som", k=3, options={"som_grid": "2x2"}), "4 nodes"),
        (dict(name="kmeans", k=3, distance_metric="dtw", window=-1), "window"),
    ]  # fmt: skip
    for kwargs, message in cases:
        name = kwargs.pop("name")
        with pytest.raises(ConfigError, match=message):
            fit_clustering(name, X, **kwargs)


def test_nan_profile_names_the_row():
    X, _ = make_profiles(5, 24, seed=1)
    X[7, 3] = np.nan
    with pytest.raises(SchemaError, match="row 7"):
        fit_clustering("kmeans", X, k=3)


def test_som_grid():
    X, _ = make_profiles(15, 24, seed=2)
    result = fit_clustering("som", X, k=4, seed=0, options={"som_grid": "2x2", "som_epochs": 5})
    assert isinstance(result.assigner, SOMAssigner)
    assert result.assigner.grid == (2, 2)
    assert result.assigner.weights_grid.shape == (2, 2, 24)
    assert set(result.labels) <= {0, 1, 2, 3}
    assert result.info["grid"] == "2x2"


def test_registry_lines_are_the_algorithm_modules():
    """Each registry line imports a ClusteringAlgorithm subclass named as its key, and every
    such subclass in the package has its line: one module + one registry line per algorithm."""
    assert algorithm_names() == tuple(ALGORITHMS)
    for name, path in ALGORITHMS.items():
        cls = algorithm(name)
        assert inspect.isclass(cls) and issubclass(cls, ClusteringAlgorithm), path
        assert cls.name == name and f"{cls.__module__}:{cls.__qualname__}" == path
    defined = set()
    for info in pkgutil.iter_modules(meterflow.clustering.__path__, "meterflow.clustering."):
        for _, obj in inspect.getmembers(importlib.import_module(info.name), inspect.isclass):
            if issubclass(obj, ClusteringAlgorithm) and obj is not ClusteringAlgorithm:
                defined.add(f"{obj.__module__}:{obj.__qualname__}")
    assert defined == set(ALGORITHMS.values())


def test_registry_import_is_light():
    heavy = ("numpy", "tensorflow", "keras", "sklearn", "tslearn", "dtaidistance", "numba")
    heavy += ("minisom",)
    code = (
        "import sys, meterflow.clustering.registry as r; r.algorithm_names(); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_lstm_autoencoder_is_deterministic_and_encoder_matches_keras():
    X, _ = make_profiles(10, 24, seed=4)
    opts = LSTMAutoencoderClustering.Options(epochs=3, batch_size=8)
    Z = (X - X.mean()) / X.std()
    w1, codes1, loss1, _ = train_autoencoder(Z, opts, seed=11)
    assert len(loss1) == 3
    assert np.abs(encode_lstm(w1, Z) - codes1).max() < 1e-4  # numpy forward pass == Keras's
    # fitting again with another k reuses the trained network (same data, options, seed)
    a = fit_clustering("lstm_autoencoder", X, k=3, seed=11, options={"epochs": 3, "batch_size": 8})
    b = fit_clustering("lstm_autoencoder", X, k=4, seed=11, options={"epochs": 3, "batch_size": 8})
    np.testing.assert_array_equal(a.assigner.weights["w_hh"], b.assigner.weights["w_hh"])
    assert a.info["train_loss"] == b.info["train_loss"]
    assert a.info["encoder_check"] < 1e-4 and b.k == 4
    for key, value in w1.items():  # same seed, same network, trained a second time
        np.testing.assert_array_equal(a.assigner.weights[key], value)
    assert a.info["train_loss"] == loss1
    # the Keras encoder for MLflow: its example is the scaled first profiles, its output the codes
    assert b.network is a.network and a.network_example.dtype == np.float32
    assert a.network_example.shape == (3, 24, 1)
    codes = a.network.predict_on_batch(a.network_example)
    assert np.abs(codes - a.assigner.encode(X[:3])).max() < 1e-4
    assert fit_clustering("kmeans", X, k=3).network is None


def test_normalisation_and_dataframe_input():
    X, _ = make_profiles(10, 24, seed=5)
    plain = fit_clustering("kmeans", X, k=3, seed=0, options={"normalize": "zscore"})
    scaled = fit_clustering("kmeans", 5 * X + 3, k=3, seed=0, options={"normalize": "zscore"})
    np.testing.assert_array_equal(plain.labels, scaled.labels)
    assert plain.assigner.normalize == "zscore"
    # k-Shape z-normalises whatever is asked
    assert fit_clustering("kshape", X, k=3, seed=0).assigner.normalize == "zscore"
    frame = pd.DataFrame(X, columns=slot_columns(24))
    frame.insert(0, "meter_id", "m1")
    np.testing.assert_array_equal(plain.assigner.predict(frame), plain.labels)
    example = plain.assigner.input_example()
    assert list(example.columns) == slot_columns(24) and len(example) == 3
    with pytest.raises(SchemaError, match="24 slots"):
        plain.assigner.predict(X[:, :12])
    # an assigner pickled before znorm was renamed zscore loads as zscore
    old = pickle.loads(pickle.dumps(plain.assigner))
    old.__dict__["normalize"] = "znorm"
    again = pickle.loads(pickle.dumps(old))
    assert again.normalize == "zscore"
    np.testing.assert_array_equal(again.predict(X), plain.labels)


@pytest.mark.parametrize("metric", ["euclidean", "dtw", "wddtw"])
def test_agglomerative_neighbour_rule_keeps_the_linkage_cut(metric):
    X, _ = make_profiles(20, 24, seed=6)
    D = None if metric == "euclidean" else condensed_to_square(distance_condensed(metric, X, 3), 60)
    options = {"linkage": "average", "assignment": "neighbour"}
    result = fit_clustering(
        "agglomerative", X, k=3, distance_metric=metric, dtw=D, window=3, options=options
    )
    assert result.info["linkage"] == "average" and result.info["assignment"] == "neighbour"
    assert result.info["native_label_agreement"] == 1.0  # every fitted profile keeps its cluster
    # a new profile joins the cluster of its nearest fitted profile, in the fit's distance
    new, _ = make_profiles(3, 24, seed=7)
    to_fitted = cdist(new, X) if D is None else distance_cross(metric, new, X, 3)
    nearest = result.labels[to_fitted.argmin(axis=1)]
    np.testing.assert_array_equal(result.assigner.predict(new), nearest)
    for c in range(3):  # a cluster's distance is that of its nearest member
        np.testing.assert_allclose(
            result.assigner.distances(new)[:, c],
            to_fitted[:, result.labels == c].min(axis=1),
            rtol=1e-9,
        )


def test_agglomerative_medoid_rule_and_the_default_per_linkage():
    X, _ = make_profiles(20, 24, seed=6)
    result = fit_clustering("agglomerative", X, k=3, options={"linkage": "average"})
    assert result.info["assignment"] == "medoid"  # the default for linkages other than ward
    medoids = X[result.info["medoid_rows"]]
    np.testing.assert_array_equal(result.labels, cdist(X, medoids).argmin(axis=1))
    assert 0.9 <= result.info["native_label_agreement"] <= 1.0
    ward = fit_clustering("agglomerative", X, k=3)
    assert ward.info["assignment"] == "neighbour" and ward.info["native_label_agreement"] == 1.0
    # the options show the rule and linkage the fit chose
    assert ward.options["assignment"] == "neighbour" and ward.options["linkage"] == "ward"
    assert result.options["assignment"] == "medoid"
    with pytest.raises(ConfigError, match="assignment must be one of"):
        fit_clustering("agglomerative", X, k=3, options={"assignment": "nearest"})


def test_neighbour_assigner_rejects_a_cluster_without_members():
    with pytest.raises(ValueError, match="none empty"):
        NeighbourAssigner(
            n_slots=2,
            members=np.zeros((3, 2)),
            member_labels=[0, 0, 2],
            example_rows=np.zeros((1, 2)),
        )


def test_the_registry_offers_every_dtw_family_distance_the_engine_has():
    from meterflow.clustering.registry import DTW_FAMILY
    from meterflow.profiles.dtw import DISTANCES

    assert DTW_FAMILY == DISTANCES
