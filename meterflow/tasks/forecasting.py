"""The ``forecasting`` step: day-ahead (multi-step, quantile) forecasts of each meter, each
cluster's total or the fleet's total from a harmonization run, or of any series file, scored on
a chronological test split against persistence, seasonal-naive (day, week), linear, climatology
and double-seasonal Holt-Winters baselines (never tuned on the test split)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from meterflow import tracking
from meterflow.config import (
    AnomalyOptions,
    Environment,
    ForecastingOptions,
    forecast_quantiles,
    lstm_units,
)
from meterflow.domain import MINUTES_PER_DAY
from meterflow.forecasting.evaluate import ForecastResult, evaluate_forecaster
from meterflow.forecasting.grouped import combine_results
from meterflow.forecasting.scope import scoped_series
from meterflow.forecasting.series import build_panel, profiles_to_series, split_dates
from meterflow.forecasting.settings import ForecastSettings
from meterflow.schemas import Table, profile_slot_columns
from meterflow.sources.seriesfile import read_series_file

log = logging.getLogger(__name__)


def log_history(run: tracking.StepRun, history) -> None:
    """Per-epoch training and validation loss as metric series (the MLflow UI plots them)."""
    for epoch, (train, val) in enumerate(zip(history.train_loss, history.val_loss, strict=False)):
        run.log_metrics({"train_loss": train, "val_loss": val}, step=epoch + 1)


def forecast_settings(opts: ForecastingOptions, **fixed: object) -> ForecastSettings:
    """The forecaster's settings from the step's options (window, horizon, training), with
    ``fixed`` ones set or overridden."""
    base = {
        "seq_length": opts.seq_length,
        "horizon": opts.horizon,
        "epochs": opts.epochs,
        "units": lstm_units(opts.units),
        "max_train_windows": opts.max_train_windows,
        "threads": opts.threads,
        "seed": opts.seed,
    }
    return ForecastSettings(**{**base, **fixed})


def input_series(
    opts: ForecastingOptions | AnomalyOptions, run: tracking.StepRun
) -> tuple[pd.DataFrame, int, tuple[str, ...], pd.DataFrame | None]:
    """``(long series, resolution, exogenous columns, meters table or None)`` of the step's
    input: the series file, or the harmonized profiles of a run."""
    if opts.in_series:
        file = read_series_file(Path(opts.in_series))
        run.set_tags({"input.series_file": opts.in_series})
        return file.series, file.resolution_min, file.exog, None
    source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
    run.set_tags({"input.profiles_run": source_run})
    profiles = tracking.load_table(source_run, Table.PROFILES_ENERGY)
    meters = tracking.load_table(source_run, Table.METERS)
    resolution = MINUTES_PER_DAY // len(profile_slot_columns(profiles))
    return profiles_to_series(profiles), resolution, (), meters


def _scope_assignments(opts: ForecastingOptions, run: tracking.StepRun) -> pd.DataFrame | None:
    if opts.scope != "cluster":
        return None
    clustering_run = tracking.resolve_run(opts.clustering_run, "clustering")
    run.set_tags({"input.clustering_run": clustering_run})
    return tracking.load_table(clustering_run, Table.ASSIGNMENTS)


def run_forecasting(opts: ForecastingOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("forecasting", opts) as run:
        series, resolution, exog, meters = input_series(opts, run)
        series, counts = scoped_series(series, opts.scope, _scope_assignments(opts, run))
        exog = exog if opts.scope == "meter" else ()
        settings = forecast_settings(
            opts,
            **{"horizon": opts.horizon or MINUTES_PER_DAY // resolution, "model": opts.model},
            **{"test_padding": opts.padding, "output": opts.output, "exog": exog},
            **{"quantiles": forecast_quantiles(opts.quantiles), "origin_hour": opts.origin_hour},
        )
        test_start = pd.Timestamp(opts.test_start) if opts.test_start else None
        dates = split_dates(series["timestamp"], settings.train_frac, settings.val_frac, test_start)
        if opts.scope == "cluster":  # one model per cluster
            groups = {g: part for g, part in series.groupby("meter_id", sort=True)}
            log.info("scope=cluster: one model for each of %d clusters", len(groups))
            result = combine_results(
                {
                    g: evaluate_forecaster(build_panel(part, resolution, dates), None, settings)
                    for g, part in groups.items()
                }
            )
        else:
            fleet = build_panel(series, resolution, dates, exog)
            result = evaluate_forecaster(fleet, meters, settings)
        run.set_tags(
            {
                "forecasting.best_baseline": result.best_baseline,
                "forecasting.test_start": str(dates.test_start.date()),
                "forecasting.horizon": str(settings.horizon),
                "forecasting.resolution_min": str(resolution),
            }
        )
        run.log_metrics({**counts, "resolution_min": float(resolution)})
        _log_result(run, result)
        return run.run_id


def _log_result(run: tracking.StepRun, result: ForecastResult) -> None:
    run.log_metrics(result.metrics)
    log_history(run, result.history)
    run.log_table(result.predictions, Table.TEST_PREDICTIONS)
    run.log_table(result.by_step, Table.ERROR_BY_STEP)
    run.log_table(result.holdout, Table.HOLDOUT)
    for name, fig in result.figures.items():
        run.log_figure(fig, name)
    run.log_model(result.predictor)
    run.log_model(result.baselines, name="baselines")
