"""The ``anomaly`` step: LSTM prediction-error detection on each meter's load, threshold chosen
on the validation split, scored against labelled anomalies (precision, recall, F1, AUC-ROC) when
a label file is given."""

from __future__ import annotations

from pathlib import Path

from meterflow import tracking
from meterflow.anomaly.detector import AnomalySettings, detect_anomalies
from meterflow.config import AnomalyOptions, Environment
from meterflow.schemas import Table
from meterflow.sources.labels import read_labels
from meterflow.tasks.forecasting import forecast_settings, log_history


def run_anomaly(opts: AnomalyOptions, env: Environment) -> str:
    tracking.configure(env)
    settings = AnomalySettings(
        forecast=forecast_settings(opts, model="lstm"),
        quantile=opts.threshold_quantile,
    )
    with tracking.step_run("anomaly", opts) as run:
        source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
        run.set_tags({"input.profiles_run": source_run})
        profiles = tracking.load_table(source_run, Table.PROFILES_ENERGY)
        labels = read_labels(Path(opts.labels)) if opts.labels else None
        result = detect_anomalies(profiles, labels, settings)
        run.log_metrics(result.metrics)
        log_history(run, result.history)
        run.log_table(result.scores, Table.SCORES)
        run.log_table(result.events, Table.EVENTS)
        run.log_table(result.holdout, Table.HOLDOUT)
        for name, fig in result.figures.items():
            run.log_figure(fig, name)
        run.log_model(result.predictor)
        return run.run_id
