"""The contract every registered clustering algorithm meets, run on each registry entry.

Adding an algorithm is one module plus one line of ``registry.ALGORITHMS``; these tests then run
it with no further edit. ``test_a_new_algorithm_is_one_module_and_one_registry_line`` is the worked
example: the toy ``tests/clustering/farthest_point.py`` added with one (monkeypatched) line.
"""

from __future__ import annotations

import dataclasses
import pickle
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from meterflow.clustering import fit_clustering, known_options
from meterflow.clustering.base import ClusteringAlgorithm, ClusteringResult, option_names
from meterflow.clustering.registry import ALGORITHMS, algorithm, algorithm_names
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.schemas import slot_columns
from meterflow.settings import ClusteringOptions

K, SLOTS, WINDOW = 3, 24, 3
TOY_LINE = ("farthest_point", "tests.clustering.farthest_point:FarthestPointClustering")


def labelled_profiles(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated daily shapes (evening peak, office plateau, night load) with random
    level and small noise: profiles (3 * n_per, SLOTS) and their group."""
    rng = np.random.default_rng(seed)
    t = np.arange(SLOTS) * 24 / SLOTS
    shapes = [
        np.exp(-(((t - 19) / 1.5) ** 2)),
        1 / (1 + np.exp(-(t - 8) * 2)) / (1 + np.exp((t - 17) * 2)),
        np.exp(-(((t - 3) / 1.5) ** 2)),
    ]
    rows = [rng.uniform(0.9, 1.1) * s + 0.1 + rng.normal(0, 0.03, SLOTS) for s in shapes]
    X = np.concatenate([rows[g] + rng.normal(0, 0.03, (n_per, SLOTS)) for g in range(3)])
    return X, np.repeat(np.arange(3), n_per)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, truth = labelled_profiles(12, seed=11)
    new, _ = labelled_profiles(3, seed=12)
    return X, truth, new


def quick_options(cls: type[ClusteringAlgorithm]) -> dict[str, int]:
    """Few training epochs for an algorithm that trains a network (keeps the suite fast)."""
    return {"epochs": 5} if "epochs" in option_names(cls.Options) else {}


def fit(name: str, X: np.ndarray, metric: str, seed: int = 4) -> ClusteringResult:
    cls = algorithm(name)
    matrix = None
    if cls.needs_dtw_matrix(metric):
        matrix = condensed_to_square(distance_condensed(metric, X, WINDOW), len(X))
    return fit_clustering(
        name,
        X,
        k=K,
        distance_metric=metric,
        dtw=matrix,
        window=WINDOW,
        seed=seed,
        options=quick_options(cls),
    )


def check_declaration(name: str) -> None:
    """The class is a ClusteringAlgorithm named as its key (``som`` -> ``SOMClustering``,
    ``lstm_autoencoder`` -> ``LSTMAutoencoderClustering``), offers Euclidean distance and has
    a frozen ``Options`` dataclass whose every field has a default."""
    cls = algorithm(name)
    assert issubclass(cls, ClusteringAlgorithm) and cls.name == name
    assert re.fullmatch(r"[A-Za-z]+Clustering", cls.__name__), cls.__name__
    assert cls.__name__.lower() == name.replace("_", "") + "clustering", cls.__name__
    assert "euclidean" in cls.distance_metrics
    assert set(cls.dtw_matrix_metrics) <= set(cls.distance_metrics)
    assert dataclasses.is_dataclass(cls.Options) and cls.Options.__dataclass_params__.frozen
    cls.Options()  # every option has a default
    assert option_names(cls.Options) <= known_options()


def check_fit(name: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Labels, centres and assignment of new profiles; the known groups are found."""
    X, truth, new = data
    result = fit(name, X, "euclidean")
    assert result.name == name and result.k == K
    assert result.labels.shape == (len(X),) and result.labels.dtype == np.int64
    assert set(result.labels) <= set(range(K)) and result.sizes.sum() == len(X)
    assert adjusted_rand_score(truth, result.labels) >= 0.9
    assert result.centers.shape == (K, SLOTS) and np.isfinite(result.centers).all()
    assert isinstance(result.center_kind, str) and result.center_kind
    np.testing.assert_array_equal(result.assigner.predict(X), result.labels)
    assigned = result.assigner.predict(new)
    assert assigned.shape == (len(new),) and assigned.dtype == np.int64
    assert set(assigned) <= set(range(K))
    frame = pd.DataFrame(new, columns=slot_columns(SLOTS))
    np.testing.assert_array_equal(result.assigner.predict(frame), assigned)
    assert result.assigner.distances(new).shape == (len(new), K)
    assert {"model", "k", "seed", "normalize"} <= set(result.options)
    assert option_names(algorithm(name).Options) <= set(result.options)


def check_other_metrics(name: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Every distance the algorithm offers fits, and its assigner reproduces the labels."""
    X, _, new = data
    for metric in algorithm(name).distance_metrics:
        if metric == "euclidean":
            continue
        result = fit(name, X, metric)
        assert result.distance_metric == metric and result.centers.shape == (K, SLOTS)
        np.testing.assert_array_equal(result.assigner.predict(X), result.labels)
        assert set(result.assigner.predict(new)) <= set(range(K))


def check_seeded(name: str, X: np.ndarray) -> None:
    """The same seed gives the same clustering."""
    first, again = fit(name, X, "euclidean", seed=9), fit(name, X, "euclidean", seed=9)
    np.testing.assert_array_equal(first.labels, again.labels)
    np.testing.assert_allclose(first.centers, again.centers, rtol=1e-6, atol=1e-9)


def check_round_trip(name: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """The model (the pickled assigner the step logs) predicts the same after a reload."""
    X, _, new = data
    result = fit(name, X, "euclidean")
    loaded = pickle.loads(pickle.dumps(result.assigner, protocol=pickle.HIGHEST_PROTOCOL))
    np.testing.assert_array_equal(loaded.predict(X), result.labels)
    np.testing.assert_array_equal(loaded.predict(new), result.assigner.predict(new))
    example = loaded.input_example()
    assert example.shape[1] == SLOTS
    np.testing.assert_array_equal(loaded.predict(example), result.assigner.predict(example))


def check_conformance(name: str, data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    check_declaration(name)
    check_fit(name, data)
    check_other_metrics(name, data)
    check_seeded(name, data[0])
    check_round_trip(name, data)


@pytest.mark.parametrize("name", algorithm_names())
def test_every_registered_algorithm_meets_the_contract(name: str, data) -> None:
    check_conformance(name, data)


def test_a_new_algorithm_is_one_module_and_one_registry_line(monkeypatch, data) -> None:
    name, path = TOY_LINE
    monkeypatch.setitem(ALGORITHMS, name, path)
    assert name in algorithm_names()
    check_conformance(name, data)
    # the step's model parameter accepts it, and its own option is a known clustering option
    assert ClusteringOptions.model_validate({"model": name}).model == name
    assert "first" in known_options()
    result = fit_clustering(name, data[0], k=K, seed=1, options={"first": 0})
    assert result.info["center_rows"][0] == 0 and result.options["first"] == 0


def test_the_toy_is_not_registered_outside_the_test() -> None:
    assert TOY_LINE[0] not in ALGORITHMS
