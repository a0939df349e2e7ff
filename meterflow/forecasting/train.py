"""Train a forecaster on the harmonized profiles and evaluate it against baselines.

``train_forecaster(profiles, meters, cfg)`` is the step's one call. The pieces
(``fit_forecaster``, ``predict_positions``) are reused by the anomaly detector.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression

from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting import baselines, figures
from meterflow.forecasting.hybrid import (
    SpatialLayout,
    build_layout,
    grids_from_recent,
    recent_from_wide,
)
from meterflow.forecasting.metrics import forecast_metrics, skill
from meterflow.forecasting.predictor import ForecastPredictor, build_network, lag_columns
from meterflow.forecasting.series import (
    TEST,
    TRAIN,
    VAL,
    DateSplit,
    FleetSeries,
    MeterScaler,
    build_fleet,
    fit_scaler,
)
from meterflow.forecasting.settings import ForecastSettings
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
    usable: np.ndarray  # (n_meters,) meters with a training scaler
    layout: SpatialLayout | None
    wide: np.ndarray | None  # (n_meters, n_times) scaled values for the hybrid's grids
    network: Any  # keras.Model
    history: TrainingHistory
    train_pos: np.ndarray
    val_pos: np.ndarray
    linear: LinearRegression


@dataclass
class ForecastResult:
    """What the forecasting step logs: metrics, curves, test predictions, figures, model."""

    predictor: ForecastPredictor
    metrics: dict[str, float]
    history: TrainingHistory
    predictions: pd.DataFrame  # test split: meter_id, timestamp, window_end, actual, ...
    figures: dict[str, Figure]
    best_baseline: str
    split: DateSplit
    holdout: pd.DataFrame  # test windows as the predictor takes them, with the actual value


def _sample(
    pos: np.ndarray, first: np.ndarray, cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` of the windows, drawn with ``rng``, kept in chronological order."""
    if len(pos) <= cap:
        return pos, first
    keep = np.sort(rng.choice(len(pos), size=cap, replace=False))
    return pos[keep], first[keep]


def window_inputs(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Network inputs for labels at ``pos``: ``([x, (grid)], windows_scaled, n_real)``."""
    cfg, fleet = fitted.settings, fitted.fleet
    windows, n_real = gather_windows(fitted.scaled, pos, first, cfg.seq_length, cfg.horizon)
    end_time = fleet.time_idx[pos] - cfg.horizon  # time of the last input
    x = model_inputs(
        windows,
        fleet.calendar_offset + end_time,
        cfg.horizon,
        fleet.slots_per_day,
        cfg.time_features,
    )
    inputs = [x]
    if cfg.model == "hybrid":
        assert fitted.layout is not None and fitted.wide is not None
        targets = fleet.meter_idx[pos]
        recent = recent_from_wide(fitted.layout, fitted.wide, targets, end_time, cfg.spatial_lags)
        inputs.append(grids_from_recent(fitted.layout, targets, recent))
    return inputs, windows, n_real


def predict_positions(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts (Wh) of the values at ``pos`` and the real inputs each window had."""
    pred = np.empty(len(pos), dtype=np.float64)
    n_real = np.empty(len(pos), dtype=np.int64)
    for lo in range(0, len(pos), CHUNK):
        sl = slice(lo, lo + CHUNK)
        inputs, _, n_real[sl] = window_inputs(fitted, pos[sl], first[sl])
        pred[sl] = predict_batches(fitted.network, inputs)
    m = fitted.fleet.meter_idx[pos]
    return pred * fitted.scaler.scale[m] + fitted.scaler.mean[m], n_real


def fit_forecaster(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> FittedForecaster:
    """Scale on the training split, sample training/validation windows, fit the network."""
    prepare_keras(cfg.threads, cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    scaler = fit_scaler(fleet)
    usable = np.isfinite(scaler.mean)
    m = fleet.meter_idx
    scaled = (fleet.values - scaler.mean[m]) / scaler.scale[m]
    train_pos, train_first, val_pos, val_first = _training_windows(fleet, usable, cfg, rng)
    layout, wide = _spatial_layout(fleet, meters, scaled, cfg)
    network = build_network(cfg)
    fitted = FittedForecaster(
        cfg,
        fleet,
        scaler,
        scaled,
        usable,
        layout,
        wide,
        network,
        TrainingHistory(),
        train_pos,
        val_pos,
        LinearRegression(),
    )
    train_in, train_windows, _ = window_inputs(fitted, train_pos, train_first)
    val_in, _, _ = window_inputs(fitted, val_pos, val_first)
    log.info(
        "training %s on %d windows (validation %d), %d meters",
        cfg.model,
        len(train_pos),
        len(val_pos),
        int(usable.sum()),
    )
    fitted.history = fit_network(
        network,
        train_in,
        scaled[train_pos].astype(np.float32),
        val_in,
        scaled[val_pos].astype(np.float32),
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        patience=cfg.patience,
    )
    fitted.linear = baselines.fit_linear(train_windows, scaled[train_pos])
    return fitted


def _training_windows(
    fleet: FleetSeries, usable: np.ndarray, cfg: ForecastSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation labels with full windows, capped by sampling (in that order):
    ``(train_pos, train_first, val_pos, val_first)``; SchemaError when either split has none."""
    train_pos, train_first = label_positions(
        fleet, (TRAIN,), None, cfg.seq_length, cfg.horizon, cfg.seq_length, usable
    )
    val_pos, val_first = label_positions(
        fleet, (VAL,), None, cfg.seq_length, cfg.horizon, cfg.seq_length, usable
    )
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
    windows, _ = gather_windows(source, pos, first, cfg.seq_length, cfg.horizon, np.nan)
    rows = pd.DataFrame(windows.astype(np.float64), columns=lag_columns(cfg.seq_length))
    rows.insert(0, "window_end", fleet.timestamps(pos - cfg.horizon))
    rows.insert(0, "meter_id", fleet.meter_ids[fleet.meter_idx[pos]].astype(str))
    return rows


HOLDOUT_ROWS = 20_000  # held-out rows kept to compare a model with the registry's champion


def holdout_selection(fitted: FittedForecaster, pos: np.ndarray) -> np.ndarray:
    """Which labels at ``pos`` are held out for later comparisons: every one of the first
    meters, up to ``HOLDOUT_ROWS`` rows (at least one meter's)."""
    meters = fitted.fleet.meter_idx[pos]
    counts = np.bincount(meters, minlength=len(fitted.fleet.meter_ids))
    kept = np.cumsum(counts) <= HOLDOUT_ROWS
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
    ``pos`` with their ``target`` as column ``name``, so that any later model can be scored on
    exactly these rows."""
    keep = holdout_selection(fitted, pos)
    rows = predictor_rows(fitted, pos[keep], first[keep], values)
    rows[name] = np.asarray(target, dtype=np.float64)[keep]
    return rows


def _example_rows(fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray) -> pd.DataFrame:
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
        _example_rows(fitted, example_pos, example_first),
    )


def _evaluate(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> tuple[pd.DataFrame, dict[str, float], str]:
    cfg, fleet = fitted.settings, fitted.fleet
    pred, n_real = predict_positions(fitted, pos, first)
    actual = fleet.values[pos]
    meter_ids = fleet.meter_ids[fleet.meter_idx[pos]].astype(str)
    last = fleet.values[pos - cfg.horizon]
    windows, _ = gather_windows(fitted.scaled, pos, first, cfg.seq_length, cfg.horizon)
    m = fleet.meter_idx[pos]
    base = {
        "persistence": baselines.persistence(last[:, None]),
        "seasonal_naive": baselines.seasonal_naive(fleet, pos, fallback=last),
        "linear": fitted.linear.predict(windows.astype(np.float64)) * fitted.scaler.scale[m]
        + fitted.scaler.mean[m],
    }
    if cfg.climatology:
        table = baselines.climatology_table(fleet)
        base["climatology"] = baselines.climatology(fleet, table, pos)
    metrics = {
        f"test_{k}": v
        for k, v in forecast_metrics(actual, pred, meter_ids, cfg.mape_floor_frac).items()
    }
    for name, values in base.items():
        for k, v in forecast_metrics(actual, values, meter_ids, cfg.mape_floor_frac).items():
            metrics[f"baseline_{name}_{k}"] = v
        metrics[f"skill_vs_{name}"] = skill(metrics["test_mae"], metrics[f"baseline_{name}_mae"])
    best = min(base, key=lambda n: metrics[f"baseline_{n}_mae"])
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    table = pd.DataFrame(
        {
            "meter_id": meter_ids,
            "timestamp": fleet.timestamps(pos),
            "window_end": fleet.timestamps(pos - cfg.horizon),
            "actual": actual,
            "prediction": pred,
            **base,
            "n_history": n_real,
        }
    )
    return table, metrics, best


def _run_figures(fitted: FittedForecaster, n_test: int, t_start: float) -> dict[str, float]:
    """Training and size figures of a run, logged with the test metrics."""
    history = fitted.history
    return {
        "train_seconds": history.seconds,
        "total_seconds": time.perf_counter() - t_start,
        "epochs_run": float(len(history.train_loss)),
        "best_epoch": float(history.best_epoch),
        "val_mse_best": history.best_val_loss,
        "n_train_windows": float(len(fitted.train_pos)),
        "n_val_windows": float(len(fitted.val_pos)),
        "n_test_windows": float(n_test),
        "n_meters": float(fitted.usable.sum()),
    }


def train_forecaster(
    profiles: pd.DataFrame, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> ForecastResult:
    """Split the profiles chronologically by day, train ``cfg.model`` on the training split
    (early stopping on validation), and evaluate it and the baselines on the same test windows.

    Metrics (Wh per slot; mape/wape in percent): ``test_mae``, ``test_rmse``, ``test_mape``,
    ``test_wape``, ``baseline_<name>_<metric>`` for persistence, seasonal_naive, linear (and
    climatology), ``skill_vs_<name>`` and ``skill_vs_best_baseline`` (1 - MAE ratio), plus
    counts and ``train_seconds``.
    """
    t_start = time.perf_counter()
    fleet = build_fleet(profiles, cfg.train_frac, cfg.val_frac)
    fitted = fit_forecaster(fleet, meters, cfg)
    first_all = fleet.history_start(np.arange(len(fleet.values)), cfg.test_padding)
    test_pos, test_first = label_positions(
        fleet, (TEST,), first_all, cfg.seq_length, cfg.horizon, cfg.min_history, fitted.usable
    )
    if len(test_pos) == 0:
        raise SchemaError("forecasting input has no test window (test split too short)")
    log.info("evaluating on %d test windows (%s padding)", len(test_pos), cfg.test_padding)
    predictions, metrics, best = _evaluate(fitted, test_pos, test_first)
    predictor = make_predictor(fitted, test_pos, test_first)
    history = fitted.history
    metrics.update(_run_figures(fitted, len(test_pos), t_start))
    log.info(
        "%s: test MAE %.2f Wh (best baseline %s %.2f Wh, skill %.3f) in %.1f s",
        cfg.model,
        metrics["test_mae"],
        best,
        metrics[f"baseline_{best}_mae"],
        metrics["skill_vs_best_baseline"],
        metrics["total_seconds"],
    )
    figs = {
        "training_curves": figures.training_curves(history, cfg.model),
        "test_predictions": figures.prediction_plot(predictions),
    }
    holdout = holdout_rows(fitted, test_pos, test_first, fleet.values[test_pos], "actual")
    return ForecastResult(
        predictor, metrics, history, predictions, figs, best, fleet.dates, holdout
    )
