"""ERP, MSM, TWE and shape-DTW (``meterflow.profiles.dtw.elastic``) against textbook references.

Each reference below is written directly from the definition (the full DP matrix in pure
Python, cells outside the band ``|i - j| < window`` left infinite; shape-DTW traces its path
back from the last cell). ERP's borders are aeon's (the whole series' gap cost, see ``erp.py``).
They were checked once against aeon 1.6.0 (``erp_distance``, ``msm_distance``, ``twe_distance``,
``shape_dtw_distance``): equal within 1e-14 on random walks, z-normalised and zero-clipped
series, windows 0.1 and none, except shape-DTW pairs where aeon's traceback reads wrapped
indices on the first row (``shape_dtw.py``). Rows / cross / condensed agreement, symmetry, zero
self-distance, NaN rows and the window's limits run for every name of ``DISTANCES`` in
``test_dtw_variants.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.clustering.fit import fit_clustering
from meterflow.errors import ConfigError
from meterflow.profiles.dtw import (
    ELASTIC,
    SHAPE_REACH,
    Distance,
    cache_tag,
    condensed_index,
    condensed_to_square,
    distance_condensed,
    distance_cross,
    n_pairs,
    shape_descriptors,
)
from meterflow.sources.dtw_store import DEFAULT_DTW_STORE, open_dtw_store
from meterflow.tasks.clustering_input import Matrices


def inside(i: int, j: int, window: int | None) -> bool:
    """Cell ``(i, j)`` (0-based slots) lies in the band."""
    return not window or abs(i - j) < window


def erp_reference(x: np.ndarray, y: np.ndarray, window: int | None, g: float) -> float:
    """Chen & Ng's ERP with L1 costs and aeon's borders."""
    m = len(x)
    D = np.full((m + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    D[1:, 0] = sum(abs(v - g) for v in x)
    D[0, 1:] = sum(abs(v - g) for v in y)
    for i in range(1, m + 1):
        for j in range(1, m + 1):
            if inside(i - 1, j - 1, window):
                D[i, j] = min(
                    D[i - 1, j - 1] + abs(x[i - 1] - y[j - 1]),
                    D[i - 1, j] + abs(x[i - 1] - g),
                    D[i, j - 1] + abs(y[j - 1] - g),
                )
    return float(D[m, m])


def msm_reference(x: np.ndarray, y: np.ndarray, window: int | None, c: float) -> float:
    """Stefan et al.'s MSM (their Fig. 5 recursion, 0-based)."""

    def edit(v: float, p: float, q: float) -> float:
        return c if min(p, q) <= v <= max(p, q) else c + min(abs(v - p), abs(v - q))

    m = len(x)
    D = np.full((m, m), np.inf)
    D[0, 0] = abs(x[0] - y[0])
    for i in range(m):
        for j in range(m):
            if (i, j) == (0, 0) or not inside(i, j, window):
                continue
            move = D[i - 1, j - 1] + abs(x[i] - y[j]) if i and j else np.inf
            split = D[i - 1, j] + edit(x[i], x[i - 1], y[j]) if i else np.inf
            merge = D[i, j - 1] + edit(y[j], x[i], y[j - 1]) if j else np.inf
            D[i, j] = min(move, split, merge)
    return float(D[m - 1, m - 1])


def twe_reference(x: np.ndarray, y: np.ndarray, window: int | None, nu: float, lm: float) -> float:
    """Marteau's TWE, unit time steps, series padded with a leading 0 (aeon's padding)."""
    m = len(x)
    xp, yp = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
    D = np.full((m + 1, m + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, m + 1):
        for j in range(1, m + 1):
            if inside(i - 1, j - 1, window):
                D[i, j] = min(
                    D[i - 1, j - 1]
                    + abs(xp[i] - yp[j])
                    + abs(xp[i - 1] - yp[j - 1])
                    + 2 * nu * abs(i - j),
                    D[i - 1, j] + abs(xp[i] - xp[i - 1]) + nu + lm,
                    D[i, j - 1] + abs(yp[j] - yp[j - 1]) + nu + lm,
                )
    return float(D[m, m])


def shape_dtw_reference(x: np.ndarray, y: np.ndarray, window: int | None, reach: int) -> float:
    """Zhao & Itti: DTW of identity descriptors (edge-padded subsequences), then the root of the
    raw squared differences along its path, traced back from the last cell (aeon's rule)."""
    m = len(x)

    def descriptor(s: np.ndarray, t: int) -> np.ndarray:
        return np.array([s[min(max(t + k, 0), m - 1)] for k in range(-reach, reach + 1)])

    dx = [descriptor(x, t) for t in range(m)]
    dy = [descriptor(y, t) for t in range(m)]
    D = np.full((m + 1, m + 1), np.inf)  # D[i + 1, j + 1]: cell (i, j)
    D[0, 0] = 0.0
    for i in range(m):
        for j in range(m):
            if inside(i, j, window):
                step = min(D[i, j], D[i, j + 1], D[i + 1, j])
                D[i + 1, j + 1] = float(np.sum((dx[i] - dy[j]) ** 2)) + step
    i = j = m - 1
    total = 0.0
    while i >= 0 and j >= 0:
        total += (x[i] - y[j]) ** 2
        diag, left, up = D[i, j], D[i + 1, j], D[i, j + 1]
        if diag < left and diag < up:
            i, j = i - 1, j - 1
        elif left < up:
            j -= 1
        else:
            i -= 1
    return math.sqrt(total)


def reference(spec: Distance, x: np.ndarray, y: np.ndarray, window: int | None) -> float:
    """The textbook value of ``spec`` (a ``Distance`` of ``ELASTIC``)."""
    if spec.name == "erp":
        return erp_reference(x, y, window, spec.erp_g)
    if spec.name == "msm":
        return msm_reference(x, y, window, spec.msm_c)
    if spec.name == "twe":
        return twe_reference(x, y, window, spec.twe_nu, spec.twe_lmbda)
    return shape_dtw_reference(x, y, window, spec.reach)


def reference_condensed(spec: Distance, X: np.ndarray, window: int | None) -> np.ndarray:
    """Textbook matrix in our lower-triangle layout."""
    out = np.empty(n_pairs(len(X)))
    for i in range(1, len(X)):
        for j in range(i):
            out[condensed_index(i, j)] = reference(spec, X[i], X[j], window)
    return out


def profiles(n: int, m: int, seed: int = 0) -> np.ndarray:
    """Random walks at varied scales (load-like: positive trend, noise)."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=(n, m)), axis=1)
    return walk * rng.uniform(0.2, 5.0, (n, 1)) + rng.uniform(-3, 10, (n, 1))


# --------------------------------------------------------------------------- textbook


@pytest.mark.parametrize("metric", ELASTIC)
@pytest.mark.parametrize(
    ("n", "m", "window"),
    [
        (10, 24, None),
        (10, 24, 3),
        (10, 24, 1),
        (8, 17, 6),
        (8, 40, 30),
        (5, 96, None),
        (5, 96, 10),
        (6, 3, None),
        (4, 1, None),
    ],
)
def test_matches_textbook(metric: str, n: int, m: int, window: int | None) -> None:
    X = profiles(n, m, seed=n * m)
    spec = Distance(metric)
    got = distance_condensed(spec, X, window)
    np.testing.assert_allclose(got, reference_condensed(spec, X, window), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "spec",
    [
        Distance("erp", erp_g=0.5),
        Distance("erp", erp_g=-2.0),
        Distance("msm", msm_c=0.25),
        Distance("msm", msm_c=0.0),
        Distance("twe", twe_nu=0.05, twe_lmbda=0.5),
        Distance("shape_dtw", reach=2),
        Distance("shape_dtw", reach=0),
    ],
    ids=lambda s: s.tag,
)
@pytest.mark.parametrize("window", [None, 4])
def test_parameters_match_textbook(spec: Distance, window: int | None) -> None:
    X = profiles(9, 24, seed=11)
    got = distance_condensed(spec, X, window)
    np.testing.assert_allclose(got, reference_condensed(spec, X, window), rtol=1e-9, atol=1e-12)
    A, B = X[:4], X[4:]
    want = [[reference(spec, a, b, window) for b in B] for a in A]
    np.testing.assert_allclose(distance_cross(spec, A, B, window), want, rtol=1e-9, atol=1e-12)


def test_hand_computed_examples() -> None:
    """Small cases worked out by hand, and the examples of aeon's documentation."""

    def one(spec: Distance | str, x: list[float], y: list[float], window: int | None = None):
        return float(distance_cross(spec, np.array([x]), np.array([y]), window)[0, 0])

    # ERP, g = 0: aeon's borders (every border cell 9) make the diagonal the best path
    # (3 + 0 + 3); the paper's cumulative borders would give 2 (gap 1, two matches, gap 1).
    assert one("erp", [1, 4, 4], [4, 4, 1]) == 6.0
    assert one("erp", list(range(1, 11)), [2, 2, 2, 2, *range(5, 11)]) == 4.0  # aeon's docs
    # MSM, c = 1: split x's first 0 (between 0 and 0: cost c), move 5 -> 5, merge y's last 5.
    assert one("msm", [0, 0, 5], [0, 5, 5]) == 2.0
    assert one("msm", [0, 0, 5], [0, 5, 5], window=1) == 5.0  # diagonal only: 0 + 5 + 0
    # TWE: the match of (1, 2) against (2, 2) costs |1-2| then |2-2| + |1-2|; edits cost more.
    assert one("twe", [1, 2], [2, 2]) == 2.0
    assert one("twe", [1, 2, 3], [4, 5, 6]) == pytest.approx(11.004, abs=1e-12)  # aeon's docs
    assert one("twe", list(range(1, 11)), list(range(11, 21))) == pytest.approx(46.018, abs=1e-12)
    # shape-DTW, reach 1: descriptors (0,0,1) (0,1,0) (1,0,0) against (0,0,0) (0,0,1) (0,1,1);
    # their DTW path is (0,0) (0,1) (1,2) (2,2), whose raw squared differences sum to 1.
    assert one(Distance("shape_dtw", reach=1), [0, 1, 0], [0, 0, 1]) == 1.0


def test_window_one_is_lock_step() -> None:
    """A band of one slot leaves only the diagonal: L1 for ERP and MSM, TWE's match chain,
    Euclidean for shape-DTW."""
    X = profiles(12, 24, seed=12)
    l1 = np.abs(X[:, None, :] - X[None, :, :]).sum(axis=2)
    last = np.abs(X[:, None, -1] - X[None, :, -1])
    euclid = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(distance_cross("erp", X, X, 1), l1, rtol=1e-12)
    np.testing.assert_allclose(distance_cross("msm", X, X, 1), l1, rtol=1e-12)
    np.testing.assert_allclose(distance_cross("twe", X, X, 1), 2 * l1 - last, rtol=1e-12)
    np.testing.assert_allclose(distance_cross("shape_dtw", X, X, 1), euclid, rtol=1e-12)


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize("window", [None, 2, 6])
def test_shape_dtw_against_dtw(window: int | None) -> None:
    """Shape-DTW measures a path DTW also ranges over, so it is never below DTW; with reach 0
    the descriptors are the values and the two agree."""
    X = profiles(40, 24, seed=13)
    dtw = distance_condensed("dtw", X, window)
    assert np.all(distance_condensed("shape_dtw", X, window) >= dtw * (1 - 1e-12))
    flat = distance_condensed(Distance("shape_dtw", reach=0), X, window)
    np.testing.assert_allclose(flat, dtw, rtol=1e-12)


def test_shape_dtw_window_limits() -> None:
    X = profiles(30, 24, seed=14)
    free = distance_condensed("shape_dtw", X, None)
    for window in (0, 24, 25):
        np.testing.assert_array_equal(distance_condensed("shape_dtw", X, window), free)
    assert not np.array_equal(distance_condensed("shape_dtw", X, 3), free)


@pytest.mark.parametrize("metric", ["msm", "twe"])
def test_metric_triangle_inequality(metric: str) -> None:
    X = profiles(25, 24, seed=15)
    D = distance_cross(metric, X, X, 5)
    assert np.all(D[:, None, :] <= D[:, :, None] + D[None, :, :] + 1e-9)


def test_shape_descriptors_are_edge_padded_windows() -> None:
    X = profiles(3, 7, seed=16)
    got = shape_descriptors(X, 2)
    assert got.shape == (3, 7, 5) and got.flags.c_contiguous
    for p in range(3):
        for t in range(7):
            want = [X[p, min(max(t + k, 0), 6)] for k in range(-2, 3)]
            np.testing.assert_array_equal(got[p, t], want)
    np.testing.assert_array_equal(shape_descriptors(X, 0), X[:, :, None])
    assert shape_descriptors(X).shape == (3, 7, 2 * SHAPE_REACH + 1)


def test_bad_parameters() -> None:
    for kwargs, message in [
        ({"erp_g": math.inf}, "erp_g"),
        ({"msm_c": -1.0}, "msm_c"),
        ({"twe_nu": -0.1}, "twe_nu"),
        ({"twe_lmbda": math.nan}, "twe_lmbda"),
        ({"reach": -1}, "reach"),
        ({"reach": 1.5}, "reach"),
    ]:
        with pytest.raises(ConfigError, match=message):
            Distance("erp", **kwargs)
    with pytest.raises(ConfigError, match="reach"):
        shape_descriptors(profiles(2, 5), True)


# --------------------------------------------------------------------------- cache and use


def test_cache_tags_name_the_parameters() -> None:
    assert cache_tag("erp", "none") == "none.erp-g0.0"
    assert cache_tag("msm", "l2") == "l2.msm-c1.0"
    assert cache_tag("twe", "l2") == "l2.twe-nu0.001-l1.0"
    assert cache_tag("shape_dtw", "zscore") == "zscore.shape_dtw-r15"
    assert cache_tag(Distance("msm", msm_c=0.5), "l2") == "l2.msm-c0.5"
    assert cache_tag(Distance("shape_dtw", reach=4), "l2") == "l2.shape_dtw-r4"


def test_matrices_read_and_write_the_store(tmp_path) -> None:
    """The clustering step's ``Matrices`` caches each elastic matrix apart, by its tag."""
    X = profiles(30, 24, seed=17)
    store = open_dtw_store(DEFAULT_DTW_STORE, tmp_path)
    matrices = Matrices(X, store, 3, "l2", "")
    for metric in ELASTIC:
        want = condensed_to_square(distance_condensed(metric, X, 3), len(X))
        first = matrices(metric)
        np.testing.assert_allclose(first, want, rtol=1e-6)  # the store may keep float32
        np.testing.assert_array_equal(Matrices(X, store, 3, "l2", "")(metric), first)
    folders = " ".join(p.name for p in tmp_path.rglob("*") if p.is_dir())
    assert all(f"-{cache_tag(m, 'l2')}-" in folders for m in ELASTIC)


@pytest.mark.parametrize("metric", ELASTIC)
@pytest.mark.parametrize("model", ["kmedoids", "agglomerative"])
def test_matrix_methods_assign_with_the_same_distance(metric: str, model: str) -> None:
    X = profiles(24, 24, seed=18)
    train, new = X[:18], X[18:]
    matrix = condensed_to_square(distance_condensed(metric, train, 4), len(train))
    result = fit_clustering(model, train, k=3, distance_metric=metric, dtw=matrix, window=4)
    assigner = result.assigner
    assert assigner.settings()["metric"] == metric
    np.testing.assert_array_equal(assigner.predict(train), result.labels)
    reference_set = getattr(assigner, "members", getattr(assigner, "centers", None))
    nearest = distance_cross(metric, new, reference_set, 4).min(axis=1)
    np.testing.assert_allclose(assigner.distances(new).min(axis=1), nearest, rtol=1e-12)
