"""The logged models of a step's run: their names, where to find them, and which of them the
run's metrics belong to.

Each step that logs a model logs one *family* model, named for what it does (``MODEL_NAMES``:
``forecaster``, ``detector``, ``clusterer``, ``cleaner`` for every ``etl_<source>`` step, …),
and may log auxiliary ones beside it, named ``<family>_<role>`` (``forecaster_network``, the
Keras network inside it; ``forecaster_candidates``, every fitted candidate). Runs logged before
the names existed hold their family model as ``model`` (``LEGACY_MODEL_NAME``):
:func:`logged_model_uri` falls back to it.

Metrics belong to the family model. MLflow links a newly logged model to every metric its run
logged at the model's step (its SQL store keeps no model on a run's metric, so it cannot tell
metrics already linked elsewhere); auxiliary models are therefore logged at ``AUX_STEP``, a
step at which no run logs a metric, and the family model at step 0, where the headline numbers
are.
"""

from __future__ import annotations

import mlflow

from meterflow.errors import MeterflowError

LEGACY_MODEL_NAME = "model"  # every step's model before the family names
MODEL_NAMES = {
    "load_newmongo": "translator",  # MongoDB documents -> interval readings
    "harmonization": "normalizer",  # daily Wh profiles -> the step's resolution, normalised
    "clustering": "clusterer",  # daily profiles -> cluster
    "forecasting": "forecaster",  # raw readings -> day-ahead forecasts
    "anomaly": "detector",  # raw readings -> anomaly scores and flags
}
ETL_PREFIX, ETL_MODEL_NAME = "etl_", "cleaner"  # every etl_<source> step: readings -> profiles
NETWORK_ROLE = "network"  # the Keras network inside a family model (Keras flavor)
AUX_STEP = -1  # the model step of auxiliary models: no metric is logged at it


def model_name(entry_point: str, role: str = "") -> str:
    """The name of the family model of ``entry_point`` (``role`` empty) or of one of its
    auxiliary models (``<family>_<role>``); MeterflowError for a step that logs no model."""
    family = ETL_MODEL_NAME if entry_point.startswith(ETL_PREFIX) else MODEL_NAMES.get(entry_point)
    if family is None:
        raise MeterflowError(f"entry point {entry_point!r} logs no model")
    return f"{family}_{role}" if role else family


def logged_model_id(run_id: str, name: str) -> str | None:
    """The id of the newest model called ``name`` that run ``run_id`` logged, if any."""
    run = mlflow.get_run(run_id)
    found = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{name}'",
        order_by=[{"field_name": "creation_time", "ascending": False}],
        max_results=1,
        output_format="list",
    )
    return found[0].model_id if found else None


def logged_model_uri(run_id: str, entry_point: str) -> str:
    """``models:/<model id>`` of the family model of ``entry_point`` that run ``run_id`` logged
    (``model`` for a run logged before the family names); MeterflowError if it logged none."""
    name = model_name(entry_point)
    model_id = logged_model_id(run_id, name) or logged_model_id(run_id, LEGACY_MODEL_NAME)
    if model_id is None:
        raise MeterflowError(f"run {run_id} logged no {name} model")
    return f"models:/{model_id}"


def log_metrics(run_id: str, metrics: dict[str, float], *, step: int, model_id: str | None) -> None:
    """Log ``metrics`` into run ``run_id``, linked to ``model_id`` or to no model: never to the
    active model or to every model of the run at ``step``, as ``mlflow.log_metrics`` would."""
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    now = get_current_time_millis()
    rows = [Metric(k, v, now, step, model_id=model_id, run_id=run_id) for k, v in metrics.items()]
    mlflow.MlflowClient().log_batch(run_id, metrics=rows)
