"""Every fitted clustering's assigner, pickled and loaded in a fresh Python process, predicts the
training labels exactly (arrays and DataFrames), without MLflow and without the fitting libraries
of the slow-to-import methods."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from meterflow.clustering import fit_clustering
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.errors import SchemaError
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.schemas import slot_columns

MODELS = [
    ("kmeans", "euclidean", {}),
    ("kmeans", "dtw", {"n_init": 1}),
    ("kmedoids", "euclidean", {}),
    ("kmedoids", "dtw", {}),
    ("agglomerative", "euclidean", {}),
    ("agglomerative", "dtw", {"linkage": "complete"}),
    ("som", "euclidean", {"som_grid": "2x2"}),
    ("kshape", "euclidean", {}),
    ("lstm_autoencoder", "euclidean", {"epochs": 4, "batch_size": 16}),
    ("kmedoids", "ddtw", {}),
    ("kmedoids", "wddtw", {}),
    ("agglomerative", "wdtw", {"linkage": "average", "assignment": "neighbour"}),
    ("kmeans", "euclidean", {"representation": "diff"}),
    ("kmeans", "euclidean", {"representation": "shape", "normalize": "zscore"}),
    ("agglomerative", "euclidean", {"representation": "shape"}),
]


def model_key(name: str, metric: str, options: dict) -> str:
    return "_".join(
        [name, metric, *([options["representation"]] if "representation" in options else [])]
    )


def matrix_for(X: np.ndarray, metric: str, window: int) -> np.ndarray | None:
    """The square matrix a matrix method of ``metric`` needs (None for the others)."""
    if metric not in DTW_FAMILY:
        return None
    return condensed_to_square(distance_condensed(metric, X, window), len(X))


def make_profiles(n_per: int, n_slots: int, seed: int) -> np.ndarray:
    """Four daily shapes with random level, time shift and noise, (4*n_per, n_slots)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(4):
        for _ in range(n_per):
            t = np.arange(n_slots) * 24 / n_slots + rng.uniform(-1, 1)
            shape = [
                np.exp(-(((t - 8) / 1.5) ** 2)) + 1.2 * np.exp(-(((t - 20) / 1.5) ** 2)),
                1 / (1 + np.exp(-(t - 8) * 2)) / (1 + np.exp((t - 18) * 2)),
                np.exp(-(((t - 3) / 2) ** 2)),
                0.5 + 0.3 * np.sin(2 * np.pi * t / 24),
            ][g]
            rows.append(rng.uniform(0.5, 2.0) * shape + rng.normal(0, 0.08, n_slots))
    return np.array(rows)


LOADER = textwrap.dedent(
    """
    import json, pickle, sys
    import numpy as np
    import pandas as pd

    folder = sys.argv[1]
    X = np.load(f"{folder}/X.npy")
    out = {}
    for name in json.loads(open(f"{folder}/names.json").read()):
        with open(f"{folder}/{name}.pkl", "rb") as f:
            assigner = pickle.load(f)
        frame = pd.DataFrame(X, columns=[f"slot_{i:02d}" for i in range(X.shape[1])])
        frame.insert(0, "meter_id", "m")
        out[name] = {
            "array": assigner.predict(X).tolist(),
            "frame": assigner.predict(frame).tolist(),
            "example": assigner.predict(assigner.input_example()).tolist(),
        }
    loaded = sorted(m for m in ("mlflow", "tensorflow", "keras", "tslearn") if m in sys.modules)
    print(json.dumps({"labels": out, "loaded": loaded}))
    """
)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("assigners")
    X = make_profiles(12, 24, seed=3)
    results = {}
    for name, metric, options in MODELS:
        key = model_key(name, metric, options)
        matrix = matrix_for(X, metric, 4)
        results[key] = fit_clustering(
            name, X, k=4, distance_metric=metric, dtw=matrix, window=4, seed=5, options=options
        )
        with open(folder / f"{key}.pkl", "wb") as f:
            pickle.dump(results[key].assigner, f, protocol=pickle.HIGHEST_PROTOCOL)
    np.save(folder / "X.npy", X)
    (folder / "names.json").write_text(json.dumps(sorted(results)))
    proc = subprocess.run(
        [sys.executable, "-c", LOADER, str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return X, results, json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("key", [model_key(*m) for m in MODELS])
def test_fresh_process_predicts_training_labels(fitted, key):
    _, results, fresh = fitted
    result = results[key]
    assert fresh["labels"][key]["array"] == result.labels.tolist()
    assert fresh["labels"][key]["frame"] == result.labels.tolist()
    example_labels = fresh["labels"][key]["example"]
    assert len(example_labels) == len(result.assigner.input_example())
    assert all(0 <= c < result.k for c in example_labels)


def test_fresh_process_needs_neither_mlflow_nor_fitting_libraries(fitted):
    _, _, fresh = fitted
    assert fresh["loaded"] == []  # LSTM encoder runs in numpy; DTW via the numba kernel


def test_centres_are_assigned_to_their_own_cluster(fitted):
    _, results, _ = fitted
    for key in ("kmeans_euclidean", "kmedoids_dtw", "agglomerative_dtw", "kshape_euclidean"):
        result = results[key]
        np.testing.assert_array_equal(result.assigner.predict(result.centers), np.arange(4))


def test_assigners_on_96_slots_and_new_days():
    X = make_profiles(8, 96, seed=9)
    train, new = X[::2], X[1::2]
    for name, metric, options in MODELS:
        matrix = None if name == "kmeans" else matrix_for(train, metric, 8)
        if name == "kmeans" and metric == "dtw":
            continue  # covered on 24 slots; tslearn's DTW k-means is the slow one
        result = fit_clustering(
            name, train, k=4, distance_metric=metric, dtw=matrix, window=8, seed=1, options=options
        )
        again = pickle.loads(pickle.dumps(result.assigner))
        np.testing.assert_array_equal(again.predict(train), result.labels)
        labels = again.predict(pd.DataFrame(new, columns=slot_columns(96)))
        assert labels.shape == (len(new),) and labels.min() >= 0 and labels.max() < 4
        assert again.settings()["n_slots"] == 96


def test_the_model_takes_the_training_files_own_columns_and_plain_arrays():
    X = make_profiles(6, 24, seed=2)
    assigner = fit_clustering("kmeans", X, k=4, seed=0).assigner
    labels = assigner.predict(X)
    assigner.slot_names = tuple(f"h{i}" for i in range(24))
    own = pd.DataFrame(X, columns=assigner.slot_names)
    own.insert(0, "label", np.arange(len(X)) % 2)  # numeric, but not one of the slots
    own.insert(0, "id", [f"m{i}" for i in range(len(X))])
    np.testing.assert_array_equal(assigner.predict(own), labels)
    np.testing.assert_array_equal(assigner.predict(X.tolist()), labels)
    canonical = pd.DataFrame(X, columns=slot_columns(24))
    np.testing.assert_array_equal(assigner.predict(canonical), labels)
    assert list(assigner.input_example().columns) == list(assigner.slot_names)
    with pytest.raises(SchemaError, match=r"h0\.\.h23"):
        assigner.predict(own.drop(columns="h5"))
    with pytest.raises(SchemaError, match="24 slots"):
        assigner.predict(X[:, :20])
