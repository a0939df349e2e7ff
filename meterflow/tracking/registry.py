"""The Model Registry side of the seam: one registered model per step, aliases champion and
challenger, and loading a registered or logged pyfunc model."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from meterflow.errors import MeterflowError, SchemaError
from meterflow.tracking.models import logged_model_uri

_registry_prefix = "meterflow"


def use_prefix(prefix: str) -> None:
    """Name registered models ``<prefix>-<step>`` (``METERFLOW_REGISTRY_PREFIX``)."""
    global _registry_prefix
    _registry_prefix = prefix


CHAMPION, CHALLENGER = "champion", "challenger"


def registered_name(step: str) -> str:
    """The registered model of a step, e.g. ``meterflow-forecasting``
    (``METERFLOW_REGISTRY_PREFIX`` replaces ``meterflow``)."""
    return f"{_registry_prefix}-{step}"


def champion_uri(step: str) -> str:
    return f"models:/{registered_name(step)}@{CHAMPION}"


def alias_version(step: str, alias: str) -> str | None:
    """The version of the step's registered model behind ``alias``, if any."""
    try:
        return MlflowClient().get_model_version_by_alias(registered_name(step), alias).version
    except mlflow.exceptions.MlflowException:
        return None


def register_version(
    step: str, run_id: str, tags: Mapping[str, Any], description: str = "", about: str = ""
) -> str:
    """Register the run's family model (``models.logged_model_uri``) as a new version of the
    step's registered model, with ``tags`` and a ``description``; ``about`` describes the
    registered model itself, set when it has no description yet."""
    name = registered_name(step)
    client = MlflowClient()
    _ensure_registered_model(client, name)
    # by the model's own URI and through the client: mlflow.register_model prints to stderr
    source = logged_model_uri(run_id, step)
    version = client.create_model_version(
        name,
        source,
        run_id=run_id,
        tags={key: str(value) for key, value in tags.items()},
        description=description or None,
        model_id=source.removeprefix("models:/"),
    )
    if about and not client.get_registered_model(name).description:
        client.update_registered_model(name, about)
    return str(version.version)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name)


def version_tag(step: str, version: str, key: str) -> str | None:
    """A tag of one version of the step's registered model."""
    return MlflowClient().get_model_version(registered_name(step), version).tags.get(key)


def recent_versions(step: str, limit: int = 20) -> list[Any]:
    """The step's newest registered versions (at most ``limit``), newest first."""
    return MlflowClient().search_model_versions(
        f"name = '{registered_name(step)}'", order_by=["version_number DESC"], max_results=limit
    )


def version_loads(step: str, version: str) -> bool:
    """Whether a version's model files are still there (its ``MLmodel`` can be fetched): cheap,
    without loading the model."""
    try:
        uri = MlflowClient().get_model_version_download_uri(registered_name(step), version)
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"{uri.rstrip('/')}/MLmodel", dst_path=tmp
            )
    except (mlflow.exceptions.MlflowException, OSError):
        return False
    return True


def set_version_tag(step: str, version: str, key: str, value: Any) -> None:
    MlflowClient().set_model_version_tag(registered_name(step), version, key, str(value))


def delete_alias(step: str, alias: str) -> None:
    MlflowClient().delete_registered_model_alias(registered_name(step), alias)


def set_alias(step: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(registered_name(step), alias, version)


def load_pyfunc(uri: str) -> Any:
    """A pyfunc model; MeterflowError naming the URI when it cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(uri)
    except (mlflow.exceptions.MlflowException, OSError) as e:
        raise MeterflowError(f"cannot load model {uri}: {e}") from None


def predict_with(uri: str, rows: pd.DataFrame) -> Any:
    """The predictions of the pyfunc model at ``uri`` for ``rows``; SchemaError (the reason in
    MLflow's message, without the rows it prints) when the rows do not fit its input schema."""
    model = load_pyfunc(uri)
    try:
        return model.predict(rows)
    except mlflow.exceptions.MlflowException as e:
        reason = str(e).rsplit("Error: ", 1)[-1].splitlines()[0][:300]
        raise SchemaError(f"model {uri}: {reason}") from None
