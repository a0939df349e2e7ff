"""Baselines evaluated on exactly the model's test windows (all in Wh per slot).

- ``persistence``: the last known reading (the window's last value).
- ``seasonal_naive``: the same slot one day before the target; where that day is missing, the
  persistence value (counted and logged).
- ``linear``: ordinary least squares on the (scaled) window, fitted on the same training windows
  as the model: the notebook's linear-regression comparison.
- ``climatology`` (optional): the meter's mean of the target's slot of day over the training
  split.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.linear_model import LinearRegression

from meterflow.forecasting.series import TRAIN, FleetSeries

log = logging.getLogger(__name__)

BASELINES = ("persistence", "seasonal_naive", "linear")


def persistence(windows_wh: np.ndarray) -> np.ndarray:
    """Last value of each window (always a real reading: windows end with real data)."""
    return np.asarray(windows_wh, dtype=np.float64)[:, -1]


def seasonal_naive(fleet: FleetSeries, label_pos: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Value at the target's slot on the previous day; ``fallback`` where that day is missing."""
    prev = fleet.positions_of(
        fleet.meter_idx[label_pos], fleet.time_idx[label_pos] - fleet.slots_per_day
    )
    missing = prev < 0
    if missing.any():
        log.info("seasonal naive: %d of %d targets lack the previous day", missing.sum(), len(prev))
    return np.where(missing, fallback, fleet.values[np.maximum(prev, 0)])


def fit_linear(windows_scaled: np.ndarray, targets_scaled: np.ndarray) -> LinearRegression:
    """OLS of the scaled target on the scaled window values (plus intercept)."""
    return LinearRegression().fit(windows_scaled.astype(np.float64), targets_scaled)


def climatology_table(fleet: FleetSeries) -> np.ndarray:
    """Per meter and slot of day, the mean training value (Wh): ``(n_meters, slots_per_day)``.
    Slots never seen in training fall back to the meter's training mean (NaN if none)."""
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


def climatology(fleet: FleetSeries, table: np.ndarray, label_pos: np.ndarray) -> np.ndarray:
    """Climatology forecast of the targets at ``label_pos``."""
    return table[fleet.meter_idx[label_pos], fleet.time_idx[label_pos] % fleet.slots_per_day]
