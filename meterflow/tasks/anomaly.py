"""The ``anomaly`` step: the chosen detector and its baselines on each meter's load (or any
series file), thresholds chosen on validation, evaluated on labelled anomalies when a label
file is given; alerts written to the SQL and MongoDB stores and logged with the run. The run
logs its headlines as metrics (``summary.headline_metrics``), every family of numbers as one
table and one figure (``families``) and its story as the description (``summary.describe``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from meterflow import tracking
from meterflow.anomaly.alerts import alert_rows
from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.blocked import Blocking
from meterflow.anomaly.detection import AnomalyResult, AnomalySettings, detect_anomalies
from meterflow.anomaly.families import families
from meterflow.anomaly.summary import (
    AlertsRaised,
    RunContext,
    describe,
    headline,
    headline_metrics,
)
from meterflow.domain import LOCAL_TIMEZONE
from meterflow.params import column_names, lstm_units
from meterflow.schemas import Table
from meterflow.settings import AnomalyOptions, Environment
from meterflow.sources import diskspace
from meterflow.sources.alert_sinks import ALERT_SINKS
from meterflow.sources.labels import label_coverage, read_labels
from meterflow.tasks.forecasting import input_series, log_history

log = logging.getLogger(__name__)


def anomaly_settings(opts: AnomalyOptions) -> AnomalySettings:
    """The detector settings of the step's options (series files keep UTC label times; the
    per-meter scoring on the Dask cluster at ``dask_scheduler`` when one is given)."""
    training = DetectorSettings(
        forecast_model=opts.forecast_model,
        seq_length=opts.seq_length,
        horizon=opts.horizon,
        epochs=opts.epochs,
        units=lstm_units(opts.units),
        max_train_windows=opts.max_train_windows,
        threads=opts.threads,
        seed=opts.seed,
    )
    return AnomalySettings(
        detector=opts.detector,
        detectors=column_names(opts.detectors),
        training=training,
        test_start=pd.Timestamp(opts.test_start) if opts.test_start else None,
        timezone="UTC" if opts.in_series else LOCAL_TIMEZONE,
        alarm_budget=opts.alarm_budget,
        windowed=opts.windowed,
        blocking=Blocking(scheduler=opts.dask_scheduler),
    )


def run_anomaly(opts: AnomalyOptions, env: Environment) -> str:
    tracking.configure(env)
    with tracking.step_run("anomaly", opts) as run:
        series, resolution, _, meters = input_series(opts, run)
        needed = diskspace.model_step_bytes(series, models=1)
        diskspace.require_output_space(needed, tracking.tracking_uri(), "the anomaly outputs")
        settings = anomaly_settings(opts)
        labels, warnings = _labels(opts, series, settings.timezone)
        result = detect_anomalies(series, resolution, labels, settings, meters)
        run.set_tags({**headline(result), "anomaly.test_start": result.split.test_start})
        _log_result(run, result)
        alerts = alert_rows(result.events, run.run_id, result.chosen)
        run.log_table(alerts, Table.ALERTS)
        raised = _write_back(alerts, env, run) if opts.write_alerts else AlertsRaised(len(alerts))
        run.log_metrics(headline_metrics(result, raised))
        context = RunContext(
            _source(opts, run), resolution, settings.alarm_budget, raised, tuple(warnings)
        )
        run.describe(describe(result, context))
        return run.run_id


def _source(opts: AnomalyOptions, run: tracking.StepRun) -> str:
    """What the step read, for the description."""
    if opts.in_series:
        return f"series file `{Path(opts.in_series).name}`"
    return f"profiles run `{tracking.run_tag(run.run_id, 'input.profiles_run')}`"


def _labels(
    opts: AnomalyOptions, series: pd.DataFrame, timezone: str
) -> tuple[pd.DataFrame | None, list[str]]:
    """The label file's labels that match the series, and warnings about the others."""
    if not opts.labels:
        return None, []
    labels = read_labels(Path(opts.labels))
    stamps = series["timestamp"]
    first, last = (
        pd.Timestamp(t).tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
        for t in (stamps.min(), stamps.max())
    )
    coverage = label_coverage(labels, series["meter_id"].astype(str).unique(), first, last)
    warnings = coverage.warnings()
    for line in warnings:
        log.warning("%s (%s)", line, opts.labels)
    return (coverage.usable if len(coverage.usable) else None), warnings


def _log_result(run: tracking.StepRun, result: AnomalyResult) -> None:
    """The tables, figures and model of the result (its headline metrics come after the
    alerts are written)."""
    if result.history is not None:
        log_history(run, result.history)
    family = families(result.metrics, result.comparison, result.chosen)
    for table_name, table in family.tables.items():
        run.log_table(table, table_name)
    for name, fig in (family.figures | result.figures).items():
        run.log_figure(fig, name)
    run.log_table(result.scores, Table.SCORES)
    run.log_table(result.events, Table.EVENTS)
    run.log_table(result.holdout, Table.HOLDOUT)
    run.log_model(result.predictor)


def _write_back(alerts: pd.DataFrame, env: Environment, run: tracking.StepRun) -> AlertsRaised:
    """Alerts into every alert sink the environment configures (``ALERT_SINKS``): one alert
    per event across runs (an event an earlier run raised is updated, not repeated; a rerun of
    the same run changes nothing). Returns what the first store's write did and where each
    store writes."""
    now = pd.Timestamp.now(tz="UTC")  # the same last_seen_at in every store
    sinks, written = [], []
    for name, factory in ALERT_SINKS.items():
        sink = factory(env)
        if sink is None:
            log.warning("no %s store is configured: alerts are not written to it", name)
            continue
        written.append(sink.write(alerts, run.run_id, now=now))
        sinks.append((name, sink.describe()))
    run.set_tags({f"anomaly.alerts_{name}": where for name, where in sinks})
    new, updated = written[0] if written else (None, None)
    raised = AlertsRaised(len(alerts), new, updated, tuple(sinks))
    log.info(
        "%d alert(s) found: %s new and %s updated in the first store, the rest already there (%s)",
        *(raised.raised, raised.new, raised.updated),
        ", ".join(where for _, where in sinks),
    )
    return raised
