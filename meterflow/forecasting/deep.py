"""A Keras forecasting network bound to a fleet: its inputs, its training and its forecasts.

Shared by the ``lstm`` and ``hybrid`` forecasters and the anomaly step's residual forecaster.
A ``BoundNetwork`` holds what the network reads on one fleet: the readings (Wh; the anomaly
detector cleans them in place), per-series training statistics, static meter features and, for
the hybrid, the neighbour grid. Each window is scaled either by its series' training mean and
spread (``scaling="meter"``) or by the level and spread of the series' last days up to the
origin (``scaling="recent"``), so that a network trained in summer still forecasts a quieter
autumn at the right level.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import ConfigError
from meterflow.forecasting.calibration import apply_scales, interval_scales
from meterflow.forecasting.features import decoder_inputs, seasonal_values
from meterflow.forecasting.inputs import (
    CHUNK,
    ForecastInputs,
    history_bounds,
    recent_stats,
    sample,
    stopping_split,
    training_origins,
    validation_inputs,
)
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.spatial import (
    SpatialLayout,
    build_layout,
    grids_from_recent,
    recent_from_wide,
)
from meterflow.forecasting.static import NONE as NO_STATIC
from meterflow.forecasting.static import StaticFeatures, meter_features
from meterflow.series.fleet import FleetSeries, MeterScaler, fit_scaler
from meterflow.series.windows import model_inputs, windows_at

log = logging.getLogger(__name__)

RECENT_FLOOR = 0.2  # a window's spread is at least this share of its series' training spread
MIN_RECENT_DAYS = 1  # fewer recent readings than a day: the window uses the training statistics


@dataclass(frozen=True)
class References:
    """What the inputs of a set of origins read from the readings and evaluation inputs share
    (``ForecastInputs.recent`` and ``seasonal_wh``): computed once for every forecaster."""

    recent: tuple[np.ndarray, np.ndarray, np.ndarray]  # (n,) mean, std, count of recent days
    seasonal: np.ndarray  # (3, n, steps) the seasonal references, Wh

    def subset(self, sel: slice) -> References:
        """The references of the origins ``sel``."""
        return References(tuple(a[sel] for a in self.recent), self.seasonal[:, sel])


@dataclass
class BoundNetwork:
    """A network and everything it reads on one fleet (see the module docstring)."""

    settings: ForecastSettings
    fleet: FleetSeries
    scaler: MeterScaler  # per series of ``fleet``: training mean and spread (NaN = unknown)
    values: np.ndarray  # (N,) the readings the windows are read from, Wh
    exog_scaled: np.ndarray  # (N, n_exog) standardised exogenous inputs
    static: StaticFeatures  # per meter (meter table), empty when not used
    usable: np.ndarray  # (n_series,) series with training statistics
    layout: SpatialLayout | None  # the hybrid's neighbours; None for the plain LSTM
    wide: np.ndarray | None  # (n_series, n_times) meter-scaled readings for the hybrid's grids
    network: Any  # keras.Model
    interval_scale: np.ndarray | None = None  # (steps,) calibration of the quantiles

    @property
    def spatial(self) -> bool:
        return self.layout is not None

    def point_forecasts(self, pos: np.ndarray, first: np.ndarray) -> np.ndarray:
        """``predict_positions`` of this binding."""
        return predict_positions(self, pos, first)

    def position_inputs(self, pos: np.ndarray, first: np.ndarray) -> list[np.ndarray]:
        """The network inputs that forecast the readings at ``pos`` (``predict_positions``)."""
        return window_inputs(self, np.asarray(pos) - self.settings.horizon, first, first)[0]


def bind(
    fleet: FleetSeries,
    settings: ForecastSettings,
    scaler: MeterScaler,
    static: StaticFeatures,
    network: Any,
    locations: pd.DataFrame | None = None,
) -> BoundNetwork:
    """A network fitted elsewhere, bound to ``fleet``'s series (found by meter id through
    ``scaler`` and ``static``; series it does not know are unusable). ``locations``: the meter
    table of a hybrid (its neighbours are looked up among ``fleet``'s series)."""
    ids = fleet.series_meters.astype(str)
    idx = scaler.index_of(ids)
    known = idx >= 0
    mean = np.where(known, scaler.mean[np.maximum(idx, 0)], np.nan)
    scale = np.where(known, scaler.scale[np.maximum(idx, 0)], np.nan)
    local = replace(scaler, meter_ids=tuple(ids), mean=mean, scale=scale)
    layout, wide = spatial_inputs(fleet, locations, local, settings)
    return BoundNetwork(
        *(settings, fleet, local, fleet.values.copy(), local.scale_exog(fleet.exog), static),
        *(known & np.isfinite(mean), layout, wide, network),
    )


def spatial_inputs(
    fleet: FleetSeries,
    locations: pd.DataFrame | None,
    scaler: MeterScaler,
    settings: ForecastSettings,
) -> tuple[SpatialLayout | None, np.ndarray | None]:
    """The hybrid's neighbour grid and (series x times) meter-scaled readings; ``(None, None)``
    without ``locations`` (the plain LSTM)."""
    if locations is None:
        return None, None
    if locations.empty:
        raise ConfigError("the hybrid forecaster needs the meters table (latitude/longitude)")
    ids = fleet.series_meters.astype(str)
    layout = build_layout(ids, locations, settings.n_neighbours, settings.grid_size)
    m = fleet.meter_idx
    wide = np.full((len(ids), fleet.n_times), np.nan, dtype=np.float32)
    wide[m, fleet.time_idx] = (fleet.values - scaler.mean[m]) / scaler.scale[m]
    return layout, wide


def window_scaling(
    bound: BoundNetwork,
    origin: np.ndarray,
    history_first: np.ndarray,
    recent: tuple[np.ndarray, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(level, scale)`` of each window (see the module docstring), Wh; ``recent``: the
    origins' ``recent_stats``, when already known."""
    m = bound.fleet.meter_idx[origin]
    mean, spread = bound.scaler.mean[m], bound.scaler.scale[m]
    if bound.settings.scaling == "meter":
        return mean, spread
    if recent is None:
        slots = bound.settings.recent_days * bound.fleet.slots_per_day
        recent = recent_stats(bound.fleet, bound.values, origin, history_first, slots)
    level, std, count = recent
    enough = count >= MIN_RECENT_DAYS * bound.fleet.slots_per_day
    level = np.where(enough, level, mean)
    scale = np.where(enough, np.maximum(std, RECENT_FLOOR * spread), spread)
    return level, scale


def window_inputs(
    bound: BoundNetwork,
    origin: np.ndarray,
    window_first: np.ndarray,
    history_first: np.ndarray,
    refs: References | None = None,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Network inputs of forecasts made at ``origin``: ``([x, (grid), (future)], level,
    scale)``; ``refs``: the origins' recent statistics and seasonal references, when known."""
    cfg, fleet = bound.settings, bound.fleet
    level, scale = window_scaling(bound, origin, history_first, refs.recent if refs else None)
    windows, _ = windows_at(bound.values, origin, window_first, cfg.seq_length, np.nan, np.float64)
    scaled = np.nan_to_num((windows - level[:, None]) / scale[:, None])
    origin_index = fleet.calendar_offset + fleet.time_idx[origin]
    x = model_inputs(scaled, origin_index, cfg.horizon, fleet.slots_per_day, cfg.time_features)
    exog = [
        windows_at(bound.exog_scaled[:, j], origin, window_first, cfg.seq_length)[0]
        for j in range(len(cfg.exog))
    ]
    inputs = [np.concatenate([x, *(e[..., None] for e in exog)], axis=-1)]
    if bound.spatial:
        series = fleet.meter_idx[origin]
        end_time = fleet.time_idx[origin]
        recent = recent_from_wide(bound.layout, bound.wide, series, end_time, cfg.spatial_lags)
        inputs.append(grids_from_recent(bound.layout, series, recent))
    if cfg.uses_decoder:
        seasonal = refs.seasonal if refs is not None else None
        inputs.append(_decoder(bound, origin, history_first, (level, scale), seasonal))
    return inputs, level, scale


def _decoder(
    bound: BoundNetwork,
    origin: np.ndarray,
    history_first: np.ndarray,
    scaling: tuple[np.ndarray, np.ndarray],
    wh: np.ndarray | None = None,
) -> np.ndarray:
    """The decoder input of forecasts made at ``origin`` (seasonal references, ``wh`` when
    known, calendar, exogenous values at the targets, static features, step)."""
    cfg, fleet = bound.settings, bound.fleet
    level, scale = scaling
    seasonal = None
    if cfg.seasonal_inputs:
        if wh is None:
            wh = seasonal_values(fleet, bound.values, origin, history_first, cfg.steps)
        seasonal = (wh - level[None, :, None]) / scale[None, :, None]
    exog_at = np.zeros((len(origin), len(cfg.steps), 0))
    if cfg.exog:  # at the targets (a served request gives them on rows after its readings)
        exog_at = bound.exog_scaled[origin[:, None] + cfg.steps[None, :]]
    static = bound.static.lookup(fleet.series_meters[fleet.meter_idx[origin]])
    origin_index = fleet.calendar_offset + fleet.time_idx[origin]
    return decoder_inputs(
        *(seasonal, origin_index, exog_at, static),
        *(cfg.steps, cfg.horizon, fleet.slots_per_day),
        calendar=cfg.time_features,
    )


def predict_steps(
    bound: BoundNetwork,
    origin: np.ndarray,
    window_first: np.ndarray,
    history_first: np.ndarray,
    refs: References | None = None,
) -> np.ndarray:
    """Forecasts ``(n, steps, quantiles)`` in Wh (quantiles increasing) of the targets after
    ``origin`` (``refs``: their recent statistics and seasonal references, when known)."""
    from meterflow.nets.training import predict_batches

    cfg = bound.settings
    out = np.empty((len(origin), len(cfg.steps), cfg.n_quantiles), dtype=np.float64)
    for lo in range(0, len(origin), CHUNK):
        sl = slice(lo, lo + CHUNK)
        part = refs.subset(sl) if refs is not None else None
        inputs, level, scale = window_inputs(
            bound, origin[sl], window_first[sl], history_first[sl], part
        )
        raw = predict_batches(bound.network, inputs).reshape(out[sl].shape)
        out[sl] = raw * scale[:, None, None] + level[:, None, None]
    out = np.sort(out, axis=-1)
    if bound.interval_scale is not None:
        out = apply_scales(out, bound.interval_scale, cfg.point_quantile)
    return out


def predict_inputs(bound: BoundNetwork, inputs: ForecastInputs) -> np.ndarray:
    """``predict_steps`` of the origins of ``inputs`` (NaN on series the network cannot read),
    reading the references ``inputs`` shares with the other forecasters when they are the
    network's own (the same readings and settings)."""
    refs = shared_references(bound, inputs)
    out = predict_steps(bound, inputs.origin, inputs.window_first, inputs.history_first, refs)
    out[~bound.usable[inputs.series]] = np.nan
    return out


def shared_references(bound: BoundNetwork, inputs: ForecastInputs) -> References | None:
    """``inputs``' cached recent statistics and seasonal references, where the network reads
    both and would compute the same ones (its readings uncleaned, the same days and steps)."""
    cfg = bound.settings
    same = (
        cfg.scaling == "recent"
        and cfg.seasonal_inputs
        and inputs.fleet is bound.fleet
        and inputs.recent_days == cfg.recent_days
        and np.array_equal(inputs.steps, cfg.steps)
        and np.array_equal(bound.values, inputs.fleet.values, equal_nan=True)
    )
    return References(inputs.recent, inputs.seasonal_wh) if same else None


def predict_positions(bound: BoundNetwork, pos: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Point forecasts (Wh) of the readings at ``pos`` from the window ``horizon`` slots before
    (the last target of a network with ``output="last"``); ``first``: the windows' first usable
    positions (also the first the recent level reads)."""
    origin = np.asarray(pos, dtype=np.int64) - bound.settings.horizon
    out = predict_steps(bound, origin, first, first)
    return out[:, -1, bound.settings.point_quantile]


def fit_network(
    fleet: FleetSeries,
    meters: pd.DataFrame | None,
    cfg: ForecastSettings,
    *,
    build: Callable[[ForecastSettings], Any],
    spatial: bool,
) -> tuple[BoundNetwork, Any]:
    """Scale on the training split, sample training windows, fit a fresh network (``build``)
    with early stopping on the validation windows, calibrate its intervals there; ``spatial``:
    the network also reads the neighbour grid. Returns the bound network and its history."""
    from meterflow.nets.training import fit_network as fit_keras
    from meterflow.nets.training import prepare_keras

    prepare_keras(cfg.threads, cfg.seed)
    scaler = fit_scaler(fleet)
    static = NO_STATIC
    if cfg.uses_decoder and cfg.meter_features:
        static = meter_features(meters, fleet.series_meters)
    cfg = replace(cfg, static=static.names)
    network = build(cfg)
    locations = (meters if meters is not None else pd.DataFrame()) if spatial else None
    bound = bind(fleet, cfg, scaler, static, network, locations)
    fit, stop = _fit_and_stop_origins(fleet, cfg, bound.usable)
    train, stopping = _window_set(bound, fit), _window_set(bound, stop)
    log.info(
        "training %s on %d windows (early stopping on %d of held-out training days), %d "
        "series, %d target step(s)",
        *(network.name, len(fit), len(stop), int(bound.usable.sum())),
        len(cfg.steps),
    )
    history = fit_keras(
        network,
        *train,
        *stopping,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        patience=cfg.patience,
        quantiles=cfg.quantiles,
        min_updates=cfg.min_updates,
        min_delta=cfg.min_delta,
        lr_patience=cfg.lr_patience,
    )
    val_inputs = validation_inputs(fleet, cfg)
    if cfg.quantiles and len(val_inputs):
        bound.interval_scale = _calibrated_intervals(bound, val_inputs)
    return bound, history


def _fit_and_stop_origins(
    fleet: FleetSeries, cfg: ForecastSettings, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Training and early-stopping origins (``inputs.stopping_split``), each sampled; the
    validation split stops the training only when the training days hold no stopping day."""
    fit, stop = stopping_split(fleet, training_origins(fleet, cfg, usable), cfg)
    if len(stop) == 0 or len(fit) == 0:
        log.warning(
            "too few training days to hold some out for early stopping: the network stops on "
            "the validation split, so its validation score is optimistic"
        )
        fit, stop = training_origins(fleet, cfg, usable), validation_inputs(fleet, cfg).origin
    return fit, sample(stop, cfg.max_val_windows, cfg.seed)


def _window_set(bound: BoundNetwork, origin: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Network inputs and scaled targets of full windows at ``origin``."""
    cfg = bound.settings
    inputs, level, scale = window_inputs(bound, origin, *history_bounds(bound.fleet, origin))
    y = (bound.values[origin[:, None] + cfg.steps[None, :]] - level[:, None]) / scale[:, None]
    y = y.astype(np.float32)
    return inputs, (y[..., None] if cfg.uses_decoder else y[:, 0])


def _calibrated_intervals(bound: BoundNetwork, val: ForecastInputs) -> np.ndarray:
    """Per-step widening of the quantiles that covers their nominal share of validation."""
    cfg = bound.settings
    pred = predict_steps(bound, val.origin, val.window_first, val.history_first)
    scales = interval_scales(pred, val.actual, cfg.quantiles, cfg.point_quantile)
    log.info("intervals calibrated on validation: x%.2f (step 1) .. x%.2f", scales[0], scales[-1])
    return scales
