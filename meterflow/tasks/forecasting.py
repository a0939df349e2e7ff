"""The ``forecasting`` step: day-ahead (multi-step, quantile) forecasts of each meter, each
cluster's total or the fleet's total from a harmonization run, or of any series file. Every
candidate and baseline is fitted on the training split, the kept model is earned on validation
(``model=auto``) and everything is scored on the chronological test split, which decides
nothing. The run logs a headline of metrics and the loss curves (``report.logged_metrics``,
``report.loss_curves``), every family of numbers as a table and a figure, and a description
whose first line says whether the model beats every baseline."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from meterflow import tracking
from meterflow.domain import LOCAL_TIMEZONE, MINUTES_PER_DAY
from meterflow.forecasting.evaluate import evaluate_forecaster
from meterflow.forecasting.params import forecast_quantiles
from meterflow.forecasting.report import (
    LOOK_FIGURES,
    LOOK_TABLES,
    StepReport,
    description,
    logged_metrics,
    loss_curves,
    merge_reports,
    report_of,
)
from meterflow.forecasting.scope import scoped_series
from meterflow.forecasting.settings import ForecastSettings
from meterflow.params import column_names, lstm_units
from meterflow.schemas import Table, profile_slot_columns
from meterflow.series.fleet import (
    build_panel,
    profile_days,
    profiles_panel,
    profiles_to_series,
    split_dates,
)
from meterflow.settings import AnomalyOptions, Environment, ForecastingOptions
from meterflow.sources import diskspace
from meterflow.sources.seriesfile import read_series_file

log = logging.getLogger(__name__)

CANDIDATES_MODEL = "candidates"  # every fitted candidate, served side by side
UNIT = "Wh"  # of the harmonized profiles' values (a series file's are its own)


def log_history(run: tracking.StepRun, history, prefix: str = "") -> None:
    """Per-epoch training and validation loss as metric series (the MLflow UI plots them)."""
    for epoch, (train, val) in enumerate(zip(history.train_loss, history.val_loss, strict=False)):
        run.log_metrics({f"{prefix}train_loss": train, f"{prefix}val_loss": val}, step=epoch + 1)


def forecast_settings(opts: ForecastingOptions, resolution: int, exog: tuple[str, ...]):
    """The forecasters' settings from the step's options and the input's resolution."""
    return ForecastSettings(
        model=opts.model,
        candidates=column_names(opts.candidates),
        seq_length=opts.seq_length,
        horizon=opts.horizon or MINUTES_PER_DAY // resolution,
        output=opts.output,
        quantiles=forecast_quantiles(opts.quantiles),
        exog=exog,
        origin_hour=opts.origin_hour,
        test_padding=opts.padding,
        epochs=opts.epochs,
        units=lstm_units(opts.units),
        max_train_windows=opts.max_train_windows,
        threads=opts.threads,
        seed=opts.seed,
    )


def input_series(
    opts: ForecastingOptions | AnomalyOptions, run: tracking.StepRun, *, inputs: bool = False
) -> tuple[pd.DataFrame, int, tuple[str, ...], pd.DataFrame | None]:
    """``(long series, resolution, extra input columns, meters table or None)`` of the step's
    input: the series file (its extra columns as inputs when ``inputs``), or the harmonized
    profiles of a run."""
    if opts.in_series:
        ignore = column_names(getattr(opts, "ignore_columns", ""))
        file = read_series_file(Path(opts.in_series), inputs=inputs, ignore=ignore)
        run.set_tags({"input.series_file": opts.in_series})
        return file.series, file.resolution_min, file.exog, None
    source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
    run.set_tags({"input.profiles_run": source_run})
    profiles = tracking.harmonized_energy(source_run)
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
        if opts.scope == "meter" and not opts.in_series:
            report, settings, resolution, counts = _forecast_meters(opts, run)
        else:
            report, settings, resolution, counts = _forecast_series(opts, run)
        run.set_tags(
            {
                **report.tags,
                "forecasting.horizon": str(settings.horizon),
                "forecasting.resolution_min": str(resolution),
            }
        )
        run.log_metrics({**logged_metrics(report), **counts})
        _log_report(run, report, opts)
        return run.run_id


def _require_space(inputs: pd.DataFrame) -> None:
    needed = diskspace.model_step_bytes(inputs, models=2)  # the model and the candidates
    diskspace.require_output_space(needed, tracking.tracking_uri(), "the forecasting outputs")


def _test_start(opts: ForecastingOptions) -> pd.Timestamp | None:
    return pd.Timestamp(opts.test_start) if opts.test_start else None


def _forecast_meters(
    opts: ForecastingOptions, run: tracking.StepRun
) -> tuple[StepReport, ForecastSettings, int, dict[str, float]]:
    """Each meter of a harmonization run, its fleet built straight from the profile table."""
    source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
    run.set_tags({"input.profiles_run": source_run})
    profiles = tracking.harmonized_energy(source_run)
    meters = tracking.load_table(source_run, Table.METERS)
    _require_space(profiles)
    resolution = MINUTES_PER_DAY // len(profile_slot_columns(profiles))
    settings = forecast_settings(opts, resolution, ())
    dates = split_dates(
        profile_days(profiles),
        *(settings.train_frac, settings.val_frac, _test_start(opts), settings.min_val_days),
    )
    fleet = profiles_panel(profiles, dates)
    del profiles
    result = evaluate_forecaster(fleet, meters, settings, opts.dask_scheduler)
    return report_of(result, fleet, settings, LOCAL_TIMEZONE, UNIT), settings, resolution, {}


def _forecast_series(
    opts: ForecastingOptions, run: tracking.StepRun
) -> tuple[StepReport, ForecastSettings, int, dict[str, float]]:
    """A series file, or the cluster or fleet totals of a harmonization run."""
    series, resolution, exog, meters = input_series(opts, run, inputs=True)
    _require_space(series)
    series, counts = scoped_series(series, opts.scope, _scope_assignments(opts, run))
    exog = exog if opts.scope == "meter" else ()
    settings = forecast_settings(opts, resolution, exog)
    dates = split_dates(
        series["timestamp"],
        *(settings.train_frac, settings.val_frac, _test_start(opts), settings.min_val_days),
    )
    timezone, unit = ("UTC", "") if opts.in_series else (LOCAL_TIMEZONE, UNIT)
    if opts.scope != "cluster":
        fleet = build_panel(series, resolution, dates, exog)
        result = evaluate_forecaster(fleet, meters, settings, opts.dask_scheduler)
        return report_of(result, fleet, settings, timezone, unit), settings, resolution, counts
    groups = {g: part for g, part in series.groupby("meter_id", sort=True)}
    log.info("scope=cluster: one model for each of %d clusters", len(groups))
    reports = {}
    for g, part in groups.items():  # one model per cluster
        fleet = build_panel(part, resolution, dates)
        result = evaluate_forecaster(fleet, None, settings, opts.dask_scheduler)
        reports[g] = report_of(result, fleet, settings, timezone, unit)
    return merge_reports(reports), settings, resolution, counts


def _log_report(run: tracking.StepRun, report: StepReport, opts: ForecastingOptions) -> None:
    for prefix, history in loss_curves(report.histories).items():
        log_history(run, history, prefix=prefix)
    for name, table in report.tables.items():
        run.log_table(table, name)
    for name, fig in report.figures.items():
        run.log_figure(fig, name)
    run.log_model(report.model)
    run.log_model(report.candidates, role=CANDIDATES_MODEL, with_network=False)
    look_next = (
        *(f"{tracking.FIGURES_DIR}/{n}.png" for n in LOOK_FIGURES if n in report.figures),
        *(f"{tracking.PREVIEWS_DIR}/{n}.csv" for n in LOOK_TABLES if n in report.tables),
    )
    run.describe(description(report, opts.scope, _source(opts, run), look_next))


def _source(opts: ForecastingOptions, run: tracking.StepRun) -> str:
    """Where the forecast series came from, for the description."""
    if opts.in_series:
        return f"series file `{Path(opts.in_series).name}`"
    text = f"harmonization run `{tracking.run_tag(run.run_id, 'input.profiles_run')}`"
    if opts.scope == "cluster":
        text += f" and clustering run `{tracking.run_tag(run.run_id, 'input.clustering_run')}`"
    return text
