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
