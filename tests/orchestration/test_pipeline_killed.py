"""A pipeline killed in the middle (SIGKILL, as a scheduler's timeout or an OOM kill would)
leaves nothing that blocks the next run: the next run takes over its lock, stops the local
MongoDB server it left, marks its runs KILLED, and finishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.slow
ARGS = ["--demo_meters", "6", "--demo_days", "30", "--anomaly_epochs", "1"]
ARGS += ["--forecast_epochs", "1", "--dtw_max_profiles", "100"]


def _wait_for_a_running_step(lock: Path, deadline_s: float = 600) -> str:
    """The pipeline run id once the lock records it and a child step has been running a while."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            run_id = json.loads(lock.read_text() or "{}").get("info", {}).get("mlflow_run_id")
        except (OSError, ValueError):
            run_id = None
        if run_id:
            time.sleep(8)  # well inside the first steps
            return run_id
        time.sleep(0.5)
    raise AssertionError("the pipeline never recorded its run in the lock")


def test_a_killed_pipeline_does_not_block_the_next_one(tmp_path: Path) -> None:
    data, tracking = tmp_path / "data", f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = subprocess_env(
        METERFLOW_DATA_DIR=str(data), MLFLOW_TRACKING_URI=tracking,
        MLFLOW_EXPERIMENT_NAME="killed", METERFLOW_REGISTRY_PREFIX="killed",
    )  # fmt: skip
    env.pop("MONGODB_URI", None)  # the pipeline starts (and leaves) its local server
    first = subprocess.Popen(
        [sys.executable, "pipeline.py", *ARGS], cwd=REPO, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    killed_run = _wait_for_a_running_step(data / "meterflow.lock")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    second = subprocess.run(
        [sys.executable, "pipeline.py", *ARGS], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    assert "taking over" in second.stderr
    mlflow.set_tracking_uri(tracking)
    client = MlflowClient()
    killed = client.get_run(killed_run)
    reason = killed.data.tags["meterflow.failure"]
    assert killed.info.status == "KILLED" and "is gone" in reason, reason
    assert killed.data.tags["mlflow.note.content"].startswith("**Ended by a later run:**")
    experiment = client.get_experiment_by_name("killed").experiment_id
    left_running = client.search_runs([experiment], "attributes.status = 'RUNNING'")
    assert not left_running
