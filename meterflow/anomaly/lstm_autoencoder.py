"""LSTM sequence autoencoder: a meter-day that the network cannot reconstruct is anomalous.

The unit is one complete meter-day (every slot present and finite), scaled with the meter's
training mean and spread. Each slot carries the reading plus the calendar (sin/cos of the slot
of day, a weekend flag), so the network need not learn the time of day; an LSTM encoder
compresses the day into its last state, which is repeated over the day's slots and decoded
(with the calendar again) by an LSTM decoder into the readings alone. The evidence of a reading
is its signed reconstruction residual in scaled units; readings of incomplete days and of
meters without a training scaler get NaN.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import keras
import numpy as np
import pandas as pd

from meterflow.anomaly.base import Detector, DetectorSettings
from meterflow.errors import InputError, SchemaError
from meterflow.nets.training import (
    TrainingHistory,
    fit_network,
    predict_batches,
    prepare_keras,
    train_batch_size,
)
from meterflow.series.fleet import TRAIN, VAL, FleetSeries, MeterScaler, fit_scaler

log = logging.getLogger(__name__)

N_CALENDAR = 3  # sin and cos of the slot of day, weekend flag
LEARNING_RATE = 3e-3  # at batches of REFERENCE_BATCH or fewer days
REFERENCE_BATCH = 64
# the largest batch; small training sets get smaller ones (MIN_UPDATES), and a batch above
# REFERENCE_BATCH a rate sqrt(batch / REFERENCE_BATCH) times larger. Demo fleet (20 000 days),
# 256 (rate 6e-3) against 64 (3e-3): an epoch 7.0 / 8.9 CPU-s, the first (with set-up) 12 / 21;
# test F1 0.632 / 0.629, event recall 0.667 / 0.639, planted-copy F1 0.448 / 0.449, validation
# objective 0.521 / 0.527
BATCH_SIZE = 256
MIN_UPDATES = 50
PATIENCE = 5
EXAMPLE_DAYS = 4


def build_autoencoder(slots: int, units: Sequence[int]) -> keras.Model:
    """A fresh autoencoder ``(batch, slots, 1 + N_CALENDAR) -> (batch, slots, 1)``: stacked LSTM
    encoder, last state as bottleneck, repeated per slot with the calendar, stacked LSTM decoder
    (units mirrored) and a per-slot linear output."""
    days = keras.Input(shape=(slots, 1 + N_CALENDAR), name="day")
    x = days
    for i, n in enumerate(units):
        x = keras.layers.LSTM(n, return_sequences=i < len(units) - 1)(x)
    repeated = keras.layers.RepeatVector(slots)(x)
    x = keras.layers.Concatenate()([repeated, days[:, :, 1:]])
    for n in reversed(units):
        x = keras.layers.LSTM(n, return_sequences=True)(x)
    out = keras.layers.TimeDistributed(keras.layers.Dense(1))(x)
    return keras.Model(days, out, name="lstm_autoencoder")


def learning_rate(n_days: int) -> float:
    """Adam's rate for ``n_days`` training days: ``LEARNING_RATE`` scaled with the square root
    of the batch they get (``train_batch_size``) over ``REFERENCE_BATCH``, never below it."""
    batch = train_batch_size(n_days, BATCH_SIZE, MIN_UPDATES)
    return LEARNING_RATE * math.sqrt(max(batch / REFERENCE_BATCH, 1.0))


def complete_days(fleet: FleetSeries) -> np.ndarray:
    """Positions of the first reading of every complete meter-day (all slots, all finite).

    The fleet is meter-major and time-sorted, so a complete day is ``slots_per_day``
    consecutive positions."""
    spd, n = fleet.slots_per_day, len(fleet.values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    keys = fleet.meter_idx * (fleet.n_times // spd + 1) + fleet.time_idx // spd
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    counts = np.diff(np.r_[starts, n])
    finite = np.add.reduceat(np.isfinite(fleet.values).astype(np.int64), starts)
    return starts[(counts == spd) & (finite == spd)].astype(np.int64)


def day_inputs(
    fleet: FleetSeries, starts: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Network input ``(n, slots, 1 + N_CALENDAR)`` (float32) of the complete days starting at
    ``starts``, scaled with each day's ``mean`` and ``scale``."""
    spd = fleet.slots_per_day
    pos = starts[:, None] + np.arange(spd)[None, :]
    scaled = (fleet.values[pos] - mean[:, None]) / scale[:, None]
    angle = 2 * np.pi * (fleet.time_idx[pos] % spd) / spd
    day_number = (fleet.calendar_offset + fleet.time_idx[pos]) // spd  # since a Monday
    weekend = (day_number % 7 >= 5).astype(np.float64)
    return np.stack([scaled, np.sin(angle), np.cos(angle), weekend], axis=-1).astype(np.float32)


class LstmAutoencoder(Detector):
    """Reconstruction residuals of an LSTM autoencoder of meter-days (module docstring).

    Pickles without Keras objects: the weights are numpy arrays and the network is rebuilt on
    first use."""

    name: ClassVar[str] = "lstm_autoencoder"
    signed: ClassVar[bool] = True
    context_days: ClassVar[int] = 0

    def __init__(self, settings: DetectorSettings) -> None:
        super().__init__(settings)
        self.scaler: MeterScaler | None = None
        self.weights: list[np.ndarray] = []
        self.slots = 0
        self.history = TrainingHistory()
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    @property
    def network(self) -> Any:
        """The Keras autoencoder with the trained weights (built once per process)."""
        if self._net is None:
            if not self.weights:
                raise InputError("the autoencoder is not fitted")
            prepare_keras(self.settings.threads, self.settings.seed)
            net = build_autoencoder(self.slots, self.settings.units)
            net.set_weights(self.weights)
            self._net = net
        return self._net

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> LstmAutoencoder:
        """Train on (at most ``max_train_windows``) complete TRAIN days, early stopping on (at
        most as many) complete VAL days; keep the scaler and the weights."""
        cfg = self.settings
        prepare_keras(cfg.threads, cfg.seed)
        self.scaler, self.slots = fit_scaler(fleet), fleet.slots_per_day
        starts, mean, scale = self._known_days(fleet)
        split = fleet.split[starts]
        train, val = starts[split == TRAIN], starts[split == VAL]
        if len(train) == 0 or len(val) == 0:
            raise SchemaError(
                f"lstm autoencoder: {len(train)} complete training and {len(val)} validation "
                "meter-days; both are needed"
            )
        rng = np.random.default_rng(cfg.seed)
        if len(train) > cfg.max_train_windows:
            train = np.sort(rng.choice(train, size=cfg.max_train_windows, replace=False))
        if len(val) > cfg.max_train_windows:  # early stopping on a bounded sample too
            val = np.sort(rng.choice(val, size=cfg.max_train_windows, replace=False))
        log.info(
            "training lstm autoencoder on %d meter-days (validation %d) of %d meters",
            *(len(train), len(val), len(np.unique(fleet.meter_idx[train]))),
        )
        x_train = self._inputs_at(fleet, train, starts, mean, scale)
        x_val = self._inputs_at(fleet, val, starts, mean, scale)
        network = build_autoencoder(self.slots, cfg.units)
        self.history = fit_network(
            network,
            [x_train],
            x_train[..., :1],
            [x_val],
            x_val[..., :1],
            epochs=cfg.epochs,
            batch_size=BATCH_SIZE,
            learning_rate=learning_rate(len(train)),
            patience=PATIENCE,
            min_updates=MIN_UPDATES,
        )
        self.weights = [np.asarray(w) for w in network.get_weights()]
        self._net = network
        return self

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        """Signed residual (scaled reading - reconstruction) of the readings of complete days
        of known meters that hold a reading in ``where``; NaN elsewhere."""
        out = np.full(len(fleet.values), np.nan)
        starts, mean, scale = self._known_days(fleet)
        keep = where[starts]  # days are scored whole
        starts, mean, scale = starts[keep], mean[keep], scale[keep]
        if len(starts) == 0:
            return out
        x = day_inputs(fleet, starts, mean, scale)
        recon = predict_batches(self.network, [x])[..., 0].astype(np.float64)
        pos = starts[:, None] + np.arange(self.slots)[None, :]
        scaled = (fleet.values[pos] - mean[:, None]) / scale[:, None]
        out[pos] = scaled - recon
        return out

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        """The network input of the first few complete days of known meters of ``fleet``."""
        starts, mean, scale = self._known_days(fleet)
        if len(starts) == 0:
            raise SchemaError("lstm autoencoder: the fleet has no complete day of a known meter")
        n = min(EXAMPLE_DAYS, len(starts))
        return [day_inputs(fleet, starts[:n], mean[:n], scale[:n])]

    def _known_days(self, fleet: FleetSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First positions of the complete days of meters with a training scaler, and each
        day's scaler mean and scale."""
        if self.scaler is None:
            raise InputError("the autoencoder is not fitted")
        if fleet.slots_per_day != self.slots:
            raise SchemaError(
                f"lstm autoencoder: trained on {self.slots} slots per day, the fleet has "
                f"{fleet.slots_per_day}"
            )
        starts = complete_days(fleet)
        idx = self.scaler.index_of(fleet.meter_ids)[fleet.meter_idx[starts]]
        mean = np.where(idx >= 0, self.scaler.mean[np.maximum(idx, 0)], np.nan)
        scale = np.where(idx >= 0, self.scaler.scale[np.maximum(idx, 0)], np.nan)
        known = np.isfinite(mean) & np.isfinite(scale)
        return starts[known], mean[known], scale[known]

    @staticmethod
    def _inputs_at(
        fleet: FleetSeries,
        chosen: np.ndarray,
        starts: np.ndarray,
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> np.ndarray:
        """``day_inputs`` of the days ``chosen`` among ``starts`` (sorted)."""
        at = np.searchsorted(starts, chosen)
        return day_inputs(fleet, chosen, mean[at], scale[at])
