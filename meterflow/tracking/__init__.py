"""The seam to MLflow: runs, params, metrics, tables, figures, models and run lookup.

Nothing else in the package imports mlflow except ``meterflow.models.pyfunc`` (the model wrapper);
``registry`` holds the Model Registry side, ``models`` the names of the logged models and which
of them a run's metrics belong to.
Tables travel between steps as Parquet artifacts under ``tables/`` of the producing run and are read
back by run id, never through a path beside the code; each is checked against its contract
(``meterflow.schemas.TABLES``) when it is logged and when it is loaded, and a small CSV head of it
goes to ``previews/`` for the MLflow UI, which cannot show Parquet.

Upstream runs are looked up in the experiment of the current run and in the project's experiment
(``MLFLOW_EXPERIMENT_NAME``, default ``meterflow``), so a step started with ``mlflow run -e``
without ``--experiment-name`` (MLflow's Default experiment) still finds the pipeline's runs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import resource
import socket
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pyarrow.parquet as pq
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import (
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_PROJECT_ENTRY_POINT,
    MLFLOW_RUN_NAME,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
)

import meterflow
from meterflow.errors import InputError, MeterflowError
from meterflow.schemas import Table, validate_table
from meterflow.settings import Environment
from meterflow.tracking import models, registry
from meterflow.tracking.models import (  # noqa: F401  (the seam's public names)
    LEGACY_MODEL_NAME,
    logged_model_uri,
    model_name,
)
from meterflow.tracking.registry import (  # noqa: F401  (the seam's public names)
    CHALLENGER,
    CHAMPION,
    alias_version,
    champion_uri,
    delete_alias,
    load_pyfunc,
    predict_with,
    recent_versions,
    register_version,
    registered_name,
    set_alias,
    set_version_tag,
    version_loads,
    version_tag,
)

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
TABLES_DIR = "tables"
LEGACY_ENERGY_TABLE = "profiles_energy"  # harmonization runs before normalized_profiles
PREVIEWS_DIR = "previews"
PREVIEW_ROWS = 200
MAX_METRIC_KEYS = 20  # a run's headline numbers; families (per baseline, per kind…) are tables
SEARCH_PAGE = 1000  # runs per search: more than one experiment's RUNNING runs ever are
FIGURES_DIR = "figures"
TAG_VERSION = "meterflow.version"
TAG_PID, TAG_HOST = "meterflow.pid", "meterflow.host"  # the process that executes a run
TAG_FAILURE = "meterflow.failure"  # why a run failed or was ended by a later run, one line
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


_project_experiment = DEFAULT_EXPERIMENT_NAME = "meterflow"


def configure(env: Environment) -> None:
    """Use the environment's tracking URI (default ``sqlite:///mlflow.db``) and experiment.

    Under ``mlflow run`` (or a pipeline child) the run and its experiment already exist and are
    resumed instead.
    """
    global _project_experiment
    connect(env)
    _project_experiment = env.experiment
    if not os.environ.get("MLFLOW_RUN_ID") and not os.environ.get("MLFLOW_EXPERIMENT_ID"):
        mlflow.set_experiment(env.experiment)
    mark_experiment_kind(_current_experiment())


def mark_experiment_kind(experiment_id: str) -> None:
    """Open the experiment in the MLflow UI's machine-learning view (runs, metrics, models)
    rather than its GenAI view (traces), unless someone chose otherwise."""
    client = MlflowClient()
    try:
        if EXPERIMENT_KIND_TAG not in client.get_experiment(experiment_id).tags:
            client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    except mlflow.exceptions.MlflowException as e:  # a view setting: the run goes on without it
        log.warning("experiment %s: could not set its UI view: %s", experiment_id, e)


def connect(env: Environment) -> None:
    """Point MLflow at the environment's tracking store and registry prefix, with bounded HTTP
    calls; creates nothing in the store (unlike :func:`configure`, which also selects the
    experiment)."""
    registry.use_prefix(env.registry_prefix)
    _bound_http_calls(env.tracking_timeout_s)
    mlflow.set_tracking_uri(env.tracking_uri or DEFAULT_TRACKING_URI)


HTTP_RETRIES = 3


def _bound_http_calls(timeout_s: int) -> None:
    """Make a call to an unreachable tracking server fail within about ``timeout_s`` (MLflow's
    defaults retry for up to ~14 minutes): per-request timeout and retries with a short backoff.
    MLflow's own ``MLFLOW_HTTP_REQUEST_*`` variables, when set, win; children inherit these."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(HTTP_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    per_request = max(1, timeout_s // (HTTP_RETRIES + 1))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(per_request))


def run_project(entry_point: str, params: Mapping[str, str], experiment: str) -> bool:
    """``mlflow run . -e <entry_point> --env-manager local`` in this process; whether the run
    succeeded (a failed one has printed its own error line)."""
    import mlflow.projects
    from mlflow.exceptions import ExecutionException

    try:
        mlflow.projects.run(
            ".",
            entry_point=entry_point,
            parameters=dict(params),
            experiment_name=experiment,
            env_manager="local",
            synchronous=True,
        )
    except ExecutionException:
        return False
    return True


def tracking_uri() -> str:
    return mlflow.get_tracking_uri()


def _current_experiment() -> str:
    """Id of the experiment of the active run, else the one ``MLFLOW_EXPERIMENT_ID`` names (set
    by ``mlflow run`` and the pipeline), else the project's."""
    run = mlflow.active_run()
    if run is not None:
        return run.info.experiment_id
    if os.environ.get("MLFLOW_EXPERIMENT_ID"):
        return os.environ["MLFLOW_EXPERIMENT_ID"]
    return mlflow.set_experiment(_project_experiment).experiment_id


def _project_experiment_id() -> str | None:
    found = mlflow.get_experiment_by_name(_project_experiment)
    return None if found is None else found.experiment_id


@dataclass
class StepRun:
    """Logging helpers bound to the active run of one step."""

    run_id: str
    experiment_id: str = ""
    entry_point: str = ""  # whose table contracts apply (e.g. a model step's holdout columns)
    metric_keys: set[str] = field(default_factory=set)  # logged so far, at most MAX_METRIC_KEYS
    model_id: str | None = None  # of its family model once logged: its metrics belong to it

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log finite metrics, linked to the step's family model once it is logged (never to
        another model: ``models.log_metrics``); a non-finite value is a bug upstream and raises,
        and so does a run's 21st metric key: families of numbers go to a table and a figure."""
        clean = {}
        for k, v in metrics.items():
            v = float(v)
            if not math.isfinite(v):
                raise MeterflowError(f"metric {k} is not finite ({v})")
            clean[k] = v
        keys = self.metric_keys | set(clean)
        if len(keys) > MAX_METRIC_KEYS:
            extra = sorted(keys - self.metric_keys)
            raise MeterflowError(
                f"run {self.run_id} ({self.entry_point}) would log {len(keys)} metric keys "
                f"(at most {MAX_METRIC_KEYS}; new: {', '.join(extra[:8])}): log families as tables"
            )
        self.metric_keys = keys
        if clean:
            models.log_metrics(self.run_id, clean, step=step or 0, model_id=self.model_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        mlflow.log_params({k: str(v) for k, v in params.items()})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_table(self, df: pd.DataFrame, name: str) -> None:
        """Log ``df`` as ``tables/<name>.parquet`` after checking its contract, and its first
        rows as ``previews/<name>.csv`` (the MLflow UI shows CSV as a table)."""
        validate_table(name, df, where=f"run {self.run_id}", step=self.entry_point)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{name}.parquet"
            df.to_parquet(path, index=False)
            mlflow.log_artifact(str(path), artifact_path=TABLES_DIR)
            preview = Path(tmp) / f"{name}.csv"
            df.head(PREVIEW_ROWS).to_csv(preview, index=False)
            mlflow.log_artifact(str(preview), artifact_path=PREVIEWS_DIR)

    def log_figure(self, fig: Any, name: str) -> None:
        import matplotlib.pyplot as plt

        mlflow.log_figure(fig, f"{FIGURES_DIR}/{name}.png")
        plt.close(fig)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        mlflow.log_dict(dict(data), name)

    def log_child(
        self, run_name: str, params: Mapping[str, Any], metrics: Mapping[str, float]
    ) -> str:
        """A finished child run of this run (e.g. one candidate of a search), with its params
        and finite metrics, so the MLflow UI compares the candidates side by side."""
        with mlflow.start_run(run_name=run_name, nested=True) as child:
            mlflow.log_params({k: str(v) for k, v in params.items()})
            finite = {k: float(v) for k, v in metrics.items() if math.isfinite(float(v))}
            if finite:
                models.log_metrics(child.info.run_id, finite, step=0, model_id=None)
        return child.info.run_id

    def log_model(self, predictor: Any, *, role: str = "", with_network: bool = True) -> str:
        """Log a predictor (``predict(DataFrame)`` + ``input_example()``) as the step's family
        pyfunc model (``models.model_name``), or as its auxiliary model ``<family>_<role>``;
        a predictor with a Keras ``network`` also gets it logged as ``<family>_network`` (Keras
        flavor) unless ``with_network`` is False. Returns the model URI."""
        from meterflow.models.pyfunc import log_predictor

        name = models.model_name(self.entry_point, role)
        info = log_predictor(predictor, name=name, step=models.AUX_STEP if role else 0)
        if not role:
            self.model_id = info.model_id
        if with_network and getattr(predictor, "network", None) is not None:
            self.log_keras(predictor.network, predictor.network_example())
        return info.model_uri

    def describe(self, text: str) -> None:
        """The run's description in the MLflow UI (markdown)."""
        mlflow.set_tag(DESCRIPTION_TAG, text)

    def log_keras(self, network: Any, example_inputs: Any) -> str:
        """Log a Keras network as the step's ``<family>_network`` model (Keras flavor), with an
        explicit signature and an input example."""
        from meterflow.models.pyfunc import log_keras_network

        name = models.model_name(self.entry_point, models.NETWORK_ROLE)
        return log_keras_network(network, example_inputs, name=name, step=models.AUX_STEP).model_uri


@contextmanager
def step_run(entry_point: str, options: Any) -> Iterator[StepRun]:
    """Start (or resume, under ``mlflow run``) the run of one step and log its options as params."""
    with mlflow.start_run() as run:
        tags = run.data.tags
        if tags.get(MLFLOW_PROJECT_ENTRY_POINT) is None:
            mlflow.set_tag(MLFLOW_PROJECT_ENTRY_POINT, entry_point)
        mlflow.set_tags(
            {
                TAG_VERSION: meterflow.__version__,
                TAG_PID: os.getpid(),
                TAG_HOST: socket.gethostname(),
            }
        )
        params = options.params()
        logged = run.data.params
        new = {k: v for k, v in params.items() if k not in logged}
        if new:
            mlflow.log_params(new)
        log.info("%s: run %s", entry_point, run.info.run_id)
        step = StepRun(run.info.run_id, run.info.experiment_id, entry_point)
        try:
            yield step
        except Exception as e:
            if not os.environ.get("MLFLOW_RUN_ID"):  # else the command line describes it
                reason = next((s for s in str(e).splitlines() if s.strip()), type(e).__name__)
                describe_failure(run.info.run_id, tracking_uri(), entry_point, reason[:300])
            raise
        step.log_metrics(process_usage())


PEAK_RSS_METRIC = "process_peak_rss_mb"


def process_usage() -> dict[str, float]:
    """This process's peak resident memory (its children's too, when larger) and CPU seconds
    so far: what a step cost, read by the scale benchmark and by a person sizing a fleet."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    peak_kib = max(own.ru_maxrss, children.ru_maxrss)  # Linux: KiB
    return {PEAK_RSS_METRIC: peak_kib / 1024, "process_cpu_seconds": cpu}


def load_table(run_id: str, name: str, *, stored_as: str = "") -> pd.DataFrame:
    """Read the ``tables/<name>.parquet`` artifact of a run (``stored_as``: the file name an
    older run used for that table), checked against the contract of ``name``."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id,
                artifact_path=f"{TABLES_DIR}/{stored_as or name}.parquet",
                dst_path=tmp,
            )
            table = pd.read_parquet(path)
    except mlflow.exceptions.MlflowException as e:
        raise MeterflowError(f"run {run_id} has no table {name!r}: {e.message}") from None
    validate_table(name, table, where=f"run {run_id}")
    if mlflow.active_run() is not None:
        _log_input(table, run_id, name)
    return table


def harmonized_energy(run_id: str) -> pd.DataFrame:
    """The Wh profiles of harmonization run ``run_id``. Runs logged before the normalised table
    had its own name (``normalized_profiles``) hold the Wh ones as ``profiles_energy`` and the
    normalised ones as ``profiles``: those are read from ``profiles_energy``, so a normalised
    value is never taken for Wh."""
    stored = {Path(a.path).name for a in MlflowClient().list_artifacts(run_id, TABLES_DIR)}
    if f"{Table.NORMALIZED_PROFILES}.parquet" in stored:
        return load_table(run_id, Table.PROFILES)
    if f"{LEGACY_ENERGY_TABLE}.parquet" in stored:
        return load_table(run_id, Table.PROFILES, stored_as=LEGACY_ENERGY_TABLE)
    raise MeterflowError(f"run {run_id} is not a harmonization run: it has no profile tables")


@contextmanager
def table_file(run_id: str, name: str) -> Iterator[Path]:
    """The ``tables/<name>.parquet`` artifact of a run as a local file, for readers that take it
    a part at a time instead of whole (its columns checked against the table's contract)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"{TABLES_DIR}/{name}.parquet", dst_path=tmp
            )
        except mlflow.exceptions.MlflowException as e:
            raise MeterflowError(f"run {run_id} has no table {name!r}: {e.message}") from None
        empty = pq.read_schema(path).empty_table().to_pandas()
        validate_table(name, empty, where=f"run {run_id}")
        yield Path(path)


def _digest(table: pd.DataFrame) -> str:
    """A short content hash of a table (MLflow's own fails on pandas 3 string columns)."""
    rows = pd.util.hash_pandas_object(table, index=False).to_numpy()
    return hashlib.sha256(rows.tobytes() + str(list(table.columns)).encode()).hexdigest()[:8]


def _log_input(table: pd.DataFrame, run_id: str, name: str) -> None:
    """Record a table the active run read as one of its inputs (the run's Datasets in the UI).
    Informational: steps running at the same time may register the same dataset at once (the
    store then refuses the second insert), so it is retried once and never fails the step."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    source = CodeDatasetSource(tags={"run_id": run_id, "artifact": f"{TABLES_DIR}/{name}.parquet"})
    with warnings.catch_warnings():  # integer columns (counts, clusters) are by design
        warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
        dataset = mlflow.data.from_pandas(
            table, source=source, name=f"{name} ({run_id[:8]})", digest=_digest(table)
        )
        for attempt in range(2):
            try:
                mlflow.log_input(dataset, context="input")
                return
            except mlflow.exceptions.MlflowException as e:
                if attempt:
                    log.warning("input table %s not recorded as a dataset: %s", name, e.message)
                time.sleep(0.5)


def run_tag(run_id: str, key: str) -> str | None:
    return MlflowClient().get_run(run_id).data.tags.get(key)


def run_params(run_id: str) -> dict[str, str]:
    return dict(MlflowClient().get_run(run_id).data.params)


def finished_runs(
    entry_point: str, *, max_results: int = 100, experiment_id: str | None = None
) -> list[Any]:
    """Finished runs of an entry point in the current experiment (or the one given), newest
    first."""
    return MlflowClient().search_runs(
        [experiment_id or _current_experiment()],
        filter_string=(
            f"tags.`{MLFLOW_PROJECT_ENTRY_POINT}` = '{entry_point}' "
            f"and attributes.status = '{RunStatus.to_string(RunStatus.FINISHED)}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=max_results,
    )


def finished_run_tagged(key: str, value: str, *, experiment_id: str | None = None) -> str | None:
    """The newest finished run of the experiment (default: the current one) whose tag ``key``
    is ``value``, by one indexed search over all its runs; None if there is none."""
    if "'" in value:
        raise InputError(f"tag value {value!r} holds a quote")
    runs = MlflowClient().search_runs(
        [experiment_id or _current_experiment()],
        filter_string=(
            f"tags.`{key}` = '{value}' "
            f"and attributes.status = '{RunStatus.to_string(RunStatus.FINISHED)}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def latest_run_id(entry_point: str) -> str:
    """Id of the newest finished run of ``entry_point`` in the current experiment, else in the
    project's (a step started without ``--experiment-name`` lands in MLflow's Default
    experiment); a clear error when there is none."""
    runs = finished_runs(entry_point, max_results=1)
    project = _project_experiment_id()
    if not runs and project is not None and project != _current_experiment():
        runs = finished_runs(entry_point, max_results=1, experiment_id=project)
        if runs:
            found = runs[0].info.run_id
            log.info("using %s run %s of experiment %r", entry_point, found, _project_experiment)
    if not runs:
        raise MeterflowError(
            f"no finished {entry_point} run in this experiment or in {_project_experiment!r}; "
            "run that step first, pass a run id, or pass --experiment-name to mlflow run"
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


def create_child_run(
    entry_point: str,
    *,
    experiment_id: str,
    parent_run_id: str | None,
    run_name: str,
    source: str,
    tags: Mapping[str, str],
) -> str:
    """Create the run of one step (as ``mlflow run -e`` would) and return its id."""
    all_tags = {
        MLFLOW_PROJECT_ENTRY_POINT: entry_point,
        MLFLOW_RUN_NAME: run_name,
        MLFLOW_SOURCE_NAME: source,
        MLFLOW_SOURCE_TYPE: "PROJECT",
        **tags,
    }
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run = MlflowClient().create_run(experiment_id, tags=all_tags, run_name=run_name)
    return run.info.run_id


def run_status(run_id: str) -> str:
    return MlflowClient().get_run(run_id).info.status


def mark_failed(run_id: str) -> None:
    """End a run that did not end itself (its process crashed or was killed) as FAILED."""
    if run_status(run_id) == RunStatus.to_string(RunStatus.RUNNING):
        MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))


def describe_failure(
    run_id: str, tracking_uri: str | None, entry_point: str, reason: str, *, label: str = "failed"
) -> None:
    """Name and describe a failed run so that the runs list says why (``label``: e.g. "failed",
    "rejected options"). ``mlflow run`` ends the run itself after the command exits."""
    client = MlflowClient(tracking_uri or DEFAULT_TRACKING_URI)
    client.set_tag(run_id, TAG_FAILURE, reason[:5000])
    client.set_tag(run_id, MLFLOW_RUN_NAME, f"{entry_point}: {label}")
    told = client.get_run(run_id).data.tags.get(DESCRIPTION_TAG, "")
    client.set_tag(run_id, DESCRIPTION_TAG, failure_description(entry_point, label, reason, told))


def failure_description(entry_point: str, label: str, reason: str, told: str = "") -> str:
    """A failed run's description: its one-line reason first; what the run had already written
    (``told``) stays below it, unless that already opens with the failure (a night's story)."""
    first_line = told.strip().splitlines()[0] if told.strip() else ""
    if first_line.startswith("**") and f" {label}" in first_line:
        return told
    line = f"**{entry_point} {label}.** {reason}"
    return f"{line}\n\n---\n\n{told}" if told.strip() else line


def running_runs(experiment_id: str) -> list[Any]:
    """Every run of the experiment still marked RUNNING, newest first."""
    return MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"attributes.status = '{RunStatus.to_string(RunStatus.RUNNING)}'",
        order_by=["attributes.start_time DESC"],
        max_results=SEARCH_PAGE,
    )


def end_abandoned(run_id: str, reason: str) -> None:
    """End a run whose process is gone as KILLED, with ``reason`` as its description."""
    client = MlflowClient()
    client.set_tag(run_id, TAG_FAILURE, reason)
    client.set_tag(run_id, DESCRIPTION_TAG, f"**Ended by a later run:** {reason}")
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))


def run_exists(run_id: str) -> bool:
    """Whether the tracking store knows ``run_id``."""
    try:
        MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        return False
    return True


def require_finished(run_id: str) -> None:
    """MeterflowError unless the run finished: a failed or partial run never moves an alias."""
    status = run_status(run_id)
    if status != RunStatus.to_string(RunStatus.FINISHED):
        raise MeterflowError(f"run {run_id} is {status}: its model is not registered")


def tag_run(run_id: str, tags: Mapping[str, Any]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, str(value))


def run_metrics(run_id: str) -> dict[str, float]:
    return dict(MlflowClient().get_run(run_id).data.metrics)
