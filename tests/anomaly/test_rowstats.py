"""Row medians and quantiles by one sort give NumPy's numbers (the windowed evidence and the
clock evidence use them on every meter-day, and must not change a score)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from meterflow.anomaly.rowstats import nanmedian, nanquantile


def _arrays(seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        shape = tuple(int(n) for n in rng.integers(1, 20, size=rng.integers(1, 4)))
        a = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 5)
        a[rng.random(shape) < rng.random()] = np.nan
        yield np.round(a) if rng.random() < 0.3 else a  # ties, as quantised readings have


@pytest.mark.parametrize("seed", [0, 1])
def test_row_statistics_equal_numpy_bit_for_bit(seed: int) -> None:
    for a in _arrays(seed):
        for axis in range(a.ndim):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
                median = np.nanmedian(a, axis=axis)
                quantile = np.nanquantile(a, 0.2, axis=axis)
            assert np.array_equal(nanmedian(a, axis), median, equal_nan=True)
            assert np.array_equal(nanquantile(a, 0.2, axis), quantile, equal_nan=True)


def test_all_nan_and_empty_rows_give_nan() -> None:
    a = np.array([[np.nan, np.nan], [1.0, np.nan]])
    assert np.isnan(nanmedian(a, 1)[0]) and nanmedian(a, 1)[1] == 1.0
    assert np.isnan(nanquantile(a, 0.2, 1)[0]) and nanquantile(a, 0.2, 1)[1] == 1.0
    assert nanmedian(np.zeros((3, 0)), 1).shape == (3,)
