"""The ``anomaly`` step: LSTM prediction-error detection on each meter's load, threshold chosen
on the validation split, scored against labelled anomalies (precision, recall, F1, AUC-ROC) when
a label file is given."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from meterflow import tracking
from meterflow.anomaly.detector import AnomalySettings, detect_anomalies
from meterflow.config import AnomalyOptions, Environment
from meterflow.errors import SourceError
from meterflow.forecasting.settings import ForecastSettings
from meterflow.tasks.forecasting import log_history
from meterflow.tasks.harmonization import PROFILES_ENERGY

LABEL_COLUMNS = ("meter_id", "kind", "start_utc", "end_utc")


def read_labels(path: Path) -> pd.DataFrame:
    """Labelled anomalies: meter_id, kind, start_utc, end_utc (exclusive)[, magnitude]."""
    if not path.is_file():
        raise SourceError("label file does not exist", source="labels", file=str(path))
    labels = pd.read_csv(path)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise SourceError(f"missing column(s) {missing}", source="labels", file=str(path))
    for col in ("start_utc", "end_utc"):
        parsed = pd.to_datetime(labels[col], utc=True, errors="coerce")
        if parsed.isna().any():
            row = int(parsed.isna().to_numpy().argmax()) + 2
            raise SourceError(f"{col} is not a time", source="labels", file=str(path), row=row)
        labels[col] = parsed
    labels["meter_id"] = labels["meter_id"].astype(str)
    return labels


def run_anomaly(opts: AnomalyOptions, env: Environment) -> str:
    tracking.configure(env.experiment)
    settings = AnomalySettings(
        forecast=ForecastSettings(
            model="lstm",
            seq_length=opts.seq_length,
            horizon=opts.horizon,
            epochs=opts.epochs,
            hidden_size=opts.hidden_size,
            max_train_windows=opts.max_train_windows,
            seed=opts.seed,
        ),
        quantile=opts.threshold_quantile,
    )
    with tracking.step_run("anomaly", opts) as run:
        source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
        run.set_tags({"input.profiles_run": source_run})
        profiles = tracking.load_table(source_run, PROFILES_ENERGY)
        labels = read_labels(Path(opts.labels)) if opts.labels else None
        result = detect_anomalies(profiles, labels, settings)
        run.log_metrics(result.metrics)
        log_history(run, result.history)
        run.log_table(result.scores, "scores")
        run.log_table(result.events, "events")
        for name, fig in result.figures.items():
            run.log_figure(fig, name)
        run.log_model(result.predictor)
        return run.run_id
