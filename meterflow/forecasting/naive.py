"""The naive baselines: nothing to learn but where to look in the history.

- ``persistence``: the last known reading, for every step.
- ``seasonal_naive_day`` / ``seasonal_naive_week``: the same slot one day / one week before the
  target (the latest such slot known at the origin); where missing, the next fallback
  (week -> day -> persistence, see the features module).
- ``seasonal_mean_7d``: the mean of that slot over the last seven known days (similar-day
  averaging).
- ``climatology``: the series' mean of the target's slot of day over the training split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.forecasting.base import Capabilities, PointForecaster
from meterflow.forecasting.inputs import ForecastInputs
from meterflow.series.fleet import TRAIN, FleetSeries

NAIVE = Capabilities(global_model=True, baseline=True, history_days=7)


class Persistence(PointForecaster):
    name = "persistence"
    capabilities = Capabilities(global_model=True, baseline=True)

    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        """Nothing to fit."""

    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        last = inputs.fleet.values[inputs.origin]
        return np.repeat(last[:, None], len(inputs.steps), axis=1)


class _SeasonalReference(PointForecaster):
    """One of the ``SEASONAL`` references of the features module, as the forecast."""

    capabilities = NAIVE
    reference: int  # index in SEASONAL

    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        """Nothing to fit."""

    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        return inputs.seasonal_wh[self.reference].copy()


class SeasonalNaiveDay(_SeasonalReference):
    name = "seasonal_naive_day"
    reference = 0


class SeasonalNaiveWeek(_SeasonalReference):
    name = "seasonal_naive_week"
    reference = 1


class SeasonalMean7d(_SeasonalReference):
    name = "seasonal_mean_7d"
    reference = 2


class Climatology(PointForecaster):
    """The series' training mean of each slot of day."""

    name = "climatology"
    capabilities = Capabilities(global_model=False, baseline=True)
    series_ids: tuple[str, ...] = ()
    table: np.ndarray  # (n_series, slots_per_day)

    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        self.series_ids = tuple(str(m) for m in fleet.series_meters)
        self.table = climatology_table(fleet)

    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        fleet = inputs.fleet
        known = pd.Index(self.series_ids).get_indexer(fleet.series_meters.astype(str))
        row = known[inputs.series]
        out = self.table[np.maximum(row, 0)[:, None], inputs.target_slot]
        return np.where((row >= 0)[:, None], out, np.nan)


def climatology_table(fleet: FleetSeries) -> np.ndarray:
    """Per series and slot of day, the mean training value: ``(n_series, slots_per_day)``.
    Slots never seen in training fall back to the series' training mean (NaN if none)."""
    spd = fleet.slots_per_day
    train = fleet.split == TRAIN
    n_m = len(fleet.meter_ids)
    cell = fleet.meter_idx[train] * spd + (fleet.calendar_offset + fleet.time_idx[train]) % spd
    total = np.bincount(cell, weights=fleet.values[train], minlength=n_m * spd)
    count = np.bincount(cell, minlength=n_m * spd).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = (total / count).reshape(n_m, spd)
        meter_mean = total.reshape(n_m, spd).sum(1) / count.reshape(n_m, spd).sum(1)
    return np.where(np.isnan(table), meter_mean[:, None], table)
