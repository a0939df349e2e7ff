"""Fit a forecaster on a fleet of series: windows, decoder inputs, network, linear baseline.

``fit_forecaster`` and ``predict_steps`` / ``predict_positions`` are used by the forecasting
step (``evaluate``) and the anomaly detector.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting.baselines import LinearSteps, linear_inputs
from meterflow.forecasting.calibration import apply_scales, interval_scales
from meterflow.forecasting.features import decoder_inputs, seasonal_values
from meterflow.forecasting.hybrid import (
    SpatialLayout,
    build_layout,
    grids_from_recent,
    recent_from_wide,
)
from meterflow.forecasting.predictor import build_network
from meterflow.forecasting.series import (
    TRAIN,
    VAL,
    FleetSeries,
    MeterScaler,
    fit_scaler,
)
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.static import NONE as NO_STATIC
from meterflow.forecasting.static import StaticFeatures, meter_features
from meterflow.forecasting.training import (
    TrainingHistory,
    fit_network,
    predict_batches,
    prepare_keras,
)
from meterflow.forecasting.windows import gather_windows, label_positions, model_inputs

log = logging.getLogger(__name__)

CHUNK = 65_536  # windows built and predicted per chunk (bounds memory on large fleets)


@dataclass
class FittedForecaster:
    """A trained network with everything needed to build windows on its fleet."""

    settings: ForecastSettings
    fleet: FleetSeries
    scaler: MeterScaler
    scaled: np.ndarray  # (N,) scaled values (NaN for meters without training data)
    exog_scaled: np.ndarray  # (N, n_exog) standardised exogenous inputs
    static: StaticFeatures  # per series (meter table), empty when not used
    usable: np.ndarray  # (n_meters,) meters with a training scaler
    layout: SpatialLayout | None
    wide: np.ndarray | None  # (n_meters, n_times) scaled values for the hybrid's grids
    network: Any  # keras.Model
    history: TrainingHistory
    train_pos: np.ndarray
    val_pos: np.ndarray
    linear: LinearSteps | None = None
    interval_scale: np.ndarray | None = None  # (steps,) calibration of the quantiles


def _sample(
    pos: np.ndarray, first: np.ndarray, cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` of the windows, drawn with ``rng``, kept in chronological order."""
    if len(pos) <= cap:
        return pos, first
    keep = np.sort(rng.choice(len(pos), size=cap, replace=False))
    return pos[keep], first[keep]


def seasonal_wh(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The seasonal inputs of each target step ``(3, n, steps)``, in Wh."""
    cfg = fitted.settings
    return seasonal_values(fitted.fleet, fitted.fleet.values, pos, first, cfg.steps, cfg.horizon)


def _scale_rows(fitted: FittedForecaster, pos: np.ndarray, wh: np.ndarray) -> np.ndarray:
    """``wh`` (``(..., n, steps)``, rows of the labels at ``pos``) in the series' scaled units."""
    m = fitted.fleet.meter_idx[pos]
    return (wh - fitted.scaler.mean[m][:, None]) / fitted.scaler.scale[m][:, None]


def window_inputs(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Network inputs for labels at ``pos``: ``([x, (grid), (future)], windows_scaled,
    n_real)``."""
    cfg, fleet = fitted.settings, fitted.fleet
    windows, n_real = gather_windows(fitted.scaled, pos, first, cfg.seq_length, cfg.horizon)
    end_time = fleet.time_idx[pos] - cfg.horizon  # time of the last input
    origin_index = fleet.calendar_offset + end_time
    x = model_inputs(windows, origin_index, cfg.horizon, fleet.slots_per_day, cfg.time_features)
    exog = [
        gather_windows(fitted.exog_scaled[:, j], pos, first, cfg.seq_length, cfg.horizon)[0]
        for j in range(len(cfg.exog))
    ]
    inputs = [np.concatenate([x, *(e[..., None] for e in exog)], axis=-1)]
    if cfg.model == "hybrid":
        assert fitted.layout is not None and fitted.wide is not None
        targets = fleet.meter_idx[pos]
        recent = recent_from_wide(fitted.layout, fitted.wide, targets, end_time, cfg.spatial_lags)
        inputs.append(grids_from_recent(fitted.layout, targets, recent))
    if cfg.uses_decoder:
        seasonal = None
        if cfg.seasonal_inputs:
            seasonal = _scale_rows(fitted, pos, seasonal_wh(fitted, pos, first))
        exog_at = fitted.exog_scaled[(pos - cfg.horizon)[:, None] + cfg.steps[None, :]]
        static = fitted.static.lookup(fleet.meter_ids[fleet.meter_idx[pos]])
        inputs.append(
            decoder_inputs(
                *(seasonal, origin_index, exog_at, static),
                *(cfg.steps, cfg.horizon, fleet.slots_per_day),
                calendar=cfg.time_features,
            )
        )
    return inputs, windows, n_real


def predict_steps(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts ``(n, steps, quantiles)`` in Wh (quantiles in increasing order) of the targets
    of the labels at ``pos``, and the real inputs each window had."""
    cfg = fitted.settings
    out = np.empty((len(pos), len(cfg.steps), cfg.n_quantiles), dtype=np.float64)
    n_real = np.empty(len(pos), dtype=np.int64)
    for lo in range(0, len(pos), CHUNK):
        sl = slice(lo, lo + CHUNK)
        inputs, _, n_real[sl] = window_inputs(fitted, pos[sl], first[sl])
        out[sl] = predict_batches(fitted.network, inputs).reshape(out[sl].shape)
    m = fitted.fleet.meter_idx[pos]
    wh = out * fitted.scaler.scale[m][:, None, None] + fitted.scaler.mean[m][:, None, None]
    wh = np.sort(wh, axis=-1)
    if fitted.interval_scale is not None:
        wh = apply_scales(wh, fitted.interval_scale, cfg.point_quantile)
    return wh, n_real


def predict_positions(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Point forecasts (Wh) of the values at ``pos`` (the last target step) and the real inputs
    each window had."""
    out, n_real = predict_steps(fitted, pos, first)
    return out[:, -1, fitted.settings.point_quantile], n_real


def target_positions(fitted: FittedForecaster, pos: np.ndarray) -> np.ndarray:
    """Positions ``(n, steps)`` of the targets of the labels at ``pos``."""
    cfg = fitted.settings
    return (np.asarray(pos) - cfg.horizon)[:, None] + cfg.steps[None, :]


def fit_forecaster(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> FittedForecaster:
    """Scale on the training split, sample training/validation windows, fit the network and
    the linear baseline on the same windows."""
    prepare_keras(cfg.threads, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    scaler = fit_scaler(fleet)
    usable = np.isfinite(scaler.mean)
    m = fleet.meter_idx
    scaled = (fleet.values - scaler.mean[m]) / scaler.scale[m]
    train_pos, train_first, val_pos, val_first = _training_windows(fleet, usable, cfg, rng)
    layout, wide = _spatial_layout(fleet, meters, scaled, cfg)
    static = NO_STATIC
    if cfg.uses_decoder and cfg.meter_features:
        static = meter_features(meters, fleet.meter_ids)
    cfg = replace(cfg, static=static.names)
    network = build_network(cfg)
    exog = scaler.scale_exog(fleet.exog)
    fitted = FittedForecaster(
        *(cfg, fleet, scaler, scaled, exog, static, usable, layout, wide),
        *(network, TrainingHistory(), train_pos, val_pos),
    )
    train_in, train_windows, _ = window_inputs(fitted, train_pos, train_first)
    val_in, _, _ = window_inputs(fitted, val_pos, val_first)
    log.info(
        "training %s on %d windows (validation %d), %d series, %d target step(s)",
        *(cfg.model, len(train_pos), len(val_pos), int(usable.sum()), len(cfg.steps)),
    )
    fitted.history = fit_network(
        network,
        train_in,
        _targets(fitted, train_pos),
        val_in,
        _targets(fitted, val_pos),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        patience=cfg.patience,
        quantiles=cfg.quantiles,
        min_updates=cfg.min_updates,
    )
    if cfg.quantiles:
        fitted.interval_scale = _calibrated_intervals(fitted, val_pos, val_first)
    fitted.linear = LinearSteps.fit(
        linear_features(fitted, train_pos, train_first, train_windows),
        scaled[target_positions(fitted, train_pos)],
    )
    return fitted


def _calibrated_intervals(
    fitted: FittedForecaster, val_pos: np.ndarray, val_first: np.ndarray
) -> np.ndarray:
    """Per-step widening of the quantiles that covers their nominal share of validation."""
    cfg = fitted.settings
    pred, _ = predict_steps(fitted, val_pos, val_first)
    actual = fitted.fleet.values[target_positions(fitted, val_pos)]
    scales = interval_scales(pred, actual, cfg.quantiles, cfg.point_quantile)
    log.info("intervals calibrated on validation: x%.2f (step 1) .. x%.2f", scales[0], scales[-1])
    return scales


def _targets(fitted: FittedForecaster, pos: np.ndarray) -> np.ndarray:
    """Scaled training targets as the network outputs them."""
    y = fitted.scaled[target_positions(fitted, pos)].astype(np.float32)
    return y[..., None] if fitted.settings.uses_decoder else y[:, 0]


def linear_features(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray, windows: np.ndarray
) -> np.ndarray:
    """The linear baseline's inputs: the scaled window (and seasonal lags) per step."""
    cfg = fitted.settings
    seasonal = None
    if cfg.seasonal_inputs:
        seasonal = _scale_rows(fitted, pos, seasonal_wh(fitted, pos, first))
    return linear_inputs(windows, seasonal, len(cfg.steps))


def _training_windows(
    fleet: FleetSeries, usable: np.ndarray, cfg: ForecastSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation labels with full windows, capped by sampling (in that order):
    ``(train_pos, train_first, val_pos, val_first)``; SchemaError when either split has none."""
    span = cfg.horizon - int(cfg.steps[0]) + 1
    full = (cfg.seq_length, cfg.horizon, cfg.seq_length, usable, span)
    train_pos, train_first = label_positions(fleet, (TRAIN,), None, *full)
    val_pos, val_first = label_positions(fleet, (VAL,), None, *full)
    if len(train_pos) == 0 or len(val_pos) == 0:
        raise SchemaError(
            f"forecasting input yields {len(train_pos)} training and {len(val_pos)} validation "
            f"windows of {cfg.seq_length}+{cfg.horizon} contiguous slots: need days with "
            f"longer contiguous history"
        )
    train_pos, train_first = _sample(train_pos, train_first, cfg.max_train_windows, rng)
    val_pos, val_first = _sample(val_pos, val_first, cfg.max_val_windows, rng)
    return train_pos, train_first, val_pos, val_first


def _spatial_layout(
    fleet: FleetSeries, meters: pd.DataFrame | None, scaled: np.ndarray, cfg: ForecastSettings
) -> tuple[SpatialLayout | None, np.ndarray | None]:
    """The hybrid model's neighbour grid and (meters x times) scaled values; (None, None) for
    the plain LSTM."""
    if cfg.model != "hybrid":
        return None, None
    if meters is None or meters.empty:
        raise ConfigError("model=hybrid needs the meters table (latitude/longitude)")
    layout = build_layout(fleet.meter_ids, meters, cfg.n_neighbours, cfg.grid_size)
    wide = np.full((len(fleet.meter_ids), fleet.n_times), np.nan, dtype=np.float32)
    wide[fleet.meter_idx, fleet.time_idx] = scaled
    return layout, wide
