"""Baseline detector: scikit-learn's IsolationForest on daily profiles.

A meter-day is its readings scaled by the meter's training mean and standard deviation, seen
as ``N_BLOCKS`` block means (its shape) plus the day's mean, spread, highest and lowest scaled
reading (so that one extreme hour is not diluted among many slots a tree rarely splits on); a
forest grown on training days isolates unusual days quickly. The
evidence of every reading of a complete day is the day's anomaly score (higher = more unusual).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn import ensemble

from meterflow import defaults
from meterflow.anomaly.base import Detector
from meterflow.blocks import meter_blocks
from meterflow.series.fleet import TRAIN, FleetSeries, MeterScaler, fit_scaler

log = logging.getLogger(__name__)

N_TREES = 200
N_BLOCKS = 4  # the profile is seen as four six-hour means (fewer dimensions to split on)
N_FEATURES = N_BLOCKS + 4  # block means, mean, spread, highest and lowest


def day_matrix(
    fleet: FleetSeries, scaler: MeterScaler, rows: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Complete meter-days among the readings at ``rows``: ``(features, meter, day)``, the
    features being the block means of the scaled readings and their mean, spread, maximum
    and minimum."""
    slots = fleet.slots_per_day
    idx = scaler.index_of(fleet.meter_ids)[fleet.meter_idx[rows]]
    rows = rows[idx >= 0]
    idx = idx[idx >= 0]
    day = fleet.time_idx[rows] // slots
    key = fleet.meter_idx[rows] * (fleet.n_times // slots + 1) + day
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    grid = np.full((len(uniq), slots), np.nan)
    scaled = (fleet.values[rows] - scaler.mean[idx]) / scaler.scale[idx]
    grid[inverse, fleet.time_idx[rows] % slots] = scaled
    complete = counts == slots
    first = np.zeros(len(uniq), dtype=np.int64)
    first[inverse[::-1]] = np.arange(len(rows))[::-1]  # a reading of each day
    grid = grid[complete]
    blocks = grid.reshape(len(grid), N_BLOCKS, -1).mean(axis=2) if slots % N_BLOCKS == 0 else grid
    summary = [grid.mean(axis=1), grid.std(axis=1), grid.max(axis=1), grid.min(axis=1)]
    features = np.column_stack([blocks, *summary])
    return features, fleet.meter_idx[rows][first][complete], day[first][complete]


class IsolationForest(Detector):
    """IsolationForest on scaled daily profiles (see the module docstring)."""

    name = "isolation_forest"
    signed = False
    context_days = 0

    scaler: MeterScaler
    forest: ensemble.IsolationForest

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> IsolationForest:
        self.scaler = fit_scaler(fleet)
        features = self._training_days(fleet)
        log.info("isolation forest on %d training days", len(features))
        self.forest = ensemble.IsolationForest(
            n_estimators=N_TREES, random_state=self.settings.seed
        )
        self.forest.fit(features)
        return self

    def _training_days(self, fleet: FleetSeries) -> np.ndarray:
        """Features of the complete training days, at most ``max_train_windows`` of them (a
        seeded sample), meter block by meter block: the days are counted first, then only
        the chosen ones are built."""
        blocks = meter_blocks(len(fleet.meter_ids), defaults.BLOCK_METERS)
        counts = [len(self._block_days(fleet, b)[1]) for b in blocks]
        total, most = sum(counts), self.settings.max_train_windows
        chosen = np.arange(total)
        if total > most:
            rng = np.random.default_rng(self.settings.seed)
            chosen = np.sort(rng.choice(total, most, replace=False))
        parts, first = [], 0
        for block, count in zip(blocks, counts, strict=True):
            mine = chosen[(chosen >= first) & (chosen < first + count)] - first
            if len(mine):
                parts.append(self._block_days(fleet, block)[0][mine])
            first += count
        return np.concatenate(parts) if parts else np.zeros((0, N_FEATURES))

    def _block_days(self, fleet: FleetSeries, block: np.ndarray) -> tuple[np.ndarray, ...]:
        part = fleet.series_range(int(block[0]), int(block[-1]) + 1)
        return day_matrix(part, self.scaler, np.flatnonzero(part.split == TRAIN))

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        out = np.full(len(fleet.values), np.nan)
        features, meter, day = day_matrix(fleet, self.scaler, np.flatnonzero(where))
        if len(features) == 0:
            return out
        day_score = -self.forest.score_samples(features)
        n_days = fleet.n_times // fleet.slots_per_day + 1
        table = np.full(len(fleet.meter_ids) * n_days, np.nan)
        table[meter * n_days + day] = day_score
        keys = fleet.meter_idx * n_days + fleet.time_idx // fleet.slots_per_day
        return np.where(where, table[keys], np.nan)
