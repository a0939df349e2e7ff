"""Every profile assigned in blocks, here or on a Dask cluster: the labels of one ``predict``."""

from __future__ import annotations

import numpy as np
import pytest

from meterflow.clustering import assign, fit_clustering
from meterflow.profiles.dtw import condensed_to_square, dtw_condensed


@pytest.fixture(scope="module")
def profiles() -> np.ndarray:
    rng = np.random.default_rng(4)
    hours = np.arange(24)
    shapes = [np.exp(-(((hours - h) / 2.0) ** 2)) for h in (8, 13, 19)]
    return np.vstack([shapes[i % 3] + rng.normal(0, 0.05, 24) for i in range(90)])


@pytest.mark.parametrize("model, metric", [("kmeans", "euclidean"), ("kmedoids", "dtw")])
def test_blocks_give_the_labels_of_one_predict(profiles, monkeypatch, model, metric):
    fit = profiles[:40]
    dtw = condensed_to_square(dtw_condensed(fit, 3), 40) if metric == "dtw" else None
    assigner = fit_clustering(model, fit, k=3, distance_metric=metric, dtw=dtw, window=3).assigner
    monkeypatch.setattr(assign, "ASSIGN_ROWS", 7)
    np.testing.assert_array_equal(assign.assign_all(assigner, profiles), assigner.predict(profiles))


def test_dask_assigns_as_this_process_does(profiles, monkeypatch):
    from distributed import LocalCluster

    assigner = fit_clustering("kmeans", profiles[:40], k=3, seed=0).assigner
    monkeypatch.setattr(assign, "ASSIGN_ROWS", 20)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = assign.assign_all(assigner, profiles, cluster.scheduler_address)
    np.testing.assert_array_equal(remote, assigner.predict(profiles))
    assert assign.assign_all(assigner, profiles[:0]).shape == (0,)
