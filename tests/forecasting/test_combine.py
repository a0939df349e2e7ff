"""The combination ``model=auto`` keeps: weights against a linear-programming reference, never
worse on validation than the best single candidate, combined quantile by quantile."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

from meterflow.forecasting.combine import (
    COMBINATION,
    Ensemble,
    choose,
    simplex_weights,
    step_blocks,
)
from meterflow.forecasting.settings import ForecastSettings


def reference_weights(actual: np.ndarray, forecasts: np.ndarray) -> np.ndarray:
    """The exact least-absolute-error weights on the simplex, as a linear program (slow)."""
    m, j = forecasts.shape
    cost = np.r_[np.zeros(j), np.ones(m)]
    a_ub = np.block([[-forecasts, -np.eye(m)], [forecasts, -np.eye(m)]])
    b_ub = np.r_[-actual, actual]
    a_eq = np.r_[np.ones(j), np.zeros(m)][None, :]
    bounds = [(0, 1)] * j + [(0, None)] * m
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=bounds)
    return res.x[:j]


@pytest.mark.parametrize("seed", range(5))
def test_weights_match_the_linear_program(seed):
    rng = np.random.default_rng(seed)
    actual = rng.normal(500, 100, 400)
    noise = rng.normal(size=(400, 4)) * np.array([20.0, 35.0, 50.0, 200.0])
    forecasts = actual[:, None] + noise + np.array([5.0, -8.0, 0.0, 40.0])
    fast, exact = simplex_weights(actual, forecasts), reference_weights(actual, forecasts)
    assert fast.sum() == pytest.approx(1.0) and (fast >= 0).all()
    mae = lambda w: np.abs(forecasts @ w - actual).mean()  # noqa: E731
    assert mae(fast) <= mae(exact) * (1 + 1e-3)
    np.testing.assert_allclose(fast, exact, atol=0.05)


def test_the_combination_is_never_worse_on_validation_than_the_best_single():
    rng = np.random.default_rng(7)
    actual = rng.normal(100, 10, (300, 6))
    candidates = {
        "good": actual + rng.normal(0, 2, actual.shape),
        "biased": actual + 5 + rng.normal(0, 2, actual.shape),
        "noisy": actual + rng.normal(0, 20, actual.shape),
    }
    quantiles = {n: np.stack([f - 1, f, f + 1], axis=-1) for n, f in candidates.items()}
    choice = choose(actual, quantiles, point=1)
    assert choice.val_mae[choice.name] <= min(choice.val_mae[n] for n in candidates) + 1e-12
    # one candidate that is exactly right takes all the weight and is the model itself
    exact = {**quantiles, "exact": np.stack([actual] * 3, axis=-1)}
    only = choose(actual, exact, point=1)
    assert only.name == "exact" and list(only.weights) == ["exact"]


def test_an_ensemble_combines_quantile_by_quantile_with_the_validation_weights():
    cfg = ForecastSettings(horizon=2, quantiles=(0.1, 0.5, 0.9))
    a = np.array([[[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]])
    b = np.array([[[5.0, 6.0, 7.0], [9.0, 10.0, 11.0]]])
    ensemble = Ensemble(
        cfg, {"a": None, "b": None}, {"a": np.array([0.5, 1.0]), "b": np.array([0.5, 0.0])}
    )
    assert ensemble.name == COMBINATION
    np.testing.assert_allclose(
        ensemble.combine({"a": a, "b": b}), [[[3.0, 4.0, 5.0], [1.0, 2.0, 3.0]]]
    )


def test_few_validation_origins_share_one_set_of_weights():
    assert set(step_blocks(24, 500)) == {0}
    assert list(np.bincount(step_blocks(24, 5000))) == [6, 6, 6, 6]
