"""The seam to MLflow: runs, params, metrics, tables, figures, models, run lookup and reuse.

Nothing else in the package imports mlflow except ``meterflow.models.pyfunc`` (the model wrapper).
Tables travel between steps as Parquet artifacts under ``tables/`` of the producing run and are read
back by run id, never through a path beside the code.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_PROJECT_ENTRY_POINT

import meterflow
from meterflow.errors import MeterflowError

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
TABLES_DIR = "tables"
FIGURES_DIR = "figures"
MODEL_NAME = "model"
TAG_VERSION = "meterflow.version"


def configure(experiment: str) -> None:
    """Use ``MLFLOW_TRACKING_URI`` (default ``sqlite:///mlflow.db``) and the experiment.

    Under ``mlflow run`` the run and its experiment already exist and are resumed instead.
    """
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(DEFAULT_TRACKING_URI)
    if not os.environ.get("MLFLOW_RUN_ID") and not os.environ.get("MLFLOW_EXPERIMENT_ID"):
        mlflow.set_experiment(experiment)


def _experiment_id() -> str:
    run = mlflow.active_run()
    if run is not None:
        return run.info.experiment_id
    exp_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if exp_id:
        return exp_id
    return mlflow.tracking.fluent._get_experiment_id()


@dataclass
class StepRun:
    """Logging helpers bound to the active run of one step."""

    run_id: str

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite metrics; a non-finite value is a bug upstream and raises."""
        clean = {}
        for k, v in metrics.items():
            v = float(v)
            if not math.isfinite(v):
                raise MeterflowError(f"metric {k} is not finite ({v})")
            clean[k] = v
        if clean:
            mlflow.log_metrics(clean, step=step)

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params({k: str(v) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_table(self, df: pd.DataFrame, name: str) -> None:
        """Log ``df`` as ``tables/<name>.parquet``."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.parquet"
            df.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=TABLES_DIR)

    def log_figure(self, fig: Any, name: str) -> None:
        import matplotlib.pyplot as plt

        mlflow.log_figure(fig, f"{FIGURES_DIR}/{name}.png")
        plt.close(fig)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        mlflow.log_dict(dict(data), name)

    def log_model(self, predictor: Any, *, name: str = MODEL_NAME) -> str:
        """Log a predictor (``predict(DataFrame)`` + ``input_example()``) as a pyfunc model."""
        from meterflow.models.pyfunc import log_predictor

        return log_predictor(predictor, name=name)


@contextmanager
def step_run(entry_point: str, options: Any) -> Iterator[StepRun]:
    """Start (or resume, under ``mlflow run``) the run of one step and log its options as params."""
    with mlflow.start_run() as run:
        tags = run.data.tags
        if tags.get(MLFLOW_PROJECT_ENTRY_POINT) is None:
            mlflow.set_tag(MLFLOW_PROJECT_ENTRY_POINT, entry_point)
        mlflow.set_tag(TAG_VERSION, meterflow.__version__)
        params = options.params()
        logged = run.data.params
        new = {k: v for k, v in params.items() if k not in logged}
        if new:
            mlflow.log_params(new)
        log.info("%s: run %s", entry_point, run.info.run_id)
        yield StepRun(run.info.run_id)


def load_table(run_id: str, name: str) -> pd.DataFrame:
    """Read the ``tables/<name>.parquet`` artifact of a run."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{TABLES_DIR}/{name}.parquet", dst_path=tmp
            )
            return pd.read_parquet(path)
    except mlflow.exceptions.MlflowException as e:
        raise MeterflowError(f"run {run_id} has no table {name!r}: {e.message}") from None


def run_tag(run_id: str, key: str) -> str | None:
    return MlflowClient().get_run(run_id).data.tags.get(key)


def run_params(run_id: str) -> dict[str, str]:
    return dict(MlflowClient().get_run(run_id).data.params)


def run_entry_point(run_id: str) -> str | None:
    return run_tag(run_id, MLFLOW_PROJECT_ENTRY_POINT)


def finished_runs(entry_point: str, *, max_results: int = 100) -> list[Any]:
    """Finished runs of an entry point in the current experiment, newest first."""
    return MlflowClient().search_runs(
        [_experiment_id()],
        filter_string=(
            f"tags.`{MLFLOW_PROJECT_ENTRY_POINT}` = '{entry_point}' "
            f"and attributes.status = '{RunStatus.to_string(RunStatus.FINISHED)}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )


def latest_run_id(entry_point: str) -> str:
    """Id of the newest finished run of ``entry_point``; a clear error when there is none."""
    runs = finished_runs(entry_point, max_results=1)
    if not runs:
        raise MeterflowError(
            f"no finished {entry_point} run in this experiment; "
            "run that step first or pass a run id"
        )
    return runs[0].info.run_id


def resolve_run(run_id: str, entry_point: str | tuple[str, ...]) -> str:
    """``run_id`` checked to be a finished run of ``entry_point`` (or one of several); the newest
    run of ``entry_point`` if ``run_id`` is empty."""
    allowed = (entry_point,) if isinstance(entry_point, str) else entry_point
    if not run_id:
        if len(allowed) != 1:
            raise MeterflowError(f"a run id is needed (one of {', '.join(allowed)})")
        return latest_run_id(allowed[0])
    try:
        run = MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        raise MeterflowError(f"run {run_id} does not exist in the tracking store") from None
    actual = run.data.tags.get(MLFLOW_PROJECT_ENTRY_POINT)
    if actual not in allowed:
        raise MeterflowError(f"run {run_id} is a {actual} run, expected {' or '.join(allowed)}")
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        raise MeterflowError(f"run {run_id} is {run.info.status}, not FINISHED")
    return run_id


# --- pipeline: child runs and reuse -------------------------------------------------------


def find_reusable_run(
    entry_point: str,
    params: Mapping[str, str],
    code_version: str,
    ignore: tuple[str, ...] = (),
) -> str | None:
    """A finished run of ``entry_point`` with the same params and code version, if any.

    Params are compared as MLflow stores them (strings), after the same normalisation the step
    applies (``Options.params``), so typed values such as ``5`` vs ``"5"`` compare equal; names in
    ``ignore`` do not take part (e.g. a carry-over run that does not change the result when the
    other inputs are equal).
    """
    for run in finished_runs(entry_point):
        if run.data.tags.get(TAG_CODE_VERSION) != code_version:
            continue
        logged = run.data.params
        if all(_same_param(logged.get(k), v) for k, v in params.items() if k not in ignore):
            return run.info.run_id
    return None


def _same_param(logged: str | None, value: str) -> bool:
    """``mlflow run`` logs entry-point params shell-quoted (an empty string as ``''``)."""
    return logged is not None and logged in (value, shlex.quote(value))


TAG_CODE_VERSION = "meterflow.code_version"
TAG_REUSED_FROM = "meterflow.reused_from"


def run_child(
    entry_point: str,
    params: Mapping[str, str],
    *,
    project_dir: Path,
    code_version: str,
    reuse: bool,
    ignore: tuple[str, ...] = (),
) -> tuple[str, bool]:
    """Run one step as a child of the active run (like ``mlflow run -e``); return (run id, reused).

    With ``reuse``, a finished run with the same params and code version is returned instead.
    """
    if reuse:
        found = find_reusable_run(entry_point, params, code_version, ignore)
        if found:
            log.info("%s: reusing finished run %s (same inputs)", entry_point, found)
            mlflow.set_tag(f"meterflow.step.{entry_point}", found)
            return found, True
    parent = mlflow.active_run()
    # The child gets the parent's experiment by id; an experiment *name* in the environment
    # would make the `mlflow run` child refuse to start ("only one of name or id").
    os.environ.pop("MLFLOW_EXPERIMENT_NAME", None)
    submitted = mlflow.projects.run(
        str(project_dir),
        entry_point=entry_point,
        parameters=dict(params),
        env_manager="local",
        experiment_id=parent.info.experiment_id if parent else None,
        synchronous=False,
    )
    client = MlflowClient()
    client.set_tag(submitted.run_id, TAG_CODE_VERSION, code_version)
    if parent is not None:
        client.set_tag(submitted.run_id, MLFLOW_PARENT_RUN_ID, parent.info.run_id)
    ok = submitted.wait()
    if not ok:
        raise MeterflowError(f"step {entry_point} failed (run {submitted.run_id}); see its log")
    mlflow.set_tag(f"meterflow.step.{entry_point}", submitted.run_id)
    return submitted.run_id, False


def child_runs(parent_run_id: str) -> list[Any]:
    return MlflowClient().search_runs(
        [_experiment_id()], filter_string=f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_run_id}'"
    )


def write_json(data: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(dict(data), indent=2, sort_keys=True, default=str))
