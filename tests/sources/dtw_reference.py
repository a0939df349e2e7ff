"""The reference every DTW store test compares with: the full matrix recomputed from scratch."""

from __future__ import annotations

import numpy as np

from meterflow.profiles.dtw import condensed_to_square, dtw_condensed

WINDOW = 3


def random_profiles(n: int = 60, slots: int = 24, seed: int = 42) -> np.ndarray:
    return np.random.default_rng(seed).gamma(2.0, 50.0, size=(n, slots))


def full_square(x: np.ndarray, window: int | None = WINDOW) -> np.ndarray:
    return condensed_to_square(dtw_condensed(x, window), len(x))


def assert_matches_full(mat, x: np.ndarray, window: int | None = WINDOW) -> None:
    got = mat.square()
    assert got.shape == (len(x), len(x))
    assert np.max(np.abs(got - full_square(x, window))) <= 1e-12
