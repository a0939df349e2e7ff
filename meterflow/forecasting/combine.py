"""``model=auto``: the model a run keeps is earned on the validation split.

Every forecaster of the run is fitted on the training split and forecasts the same validation
origins. The candidates (the deep forecasters asked for, and the baselines fitted to each
series: ``registry.combined_names``) are then combined there: for each block of target steps
(one block per ``ORIGINS_PER_BLOCK`` validation origins, at most ``MAX_BLOCKS``), the convex
weights of their forecasts, applied quantile by quantile, that minimise the absolute error of
the median (``simplex_weights``). The weights include every single candidate (a weight of one),
so on validation the combination is never worse than the best single one; when it gives one
candidate all the weight, that candidate is the model.

The policy was chosen on validation, forward in time (weights fitted on the first half of the
validation days, scored on the second half, as they will be used), over 11 public load series
(``benchmarks/forecast_public.py``): validation MAE relative to seasonal naive week, geometric
mean, 0.646 for combining the deep candidates with the fitted baselines, 0.656 for the same
after dropping candidates 50 % worse than the best, 0.683 for the best single candidate and
0.700 for combining every forecaster, naive ones included (their errors on a few validation
days cancel the others' by chance, and that does not last). The test split is never read here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from meterflow.errors import InputError
from meterflow.forecasting.base import Capabilities, Forecaster
from meterflow.forecasting.calibration import apply_scales, interval_scales
from meterflow.forecasting.inputs import ForecastInputs
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import FleetSeries

log = logging.getLogger(__name__)

COMBINATION = "combination"
MAX_BLOCKS = 4  # blocks of target steps with their own weights (h 1-6, 7-12, ... of a day)
ORIGINS_PER_BLOCK = 1000  # validation origins needed per block of steps
MAX_FIT_ROWS = 50_000  # validation errors per block the weights are fitted on (sampled)
MIN_WEIGHT = 1e-3  # smaller weights are dropped (and the rest renormalised)
HUBER_CORNER = 1e-3  # of the best single MAE: below it the fitted error is quadratic


@dataclass(frozen=True)
class Choice:
    """What ``choose`` kept and why."""

    name: str  # COMBINATION or a candidate's name
    weights: dict[str, np.ndarray]  # member -> (steps,) weight of each target step
    val_mae: dict[str, float]  # every candidate's validation MAE (and the combination's)
    reason: str


def step_blocks(n_steps: int, n_origins: int) -> np.ndarray:
    """(steps,) the block of each target step: up to ``MAX_BLOCKS`` equal runs of steps, one
    per ``ORIGINS_PER_BLOCK`` validation origins (few origins share one set of weights)."""
    n_blocks = int(np.clip(n_origins // ORIGINS_PER_BLOCK, 1, min(MAX_BLOCKS, n_steps)))
    return (np.arange(n_steps) * n_blocks) // n_steps


def simplex_weights(actual: np.ndarray, forecasts: np.ndarray) -> np.ndarray:
    """Weights ``w >= 0``, ``sum(w) = 1`` minimising the mean absolute error of
    ``forecasts @ w`` (``actual (m,)``, ``forecasts (m, J)``): SLSQP on a pseudo-Huber error
    whose corner is far below the typical error (so it is the MAE up to a negligible rounding);
    the best single forecast when that is at least as good (so never worse than it)."""
    m, j = forecasts.shape
    vertex_mae = np.abs(forecasts - actual[:, None]).mean(axis=0)
    best = np.eye(j)[np.argmin(vertex_mae)]
    if j == 1:
        return best
    scale = max(float(vertex_mae.min()), 1e-12)
    delta = HUBER_CORNER * scale

    def error(w: np.ndarray) -> tuple[float, np.ndarray]:
        r = forecasts @ w - actual
        smooth = np.sqrt(r**2 + delta**2)
        return float((smooth - delta).mean() / scale), forecasts.T @ (r / smooth) / (m * scale)

    res = minimize(
        error,
        np.full(j, 1.0 / j),
        jac=True,
        method="SLSQP",
        bounds=[(0.0, 1.0)] * j,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(j)}],
    )
    w = np.clip(res.x, 0.0, None)
    w[w < MIN_WEIGHT] = 0.0
    if not w.any():
        return best
    w /= w.sum()
    combined_mae = float(np.abs(forecasts @ w - actual).mean())
    return w if combined_mae < vertex_mae.min() else best


def fit_weights(actual: np.ndarray, points: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``(J, steps)`` weights per block of steps (``points (J, n, steps)``), fitted on the
    validation ``rows``."""
    blocks = step_blocks(actual.shape[1], len(rows))
    rng = np.random.default_rng(0)
    out = np.zeros((points.shape[0], actual.shape[1]))
    for b in np.unique(blocks):
        steps = np.flatnonzero(blocks == b)
        y = actual[np.ix_(rows, steps)].ravel()
        f = points[:, rows][:, :, steps].reshape(points.shape[0], -1).T
        if len(y) > MAX_FIT_ROWS:
            keep = rng.choice(len(y), size=MAX_FIT_ROWS, replace=False)
            y, f = y[keep], f[keep]
        out[:, steps] = simplex_weights(y, f)[:, None]
    return out


def _common_rows(actual: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Validation origins every candidate forecasts (``points (J, n, steps)``)."""
    rows = np.flatnonzero(np.isfinite(points).all(axis=(0, 2)) & np.isfinite(actual).all(1))
    if len(rows) == 0:
        raise InputError("no validation origin every candidate forecasts")
    return rows


def validation_mae(
    actual: np.ndarray, forecasts: dict[str, np.ndarray], point: int
) -> dict[str, float]:
    """Each candidate's MAE on the validation origins every one of them forecasts."""
    points = np.stack([f[..., point] for f in forecasts.values()])
    rows = _common_rows(actual, points)
    errors = np.abs(points[:, rows] - actual[rows][None]).mean(axis=(1, 2))
    return {n: float(e) for n, e in zip(forecasts, errors, strict=True)}


def choose(val_actual: np.ndarray, val_forecasts: dict[str, np.ndarray], point: int) -> Choice:
    """The combination of the candidates learned on validation (see the module docstring), or
    the single candidate it gives all the weight. ``val_forecasts``: name -> ``(n, steps,
    quantiles)``; ``point``: the median's index."""
    names = list(val_forecasts)
    points = np.stack([val_forecasts[n][..., point] for n in names])
    rows = _common_rows(val_actual, points)
    val_mae = validation_mae(val_actual, val_forecasts, point)
    best = min(val_mae, key=val_mae.get)
    weights = fit_weights(val_actual, points, rows)
    combined = np.einsum("js,jns->ns", weights, points[:, rows])
    members = {n: weights[j] for j, n in enumerate(names) if weights[j].any()}
    if len(members) == 1:
        reason = f"{best}: the combination learned on validation gives it all the weight"
        return Choice(best, members, val_mae, reason)
    val_mae[COMBINATION] = float(np.abs(combined - val_actual[rows]).mean())
    shares = ", ".join(f"{n} {w.mean():.2f}" for n, w in members.items())
    reason = (
        f"combination learned on validation ({shares}): validation MAE "
        f"{val_mae[COMBINATION]:.4g}, the best single candidate {best} {val_mae[best]:.4g}"
    )
    return Choice(COMBINATION, members, val_mae, reason)


class Ensemble(Forecaster):
    """The combination ``choose`` learned: each target step's forecast is the weighted sum of
    its members' quantiles, with the intervals calibrated on validation."""

    name = COMBINATION
    capabilities = Capabilities(global_model=True, baseline=False, quantiles=True)

    def __init__(
        self,
        settings: ForecastSettings,
        members: dict[str, Forecaster],
        weights: dict[str, np.ndarray],
    ) -> None:
        super().__init__(settings)
        self.members = {n: members[n] for n in weights}
        self.weights = weights
        self.interval_scale: np.ndarray | None = None

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        raise TypeError("a combination is built from fitted members (combine.choose)")

    def calibrate(self, val_actual: np.ndarray, val_forecasts: dict[str, np.ndarray]) -> None:
        """Calibrate the combination's intervals on the members' validation forecasts."""
        if len(self.settings.quantiles) > 1:
            pred = self.combine(val_forecasts, calibrated=False)
            ok = np.isfinite(pred).all(axis=(1, 2))
            quantiles, point = self.settings.quantiles, self.settings.point_quantile
            self.interval_scale = interval_scales(pred[ok], val_actual[ok], quantiles, point)

    def combine(self, forecasts: dict[str, np.ndarray], calibrated: bool = True) -> np.ndarray:
        """The combination of members' forecasts ``(n, steps, quantiles)`` (name -> array)."""
        out = sum(w[None, :, None] * forecasts[n] for n, w in self.weights.items())
        out = np.sort(out, axis=-1)
        if calibrated and self.interval_scale is not None:
            out = apply_scales(out, self.interval_scale, self.settings.point_quantile)
        return out

    def predict(self, inputs: ForecastInputs) -> np.ndarray:
        return self.combine({n: m.predict(inputs) for n, m in self.members.items()})

    def min_history(self, slots_per_day: int) -> int:
        return max(m.min_history(slots_per_day) for m in self.members.values())

    @property
    def network(self) -> Any:
        deep = [m for m in self.members.values() if m.network is not None]
        return deep[0].network if deep else None

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        deep = [m for m in self.members.values() if m.network is not None]
        return deep[0].network_inputs(fleet)

    def training_histories(self) -> dict[str, Any]:
        return {k: v for m in self.members.values() for k, v in m.training_histories().items()}
