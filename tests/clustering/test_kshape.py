"""k-Shape (``clustering.kshape``): one run by default, as aeon's ``KShape``; restarts keep the
run of lowest inertia."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from meterflow.clustering import fit_clustering
from meterflow.clustering.kshape import KShapeClustering, _EmptyCluster, _fit_once
from meterflow.profiles.normalize import normalize_values


def shifted_shapes(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A sine, a square wave and a ramp on 32 slots, each at random shifts, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(32)
    shapes = (np.sin(2 * np.pi * t / 32), np.sign(np.sin(2 * np.pi * t / 16)), t / 31.0)
    rows = [
        np.roll(shape, rng.integers(-4, 5)) + rng.normal(0, 0.1, 32)
        for shape in shapes
        for _ in range(n_per)
    ]
    return np.array(rows), np.repeat(np.arange(3), n_per)


def test_one_run_by_default() -> None:
    assert KShapeClustering.Options().n_init == 1


def test_restarts_keep_the_lowest_inertia() -> None:
    X, truth = shifted_shapes(12, seed=4)
    found = fit_clustering("kshape", X, k=3, seed=7, options={"n_init": 4})
    rs = np.random.RandomState(7)  # the four runs, one after the other from the same state
    inertias: list[float] = []
    while len(inertias) < 4:  # a run that empties a cluster is started again, as in ``fit``
        try:
            inertias.append(_fit_once(normalize_values(X, "zscore"), 3, rs, 100, 1e-6)[2])
        except _EmptyCluster:
            continue
    assert max(inertias) > min(inertias)  # the restarts differ
    assert found.info["inertia"] == min(inertias)
    assert adjusted_rand_score(truth, found.labels) >= 0.8
