"""Detector: the residual of a forecaster of the forecasting step (an LSTM, as in seed 003, the
LSTM energy-anomaly project; or the hybrid LSTM + CNN over the neighbours' readings with
``forecast_model="hybrid"``).

The forecaster predicts each reading ``horizon`` slots ahead from the ``seq_length`` readings
before (``RESIDUAL_FORECASTER``: one point forecast on the MSE, trained on at most
``defaults.ANOMALY_RESIDUAL_MAX_WINDOWS`` windows). Evidence is the residual in
the meter's scaled units. Readings are scored in time order, in blocks of ``horizon`` slots so
that a block's windows only hold earlier blocks' readings; a reading whose residual is beyond
the ``CLEAN_QUANTILE`` of validation residuals is replaced by its forecast in the series later
windows read (at most ``MAX_CLEAN`` consecutive slots, after which a lasting change is the new
normal), so an anomaly neither hides itself nor echoes as a false alarm later.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from meterflow import defaults
from meterflow.anomaly.base import Detector
from meterflow.anomaly.fleetparts import sample_meters
from meterflow.blocks import meter_blocks
from meterflow.forecasting import ForecastSettings, make_forecaster
from meterflow.nets.training import MIN_BATCH, TrainingHistory
from meterflow.series.fleet import TEST, TRAIN, VAL, FleetSeries
from meterflow.series.windows import label_positions

if TYPE_CHECKING:
    from meterflow.forecasting import BoundNetwork, LstmForecaster

log = logging.getLogger(__name__)

# The residual forecaster predicts one point, the reading ``horizon`` slots ahead, on the MSE.
RESIDUAL_FORECASTER: dict[str, object] = {
    "output": "last",
    "quantiles": (),
    "seasonal_inputs": False,
    "scaling": "meter",  # a lasting change stays visible in the residuals
    "patience": 3,
    "min_delta": 1e-6,  # stops as it always has: the forecasting step's schedule is its own
    "lr_patience": 0,
    "min_updates": 0,
}
CLEAN_QUANTILE = 0.995  # of validation |z|: readings beyond are kept out of later windows
MAX_CLEAN = 336  # consecutive slots replaced at most (two weeks at 60 min)
MAD_TO_SIGMA = 1.4826


class LstmResidual(Detector):
    """Forecast residuals of the LSTM forecaster, with flagged readings cleaned."""

    name = "lstm_residual"

    forecaster: LstmForecaster
    history: TrainingHistory
    clean_center: np.ndarray  # per meter of the forecaster's scaler
    clean_scale: np.ndarray
    clean_threshold: float

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> LstmResidual:
        s = self.settings
        cfg = ForecastSettings(
            model=s.forecast_model,
            seq_length=s.seq_length,
            horizon=s.horizon,
            epochs=s.epochs,
            units=s.units,
            max_train_windows=min(s.max_train_windows, defaults.ANOMALY_RESIDUAL_MAX_WINDOWS),
            threads=s.threads,
            seed=s.seed,
            **RESIDUAL_FORECASTER,
        )
        self.forecaster = make_forecaster(s.forecast_model, cfg).fit(fleet, meters)
        self.history = self.forecaster.history
        self.context_days = math.ceil((s.seq_length + s.horizon) / fleet.slots_per_day)
        self._fit_cleaning(fleet)
        return self

    @property
    def network(self) -> Any:
        return self.forecaster.network

    @property
    def reads_other_meters(self) -> bool:  # type: ignore[override]
        """The hybrid forecaster reads the meter's neighbours."""
        return bool(self.forecaster.spatial)

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        bound = self.bind(fleet)
        pos, first = self._positions(bound, np.ones(len(fleet.values), dtype=bool))
        pos, first = pos[:8], first[:8]
        return bound.position_inputs(pos, first)

    def bind(self, fleet: FleetSeries) -> BoundNetwork:
        """The trained forecaster on ``fleet``'s meters (found by id; unknown ones unusable),
        with its own copy of the readings for the cleaning to edit."""
        return self.forecaster.bind(fleet, fresh=True)

    def _positions(self, bound: BoundNetwork, where: np.ndarray) -> tuple[np.ndarray, ...]:
        fleet, cfg = bound.fleet, bound.settings
        first_all = fleet.history_start(np.arange(len(fleet.values)), "history")
        pos, first = label_positions(
            *(fleet, (TRAIN, VAL, TEST), first_all, cfg.seq_length, cfg.horizon),
            *(cfg.min_history, bound.usable),
        )
        keep = where[pos]
        return pos[keep], first[keep]

    def _fit_cleaning(self, fleet: FleetSeries) -> None:
        """Per-meter centre and spread of validation residuals, and the cleaning threshold:
        the ``CLEAN_QUANTILE`` of the ``fleetparts.sample_meters`` sample's; meter block by
        meter block (one block when the forecaster reads neighbours)."""
        n_m = len(fleet.meter_ids)
        self.clean_center, self.clean_scale = np.zeros(n_m), np.ones(n_m)
        pool = np.zeros(n_m, dtype=bool)
        pool[sample_meters(fleet.meter_ids, self.settings.seed)] = True
        size = n_m if self.reads_other_meters else defaults.BLOCK_METERS
        pooled = []
        for block in meter_blocks(n_m, max(size, 1)):
            part = fleet.series_range(int(block[0]), int(block[-1]) + 1)
            center, spread, m, z = self._block_cleaning(part)
            self.clean_center[block], self.clean_scale[block] = center, spread
            pooled.append(z[pool[block][m]])
        self.clean_threshold = float(np.quantile(np.abs(np.concatenate(pooled)), CLEAN_QUANTILE))

    def _block_cleaning(self, fleet: FleetSeries) -> tuple[np.ndarray, ...]:
        """``(center, spread)`` of each meter's validation residuals, and the meter and z of
        each residual."""
        bound = self.bind(fleet)
        pos, first = self._positions(bound, fleet.split == VAL)
        predicted = bound.point_forecasts(pos, first)
        m = fleet.meter_idx[pos]
        r = (fleet.values[pos] - predicted) / bound.scaler.scale[m]
        center, spread = np.zeros(len(fleet.meter_ids)), np.ones(len(fleet.meter_ids))
        for i in np.unique(m):
            part = r[m == i]
            center[i] = np.median(part)
            spread[i] = max(MAD_TO_SIGMA * np.median(np.abs(part - center[i])), 1e-3)
        return center, spread, m, (r - center[m]) / spread[m]

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        bound = self.bind(fleet)
        pos, first = self._positions(bound, where)
        out = np.full(len(fleet.values), np.nan)
        if len(pos) == 0:
            return out
        idx = self.forecaster.scaler.index_of(fleet.series_meters)[fleet.meter_idx[pos]]
        center, spread = self.clean_center[idx], self.clean_scale[idx]
        horizon = bound.settings.horizon
        block = fleet.time_idx[pos] // horizon
        order = np.argsort(block, kind="stable")
        edges = np.flatnonzero(np.diff(block[order])) + 1
        cleaner = _Cleaner(bound)
        for b, sel in enumerate(np.split(order, edges)):
            predicted = predict_unpadded(bound, pos[sel], first[sel])
            m = fleet.meter_idx[pos[sel]]
            out[pos[sel]] = (fleet.values[pos[sel]] - predicted) / bound.scaler.scale[m]
            z = (out[pos[sel]] - center[sel]) / spread[sel]
            flagged = np.abs(z) >= self.clean_threshold
            cleaner.clean(pos[sel][flagged], fleet.time_idx[pos[sel][flagged]], predicted[flagged])
            if b % 200 == 0:
                log.info("lstm residuals: block %d of %d", b + 1, len(edges) + 1)
        return out


def predict_unpadded(bound: BoundNetwork, pos: np.ndarray, first: np.ndarray) -> np.ndarray:
    """``bound.point_forecasts`` in pieces of a power of two readings (the largest first): the
    network pads every batch up to a power of two, so a block of 2 400 readings costs 2 432
    rows, not 4 096; one piece per set bit, the last below ``MIN_BATCH`` padded to it."""
    out = np.empty(len(pos), dtype=np.float64)
    lo, n = 0, len(pos)
    while lo < n:
        rest = n - lo
        size = 1 << (rest.bit_length() - 1) if rest >= MIN_BATCH else rest
        out[lo : lo + size] = bound.point_forecasts(pos[lo : lo + size], first[lo : lo + size])
        lo += size
    return out


class _Cleaner:
    """Replaces flagged readings by their forecasts in ``bound.values``, at most ``MAX_CLEAN``
    consecutive slots per meter (a longer run is a lasting change: later readings stay)."""

    def __init__(self, bound: BoundNetwork) -> None:
        n_meters = len(bound.fleet.meter_ids)
        self.run = np.zeros(n_meters, dtype=np.int64)  # consecutive flagged slots so far
        self.last = np.full(n_meters, -2, dtype=np.int64)  # time of the last flagged slot
        self.bound = bound

    def clean(self, pos: np.ndarray, times: np.ndarray, predicted: np.ndarray) -> None:
        """Handle the flagged readings of one block."""
        b = self.bound
        for p, t, forecast in zip(pos, times, predicted, strict=True):
            m = b.fleet.meter_idx[p]
            self.run[m] = self.run[m] + 1 if self.last[m] == t - 1 else 1
            self.last[m] = t
            if self.run[m] <= MAX_CLEAN:
                b.values[p] = forecast
                if b.wide is not None:  # the hybrid reads its neighbours from here
                    b.wide[m, t] = (forecast - b.scaler.mean[m]) / b.scaler.scale[m]
