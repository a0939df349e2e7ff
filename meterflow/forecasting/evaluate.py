"""Train a forecaster and evaluate it against the baselines on the test split only.

``evaluate_forecaster(fleet, meters, cfg)`` is the forecasting step's one call
(``train_forecaster(profiles, ...)`` does the same from a profile table). The model and every
baseline forecast the same targets of the same test windows; metrics are in Wh per slot
(percentages for MAPE/sMAPE/WAPE), overall and per target step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.errors import SchemaError
from meterflow.forecasting import baselines, figures
from meterflow.forecasting.baseline_predictor import BaselinePredictor
from meterflow.forecasting.features import seasonal_values
from meterflow.forecasting.metrics import quantile_metrics, skill, step_metrics
from meterflow.forecasting.predictor import ForecastPredictor, quantile_columns
from meterflow.forecasting.rows import example_rows, holdout_rows, make_predictor
from meterflow.forecasting.series import TEST, DateSplit, FleetSeries, build_fleet
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.train import (
    FittedForecaster,
    fit_forecaster,
    predict_steps,
    target_positions,
)
from meterflow.forecasting.training import TrainingHistory
from meterflow.forecasting.windows import gather_windows, label_positions

log = logging.getLogger(__name__)


@dataclass
class ForecastResult:
    """What the forecasting step logs: metrics, curves, test predictions, figures, models."""

    predictor: ForecastPredictor
    baselines: BaselinePredictor
    metrics: dict[str, float]
    history: TrainingHistory
    predictions: pd.DataFrame  # test targets (long): meter_id, window_end, timestamp, step...
    by_step: pd.DataFrame  # error per target step: model and each baseline
    figures: dict[str, Figure]
    best_baseline: str
    split: DateSplit
    holdout: pd.DataFrame  # test windows as the predictor takes them, with the actual values


@dataclass
class _Forecasts:
    """Every forecast of the test targets: the model's quantiles and each baseline's points."""

    pos: np.ndarray
    actual: np.ndarray  # (n, steps)
    model: np.ndarray  # (n, steps, quantiles)
    point: np.ndarray  # (n, steps)
    base: dict[str, np.ndarray]  # name -> (n, steps)
    n_real: np.ndarray


def train_forecaster(
    profiles: pd.DataFrame, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> ForecastResult:
    """Split a profile table's days chronologically and ``evaluate_forecaster`` on it."""
    return evaluate_forecaster(build_fleet(profiles, cfg.train_frac, cfg.val_frac), meters, cfg)


def test_labels(fitted: FittedForecaster) -> tuple[np.ndarray, np.ndarray]:
    """Labels whose every target lies in the test split (at ``origin_hour`` when set)."""
    cfg, fleet = fitted.settings, fitted.fleet
    first_all = fleet.history_start(np.arange(len(fleet.values)), cfg.test_padding)
    span = cfg.horizon - int(cfg.steps[0]) + 1
    pos, first = label_positions(
        *(fleet, (TEST,), first_all, cfg.seq_length, cfg.horizon, cfg.min_history),
        *(fitted.usable, span),
    )
    if cfg.origin_hour >= 0:
        slot = (fleet.time_idx[pos] - cfg.horizon + 1) % fleet.slots_per_day
        at_hour = slot == cfg.origin_hour * 60 // fleet.resolution_min
        pos, first = pos[at_hour], first[at_hour]
    if len(pos) == 0:
        raise SchemaError("forecasting input has no test window (test split too short)")
    return pos, first


def evaluate_forecaster(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> ForecastResult:
    """Train ``cfg.model`` on the training split (early stopping on validation) and evaluate
    it and the baselines on the same test windows."""
    t_start = time.perf_counter()
    fitted = fit_forecaster(fleet, meters, cfg)
    pos, first = test_labels(fitted)
    log.info("evaluating on %d test windows (%s padding)", len(pos), cfg.test_padding)
    base_model = baseline_predictor(fitted, pos, first)
    fc = _forecasts(fitted, base_model, pos, first)
    metrics, by_step, best = _metrics(fitted, fc)
    metrics.update(_run_figures(fitted, len(pos), t_start))
    log.info(
        "%s: test MAE %.2f, MAPE %.2f %% (best baseline %s: MAE %.2f, MAPE %.2f %%) in %.1f s",
        *(cfg.model, metrics["test_mae"], metrics.get("test_mape", np.nan), best),
        *(metrics[f"baseline_{best}_mae"], metrics.get(f"baseline_{best}_mape", np.nan)),
        metrics["total_seconds"],
    )
    predictions = _prediction_table(fitted, fc)
    figs = {
        "training_curves": figures.training_curves(fitted.history, cfg.model),
        "test_predictions": figures.prediction_plot(predictions),
        "error_by_step": figures.error_by_step(by_step),
    }
    actual = fc.actual[:, 0] if len(cfg.steps) == 1 else fc.actual
    holdout = holdout_rows(fitted, pos, first, actual, "actual")
    return ForecastResult(
        make_predictor(fitted, pos, first),
        *(base_model, metrics, fitted.history, predictions, by_step, figs, best),
        *(fleet.dates, holdout),
    )


def baseline_predictor(
    fitted: FittedForecaster, pos: np.ndarray, first: np.ndarray
) -> BaselinePredictor:
    """The loadable baselines of a fitted forecaster (linear and climatology fitted on its
    training split)."""
    assert fitted.linear is not None
    return BaselinePredictor(
        fitted.settings,
        fitted.scaler,
        fitted.linear,
        baselines.climatology_table(fitted.fleet),
        fitted.fleet.resolution_min,
        example_rows(fitted, pos, first),
    )


def _forecasts(
    fitted: FittedForecaster, base_model: BaselinePredictor, pos: np.ndarray, first: np.ndarray
) -> _Forecasts:
    cfg, fleet = fitted.settings, fitted.fleet
    model, n_real = predict_steps(fitted, pos, first)
    windows, _ = gather_windows(
        fleet.values, pos, first, cfg.seq_length, cfg.horizon, np.nan, np.float64
    )
    seasonal = seasonal_values(fleet, fleet.values, pos, first, cfg.steps, cfg.horizon)
    origin = fleet.calendar_offset + fleet.time_idx[pos] - cfg.horizon
    base = base_model.forecasts(fleet.meter_idx[pos], windows, seasonal, origin)
    if not cfg.climatology:
        base.pop("climatology")
    dshw, base_model.dshw = baselines.dshw_forecasts(fleet, pos, cfg.steps, cfg.horizon)
    if np.isfinite(dshw).any():
        unfit = ~np.isfinite(dshw)
        if unfit.any():
            log.info("dshw: %d forecasts of unfitted series use seasonal naive", unfit.sum())
        base["dshw"] = np.where(unfit, base["seasonal_naive_week"], dshw)
    actual = fleet.values[target_positions(fitted, pos)]
    point = model[..., cfg.point_quantile]
    return _Forecasts(pos, actual, model, point, base, n_real)


def _metrics(
    fitted: FittedForecaster, fc: _Forecasts
) -> tuple[dict[str, float], pd.DataFrame, str]:
    """Overall and per-step metrics of the model and each baseline, skills, best baseline."""
    cfg = fitted.settings
    series = fitted.fleet.meter_idx[fc.pos]
    overall, table = step_metrics(fc.actual, fc.point, series, cfg.mape_floor_frac)
    metrics = {f"test_{k}": v for k, v in overall.items()}
    tables = [table.assign(model=cfg.model, step=cfg.steps)]
    for k, row in table.iterrows():
        if "mape" in row and np.isfinite(row["mape"]):
            metrics[f"test_mape_h{cfg.steps[k]}"] = float(row["mape"])
    if cfg.quantiles:
        quant = quantile_metrics(fc.actual, fc.model, cfg.quantiles)
        metrics.update({f"test_{k}": v for k, v in quant.items()})
    for name, values in fc.base.items():
        overall, table = step_metrics(fc.actual, values, series, cfg.mape_floor_frac)
        metrics.update({f"baseline_{name}_{k}": v for k, v in overall.items()})
        metrics[f"skill_vs_{name}"] = skill(metrics["test_mae"], metrics[f"baseline_{name}_mae"])
        tables.append(table.assign(model=name, step=cfg.steps))
    best = min(fc.base, key=lambda n: metrics[f"baseline_{n}_mae"])
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    by_step = pd.concat(tables, ignore_index=True)
    return metrics, by_step[["model", "step", *table.columns]], best


def _prediction_table(fitted: FittedForecaster, fc: _Forecasts) -> pd.DataFrame:
    """Long table of the test targets of one origin a day (every origin with one step)."""
    cfg, fleet = fitted.settings, fitted.fleet
    keep = np.ones(len(fc.pos), dtype=bool)
    if len(cfg.steps) > 1:
        origin_slot = (fleet.time_idx[fc.pos] - cfg.horizon) % fleet.slots_per_day
        keep = origin_slot == fleet.slots_per_day - 1  # forecasts made at the end of a day
        if not keep.any():
            keep = origin_slot == origin_slot[0]
    pos, n_steps = fc.pos[keep], len(cfg.steps)
    targets = target_positions(fitted, pos)
    table = pd.DataFrame(
        {
            "meter_id": np.repeat(fleet.meter_ids[fleet.meter_idx[pos]].astype(str), n_steps),
            "window_end": np.repeat(fleet.timestamps(pos - cfg.horizon), n_steps),
            "timestamp": fleet.timestamps(targets.ravel()),
            "step": np.tile(cfg.steps, len(pos)),
            "actual": fc.actual[keep].ravel(),
            "prediction": fc.point[keep].ravel(),
        }
    )
    for j, name in enumerate(quantile_columns(cfg.quantiles)):
        table[name] = fc.model[keep][..., j].ravel()
    for name, values in fc.base.items():
        table[name] = values[keep].ravel()
    table["n_history"] = np.repeat(fc.n_real[keep], n_steps)
    return table


def _run_figures(fitted: FittedForecaster, n_test: int, t_start: float) -> dict[str, float]:
    """Training and size figures of a run, logged with the test metrics."""
    history = fitted.history
    return {
        "train_seconds": history.seconds,
        "total_seconds": time.perf_counter() - t_start,
        "epochs_run": float(len(history.train_loss)),
        "best_epoch": float(history.best_epoch),
        "val_loss_best": history.best_val_loss,
        "n_train_windows": float(len(fitted.train_pos)),
        "n_val_windows": float(len(fitted.val_pos)),
        "n_test_windows": float(n_test),
        "n_series": float(fitted.usable.sum()),
    }
