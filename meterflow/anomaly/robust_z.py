"""Baseline detector: the seasonal-naive residual (the reading less the same slot a day
before), normalised per meter; ``scoring`` makes it a robust z per meter and slot of day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.anomaly.base import Detector
from meterflow.series.fleet import FleetSeries, MeterScaler, fit_scaler


class RobustZ(Detector):
    """Robust z-score of the seasonal-naive (one day) residual."""

    name = "robust_z"
    context_days = 1

    scaler: MeterScaler

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> RobustZ:
        self.scaler = fit_scaler(fleet)
        return self

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        out = np.full(len(fleet.values), np.nan)
        pos = np.flatnonzero(where)
        earlier = fleet.positions_of(
            fleet.meter_idx[pos], fleet.time_idx[pos] - fleet.slots_per_day
        )
        known = earlier >= 0
        pos, earlier = pos[known], earlier[known]
        scale = _meter_scale(self.scaler, fleet)[fleet.meter_idx[pos]]
        out[pos] = (fleet.values[pos] - fleet.values[earlier]) / scale
        return out


def _meter_scale(scaler: MeterScaler, fleet: FleetSeries) -> np.ndarray:
    """Each of ``fleet``'s meters' training standard deviation (NaN for unknown meters)."""
    idx = scaler.index_of(fleet.meter_ids)
    return np.where(idx >= 0, scaler.scale[np.maximum(idx, 0)], np.nan)
