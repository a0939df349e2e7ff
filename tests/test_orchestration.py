"""Chaining steps: reuse of finished runs, child environments passed explicitly, readable run
names, and upstream runs found in the project's experiment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PROJECT_ENTRY_POINT

from meterflow import tracking as seam
from meterflow.config import ClusteringOptions, Environment, HarmonizationOptions
from meterflow.orchestration import TAG_CODE_VERSION, StepRunner, find_reusable_run, run_name


def _finished_run(experiment_id: str, entry_point: str, params: dict, version: str) -> str:
    client = MlflowClient()
    run = client.create_run(
        experiment_id,
        tags={MLFLOW_PROJECT_ENTRY_POINT: entry_point, TAG_CODE_VERSION: version},
    )
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def test_run_names_tell_siblings_apart() -> None:
    options = ClusteringOptions(model="kmedoids", distance_metric="dtw", number_of_clusters=4)
    assert run_name("clustering", options) == "clustering kmedoids dtw number_of_clusters=4"
    assert run_name("harmonization", HarmonizationOptions()) == "harmonization resolution=60 l2"


def test_child_environment_is_explicit_and_the_parent_is_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "someone-elses")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    runner = StepRunner(
        Path("."), reuse=False, parent_run_id="p", experiment_id="7",
        child_env={"MONGODB_URI": "mongodb://local:1"},
    )  # fmt: skip
    env = runner._environment("child-run", "7")
    assert env["MONGODB_URI"] == "mongodb://local:1"
    assert env["MLFLOW_RUN_ID"] == "child-run" and env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert "MLFLOW_EXPERIMENT_NAME" not in env
    assert "MONGODB_URI" not in os.environ and os.environ["MLFLOW_EXPERIMENT_NAME"]


def test_reuse_needs_the_same_params_and_code_version(tracking: str) -> None:
    experiment_id = mlflow.get_experiment_by_name(
        os.environ["MLFLOW_EXPERIMENT_NAME"]
    ).experiment_id
    params = {"resolution": "60", "previous_run": "a"}
    found = _finished_run(experiment_id, "harmonization", params, "v1")
    assert find_reusable_run("harmonization", params, "v1") == found
    assert find_reusable_run("harmonization", params, "v2") is None
    assert find_reusable_run("harmonization", {**params, "resolution": "30"}, "v1") is None
    other = {**params, "previous_run": "b"}
    assert find_reusable_run("harmonization", other, "v1") is None
    assert find_reusable_run("harmonization", other, "v1", ignore=("previous_run",)) == found


def test_a_step_started_in_the_default_experiment_finds_the_projects_runs(
    tracking: str, tmp_path: Path
) -> None:
    """`mlflow run . -e clustering` without --experiment-name runs in MLflow's Default
    experiment; the upstream harmonization run is then taken from the project's experiment."""
    project = os.environ["MLFLOW_EXPERIMENT_NAME"]
    project_id = mlflow.get_experiment_by_name(project).experiment_id
    upstream = _finished_run(project_id, "harmonization", {}, "v1")
    env = Environment(
        data_dir=tmp_path,
        sql_url="sqlite://",
        mongodb_uri=None,
        mongo_database="x",
        experiment=project,
        tracking_uri=tracking,
    )
    seam.configure(env)
    default = mlflow.set_experiment(f"{project}-default").experiment_id
    with mlflow.start_run(experiment_id=default):
        assert seam.latest_run_id("harmonization") == upstream
        assert seam.finished_runs("harmonization") == []  # reuse stays in its own experiment


def test_runs_left_running_by_dead_processes_are_ended_with_their_reason(tracking: str) -> None:
    """A pipeline killed while the tracking server was down released its lock cleanly; the
    next pipeline run ends its runs all the same, and leaves live ones alone."""
    import socket

    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from meterflow.reconcile import end_abandoned_runs

    experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    client = MlflowClient()

    def run(entry_point: str, parent: str | None = None, pid: int | None = None) -> str:
        tags = {MLFLOW_PROJECT_ENTRY_POINT: entry_point}
        if parent:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        if pid:
            tags |= {"meterflow.pid": str(pid), "meterflow.host": socket.gethostname()}
        return client.create_run(experiment.experiment_id, tags=tags).info.run_id

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old_main = run("main")  # its process never tagged it (the CLI created it)
    old_child = run("etl_sql", parent=old_main)
    gone = run("anomaly", pid=dead.pid)  # a step started on its own, process gone
    alive = run("clustering", pid=os.getpid())  # a step started on its own, still running
    other = run("forecasting")  # started on its own, untagged: cannot tell, left alone
    current = run("retrain", pid=os.getpid())
    assert end_abandoned_runs(experiment.experiment_id, current) == 3
    for run_id in (old_main, old_child, gone):
        ended = client.get_run(run_id)
        assert ended.info.status == "KILLED"
        assert f"ended by run {current}" in ended.data.tags["meterflow.failure"]
    assert f"process {dead.pid}" in client.get_run(gone).data.tags["meterflow.failure"]
    for run_id in (alive, other, current):
        assert client.get_run(run_id).info.status == "RUNNING"


def test_an_unreachable_tracking_server_fails_within_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from meterflow.errors import MeterflowError
    from meterflow.sources.mongo_server import free_port

    for name in ("MAX_RETRIES", "BACKOFF_FACTOR", "TIMEOUT"):  # restored after the test
        monkeypatch.setenv(f"MLFLOW_HTTP_REQUEST_{name}", "")
        monkeypatch.delenv(f"MLFLOW_HTTP_REQUEST_{name}")
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    env = Environment(
        data_dir=tmp_path,
        sql_url="sqlite://",
        mongodb_uri=None,
        mongo_database="x",
        experiment="down",
        tracking_uri=f"http://127.0.0.1:{free_port()}",
        tracking_timeout_s=8,
    )
    started = time.monotonic()
    with pytest.raises((MeterflowError, mlflow.exceptions.MlflowException)):
        seam.configure(env)
        seam.latest_run_id("harmonization")
    assert time.monotonic() - started < 60  # MLflow's defaults: ~14 minutes


def test_steps_run_together_while_their_last_peaks_fit_in_memory():
    from meterflow.orchestration import memory_groups

    peaks = {"clustering": 1000.0, "forecasting": 3000.0, "anomaly": 2000.0}
    assert memory_groups(peaks, available_mb=10_000) == [["clustering", "forecasting", "anomaly"]]
    assert memory_groups(peaks, available_mb=5_000) == [
        ["clustering", "forecasting"],
        ["anomaly"],
    ]
    assert memory_groups(peaks, available_mb=1_000) == [
        ["clustering"],
        ["forecasting"],
        ["anomaly"],
    ]
    unknown = {"clustering": None, "forecasting": None, "anomaly": None}
    assert memory_groups(unknown, available_mb=100) == [["clustering", "forecasting", "anomaly"]]


def test_steps_that_run_together_share_the_cores_of_native_thread_pools(monkeypatch):
    from meterflow import orchestration

    for var in orchestration.NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(orchestration.os, "cpu_count", lambda: 8)
    assert orchestration.native_threads(1)["OMP_NUM_THREADS"] == "8"
    assert orchestration.native_threads(3)["OPENBLAS_NUM_THREADS"] == "2"
    monkeypatch.setattr(orchestration.os, "cpu_count", lambda: 2)
    assert set(orchestration.native_threads(3).values()) == {"1"}  # at least one each
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's choice stays
    assert "OMP_NUM_THREADS" not in orchestration.native_threads(3)
