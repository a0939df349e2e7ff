"""Fit the candidates, keep the model earned on validation, score everything on test.

``evaluate_forecaster(fleet, meters, cfg)`` is the forecasting step's one call:

1. every forecaster of ``registry.fitted_names`` (the model, or ``auto``'s candidates, and
   every baseline) is fitted on the training split;
2. all forecast the same validation origins; the kept model is ``cfg.model``, or for ``auto``
   the combination or single candidate ``combine.choose`` earns there;
3. validation has served: every forecaster that can is fitted again on training and validation
   days (``Forecaster.refit``; the deep ones keep the epoch validation chose);
4. every candidate and the kept model forecast every test origin, meter block by meter block
   (``score_block``; on a Dask cluster when asked) in batches, and their errors are accumulated
   per target step (the test split decides nothing).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from meterflow.blocks import map_blocks, meter_blocks
from meterflow.defaults import BLOCK_METERS
from meterflow.errors import SchemaError
from meterflow.forecasting import figures, registry
from meterflow.forecasting.base import Forecaster
from meterflow.forecasting.combine import COMBINATION, Choice, Ensemble, choose, validation_mae
from meterflow.forecasting.inputs import (
    CHUNK,
    ForecastInputs,
    split_test_inputs,
    trained_series,
    validation_inputs,
)
from meterflow.forecasting.metrics import StepErrors, skill
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.story import Outcome, outcome_of, verdict
from meterflow.forecasting.tables import candidates_table, prediction_rows, prediction_sample
from meterflow.series.fleet import TEST, DateSplit, FleetSeries, build_fleet

log = logging.getLogger(__name__)

PREDICTION_METERS = 500  # meters whose day-ahead test forecasts the predictions table keeps


@dataclass
class ForecastResult:
    """What the forecasting step logs: the kept model, the candidates, metrics and tables."""

    model: Forecaster  # the kept model (a candidate or their combination)
    candidates: dict[str, Forecaster]  # every fitted forecaster by name
    choice: Choice
    metrics: dict[str, float]
    predictions: pd.DataFrame  # day-ahead test forecasts from the end of each day (long)
    by_step: pd.DataFrame  # test error per target step: the model and each candidate
    scores: pd.DataFrame  # one row per candidate: validation and test errors, weight, role
    figures: dict[str, Figure]
    best_baseline: str
    beaten_by: tuple[str, ...]  # baselines with a lower test MAE than the model
    outcome: Outcome  # the model against the best baseline on test
    split: DateSplit
    test: ForecastInputs  # the test origins (for held-out rows)
    histories: dict[str, Any] = field(default_factory=dict)  # deep candidates' loss curves


def fit_candidates(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> tuple[dict[str, Forecaster], dict[str, float]]:
    """Every forecaster the run compares, fitted on the training split, and its fit seconds."""
    fitted, seconds = {}, {}
    for name in registry.fitted_names(cfg.model, cfg.candidates):
        started = time.perf_counter()
        fitted[name] = registry.make_forecaster(name, cfg).fit(fleet, meters)
        seconds[name] = time.perf_counter() - started
        log.info("fitted %s in %.1f s", name, seconds[name])
    return fitted, seconds


def keep_model(
    fleet: FleetSeries, fitted: dict[str, Forecaster], cfg: ForecastSettings
) -> tuple[Forecaster, Choice]:
    """The model the run keeps, from every candidate's validation forecasts."""
    val = validation_inputs(fleet, cfg)
    forecasts = {name: f.predict(val) for name, f in fitted.items()}
    point = cfg.point_quantile if cfg.quantiles else 0
    val_mae = validation_mae(val.actual, forecasts, point)  # reported for every forecaster
    if cfg.model != registry.AUTO:  # the model asked for, scored beside the others
        reason = f"{cfg.model}: the model asked for (model option)"
        choice = Choice(cfg.model, {cfg.model: np.ones(len(cfg.steps))}, val_mae, reason)
    else:
        pool = registry.combined_names(cfg.candidates)
        choice = choose(val.actual, {n: forecasts[n] for n in pool}, point)
        choice.val_mae.update({n: v for n, v in val_mae.items() if n not in choice.val_mae})
    log.info("model: %s", choice.reason)
    if choice.name != COMBINATION:
        return fitted[choice.name], choice
    ensemble = Ensemble(cfg, fitted, choice.weights)
    ensemble.calibrate(val.actual, forecasts)
    return ensemble, choice


def evaluate_forecaster(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings, scheduler: str = ""
) -> ForecastResult:
    """Fit, keep a model and score the model and every candidate on test (see module); the test
    is scored by meter block, on the Dask cluster at ``scheduler`` when given. BLAS uses
    ``cfg.threads`` threads, as TensorFlow: its idle threads spin on the small products of the
    fits (dshw's L-BFGS-B on 20 demo series: 7.0 CPU-s with 2 threads on a busy 2-core
    machine, 1.2 with one; the demo metrics unchanged)."""
    with threadpool_limits(limits=cfg.threads):
        return _evaluate(fleet, meters, cfg, scheduler)


def _evaluate(
    fleet: FleetSeries, meters: pd.DataFrame | None, cfg: ForecastSettings, scheduler: str
) -> ForecastResult:
    started = time.perf_counter()
    fitted, fit_seconds = fit_candidates(fleet, meters, cfg)
    model, choice = keep_model(fleet, fitted, cfg)
    for forecaster in fitted.values():  # validation has served: final fits on train + val
        forecaster.refit(fleet, meters)
    test = split_test_inputs(fleet, cfg)
    if len(test) == 0:
        raise SchemaError("forecasting input has no test window (test split too short)")
    log.info("evaluating on %d test origins (%s padding)", len(test), cfg.test_padding)
    errors, predictions = _score_test(fleet, fitted, model, cfg, scheduler)
    metrics, by_step, scores, best = _metrics(errors, choice, fitted, cfg, fit_seconds)
    beaten_by = tuple(
        b
        for b in registry.BASELINES
        if b in fitted and metrics[f"baseline_{b}_mae"] < metrics["test_mae"]
    )
    metrics.update(_size_metrics(fleet, fitted, test, sum(fit_seconds.values()), started))
    histories = model.training_histories() or _deep_histories(fitted)
    outcome = outcome_of(choice, metrics, best, beaten_by)
    log.info("%s", verdict(outcome, "per slot"))
    figs = {
        "test_predictions": figures.prediction_plot(predictions, choice.name),
        "error_by_step": figures.error_by_step(by_step, choice.name),
        "candidates": figures.candidate_scores(scores),
    }
    if histories:
        figs["training_curves"] = figures.training_curves(histories)
    return ForecastResult(
        *(model, fitted, choice, metrics, predictions, by_step, scores, figs, best, beaten_by),
        *(outcome, fleet.dates, test, histories),
    )


def _deep_histories(fitted: dict[str, Forecaster]) -> dict[str, Any]:
    return {k: v for f in fitted.values() for k, v in f.training_histories().items()}


@dataclass
class BlockScores:
    """The test errors of one meter block, and its rows of the predictions table."""

    errors: dict[str, StepErrors]
    predictions: pd.DataFrame
    n_windows: int


def _score_test(
    fleet: FleetSeries,
    fitted: dict[str, Forecaster],
    model: Forecaster,
    cfg: ForecastSettings,
    scheduler: str,
) -> tuple[dict[str, StepErrors], pd.DataFrame]:
    """Errors of the kept model and every candidate on every test origin, meter block by meter
    block (here or on the Dask ``scheduler``; blocks merged in order, so both give the same
    sums), and the day-ahead forecasts made at the end of each day of the first
    ``PREDICTION_METERS`` meters (the predictions table)."""
    blocks = _blocks_of(fleet, fitted)
    parts = map_blocks(
        score_block,
        [fleet.series_range(int(b[0]), int(b[-1]) + 1) for b in blocks],
        (fitted, model, cfg),
        scheduler=scheduler,
        label="scoring test origins by meter block",
    )
    errors: dict[str, StepErrors] = {}
    tables, kept_meters = [], 0
    for part in parts:
        for name, block_errors in part.errors.items():
            errors.setdefault(name, StepErrors(len(cfg.steps), cfg.quantiles)).merge(block_errors)
        if kept_meters < PREDICTION_METERS and len(part.predictions):
            tables.append(part.predictions)
            kept_meters += part.predictions["meter_id"].nunique()
    return errors, pd.concat(tables, ignore_index=True)


def _blocks_of(fleet: FleetSeries, fitted: dict[str, Forecaster]) -> list[np.ndarray]:
    """Meter blocks of the test scoring: one block when a forecaster reads its neighbours
    (they must be in the same fleet)."""
    n = len(fleet.meter_ids)
    if any(f.capabilities.needs_locations for f in fitted.values()):
        log.info("a forecaster reads neighbouring meters: the test is scored as one block")
        return meter_blocks(n, max(n, 1))
    return meter_blocks(n, BLOCK_METERS)


def score_block(
    block: FleetSeries, fitted: dict[str, Forecaster], model: Forecaster, cfg: ForecastSettings
) -> BlockScores:
    """The test errors of every forecaster (and the combination) on one meter block's test
    origins, in batches of ``CHUNK`` origins."""
    test = split_test_inputs(block, cfg)
    names = [COMBINATION, *fitted] if isinstance(model, Ensemble) else list(fitted)
    errors = {n: StepErrors(len(cfg.steps), cfg.quantiles) for n in names}
    floor = _mape_floor(block, cfg.mape_floor_frac)
    sample = prediction_sample(block, test, cfg)
    tables = []
    for lo in range(0, len(test), CHUNK):
        batch = test.subset(slice(lo, lo + CHUNK))
        forecasts = {name: f.predict(batch) for name, f in fitted.items()}
        if isinstance(model, Ensemble):
            forecasts[COMBINATION] = model.combine(forecasts)
        floors = np.broadcast_to(floor[batch.series][:, None], batch.actual.shape)
        for name in names:
            errors[name].add(batch.actual, forecasts[name], floors)
        keep = sample[lo : lo + CHUNK]
        tables.append(prediction_rows(batch, forecasts, model.name, keep, cfg))
    predictions = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return BlockScores(errors, predictions, len(test))


def _mape_floor(fleet: FleetSeries, floor_frac: float) -> np.ndarray:
    """(n_series,) the smallest ``|y|`` MAPE counts: ``floor_frac`` of each series' mean
    ``|y|`` over the test split."""
    test = fleet.split == TEST
    n = len(fleet.meter_ids)
    total = np.bincount(fleet.meter_idx[test], weights=np.abs(fleet.values[test]), minlength=n)
    count = np.bincount(fleet.meter_idx[test], minlength=n)
    return floor_frac * total / np.maximum(count, 1)


def _metrics(
    errors: dict[str, StepErrors],
    choice: Choice,
    fitted: dict[str, Forecaster],
    cfg: ForecastSettings,
    fit_seconds: dict[str, float],
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame, str]:
    """The evaluation's numbers (the model's ``test_*``, each baseline's ``baseline_<name>_*``
    and skills; the run logs a headline of them, the tables hold the rest), the per-step table,
    the candidates table and the best baseline."""
    model = errors[choice.name]
    metrics = {f"test_{k}": v for k, v in model.overall().items()}
    steps = model.by_step()
    for k, mape in zip(cfg.steps, steps["mape"], strict=True):
        if np.isfinite(mape):
            metrics[f"test_mape_h{k}"] = float(mape)
    baselines = [b for b in registry.BASELINES if b in fitted]
    for name in baselines:
        overall = errors[name].overall()
        metrics.update(
            {
                f"baseline_{name}_{k}": v
                for k, v in overall.items()
                if not k.startswith(("pinball", "coverage"))
            }
        )
        metrics[f"skill_vs_{name}"] = skill(metrics["test_mae"], overall["mae"])
    best = min(baselines, key=lambda b: metrics[f"baseline_{b}_mae"])
    metrics["skill_vs_best_baseline"] = metrics[f"skill_vs_{best}"]
    metrics["val_mae"] = choice.val_mae[choice.name]
    names = list(errors)
    by_step = pd.concat(
        [errors[n].by_step().assign(model=n, step=cfg.steps) for n in names], ignore_index=True
    )
    scores = candidates_table(errors, choice, set(baselines), fit_seconds)
    return metrics, by_step[["model", "step", "mae", "rmse", "mape", "smape"]], scores, best


def _size_metrics(
    fleet: FleetSeries,
    fitted: dict[str, Forecaster],
    test: ForecastInputs,
    fit_seconds: float,
    started: float,
) -> dict[str, float]:
    """Sizes and times of the run, logged beside the test metrics."""
    out = {
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - started,
        "n_test_windows": float(len(test)),
        "n_series": float(trained_series(fleet).sum()),
    }
    for f in fitted.values():
        for net, history in f.training_histories().items():
            out[f"{net}_epochs_run"] = float(len(history.train_loss))
            out[f"{net}_best_epoch"] = float(history.best_epoch)
            out[f"{net}_train_seconds"] = history.seconds
    return out


def train_forecaster(
    profiles: pd.DataFrame, meters: pd.DataFrame | None, cfg: ForecastSettings
) -> ForecastResult:
    """Split a profile table's days chronologically and ``evaluate_forecaster`` on it."""
    fleet = build_fleet(profiles, cfg.train_frac, cfg.val_frac, cfg.min_val_days)
    return evaluate_forecaster(fleet, meters, cfg)
