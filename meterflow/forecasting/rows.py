"""The predictor's input rows built from a fleet: one row per forecast origin, in Wh, exactly as
``ForecastPredictor.predict`` and ``BaselinePredictor.predict`` take them; held-out rows with
their actual values for comparing models later."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.forecasting.features import seasonal_values
from meterflow.forecasting.predictor import ForecastPredictor, lag_columns, step_columns
from meterflow.forecasting.settings import SEASONAL
from meterflow.forecasting.train import FittedForecaster, target_positions
from meterflow.forecasting.windows import gather_windows

HOLDOUT_CELLS = 20_000  # held-out (row, step) values kept to compare with the registry's champion


def predictor_rows(
    fitted: FittedForecaster,
    pos: np.ndarray,
    first: np.ndarray,
    values: np.ndarray | None = None,
) -> pd.DataFrame:
    """The predictor's input rows (Wh, NaN = pre-padding) for the labels at ``pos``, from the
    fleet's readings or from ``values`` (Wh, same layout)."""
    cfg, fleet = fitted.settings, fitted.fleet
    source = fleet.values if values is None else values
    lags = (cfg.seq_length, cfg.horizon, np.nan, np.float64)
    windows, _ = gather_windows(source, pos, first, *lags)
    parts = [pd.DataFrame(windows, columns=lag_columns(cfg.seq_length))]
    seasonal = seasonal_values(fleet, source, pos, first, cfg.steps, cfg.horizon)
    for name, values in zip(SEASONAL, seasonal, strict=True):
        parts.append(pd.DataFrame(values, columns=step_columns(f"{name}_", cfg.steps)))
    for j, name in enumerate(cfg.exog):
        exog = fleet.exog[:, j]
        ex_lags = gather_windows(exog, pos, first, *lags)[0]
        parts.append(pd.DataFrame(ex_lags, columns=lag_columns(cfg.seq_length, f"{name}_")))
        at = exog[target_positions(fitted, pos)]
        parts.append(pd.DataFrame(at, columns=step_columns(f"{name}_", cfg.steps)))
    rows = pd.concat(parts, axis=1)
    rows.insert(0, "window_end", fleet.timestamps(pos - cfg.horizon))
    rows.insert(0, "meter_id", fleet.meter_ids[fleet.meter_idx[pos]].astype(str))
    return rows


def holdout_selection(fitted: FittedForecaster, pos: np.ndarray) -> np.ndarray:
    """Which labels at ``pos`` are held out for later comparisons: every one of the first
    meters, up to ``HOLDOUT_CELLS`` target values (at least one meter's)."""
    meters = fitted.fleet.meter_idx[pos]
    counts = np.bincount(meters, minlength=len(fitted.fleet.meter_ids))
    kept = np.cumsum(counts) * len(fitted.settings.steps) <= HOLDOUT_CELLS
    if len(meters) and not kept[meters].any():
        kept[meters[0]] = True
    return kept[meters]


def holdout_rows(
    fitted: FittedForecaster,
    pos: np.ndarray,
    first: np.ndarray,
    target: np.ndarray,
    name: str,
    values: np.ndarray | None = None,
) -> pd.DataFrame:
    """Predictor input rows (from ``values``, default the readings) of the held-out labels at
    ``pos`` with their ``target`` (``(n,)``, or ``(n, steps)`` as ``<name>_h01``...), so that
    any later model can be scored on exactly these rows."""
    keep = holdout_selection(fitted, pos)
    rows = predictor_rows(fitted, pos[keep], first[keep], values)
    target = np.asarray(target, dtype=np.float64)[keep]
    if target.ndim == 1:
        rows[name] = target
    else:
        names = step_columns(f"{name}_", fitted.settings.steps)
        rows = pd.concat([rows, pd.DataFrame(target, columns=names, index=rows.index)], axis=1)
    return rows


def example_rows(fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray) -> pd.DataFrame:
    """A few rows sharing one window end (so the hybrid's grids have neighbours)."""
    if len(pos) == 0:
        return predictor_rows(fitted, pos, first)
    end = fitted.fleet.time_idx[pos]
    same = end == np.bincount(end).argmax()
    return predictor_rows(fitted, pos[same][:8], first[same][:8])


def make_predictor(
    fitted: FittedForecaster, example_pos: np.ndarray, example_first: np.ndarray
) -> ForecastPredictor:
    """The picklable predictor of a fitted forecaster."""
    return ForecastPredictor(
        fitted.settings,
        fitted.scaler,
        [w.copy() for w in fitted.network.get_weights()],
        fitted.fleet.resolution_min,
        fitted.layout,
        example_rows(fitted, example_pos, example_first),
        fitted.static,
        fitted.interval_scale,
    )
