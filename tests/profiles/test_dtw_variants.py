"""DDTW, WDTW and WDDTW (``meterflow.profiles.dtw.variants``) against a textbook reference.

The reference is written directly from the definitions (Keogh & Pazzani's derivative; Jeong et
al.'s weighted cell cost on the full DP matrix) and returns the unrooted cost, as aeon does; our
distances are its square root. It was checked once against aeon 1.6.0 (``ddtw_distance``,
``wdtw_distance``, ``wddtw_distance``): aeon cannot be installed next to this project's numba.
The consistency, symmetry, window and error tests run over every name of ``DISTANCES``, the
elastic ones included (their references: ``test_elastic_distances.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.errors import ConfigError, SchemaError
from meterflow.profiles.dtw import (
    DISTANCES,
    WDTW_G,
    Distance,
    cache_tag,
    condensed_index,
    derivative,
    distance_condensed,
    distance_cross,
    distance_rows,
    dtw_condensed,
    n_pairs,
    row_computer,
    wdtw_cross,
    wdtw_rows,
)
from meterflow.sources.dtw_cache import DtwCache

VARIANTS = ("ddtw", "wdtw", "wddtw")


def textbook_derivative(q: np.ndarray) -> np.ndarray:
    """Keogh & Pazzani: ``((q[i] - q[i-1]) + (q[i+1] - q[i-1]) / 2) / 2``, ``i = 1 .. m-2``."""
    return np.array(
        [((q[i] - q[i - 1]) + (q[i + 1] - q[i - 1]) / 2) / 2 for i in range(1, len(q) - 1)]
    )


def textbook_cost(
    x: np.ndarray, y: np.ndarray, radius: int | None, g: float | None, w_max: float = 1.0
) -> float:
    """Accumulated (unrooted) DTW cost over cells ``|i - j| <= radius`` (None = all); ``g=None``
    unweighted, else Jeong et al.'s ``w(k) = w_max / (1 + exp(-g (k - m/2)))`` on each cell."""
    m = len(x)
    acc = np.full((m + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(m):
        for j in range(m):
            if radius is not None and abs(i - j) > radius:
                continue
            w = 1.0 if g is None else w_max / (1 + math.exp(-g * (abs(i - j) - m / 2)))
            step = min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
            acc[i + 1, j + 1] = (x[i] - y[j]) ** 2 * w + step
    return float(acc[m, m])


def reference(metric: str, x: np.ndarray, y: np.ndarray, window: int | None, g: float) -> float:
    """Our distance from the textbook: derivative if asked, radius ``window - 1``, sqrt."""
    spec = Distance(metric, g=g)
    if spec.derivative:
        x, y = textbook_derivative(x), textbook_derivative(y)
    radius = None if not window else window - 1
    return math.sqrt(textbook_cost(x, y, radius, g if spec.weighted else None))


def reference_condensed(metric: str, X: np.ndarray, window: int | None, g: float) -> np.ndarray:
    """Textbook matrix in our lower-triangle layout."""
    n = len(X)
    out = np.empty(n_pairs(n))
    for i in range(1, n):
        for j in range(i):
            out[condensed_index(i, j)] = reference(metric, X[i], X[j], window, g)
    return out


def profiles(n: int, m: int, seed: int = 0) -> np.ndarray:
    """Random walks at varied scales (load-like: positive trend, noise)."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(size=(n, m)), axis=1)
    return walk * rng.uniform(0.2, 5.0, (n, 1)) + rng.uniform(0, 10, (n, 1))


# --------------------------------------------------------------------------- reference


def test_derivative_is_keogh_pazzani() -> None:
    X = profiles(5, 11)
    got = derivative(X)
    assert got.shape == (5, 9)
    for row, q in zip(got, X, strict=True):
        np.testing.assert_array_equal(row, textbook_derivative(q))
    np.testing.assert_array_equal(derivative([[1.0, 2.0, 4.0]]), [[1.25]])


@pytest.mark.parametrize("metric", VARIANTS)
@pytest.mark.parametrize(
    ("n", "m", "window", "g"),
    [
        (14, 24, None, WDTW_G),
        (14, 24, 3, WDTW_G),
        (14, 24, 1, 0.3),
        (12, 17, None, 1.0),  # odd length, steep weight
        (12, 17, 5, 0.0),  # g = 0: constant weight w_max / 2
        (11, 40, 30, WDTW_G),  # window beyond the derivative's length: unconstrained
        (6, 96, None, WDTW_G),
        (6, 96, 8, WDTW_G),
        (9, 3, None, WDTW_G),  # shortest profiles with a derivative (one value)
    ],
)
def test_matches_textbook(metric: str, n: int, m: int, window: int | None, g: float) -> None:
    X = profiles(n, m, seed=n * m)
    got = distance_condensed(Distance(metric, g=g), X, window)
    np.testing.assert_allclose(got, reference_condensed(metric, X, window, g), rtol=1e-9, atol=0)


def test_weights_and_scales() -> None:
    """g = 0, w_max = 2 weighs every cell 1: WDTW is DTW; w_max scales by sqrt(w_max)."""
    X = profiles(20, 24)
    plain = dtw_condensed(X, 4, progress=False)
    flat = distance_condensed(Distance("wdtw", g=0.0, w_max=2.0), X, 4)
    np.testing.assert_allclose(flat, plain, rtol=1e-12)
    scaled = distance_condensed(Distance("wdtw", w_max=4.0), X, None)
    np.testing.assert_allclose(scaled, 2 * distance_condensed("wdtw", X, None), rtol=1e-12)
    np.testing.assert_array_equal(
        distance_condensed("ddtw", X, 4), dtw_condensed(derivative(X), 4, progress=False)
    )


# --------------------------------------------------------------------------- consistency


@pytest.mark.parametrize("metric", DISTANCES)
@pytest.mark.parametrize("window", [None, 2, 6])
def test_rows_cross_condensed_agree(metric: str, window: int | None) -> None:
    X = profiles(75, 24, seed=3)  # > 2 lane blocks of 32
    full = distance_condensed(metric, X, window)
    pieces = [distance_rows(metric, X, a, b, window) for a, b in [(0, 1), (1, 40), (40, 75)]]
    np.testing.assert_array_equal(np.concatenate(pieces), full)
    serial = distance_rows(metric, X, 10, 75, window, parallel=False)
    np.testing.assert_array_equal(serial, full[n_pairs(10) :])
    out = np.full(n_pairs(75) - n_pairs(30), np.nan, dtype=np.float32)
    distance_rows(metric, X, 30, 75, window, out=out)
    np.testing.assert_array_equal(out, full[n_pairs(30) :].astype(np.float32))
    cross = distance_cross(metric, X, X, window)
    i, j = np.tril_indices(75, -1)
    np.testing.assert_allclose(cross[i, j], full[condensed_index(i, j)], rtol=1e-12)
    np.testing.assert_array_equal(np.diag(cross), 0.0)


@pytest.mark.parametrize("metric", ["wdtw", "wddtw"])
def test_dispatch_equals_direct_kernel(metric: str) -> None:
    X = profiles(40, 30, seed=4)
    x = derivative(X) if metric == "wddtw" else X
    g = 0.2
    spec = Distance(metric, g=g)
    np.testing.assert_array_equal(distance_rows(spec, X, 5, 40, 7), wdtw_rows(x, 5, 40, 7, g=g))
    np.testing.assert_array_equal(
        distance_cross(spec, X[:7], X[7:], 7), wdtw_cross(x[:7], x[7:], 7, g=g)
    )


@pytest.mark.parametrize("metric", DISTANCES)
def test_symmetric(metric: str) -> None:
    A, B = profiles(33, 24, seed=5), profiles(40, 24, seed=6)
    np.testing.assert_array_equal(distance_cross(metric, A, B), distance_cross(metric, B, A).T)


@pytest.mark.parametrize("metric", [d for d in DISTANCES if d != "shape_dtw"])
def test_window_honoured(metric: str) -> None:  # shape-DTW: not a minimum over paths
    X = profiles(40, 24, seed=7)
    free = distance_condensed(metric, X, None)
    length = 22 if Distance(metric).derivative else 24
    for window in (0, length, length + 1, 100):  # all unconstrained
        np.testing.assert_array_equal(distance_condensed(metric, X, window), free)
    previous = free
    for window in (8, 4, 2, 1):  # narrower bands: never shorter
        banded = distance_condensed(metric, X, window)
        assert np.all(banded >= previous - 1e-12 * previous)
        previous = banded
    assert np.any(previous > free)


def test_window_one_is_weighted_euclidean() -> None:
    X = profiles(10, 24, seed=8)
    w0 = 1.0 / (1.0 + math.exp(WDTW_G * 12))
    euclid = np.sqrt(((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2))
    np.testing.assert_allclose(wdtw_cross(X, X, 1, g=WDTW_G), math.sqrt(w0) * euclid, rtol=1e-12)


# --------------------------------------------------------------------------- errors


def test_unknown_metric_lists_choices() -> None:
    with pytest.raises(ConfigError, match="wddtw"):
        distance_condensed("softdtw", profiles(3, 5), None)
    with pytest.raises(ConfigError, match="choose one of"):
        row_computer("DTW")


def test_too_short_for_derivative() -> None:
    X = profiles(4, 2)
    for metric in ("ddtw", "wddtw"):
        with pytest.raises(SchemaError, match=">= 3 slots"):
            distance_condensed(metric, X, None)
    assert distance_condensed("wdtw", X, None).shape == (6,)


@pytest.mark.parametrize("metric", DISTANCES)
def test_nan_row_named(metric: str) -> None:
    X = profiles(6, 24)
    X[4, 3] = np.nan
    with pytest.raises(SchemaError, match="row 4"):
        distance_condensed(metric, X, None)
    with pytest.raises(SchemaError, match="B: profile row 4"):
        distance_cross(metric, X[:2], X)


def test_bad_arguments() -> None:
    X = profiles(6, 24)
    with pytest.raises(ConfigError, match="g must be"):
        Distance("wdtw", g=-0.1)
    with pytest.raises(ConfigError, match="g must be"):
        wdtw_rows(X, 0, 6, g=float("nan"))
    with pytest.raises(ConfigError, match="w_max"):
        Distance("wddtw", w_max=0.0)
    with pytest.raises(ConfigError, match="window"):
        distance_rows("wdtw", X, 0, 6, -1)
    with pytest.raises(ConfigError, match="start <= stop"):
        distance_rows("wddtw", X, 4, 2)
    with pytest.raises(ConfigError, match="out has shape"):
        distance_rows("wdtw", X, 0, 6, out=np.empty(3))
    with pytest.raises(SchemaError, match="24 slots but B has 23"):
        distance_cross("wddtw", X, X[:, :-1])


# --------------------------------------------------------------------------- cache


def test_cache_tags() -> None:
    assert cache_tag("dtw", "l2") == "l2"
    assert cache_tag("ddtw", "l2") == "l2.ddtw"
    assert cache_tag("wddtw", "l2") == "l2.wddtw-g0.05"
    assert cache_tag(Distance("wdtw", g=0.125), "none") == "none.wdtw-g0.125"
    assert cache_tag(Distance("wdtw", w_max=2), "l2") == "l2.wdtw-g0.05-wmax2.0"
    with pytest.raises(ConfigError, match="letters, digits"):
        cache_tag("wdtw", "l2/x")
    assert row_computer("dtw") is None


@pytest.mark.parametrize("metric", ["wdtw", "wddtw", "erp", "msm", "twe", "shape_dtw"])
def test_cache_holds_variant(tmp_path, metric: str) -> None:
    X = profiles(50, 24, seed=9)
    cache = DtwCache(tmp_path)
    tag = cache_tag(metric, "l2")
    first = cache.update(X[:30], window=4, normalization=tag, rows=row_computer(metric))
    np.testing.assert_array_equal(first.condensed(), distance_condensed(metric, X[:30], 4))
    grown = cache.update(X, window=4, normalization=tag, rows=row_computer(metric))
    assert grown.pairs_computed == n_pairs(50) - n_pairs(30)
    np.testing.assert_array_equal(grown.condensed(), distance_condensed(metric, X, 4))
    plain = cache.update(X, window=4, normalization="l2", progress=False)
    assert plain.path.parent != grown.path.parent
    np.testing.assert_array_equal(plain.condensed(), dtw_condensed(X, 4, progress=False))
