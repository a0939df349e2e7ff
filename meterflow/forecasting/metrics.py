"""Forecast error metrics in the series' units (Wh per slot for meters).

- ``mae``, ``rmse``: series units.
- ``mape`` (percent): per target step, the mean of ``|e| / |y|`` over the actuals with
  ``|y| >= floor_frac x`` the series' mean ``|y|``, so that near-zero readings (PV prosumers at
  noon, empty buildings) do not explode it; overall, the mean over the steps. Left out when no
  actual qualifies.
- ``smape`` (percent, 0..200): mean of ``2|e| / (|y| + |yhat|)``, 0 where both are 0.
- ``wape`` (percent): ``sum |e| / sum |y|``; left out when every actual is zero.
- ``pinball`` (mean over the quantiles, series units) and ``coverage`` of the outermost
  quantiles' interval, with its ``coverage_nominal`` level.

``StepErrors`` accumulates them over batches of forecasts, so an evaluation never holds every
forecast of a large fleet at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SUMS = ("abs", "sq", "ape", "n_ape", "sape", "abs_y", "n")


def forecast_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    meter_ids: np.ndarray | pd.Series,
    floor_frac: float = 0.05,
) -> dict[str, float]:
    """``mae``, ``rmse``, ``mape`` and ``wape`` of single-step predictions (all finite), the
    MAPE floor from each meter's mean ``|y|`` among these actuals."""
    y = np.asarray(y_true, dtype=np.float64)
    if len(y) == 0:
        return {}
    abs_y = np.abs(y)
    meter_mean = pd.Series(abs_y).groupby(np.asarray(meter_ids)).transform("mean").to_numpy()
    errors = StepErrors(1)
    errors.add(
        y[:, None],
        np.asarray(y_pred, dtype=np.float64)[:, None, None],
        (floor_frac * meter_mean)[:, None],
    )
    return {k: v for k, v in errors.overall().items() if k != "smape"}


def skill(model_mae: float, baseline_mae: float) -> float:
    """``1 - model_mae / baseline_mae``: > 0 when the model beats the baseline (0 if the
    baseline is perfect and the model too, -1 if only the baseline is)."""
    if baseline_mae > 0:
        return float(1.0 - model_mae / baseline_mae)
    return 0.0 if model_mae == 0 else -1.0


class StepErrors:
    """Running error sums per target step of multi-step forecasts (see the module docstring)."""

    def __init__(self, n_steps: int, quantiles: tuple[float, ...] = ()) -> None:
        self.sums = {name: np.zeros(n_steps) for name in SUMS}
        self.quantiles = np.asarray(quantiles, dtype=np.float64)
        self.point = list(quantiles).index(0.5) if quantiles else 0
        self.pinball = 0.0
        self.inside = 0.0
        self.cells = 0

    def add(self, actual: np.ndarray, forecast: np.ndarray, floor: np.ndarray) -> None:
        """One batch: ``actual (n, steps)``, ``forecast (n, steps, quantiles)`` (quantiles
        increasing, the point forecast the median or the only one), ``floor (n, steps)`` the
        smallest ``|y|`` MAPE counts."""
        q = forecast.shape[-1]
        point = forecast[..., self.point if q > 1 else 0]
        err = np.abs(point - actual)
        abs_y = np.abs(actual)
        ape_ok = (abs_y >= floor) & (abs_y > 0)
        denom = abs_y + np.abs(point)
        s = self.sums
        s["abs"] += err.sum(0)
        s["sq"] += np.square(err).sum(0)
        s["ape"] += _ratio_sum(err, abs_y, ape_ok)
        s["n_ape"] += ape_ok.sum(0)
        s["sape"] += 2 * _ratio_sum(err, denom, denom > 0)
        s["abs_y"] += abs_y.sum(0)
        s["n"] += len(actual)
        if len(self.quantiles) == q and q > 1:
            for j, tau in enumerate(self.quantiles):  # one quantile at a time: no (n, steps, Q)
                e = actual - forecast[..., j]
                self.pinball += float(np.maximum(tau * e, (tau - 1) * e).sum())
            inside = (forecast[..., 0] <= actual) & (actual <= forecast[..., -1])
            self.inside += float(np.count_nonzero(inside))
            self.cells += actual.size

    def merge(self, other: StepErrors) -> None:
        """Add another accumulator's sums (e.g. of another meter block) to these."""
        for name in SUMS:
            self.sums[name] += other.sums[name]
        self.pinball += other.pinball
        self.inside += other.inside
        self.cells += other.cells

    def by_step(self) -> pd.DataFrame:
        """``mae``, ``rmse``, ``mape``, ``smape`` of each step."""
        s = self.sums
        n = np.maximum(s["n"], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mape = np.where(s["n_ape"] > 0, 100 * s["ape"] / s["n_ape"], np.nan)
        return pd.DataFrame(
            {
                "mae": s["abs"] / n,
                "rmse": np.sqrt(s["sq"] / n),
                "mape": mape,
                "smape": 100 * s["sape"] / n,
            }
        )

    def overall(self) -> dict[str, float]:
        """Metrics over every (origin, step); ``mape`` the mean of the steps' MAPE."""
        s = self.sums
        n = s["n"].sum()
        if n == 0:
            return {}
        out = {
            "mae": float(s["abs"].sum() / n),
            "rmse": float(np.sqrt(s["sq"].sum() / n)),
            "smape": float(100 * s["sape"].sum() / n),
        }
        steps = self.by_step()["mape"].dropna()
        if len(steps):
            out["mape"] = float(steps.mean())
        if s["abs_y"].sum() > 0:
            out["wape"] = float(100 * s["abs"].sum() / s["abs_y"].sum())
        if self.cells:
            out["pinball"] = self.pinball / (self.cells * len(self.quantiles))
            out["coverage"] = self.inside / self.cells
            out["coverage_nominal"] = float(self.quantiles[-1] - self.quantiles[0])
        return out


def _ratio_sum(num: np.ndarray, den: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Per column, the sum of ``num / den`` where ``ok`` (0 elsewhere)."""
    return np.divide(num, den, out=np.zeros_like(num), where=ok).sum(0)
