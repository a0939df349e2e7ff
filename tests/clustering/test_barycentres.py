"""DBA and shape-DBA barycentres (``clustering.barycentre``) and their k-means (``dba``,
``shape_dba``): against tslearn's DBA and a plain-Python shape-DBA, and on planted clusters."""

from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from tslearn.barycenters import dtw_barycenter_averaging
from tslearn.metrics._masks import GLOBAL_CONSTRAINT_CODE

from meterflow.clustering import barycentre, fit_clustering
from meterflow.clustering.barycentre import (
    VALUES,
    Alignment,
    BarycentreOptions,
    Members,
    _fill_empty,
    _one_run,
    _plus_plus,
    aligned_sums,
    barycentre_kmeans,
    refine,
)
from meterflow.clustering.dba import DBAClustering
from meterflow.clustering.distances import sakoe_chiba_radius
from meterflow.clustering.shape_dba import DESCRIPTORS, ShapeDBAClustering
from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import band_width
from meterflow.profiles.dtw.shape_dtw import shape_descriptors
from meterflow.profiles.dtw.variants import distance_cross


def random_walks(n: int, m: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=(n, m)), axis=1)


def tslearn_dba(X: np.ndarray, init: np.ndarray, window: int, steps: int) -> np.ndarray:
    """tslearn's DBA in our band (``sakoe_chiba_radius = window - 1``), ``steps`` iterations."""
    radius = sakoe_chiba_radius(window)
    params = {}
    if radius is not None:
        params = {"global_constraint": GLOBAL_CONSTRAINT_CODE["sakoe_chiba"]}
        params["sakoe_chiba_radius"] = radius
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "loss is increasing" once converged: it stops there
        out = dtw_barycenter_averaging(
            X, init_barycenter=init, max_iter=steps, tol=0.0, metric_params=params
        )
    return out[:, 0]


@pytest.mark.parametrize("window", [0, 1, 2, 4, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_dba_equals_tslearn_from_the_same_start(window: int, seed: int) -> None:
    X = random_walks(9, 20, seed)
    init = X[seed + 2].copy()
    mine, _ = refine(
        Members(X, VALUES),
        np.zeros(len(X), dtype=np.int64),
        init[None],
        band=band_width(window, X.shape[1]),
        max_iter=6,
        tol=0.0,
    )
    np.testing.assert_allclose(mine[0], tslearn_dba(X, init, window, 6), rtol=0, atol=1e-10)


def test_each_cluster_is_averaged_on_its_own() -> None:
    X = random_walks(14, 16, 3)
    labels = np.repeat([1, 0], 7)
    centres = X[[9, 2]].copy()
    both, _ = refine(Members(X, VALUES), labels, centres, band=4, max_iter=4, tol=0.0)
    for c in range(2):
        alone = tslearn_dba(X[labels == c], centres[c], 4, 4)
        np.testing.assert_allclose(both[c], alone, rtol=0, atol=1e-10)


@pytest.mark.parametrize("window", [0, 3])
@pytest.mark.parametrize(("metric", "alignment"), [("dtw", VALUES), ("shape_dtw", DESCRIPTORS)])
def test_path_costs_are_the_squared_project_distance(window, metric, alignment) -> None:
    X, C = random_walks(11, 40, 4), random_walks(3, 40, 5)
    owner = np.arange(11) % 3
    active = np.ones(3, dtype=bool)
    _, counts, costs = aligned_sums(Members(X, alignment), owner, C, band_width(window, 40), active)
    distance = distance_cross(metric, X, C, window)[np.arange(11), owner]
    np.testing.assert_allclose(costs, np.bincount(owner, distance**2), rtol=1e-10)
    assert (counts >= np.bincount(owner)[:, None]).all()  # every slot of an average is matched


def plain_shape_dba_step(X: np.ndarray, centre: np.ndarray, reach: int, window: int):
    """One shape-DBA step by the textbook recurrence, in plain Python: the DTW path between the
    descriptors (full matrix, band ``|a - b| < window``, ties: diagonal, member, average), then
    the mean of the raw values warped onto each slot of the centre."""
    m = len(centre)
    band = window or m
    fc = shape_descriptors(centre[None], reach)[0]
    sums, counts = [0.0] * m, [0] * m
    for x in X:
        fx = shape_descriptors(x[None], reach)[0]
        acc = [[float("inf")] * m for _ in range(m)]
        for a in range(m):
            for b in range(m):
                if abs(a - b) >= band:
                    continue
                cost = float(sum((u - v) ** 2 for u, v in zip(fx[a], fc[b], strict=True)))
                before = [acc[a - 1][b - 1] if a and b else float("inf")]
                before += [
                    acc[a - 1][b] if a else float("inf"),
                    acc[a][b - 1] if b else float("inf"),
                ]
                acc[a][b] = cost + (0.0 if a == b == 0 else min(before))
        a = b = m - 1
        while True:
            sums[b] += x[a]
            counts[b] += 1
            if a == b == 0:
                break
            if a == 0 or b == 0:
                a, b = max(a - 1, 0) if b == 0 else a, b - 1 if a == 0 else b
                continue
            steps = [(acc[a - 1][b - 1], a - 1, b - 1), (acc[a - 1][b], a - 1, b)]
            steps.append((acc[a][b - 1], a, b - 1))
            _, a, b = min(steps, key=lambda s: s[0])  # the first of equal costs
    return np.array(sums) / np.array(counts)


@pytest.mark.parametrize(("reach", "window"), [(2, 0), (2, 4), (5, 3), (0, 0)])
@pytest.mark.parametrize("shifted", [True, False])
def test_shape_dba_step_equals_the_plain_recurrence(reach: int, window: int, shifted) -> None:
    X = random_walks(6, 18, 7)
    centre = X.mean(axis=0)
    descriptors = Alignment(partial(shape_descriptors, reach=reach), shifted=shifted)
    mine, _ = refine(
        Members(X, descriptors),
        np.zeros(len(X), dtype=np.int64),
        centre[None],
        band=band_width(window, 18),
        max_iter=1,
        tol=0.0,
    )
    np.testing.assert_allclose(mine[0], plain_shape_dba_step(X, centre, reach, window), atol=1e-12)


def shifted_bumps(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three shapes (a narrow peak, two close peaks, a broad low bump) centred anywhere within
    10 slots of midday on 48 slots, with noise: the groups differ by shape, not by timing."""
    rng = np.random.default_rng(seed)
    t = np.arange(48.0)

    def bump(centre: float, width: float) -> np.ndarray:
        return np.exp(-(((t - centre) / width) ** 2))

    shapes = [
        lambda c: bump(c, 1.5),
        lambda c: bump(c - 4, 1.5) + bump(c + 4, 1.5),
        lambda c: 0.7 * bump(c, 5.0),
    ]
    rows = [
        shape(24 + rng.integers(-10, 11)) + rng.normal(0, 0.03, t.size)
        for shape in shapes
        for _ in range(n_per)
    ]
    return np.array(rows), np.repeat(np.arange(3), n_per)


@pytest.fixture(scope="module")
def bumps() -> tuple[np.ndarray, np.ndarray]:
    return shifted_bumps(15, seed=21)


def test_dba_finds_shifted_shapes_that_euclidean_kmeans_misses(bumps) -> None:
    X, truth = bumps
    euclid = fit_clustering("kmeans", X, k=3, seed=0)
    dba = fit_clustering("dba", X, k=3, distance_metric="dtw", seed=0, options={"n_init": 3})
    assert adjusted_rand_score(truth, euclid.labels) < 0.3  # it groups by timing
    assert adjusted_rand_score(truth, dba.labels) >= 0.9
    assert dba.center_kind == "dba_barycentre" and dba.options["window"] == 0


def test_shape_dba_finds_shifted_shapes(bumps) -> None:
    X, truth = bumps
    found = fit_clustering("shape_dba", X, k=3, distance_metric="shape_dtw", seed=0)
    assert adjusted_rand_score(truth, found.labels) >= 0.9
    assert found.center_kind == "shape_dba_barycentre"
    np.testing.assert_array_equal(found.assigner.predict(X), found.labels)


def test_the_same_seed_gives_the_same_clustering(bumps) -> None:
    X, _ = bumps
    runs = [
        fit_clustering(
            "dba", X, k=3, distance_metric="dtw", window=5, seed=3, options={"n_init": 2}
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].labels, runs[1].labels)
    np.testing.assert_array_equal(runs[0].centers, runs[1].centers)
    assert runs[0].options["n_init"] == 2


def test_an_empty_cluster_takes_the_farthest_profile() -> None:
    X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0], [9.0, 9.0]])
    centres = np.array([[0.0, 0.0], [9.0, 9.0], [100.0, 100.0]])
    dist = np.linalg.norm(X[:, None] - centres[None], axis=2)
    labels = _fill_empty(dist, centres, X)
    # cluster 1 has one member (kept); the farthest member of cluster 0 moves to cluster 2
    np.testing.assert_array_equal(labels, [0, 0, 2, 1])
    np.testing.assert_array_equal(centres[2], X[2])


@pytest.mark.parametrize("bad", [{"ba_iter": 0}, {"n_init": 0}, {"max_iter": 0}, {"ba_tol": -1}])
def test_bad_options_are_config_errors(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        BarycentreOptions(**bad)


def planted_shift(shift: int, m: int = 24) -> np.ndarray:
    """A bump at slot 8 of a flat day and the same bump ``shift`` slots later."""
    t = np.arange(float(m))
    return np.array([np.exp(-(((t - c) / 1.5) ** 2)) for c in (8, 8 + shift)])


@pytest.mark.parametrize("window", [2, 3, 5])
def test_a_narrow_band_changes_the_shape_dba_path_where_it_must(window: int) -> None:
    # the descriptors (reach 15) span the whole 24-slot day; the unconstrained path still
    # follows a 6-slot shift, a band that forbids the shift costs the raw mismatch
    x, centre = planted_shift(6)
    members, owner, active = Members(x[None], DESCRIPTORS), np.zeros(1, np.int64), np.ones(1, bool)
    costs = {}
    for w in (window, 0):
        _, _, cost = aligned_sums(members, owner, centre[None], band_width(w, 24), active)
        distance = distance_cross("shape_dtw", x[None], centre[None], w)[0, 0]
        np.testing.assert_allclose(cost[0], distance**2, rtol=1e-10)
        costs[w] = cost[0]
    assert costs[0] < 0.05 * costs[window]
    narrow, wide = (
        refine(members, owner, centre[None].copy(), band=band_width(w, 24), max_iter=1, tol=0)[0]
        for w in (window, 0)
    )
    assert np.abs(narrow - wide).max() > 0.1


def test_shape_dba_uses_the_window_for_seeds_assignment_and_barycentres(monkeypatch, bumps):
    X, _ = bumps
    windows: list[tuple[str, int | None]] = []
    bands: list[int] = []

    def spy_cross(metric, A, B, window=None):
        windows.append((metric, window))
        return distance_cross(metric, A, B, window)

    def spy_sums(members, owner, centres, band, active):
        bands.append(band)
        return aligned_sums(members, owner, centres, band, active)

    monkeypatch.setattr(barycentre, "distance_cross", spy_cross)
    monkeypatch.setattr(barycentre, "aligned_sums", spy_sums)
    found = fit_clustering("shape_dba", X, k=3, distance_metric="shape_dtw", window=4, seed=0)
    assert set(windows) == {("shape_dtw", 4)} and set(bands) == {4}
    assert found.assigner.window == 4 and found.options["window"] == 4


@pytest.mark.parametrize("seed", [7, 25, 34])
def test_shape_dba_steps_never_end_on_a_costlier_average(seed: int) -> None:
    # shape-DBA's paths minimise the descriptor cost, so a step can raise the raw cost (these
    # seeds do): such a step is undone and more steps never end on a costlier average
    X = random_walks(12, 24, seed)
    members, owner, active = Members(X, DESCRIPTORS), np.zeros(12, np.int64), np.ones(1, bool)
    start = X[seed % 12][None]
    costs = [aligned_sums(members, owner, start, 24, active)[2][0]]
    for steps in range(1, 9):
        centre, _ = refine(members, owner, start, band=24, max_iter=steps, tol=0.0)
        costs.append(aligned_sums(members, owner, centre, 24, active)[2][0])
    assert np.all(np.diff(costs) <= 1e-9 * costs[0])


def test_one_run_by_default_and_shape_dba_updates_from_the_mean() -> None:
    dba, shape = DBAClustering.Options(), ShapeDBAClustering.Options()
    assert dba.n_init == shape.n_init == 1
    assert not dba.ba_from_mean and shape.ba_from_mean


@pytest.mark.parametrize("from_mean", [False, True])
def test_updates_start_from_the_members_mean_when_asked(monkeypatch, from_mean: bool) -> None:
    X = random_walks(20, 24, seed=2)
    starts: list[tuple[np.ndarray, np.ndarray]] = []

    def spy_refine(members, labels, centres, **kwargs):
        starts.append((labels.copy(), centres.copy()))
        return refine(members, labels, centres, **kwargs)

    monkeypatch.setattr(barycentre, "refine", spy_refine)
    distances = partial(distance_cross, "dtw", window=4)
    settings = BarycentreOptions(ba_from_mean=from_mean, max_iter=3)
    _one_run(Members(X, VALUES), X[[0, 10]].copy(), distances, 4, settings)
    for labels, centres in starts:
        means = np.array([X[labels == c].mean(axis=0) for c in range(2)])
        assert np.allclose(centres, means) == from_mean


def test_restarts_keep_the_run_of_lowest_inertia() -> None:
    X = random_walks(30, 24, seed=5)
    distances = partial(distance_cross, "dtw", window=4)
    settings = BarycentreOptions(n_init=4)
    best = barycentre_kmeans(
        Members(X, VALUES), 3, distances=distances, band=4, settings=settings, seed=11
    )
    rng = np.random.default_rng(11)  # the four runs, one after the other from the same state
    runs = [
        _one_run(Members(X, VALUES), _plus_plus(X, 3, distances, rng), distances, 4, settings)
        for _ in range(4)
    ]
    inertias = [run.inertia for run in runs]
    assert max(inertias) > min(inertias)  # the restarts differ
    assert best.inertia == min(inertias)
    np.testing.assert_array_equal(best.labels, runs[int(np.argmin(inertias))].labels)
