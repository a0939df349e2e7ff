"""A demo fleet in real stores and a real tracking server, for the tests that run steps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from meterflow.demo import DemoSpec, build_fleet, write_fleet
from meterflow.settings import Environment


@contextmanager
def demo_environment(
    root: Path, mongo_uri: str, tracking_server: str, spec: DemoSpec, name: str
) -> Iterator[Environment]:
    """An environment whose stores hold the demo fleet of ``spec``, tracked in an experiment
    and registry prefix of their own; MLflow's run variables cleared for its duration."""
    stamp = time.time_ns()
    env = Environment(
        data_dir=root,
        sql_url=f"sqlite:///{root / 'historian.db'}",
        mongodb_uri=mongo_uri,
        mongo_database=f"{name}_demo",
        experiment=f"{name}-{stamp}",
        tracking_uri=tracking_server,
        registry_prefix=f"{name}{stamp}",
    )
    write_fleet(
        build_fleet(spec),
        sql_url=env.sql_url,
        mongo_uri=mongo_uri,
        mongo_database=env.mongo_database,
        exports_dir=env.exports_dir,
        truth_dir=env.truth_dir,
    )
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", tracking_server)
    mp.delenv("MLFLOW_RUN_ID", raising=False)
    mp.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(tracking_server)
    try:
        yield env
    finally:
        mp.undo()


@pytest.fixture()
def store_free_env(
    tmp_path: Path, tracking_server: str, monkeypatch: pytest.MonkeyPatch, request
) -> Environment:
    """An environment for a step that reads a series file, not the stores: the tracking server,
    an experiment and registry prefix of the test's own, MLflow's run variables cleared."""
    stamp = time.time_ns()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(tracking_server)
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_").replace("_", "-")
    return Environment(
        data_dir=tmp_path,
        sql_url=f"sqlite:///{tmp_path / 'stores.db'}",
        mongodb_uri=None,
        mongo_database="unused",
        experiment=f"{name}-{stamp}",
        tracking_uri=tracking_server,
        registry_prefix=f"{name.replace('-', '')}{stamp}",
    )
