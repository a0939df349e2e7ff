"""Baselines evaluated on exactly the model's test windows and target steps (Wh per slot).

- ``persistence``: the last known reading (the window's last value) for every step.
- ``seasonal_naive_day`` / ``seasonal_naive_week``: the same slot one day / one week before the
  target (the latest such slot known at the origin); where missing, the next fallback
  (week -> day -> persistence, see the features module).
- ``seasonal_mean_7d``: the mean of that slot over the last seven known days (similar-day
  averaging).
- ``linear``: per target step, a (lightly ridge-penalised) linear regression on the same scaled
  inputs the network sees (the window, and the step's seasonal inputs when the model uses
  them), fitted on the training windows: the notebook's linear-regression comparison.
- ``climatology``: the series' mean of the target's slot of day over the training split.
- ``dshw``: Taylor's double-seasonal Holt-Winters (``dshw`` module), fitted per series on the days
  before the test split and run over the test period without refitting.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from meterflow.forecasting.series import TEST, TRAIN, FleetSeries

log = logging.getLogger(__name__)


RIDGE = 1.0  # L2 penalty (scaled units): the seasonal inputs are nearly collinear, and without
# it their large opposite weights turn one spike in the history into an absurd forecast


@dataclass(frozen=True)
class LinearSteps:
    """One ridge regression per target step: ``coef (steps, n_inputs + 1)`` (intercept last,
    not penalised)."""

    coef: np.ndarray

    @classmethod
    def fit(cls, inputs: np.ndarray, targets: np.ndarray, ridge: float = RIDGE) -> LinearSteps:
        """``inputs (n, steps, n_inputs)``, ``targets (n, steps)``, all scaled."""
        coef = []
        for k in range(targets.shape[1]):
            design = _with_intercept(inputs[:, k, :])
            penalty = ridge * np.eye(design.shape[1])
            penalty[-1, -1] = 0.0
            gram = design.T @ design + penalty
            coef.append(np.linalg.lstsq(gram, design.T @ targets[:, k], rcond=None)[0])
        return cls(np.asarray(coef))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """``(n, steps)`` scaled forecasts of ``inputs (n, steps, n_inputs)``."""
        return np.einsum("nsi,si->ns", _with_intercept(inputs), self.coef)


def _with_intercept(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.concatenate([x, np.ones((*x.shape[:-1], 1))], axis=-1)


def linear_inputs(
    windows_scaled: np.ndarray, seasonal_scaled: np.ndarray | None, n_steps: int
) -> np.ndarray:
    """``(n, steps, n_inputs)``: the window for every step, plus the step's seasonal inputs
    (``(n_seasonal, n, steps)``) when given."""
    n = len(windows_scaled)
    parts = [np.broadcast_to(windows_scaled[:, None, :], (n, n_steps, windows_scaled.shape[1]))]
    if seasonal_scaled is not None:
        parts += [s[..., None] for s in seasonal_scaled]
    return np.concatenate(parts, axis=-1)


def climatology_table(fleet: FleetSeries) -> np.ndarray:
    """Per series and slot of day, the mean training value (Wh): ``(n_series, slots_per_day)``.
    Slots never seen in training fall back to the series' training mean (NaN if none)."""
    spd = fleet.slots_per_day
    train = fleet.split == TRAIN
    n_m = len(fleet.meter_ids)
    cell = fleet.meter_idx[train] * spd + fleet.time_idx[train] % spd
    total = np.bincount(cell, weights=fleet.values[train], minlength=n_m * spd)
    count = np.bincount(cell, minlength=n_m * spd).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (total / count).reshape(n_m, spd)
        meter_mean = total.reshape(n_m, spd).sum(1) / count.reshape(n_m, spd).sum(1)
    return np.where(np.isnan(table), meter_mean[:, None], table)


def climatology(fleet: FleetSeries, table: np.ndarray, target_pos: np.ndarray) -> np.ndarray:
    """Climatology forecast of the targets at ``target_pos`` (any shape)."""
    return table[fleet.meter_idx[target_pos], fleet.time_idx[target_pos] % fleet.slots_per_day]


def dshw_forecasts(
    fleet: FleetSeries, pos: np.ndarray, steps: np.ndarray, horizon: int
) -> tuple[np.ndarray, dict[str, object]]:
    """Double-seasonal Holt-Winters forecasts ``(n, steps)`` of each series from each origin
    ``pos - horizon``: fitted on the series' days before the test split (regular grid, gaps as
    NaN), NaN for series too short to fit; and the fitted models by series id."""
    from meterflow.forecasting.dshw import fit_dshw

    out = np.full((len(pos), len(steps)), np.nan)
    models: dict[str, object] = {}
    spd = fleet.slots_per_day
    for m in np.unique(fleet.meter_idx[pos]):
        mine = fleet.meter_idx == m
        grid = np.full(int(fleet.time_idx[mine].max()) + 1, np.nan)
        grid[fleet.time_idx[mine]] = fleet.values[mine]
        before_test = fleet.time_idx[mine & (fleet.split != TEST)]
        if len(before_test) == 0:
            continue
        try:
            model = fit_dshw(grid[: int(before_test.max()) + 1], spd)
        except ValueError as exc:
            log.info("dshw: series %s left out (%s)", fleet.meter_ids[m], exc)
            continue
        models[str(fleet.meter_ids[m])] = model
        rows = np.flatnonzero(fleet.meter_idx[pos] == m)
        origins = fleet.time_idx[pos[rows]] - horizon
        out[rows] = model.forecasts(grid, origins, int(steps.max()))[:, steps - 1]
    return out, models
