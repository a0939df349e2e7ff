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
from meterflow.orchestration import runner
from meterflow.orchestration.reuse import (
    CODE_GLOBS,
    TAG_REUSE_KEY,
    code_version,
    find_reusable_run,
    reuse_key,
)
from meterflow.orchestration.runner import StepRunner, run_name
from meterflow.settings import ClusteringOptions, Environment, HarmonizationOptions


def _finished_run(
    experiment_id: str, entry_point: str, key: str = "", status: str = "FINISHED"
) -> str:
    client = MlflowClient()
    tags = {MLFLOW_PROJECT_ENTRY_POINT: entry_point, **({TAG_REUSE_KEY: key} if key else {})}
    run = client.create_run(experiment_id, tags=tags)
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_run_names_tell_siblings_apart() -> None:
    options = ClusteringOptions(model="kmedoids", distance_metric="dtw", number_of_clusters=4)
    assert run_name("clustering", options) == "clustering kmedoids dtw k=4"
    assert run_name("harmonization", HarmonizationOptions()) == "harmonization resolution=60 l2"
    assert run_name("clustering", ClusteringOptions()).endswith(" k=auto")


def test_child_environment_is_explicit_and_the_parent_is_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "someone-elses")
    monkeypatch.delenv("MONGODB_URI", raising=False)
    step_runner = StepRunner(
        Path("."), reuse=False, parent_run_id="p", experiment_id="7",
        child_env={"MONGODB_URI": "mongodb://local:1"},
    )  # fmt: skip
    env = step_runner._environment("child-run", "7")
    assert env["MONGODB_URI"] == "mongodb://local:1"
    assert env["MLFLOW_RUN_ID"] == "child-run" and env["MLFLOW_EXPERIMENT_ID"] == "7"
    assert "MLFLOW_EXPERIMENT_NAME" not in env
    assert "MONGODB_URI" not in os.environ and os.environ["MLFLOW_EXPERIMENT_NAME"]


def test_the_reuse_key_needs_the_same_entry_point_params_and_code_version() -> None:
    params = {"resolution": "60", "previous_run": "a", "dask_scheduler": ""}
    key = reuse_key("harmonization", params, "v1")
    assert reuse_key("harmonization", dict(reversed(params.items())), "v1") == key
    assert reuse_key("harmonization", params, "v2") != key
    assert reuse_key("clustering", params, "v1") != key
    assert reuse_key("harmonization", {**params, "resolution": "30"}, "v1") != key
    other = {**params, "previous_run": "b"}
    assert reuse_key("harmonization", other, "v1") != key
    ignored = reuse_key("harmonization", params, "v1", ignore=("previous_run",))
    assert reuse_key("harmonization", other, "v1", ignore=("previous_run",)) == ignored
    where = {**params, "dask_scheduler": "tcp://cluster:8786"}  # where, not what
    assert reuse_key("harmonization", where, "v1") == key


def test_the_code_version_covers_the_dependencies(tmp_path: Path) -> None:
    assert {"pyproject.toml", "constraints.txt"} <= set(CODE_GLOBS)
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "constraints.txt").write_text("numpy==2.0.0\n")
    before = code_version(tmp_path)
    (tmp_path / "constraints.txt").write_text("numpy==2.1.0\n")
    assert code_version(tmp_path) != before


def test_a_reusable_run_is_found_among_more_than_a_hundred_newer_runs(tracking: str) -> None:
    """The search sees every run of the experiment: the one match is older than 150 others,
    and a RUNNING run with the same key does not count."""
    experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    key = reuse_key("harmonization", {"resolution": "60"}, "v1")
    found = _finished_run(experiment.experiment_id, "harmonization", key)
    for i in range(150):
        other = reuse_key("harmonization", {"resolution": f"x{i}"}, "v1")
        _finished_run(experiment.experiment_id, "harmonization", other)
    _finished_run(experiment.experiment_id, "harmonization", key, status="RUNNING")
    assert find_reusable_run(key, experiment.experiment_id) == found
    assert find_reusable_run(reuse_key("harmonization", {}, "v2"), experiment.experiment_id) is None


def test_a_step_started_in_the_default_experiment_finds_the_projects_runs(
    tracking: str, tmp_path: Path
) -> None:
    """`mlflow run . -e clustering` without --experiment-name runs in MLflow's Default
    experiment; the upstream harmonization run is then taken from the project's experiment."""
    project = os.environ["MLFLOW_EXPERIMENT_NAME"]
    project_id = mlflow.get_experiment_by_name(project).experiment_id
    upstream = _finished_run(project_id, "harmonization")
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

    from meterflow.orchestration.reconcile import end_abandoned_runs

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
    peaks = {"clustering": 1000.0, "forecasting": 3000.0, "anomaly": 2000.0}
    assert runner.memory_groups(peaks, available_mb=10_000) == [
        ["clustering", "forecasting", "anomaly"]
    ]
    assert runner.memory_groups(peaks, available_mb=5_000) == [
        ["clustering", "forecasting"],
        ["anomaly"],
    ]
    assert runner.memory_groups(peaks, available_mb=1_000) == [
        ["clustering"],
        ["forecasting"],
        ["anomaly"],
    ]
    unknown = {"clustering": None, "forecasting": None, "anomaly": None}
    assert runner.memory_groups(unknown, available_mb=100) == [
        ["clustering", "forecasting", "anomaly"]
    ]


def test_steps_that_run_together_share_the_cores_of_native_thread_pools(monkeypatch):
    for var in runner.NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 8)
    assert runner.native_threads(1)["OMP_NUM_THREADS"] == "8"
    assert runner.native_threads(3)["OPENBLAS_NUM_THREADS"] == "2"
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    assert set(runner.native_threads(3).values()) == {"1"}  # at least one each
    monkeypatch.setenv("OMP_NUM_THREADS", "4")  # the user's choice stays
    assert "OMP_NUM_THREADS" not in runner.native_threads(3)


def test_a_stage_runs_a_lane_in_order_each_step_given_the_runs_before_it(
    tracking: str, tmp_path: Path
) -> None:
    """Every step has a finished run with its inputs: the lane is walked, each step's options
    built from the run ids of the steps before it, and all are reused."""
    from meterflow.orchestration.steps import Step
    from meterflow.settings import AnomalyOptions, EtlOldMongoOptions, EtlSqlOptions

    experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    eid = experiment.experiment_id
    version = code_version(tmp_path)
    options = {
        "etl_sql": lambda done: EtlSqlOptions(source_fingerprint="f"),
        "etl_oldmongo": lambda done: EtlOldMongoOptions(reference_run=done["etl_sql"][0]),
        "anomaly": lambda done: AnomalyOptions(profiles_run="p"),
    }
    sql = _finished_run(
        eid, "etl_sql", reuse_key("etl_sql", options["etl_sql"]({}).params(), version)
    )
    old_params = options["etl_oldmongo"]({"etl_sql": (sql, True)}).params()
    old = _finished_run(eid, "etl_oldmongo", reuse_key("etl_oldmongo", old_params, version))
    anomaly = _finished_run(
        eid, "anomaly", reuse_key("anomaly", options["anomaly"]({}).params(), version)
    )
    parent = MlflowClient().create_run(eid).info.run_id
    steps = StepRunner(tmp_path, reuse=True, parent_run_id=parent, experiment_id=eid)
    lanes = [
        [Step("etl_sql", 0, "history"), Step("etl_oldmongo", 0, "history")],
        [Step("anomaly", 0, memory_bound=True)],
    ]
    done = steps.run_stage(lanes, lambda step, finished: options[step.name](finished))
    assert done == {"etl_sql": (sql, True), "etl_oldmongo": (old, True), "anomaly": (anomaly, True)}
    assert {o.step: (o.run_id, o.status) for o in steps.record.values()} == {
        "etl_sql": (sql, "reused"), "etl_oldmongo": (old, "reused"), "anomaly": (anomaly, "reused")
    }  # fmt: skip
    tags = MlflowClient().get_run(parent).data.tags
    assert tags["meterflow.step.etl_oldmongo"] == old


def test_a_step_whose_inputs_cannot_be_prepared_is_recorded_as_failed_with_why() -> None:
    """The night's story names the step that failed even when no run of it was made."""
    from meterflow.errors import InputError
    from meterflow.orchestration.steps import Step

    def prepare(step, finished):
        raise InputError("no labels file")

    steps = StepRunner(Path("."), reuse=True, parent_run_id="p", experiment_id="1")
    with pytest.raises(InputError):
        steps.run_stage([[Step("anomaly", 2)]], prepare)
    (outcome,) = steps.record.values()
    assert (outcome.step, outcome.status, outcome.run_id) == ("anomaly", "failed", "")
    assert outcome.reason == "no labels file"
