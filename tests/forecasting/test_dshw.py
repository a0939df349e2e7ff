"""Double-seasonal Holt-Winters: numba kernel vs. a loop reference, exactness, NaN, skill."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.forecasting.dshw import DshwModel, fit_dshw

M1, M2 = 24, 168


def _reference(model: DshwModel, y: list[float], origins: list[int], horizon: int) -> tuple:
    """Plain-Python recursion and forecast equations; returns (forecasts, sse)."""
    m1, m2 = model.m1, model.m2
    level = {m2 - 1: model.level0}
    day = {m2 - m1 + j: float(model.day0[j]) for j in range(m1)}
    week = {i: float(model.week0[i]) for i in range(m2)}
    err, sse = {m2 - 1: 0.0}, 0.0
    for t in range(m2, max(origins) + 1):
        e = y[t] - (level[t - 1] + day[t - m1] + week[t - m2])
        if math.isnan(e):
            e = 0.0
        else:
            sse += (e - model.phi * err[t - 1]) ** 2
        err[t] = e
        level[t] = level[t - 1] + model.alpha * e
        day[t] = day[t - m1] + model.delta * e
        week[t] = week[t - m2] + model.omega * e
    out = [
        [
            level[t]
            + day[t - m1 * math.ceil(k / m1) + k]
            + week[t - m2 * math.ceil(k / m2) + k]
            + model.phi**k * err[t]
            for k in range(1, horizon + 1)
        ]
        for t in origins
    ]
    return np.array(out), sse


def _synthetic(weeks: int, seed: int, ar: float = 0.8, noise: float = 1.0) -> np.ndarray:
    """Daily + weekly (day-of-week scaled) pattern, level 50, AR(1) noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(weeks * M2)
    dow = np.array([1.0, 1.0, 1.05, 1.0, 0.95, 0.7, 0.6])[(t // M1) % 7]
    daily = 10 * np.sin(2 * np.pi * t / M1) + 4 * np.cos(4 * np.pi * t / M1)
    e = np.zeros(t.size)
    shocks = rng.normal(0.0, noise, t.size)
    for i in range(1, t.size):
        e[i] = ar * e[i - 1] + shocks[i]
    return 50 + dow * daily + 5 * dow + e


def test_kernel_matches_loop_reference_with_nans() -> None:
    rng = np.random.default_rng(1)
    y = _synthetic(5, seed=2) + rng.normal(0, 2, 5 * M2)
    y[rng.random(y.size) < 0.1] = np.nan
    y[400:430] = np.nan
    train = y[: 3 * M2]
    model = fit_dshw(train, M1)
    origins = [M2, M2 + 7, 3 * M2 - 1, 3 * M2 + 50, 5 * M2 - 1]
    got = model.forecasts(y, np.array(origins), 2 * M2 + 5)
    want, _ = _reference(model, list(y), origins, 2 * M2 + 5)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    _, sse = _reference(model, list(train), [len(train) - 1], 1)
    assert model.sse == pytest.approx(sse, rel=1e-12)


def test_noiseless_double_seasonal_series_is_forecast_exactly() -> None:
    y = _synthetic(4, seed=0, noise=0.0)
    model = fit_dshw(y[: 3 * M2], M1)
    origins = np.arange(3 * M2 - 1, 4 * M2 - 2 * M1, 5)
    got = model.forecasts(y, origins, 2 * M1)
    truth = y[origins[:, None] + np.arange(1, 2 * M1 + 1)]
    np.testing.assert_allclose(got, truth, atol=1e-6)
    assert model.sse < 1e-12


def test_missing_block_still_gives_finite_forecasts() -> None:
    y = _synthetic(6, seed=3)
    y[2 * M2 + 10 : 2 * M2 + 10 + 2 * M1] = np.nan
    model = fit_dshw(y[: 4 * M2], M1)
    origins = np.arange(2 * M2 + 10, 6 * M2 - M1)
    got = model.forecasts(y, origins, M1)
    assert got.shape == (origins.size, M1)
    assert np.isfinite(got).all()
    assert np.isfinite(model.sse)


def test_fit_beats_seasonal_naive_week_on_noisy_series() -> None:
    y = _synthetic(10, seed=4, ar=0.8, noise=1.5)
    n_train = 6 * M2
    model = fit_dshw(y[:n_train], M1)
    params = np.array([model.alpha, model.delta, model.omega, model.phi])
    assert ((params >= 0) & (params <= 1)).all()
    origins = np.arange(n_train - 1, y.size - M1 - 1, M1)  # each test day's midnight
    steps = np.arange(1, M1 + 1)
    truth = y[origins[:, None] + steps]
    naive = y[origins[:, None] + steps - M2]
    mae_dshw = np.abs(model.forecasts(y, origins, M1) - truth).mean()
    mae_naive = np.abs(naive - truth).mean()
    assert mae_dshw < mae_naive


def test_too_short_or_too_sparse_training_raises() -> None:
    y = _synthetic(2, seed=5)
    with pytest.raises(ValueError, match="at least m2 \\+ m1"):
        fit_dshw(y[: M2 + M1 - 1], M1)
    sparse = y.copy()
    sparse[: int(0.6 * y.size)] = np.nan
    with pytest.raises(ValueError, match="missing"):
        fit_dshw(sparse, M1)
    with pytest.raises(ValueError, match="multiple of m1"):
        fit_dshw(y, M1, 100)
    model = fit_dshw(y, M1)
    with pytest.raises(ValueError, match="origins"):
        model.forecasts(y, np.array([M2 - 1]), M1)


def test_the_day_ahead_fit_lowers_the_day_ahead_error_it_is_fitted_on() -> None:
    y = _synthetic(weeks=6, seed=4, ar=0.95, noise=2.0)
    one_step, day_ahead = fit_dshw(y, M1), fit_dshw(y, M1, horizon=M1)
    origins = np.arange(M2, len(y) - M1, 7)
    actual = y[origins[:, None] + np.arange(1, M1 + 1)]

    def error(model: DshwModel) -> float:
        return float(np.mean((model.forecasts(y, origins, M1) - actual) ** 2))

    assert error(day_ahead) <= error(one_step)


def test_resuming_from_the_end_state_continues_the_run() -> None:
    from meterflow.forecasting.dshw import end_state, resumed

    y = _synthetic(weeks=6, seed=5)
    model = fit_dshw(y[: 4 * M2], M1)
    state = end_state(model, y[: 4 * M2], time=4 * M2 - 1)
    later = np.r_[np.full(M2, np.nan), y[4 * M2 :]]  # m2 unused slots ending at the state
    origins = np.arange(M2 + 10, len(later) - M1, 13)
    continuous = model.forecasts(y, origins - M2 + 4 * M2, M1)
    np.testing.assert_allclose(resumed(model, state).forecasts(later, origins, M1), continuous,
                               rtol=1e-3)  # fmt: skip
