"""Entry scripts answer ``--help`` and reject a bad option at once: options are checked before
any numerical library, MLflow or the step's code is imported, and the help lists the choices."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from meterflow.cli import parse_options
from meterflow.config import ClusteringOptions, PipelineOptions, choices
from meterflow.entrypoints import ENTRY_POINTS
from meterflow.errors import ConfigError
from tests.conftest import REPO, subprocess_env

HEAVY = ("mlflow", "tensorflow", "keras", "sklearn", "tslearn", "dtaidistance", "meterflow.tasks")


def _modules_after(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_lists_the_registered_choices() -> None:
    out = subprocess.run(
        [sys.executable, "steps/clustering.py", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0
    text = " ".join(out.stdout.split())
    for name in choices(ClusteringOptions, "model"):
        assert name in text
    assert "{euclidean, dtw" in text and "{include, exclude, only}" in text


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
def test_every_entry_point_formats_its_help(entry_point: str) -> None:
    """Every option's help renders (argparse formats it with %, so a "20 %" must not break it)."""
    model = ENTRY_POINTS[entry_point].options
    parser_help = io.StringIO()
    with contextlib.redirect_stdout(parser_help), pytest.raises(SystemExit) as done:
        parse_options(model, ["--help"], prog=entry_point)
    assert done.value.code == 0
    assert all(f"--{name}" in parser_help.getvalue() for name in model.model_fields)


def test_help_and_a_bad_option_import_no_heavy_module() -> None:
    code = (
        "from meterflow.cli import run_entry\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    assert run_entry('forecasting', ['--model', 'nope']) == 2\n"
    )
    loaded = _modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith("meterflow.tasks")]


def test_pipeline_and_steps_share_option_definitions() -> None:
    for name in ("resolution", "normalization", "dtw_window", "model", "epochs"):
        pipeline_field = PipelineOptions.model_fields[name]
        assert pipeline_field.description
    assert PipelineOptions().model == ClusteringOptions().model
    assert choices(PipelineOptions, "model") == choices(ClusteringOptions, "model")


def test_parse_options_names_the_option_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"distance_metric: must be one of euclidean, dtw"):
        parse_options(ClusteringOptions, ["--distance_metric", "manhattan"])


def test_bad_option_under_mlflow_run_marks_the_run_rejected(tracking: str) -> None:
    """``mlflow run`` creates the run before the command starts: the command names it as
    rejected and says why, so the runs list is not a wall of unexplained FAILED runs."""
    experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    run = MlflowClient().create_run(experiment.experiment_id)
    env = subprocess_env(MLFLOW_RUN_ID=run.info.run_id, MLFLOW_TRACKING_URI=tracking)
    out = subprocess.run(
        [sys.executable, "steps/clustering.py", "--model", "dbscan"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 2 and "model: must be one of" in out.stderr
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["mlflow.runName"] == "clustering: rejected options"
    assert "model: must be one of" in tags["meterflow.failure"]
    assert tags["mlflow.note.content"].startswith("**clustering rejected options.**")


def test_a_failed_step_under_mlflow_run_is_named_and_described_with_its_reason(
    tracking: str, tmp_path
) -> None:
    """A step that fails on its input (no upstream run here) says why in one line, and the
    run's name and description in the MLflow UI say the same."""
    experiment = mlflow.get_experiment_by_name(os.environ["MLFLOW_EXPERIMENT_NAME"])
    run = MlflowClient().create_run(experiment.experiment_id)
    env = subprocess_env(
        MLFLOW_RUN_ID=run.info.run_id,
        MLFLOW_TRACKING_URI=tracking,
        METERFLOW_DATA_DIR=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "steps/clustering.py", "--profiles_run", "0" * 32],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    tags = MlflowClient().get_run(run.info.run_id).data.tags
    assert tags["mlflow.runName"] == "clustering: failed"
    assert line == f"error: clustering: {tags['meterflow.failure']}"
    assert tags["mlflow.note.content"] == f"**clustering failed.** {tags['meterflow.failure']}"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(28, "No space left on device", "/data/x.parquet"), "not enough disk space"),
        (sqlite3.DatabaseError("database disk image is malformed"), "tracking store"),
        (ValueError("a bug"), None),
    ],
)
def test_failures_a_user_can_act_on_are_one_line_and_bugs_are_not_hidden(error, expected):
    from meterflow.cli import failure_reason

    reason = failure_reason(error)
    assert (reason is None) if expected is None else (expected in reason and "\n" not in reason)


def test_a_tracking_failure_message_hides_credentials() -> None:
    from mlflow.exceptions import MlflowException

    from meterflow.cli import failure_reason

    error = MlflowException("API request to http://bob:hunter2@host:5000/api failed\ndetails")
    reason = failure_reason(error)
    assert "hunter2" not in reason and "bob" not in reason and "details" not in reason
