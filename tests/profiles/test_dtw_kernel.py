"""The numba DTW kernel gives dtaidistance's distances, in our condensed lower-triangle layout."""

from __future__ import annotations

import logging

import numba
import numpy as np
import pytest
from dtaidistance import dtw as dtai
from scipy.spatial.distance import squareform

from meterflow.errors import ConfigError, SchemaError
from meterflow.profiles.dtw import (
    band_cells,
    canonical_window,
    compiled,
    condensed_index,
    condensed_to_square,
    dtw_condensed,
    dtw_cross,
    dtw_distance,
    dtw_rows,
    n_pairs,
    vector_kernels,
    wdtw_cross,
    wdtw_rows,
)
from meterflow.profiles.dtw.vector_kernels import column_pad


@pytest.fixture(scope="module")
def bdew_days() -> np.ndarray:
    """Realistic daily profiles (Wh per 15 min): BDEW household, commercial and farm load
    profiles for 2023, each day scaled per meter and with measurement noise."""
    import demandlib.bdew as bdew

    power_kw = bdew.ElecSlp(2023).get_scaled_power_profiles({"h0": 3.5e3, "g0": 8e3, "l0": 5e3})
    days = np.concatenate(
        [power_kw[c].to_numpy().reshape(-1, 96) * 250.0 for c in ("h0", "g0", "l0")]
    )
    rng = np.random.default_rng(7)
    picked = days[rng.choice(len(days), 90, replace=False)]
    return picked * rng.uniform(0.3, 3.0, (90, 1)) + rng.normal(0.0, 5.0, picked.shape)


def textbook_dtw(a: np.ndarray, b: np.ndarray, radius: int | None) -> float:
    """Plain DTW with a Sakoe-Chiba radius (cells with |i - j| <= radius), tslearn's definition
    of ``sakoe_chiba_radius``; None = unconstrained."""
    n = len(a)
    acc = np.full((n + 1, n + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(n):
        for j in range(n):
            if radius is None or abs(i - j) <= radius:
                step = min(acc[i, j], acc[i, j + 1], acc[i + 1, j])
                acc[i + 1, j + 1] = (a[i] - b[j]) ** 2 + step
    return float(np.sqrt(acc[n, n]))


def reference_condensed(x: np.ndarray, window: int | None) -> np.ndarray:
    """dtaidistance's matrix, re-ordered into our lower-triangle layout."""
    upper = np.asarray(dtai.distance_matrix_fast(x, compact=True, window=window))
    n = len(x)
    ours = np.empty(n_pairs(n))
    r, c = np.triu_indices(n, 1)
    ours[condensed_index(c, r)] = upper
    return ours


@pytest.mark.parametrize(
    ("n", "length", "window"),
    [
        (45, 24, None),
        (45, 24, 0),
        (45, 24, 1),
        (45, 24, 2),
        (45, 24, 4),
        (45, 24, 40),  # wider than the profile: unconstrained
        (33, 96, None),
        (33, 96, 8),
        (40, 17, None),  # odd lengths
        (40, 17, 3),
        (37, 1, None),
        (70, 5, 2),
    ],
)
def test_equals_dtaidistance_on_random_profiles(n: int, length: int, window: int | None) -> None:
    x = np.random.default_rng(n * 1000 + length).normal(size=(n, length))
    ours = dtw_condensed(x, window)
    ref = reference_condensed(x, window)
    assert ours.shape == (n * (n - 1) // 2,)
    assert np.max(np.abs(ours - ref)) <= 1e-9
    assert np.array_equal(ours, ref)  # same operations in the same order: bit-identical


@pytest.mark.parametrize("window", [None, 4, 12])
def test_equals_dtaidistance_on_daily_load_profiles(bdew_days: np.ndarray, window) -> None:
    for x in (bdew_days, bdew_days.reshape(len(bdew_days), 24, 4).sum(axis=2)):  # 96 and 24
        ours = dtw_condensed(x, window)
        ref = reference_condensed(x, window)
        assert np.max(np.abs(ours - ref)) <= 1e-9 * max(1.0, ref.max())
        assert ref.max() > 100.0  # Wh-scale distances, not a trivial case


def test_window_means_dtaidistance_band_and_tslearn_radius_minus_one() -> None:
    """window=w allows |i - j| < w, i.e. tslearn's sakoe_chiba_radius = w - 1 (checked against
    tslearn itself while writing this; tslearn is not imported here because its import and JIT
    take ~30 s)."""
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 24))
    for w in (1, 2, 3, 6):
        ours = dtw_distance(a, b, w)
        assert ours == pytest.approx(dtai.distance_fast(a, b, window=w), abs=1e-12)
        assert ours == pytest.approx(textbook_dtw(a, b, radius=w - 1), abs=1e-9)
    assert dtw_distance(a, b, 1) == pytest.approx(np.linalg.norm(a - b), abs=1e-12)
    assert dtw_distance(a, b, None) == dtw_distance(a, b, 0) == dtw_distance(a, b, 24)
    assert dtw_distance(a, b, None) == pytest.approx(textbook_dtw(a, b, None), abs=1e-9)
    by_window = [dtw_distance(a, b, w) for w in (1, 2, 4, 8, None)]
    assert by_window == sorted(by_window, reverse=True)  # a wider band never costs more
    assert canonical_window(None, 24) == canonical_window(30, 24) == 0
    assert canonical_window(3, 24) == 3
    assert band_cells(24, None) == 576
    assert band_cells(24, 1) == 24
    assert band_cells(4, 2) == 4 + 3 + 3


def test_rows_append_and_match_full_matrix() -> None:
    x = np.random.default_rng(5).normal(size=(80, 24))
    full = dtw_condensed(x, 3)
    parts = [dtw_rows(x, lo, hi, 3) for lo, hi in [(0, 1), (1, 10), (10, 47), (47, 80)]]
    assert np.array_equal(np.concatenate(parts), full)
    # rows of the first 47 profiles do not depend on the later ones
    assert np.array_equal(dtw_rows(x[:47], 10, 47, 3), parts[2])
    serial = dtw_rows(x, 0, 80, 3, parallel=False)
    assert np.array_equal(serial, full)
    out32 = np.empty(n_pairs(80), dtype=np.float32)
    dtw_rows(x, 0, 80, 3, out=out32)
    assert np.array_equal(out32, full.astype(np.float32))


def test_square_cross_and_index_layout() -> None:
    x = np.random.default_rng(11).normal(size=(50, 12))
    c = dtw_condensed(x)
    sq = condensed_to_square(c, 50)
    ref_sq = squareform(reference_condensed(x, None)[condensed_index(*np.triu_indices(50, 1))])
    assert np.array_equal(sq, ref_sq)
    assert np.array_equal(sq, sq.T)
    assert np.all(np.diag(sq) == 0.0)
    i, j = 31, 7
    assert c[i * (i - 1) // 2 + j] == sq[i, j] == c[condensed_index(j, i)]
    cross = dtw_cross(x[[3, 40, 9]], x)
    assert cross.shape == (3, 50)
    assert np.array_equal(cross, sq[[3, 40, 9]])
    assert dtw_cross(x[:0], x).shape == (0, 50)
    with pytest.raises(SchemaError, match="slots"):
        dtw_cross(x, x[:, :10])
    with pytest.raises(SchemaError, match="does not match"):
        condensed_to_square(c, 49)


def test_bad_input_is_a_clear_error() -> None:
    x = np.zeros((5, 24))
    x[3, 7] = np.nan
    with pytest.raises(SchemaError, match="row 3"):
        dtw_condensed(x)
    with pytest.raises(SchemaError, match="2-D"):
        dtw_condensed(np.zeros(24))
    with pytest.raises(ConfigError, match="window"):
        dtw_condensed(np.zeros((5, 24)), -1)
    with pytest.raises(ConfigError, match="window"):
        dtw_condensed(np.zeros((5, 24)), 2.5)
    with pytest.raises(ConfigError, match="start"):
        dtw_rows(np.zeros((5, 24)), 3, 9)
    assert dtw_condensed(np.zeros((1, 24))).shape == (0,)
    assert dtw_condensed(np.zeros((0, 24))).shape == (0,)


@pytest.mark.parametrize("length", [5, 17, 24, 96])
@pytest.mark.parametrize("window", [1, 2, 3, 5, 8, 9, 16, None])
def test_every_kernel_is_bit_identical(length: int, window: int | None) -> None:
    """Both vector kernels (narrow: registers; wide: scratch row), as rows, serial rows and
    cross distances, equal dtaidistance bit for bit on ordinary, huge and tiny values, over
    more than one lane block."""
    rng = np.random.default_rng(length * 100 + (window or 0))
    x = rng.normal(size=(70, length)) * np.array([[1.0]] * 60 + [[1e150]] * 5 + [[1e-150]] * 5)
    ours = dtw_condensed(x, window)
    assert np.array_equal(ours, reference_condensed(x, window))
    assert np.array_equal(dtw_rows(x, 0, len(x), window, parallel=False), ours)
    cross = dtw_cross(x[:3], x, window)
    assert np.array_equal(cross, condensed_to_square(ours, len(x))[:3])


def test_narrow_windows_use_the_register_kernel_only() -> None:
    assert [column_pad(96, w) for w in (1, 2, 3, 8, 9, 96)] == [0, 1, 2, 7, 0, 0]
    assert column_pad(3, 3) == 0  # a window as long as the profile is unconstrained


@numba.njit
def _uncompilable(*args):
    return args[0].no_such_attribute  # a typing error: the compile fails on first use


def test_a_vector_kernel_that_cannot_compile_falls_back_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """The plain numba kernel takes over, for DTW and WDTW, narrow and wide bands, parallel and
    serial, with bit-identical distances and one warning for the whole process."""
    x = np.random.default_rng(3).gamma(2.0, 50.0, size=(40, 24))
    cases = [
        lambda: dtw_rows(x, 0, 40, 3),
        lambda: dtw_rows(x, 10, 40, None, parallel=False),
        lambda: dtw_cross(x[:5], x, 12),
        lambda: wdtw_rows(x, 0, 40, 4, g=0.2),
        lambda: wdtw_rows(x, 7, 40, None, parallel=False),
        lambda: wdtw_cross(x[:5], x, 2),
    ]
    vector = [case() for case in cases]
    monkeypatch.setattr(compiled, "_failed", [])
    for name in compiled.KERNELS:
        monkeypatch.setattr(vector_kernels, name, _uncompilable)
    with caplog.at_level(logging.WARNING, logger=compiled.__name__):
        plain = [case() for case in cases]
    assert compiled.vector_kernels_failed()
    for got, expected in zip(plain, vector, strict=True):
        assert np.array_equal(got, expected)
    warnings = [r for r in caplog.records if r.name == compiled.__name__]
    assert len(warnings) == 1 and "plain numba kernel" in warnings[0].getMessage()
    assert "TypingError" in warnings[0].getMessage()
