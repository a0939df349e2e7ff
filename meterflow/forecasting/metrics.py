"""Forecast error metrics in original units (Wh per slot).

- ``mae``, ``rmse``: Wh per slot.
- ``mape`` (percent): mean of ``|e| / |y|`` over the actuals with ``|y| >= floor_frac x`` the
  meter's mean ``|y|`` in the evaluated set, so that near-zero readings (PV prosumers at noon,
  empty buildings) do not explode it. Left out when no actual qualifies.
- ``wape`` (percent): ``sum |e| / sum |y|``; left out when every actual is zero.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def forecast_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    meter_ids: np.ndarray | pd.Series,
    floor_frac: float = 0.05,
) -> dict[str, float]:
    """``mae``, ``rmse``, ``mape`` and ``wape`` of predictions (all finite)."""
    y = np.asarray(y_true, dtype=np.float64)
    err = np.abs(np.asarray(y_pred, dtype=np.float64) - y)
    if len(y) == 0:
        return {}
    out = {"mae": float(err.mean()), "rmse": float(np.sqrt(np.mean(err**2)))}
    abs_y = np.abs(y)
    meter_mean = pd.Series(abs_y).groupby(np.asarray(meter_ids)).transform("mean").to_numpy()
    ok = (abs_y >= floor_frac * meter_mean) & (abs_y > 0)
    if ok.any():
        out["mape"] = float(100 * np.mean(err[ok] / abs_y[ok]))
    if abs_y.sum() > 0:
        out["wape"] = float(100 * err.sum() / abs_y.sum())
    return out


def skill(model_mae: float, baseline_mae: float) -> float:
    """``1 - model_mae / baseline_mae``: > 0 when the model beats the baseline (0 if the
    baseline is perfect and the model too, -1 if only the baseline is)."""
    if baseline_mae > 0:
        return float(1.0 - model_mae / baseline_mae)
    return 0.0 if model_mae == 0 else -1.0


def smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Symmetric MAPE (percent, 0..200): mean of ``2|e| / (|y| + |yhat|)``, 0 where both are 0."""
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    denom = np.abs(y) + np.abs(p)
    ratio = np.divide(2 * np.abs(p - y), denom, out=np.zeros_like(y), where=denom > 0)
    return float(100 * ratio.mean()) if len(y) else float("nan")


def step_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, series: np.ndarray, floor_frac: float = 0.05
) -> tuple[dict[str, float], pd.DataFrame]:
    """Errors of multi-step forecasts ``(n, steps)``: overall ``mae``, ``rmse``, ``wape``,
    ``smape`` over every (origin, step), ``mape`` as the mean over steps of each step's MAPE;
    and the table of each step's ``mae``, ``rmse``, ``mape``, ``smape``."""
    y, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    n_steps = y.shape[1]
    ids = np.repeat(np.asarray(series), n_steps)
    overall = forecast_metrics(y.ravel(), p.ravel(), ids, floor_frac)
    overall["smape"] = smape(y.ravel(), p.ravel())
    rows = []
    for k in range(n_steps):
        one = forecast_metrics(y[:, k], p[:, k], series, floor_frac)
        rows.append({**one, "smape": smape(y[:, k], p[:, k])})
    table = pd.DataFrame(rows)
    if "mape" in table:
        overall["mape"] = float(table["mape"].mean())
    return overall, table


def quantile_metrics(
    y_true: np.ndarray, quantile_pred: np.ndarray, quantiles: tuple[float, ...]
) -> dict[str, float]:
    """``pinball`` (mean over quantiles, Wh), ``coverage`` (share of actuals between the lowest
    and highest quantile) and its ``nominal`` level, for ``quantile_pred (..., quantiles)``."""
    y = np.asarray(y_true, dtype=np.float64)[..., None]
    q = np.asarray(quantiles, dtype=np.float64)
    error = y - quantile_pred
    pinball = np.maximum(q * error, (q - 1) * error).mean()
    inside = (quantile_pred[..., 0] <= y[..., 0]) & (y[..., 0] <= quantile_pred[..., -1])
    return {
        "pinball": float(pinball),
        "coverage": float(inside.mean()),
        "coverage_nominal": float(q[-1] - q[0]),
    }
