"""``linear``: one ridge regression per target step on the window and the step's seasonal
references (the linear-regression comparison of seed 002, the IoT LSTM prediction notebook),
fitted on the training windows of every series at once.

Inputs and target are scaled per window by the series' recent level and spread (the ``recent``
statistics of ``ForecastInputs``), so one set of coefficients serves series of any size and a
series whose level moved since training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.forecasting.base import Capabilities, PointForecaster
from meterflow.forecasting.inputs import ForecastInputs, inputs_at, training_origins
from meterflow.series.fleet import FleetSeries

RIDGE = 1.0  # L2 penalty (scaled units): the seasonal inputs are nearly collinear, and without
# it their large opposite weights turn one spike in the history into an absurd forecast


@dataclass(frozen=True)
class LinearSteps:
    """One ridge regression per target step: ``coef (steps, n_inputs + 1)`` (intercept last,
    not penalised)."""

    coef: np.ndarray

    @classmethod
    def fit(cls, windows: np.ndarray, seasonal: np.ndarray, targets: np.ndarray) -> LinearSteps:
        """``windows (n, seq)``, ``seasonal (n_refs, n, steps)``, ``targets (n, steps)``, all
        scaled; one regression per step on the window and that step's references."""
        coef = []
        for k in range(targets.shape[1]):
            design = step_design(windows, seasonal, k)
            penalty = RIDGE * np.eye(design.shape[1])
            penalty[-1, -1] = 0.0
            gram = design.T @ design + penalty
            coef.append(np.linalg.lstsq(gram, design.T @ targets[:, k], rcond=None)[0])
        return cls(np.asarray(coef))

    def predict(self, windows: np.ndarray, seasonal: np.ndarray) -> np.ndarray:
        """``(n, steps)`` scaled forecasts."""
        steps = range(self.coef.shape[0])
        return np.stack([step_design(windows, seasonal, k) @ self.coef[k] for k in steps], axis=1)


def step_design(windows: np.ndarray, seasonal: np.ndarray, k: int) -> np.ndarray:
    """The design matrix of step ``k``: the window, step ``k``'s references and an intercept."""
    n = len(windows)
    return np.concatenate([windows, seasonal[:, :, k].T, np.ones((n, 1))], axis=1)


def scaled_inputs(inputs: ForecastInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(windows, seasonal, level, scale)``: the window (pre-padding as 0) and references in
    units of each window's recent spread around its recent level."""
    level, _, _ = inputs.recent
    level = np.nan_to_num(level)
    scale = inputs.recent_scale
    windows = np.nan_to_num((inputs.windows_wh - level[:, None]) / scale[:, None])
    seasonal = (inputs.seasonal_wh - level[None, :, None]) / scale[None, :, None]
    return windows, seasonal, level, scale


class LinearForecaster(PointForecaster):
    name = "linear"
    capabilities = Capabilities(global_model=True, baseline=True, history_days=7)
    model: LinearSteps

    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        cfg = self.settings
        train = inputs_at(fleet, training_origins(fleet, cfg), cfg)
        windows, seasonal, level, scale = scaled_inputs(train)
        targets = (train.actual - level[:, None]) / scale[:, None]
        self.model = LinearSteps.fit(windows, seasonal, targets)

    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        windows, seasonal, level, scale = scaled_inputs(inputs)
        return self.model.predict(windows, seasonal) * scale[:, None] + level[:, None]
