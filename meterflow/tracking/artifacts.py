"""Reading back what runs logged, for the stories and reports that retell them: a run's record
(status, metrics, tags, duration) and its tables by name; and a text artifact (the
parent's HTML report). Unlike ``tracking.load_table``, reading here records no dataset input on
the active run: a report reads many tables it does not compute from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from meterflow.errors import MeterflowError
from meterflow.schemas import validate_table
from meterflow.tracking import TABLES_DIR


@dataclass(frozen=True)
class RunRecord:
    """What a run holds, read in one call."""

    run_id: str
    status: str
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    duration_s: float | None = None  # None while it runs


def run_record(run_id: str) -> RunRecord:
    """The run's status, metrics, tags and duration; MeterflowError if the store lacks it."""
    try:
        run = MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException as e:
        raise MeterflowError(f"run {run_id} cannot be read: {e.message}") from None
    info = run.info
    took = (info.end_time - info.start_time) / 1000 if info.end_time and info.start_time else None
    return RunRecord(run_id, info.status, dict(run.data.metrics), dict(run.data.tags), took)


def read_table(run_id: str, name: str) -> pd.DataFrame:
    """The run's table ``name``, checked against its contract; MeterflowError when the run has
    none (or it breaks its contract)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{TABLES_DIR}/{name}.parquet", dst_path=tmp
            )
        except mlflow.exceptions.MlflowException:
            raise MeterflowError(f"run {run_id} has no table {name!r}") from None
        table = pd.read_parquet(path)
    return validate_table(name, table, where=f"run {run_id}")


def log_text(run_id: str, text: str, artifact_file: str) -> None:
    """Log ``text`` as the run's artifact ``artifact_file`` (e.g. ``report.html``: the MLflow
    UI shows HTML inline)."""
    MlflowClient().log_text(run_id, text, artifact_file)
