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
from meterflow.entrypoints import ENTRY_POINTS, EntryPoint
from meterflow.errors import ConfigError
from meterflow.forecasting.params import forecast_quantiles
from meterflow.params import column_names, lstm_units
from meterflow.settings import (
    AnomalyOptions,
    ClusteringOptions,
    EtlSqlOptions,
    ForecastingOptions,
    LoadNewMongoOptions,
    PipelineOptions,
    RetrainOptions,
    choices,
    step_options,
)
from meterflow.settings.pipeline import FORWARDED, RENAMED, step_params
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


def test_pipeline_options_are_every_step_parameter_under_its_prefix() -> None:
    """Each pipeline option is generated from a step's parameter: same default, check, help."""
    assert set(RENAMED.values()) <= set(PipelineOptions.model_fields)
    for step, (prefix, _) in FORWARDED.items():
        params = step_params(step)
        assert params.model_fields, step
        for name, field in params.model_fields.items():
            option = PipelineOptions.model_fields[prefix + name]
            assert option.default == field.default, (step, name)
            assert field.description in option.description, (step, name)
            assert choices(PipelineOptions, prefix + name) == choices(params, name)
    assert PipelineOptions().cluster_model == ClusteringOptions().model
    assert PipelineOptions().anomaly_epochs == AnomalyOptions().epochs
    assert PipelineOptions().forecast_epochs == ForecastingOptions().epochs


def test_the_pure_code_takes_its_defaults_from_the_declared_parameters() -> None:
    from meterflow.anomaly.base import DetectorSettings
    from meterflow.anomaly.detection import AnomalySettings
    from meterflow.etl import CleaningConfig
    from meterflow.forecasting.settings import ForecastSettings

    opts = ForecastingOptions()
    forecast = ForecastSettings()
    assert (forecast.epochs, forecast.units, forecast.quantiles) == (
        opts.epochs, lstm_units(opts.units), forecast_quantiles(opts.quantiles),
    )  # fmt: skip
    assert DetectorSettings().epochs == AnomalyOptions().epochs
    assert AnomalySettings().detectors == column_names(AnomalyOptions().detectors)
    assert CleaningConfig().night_max_gap_min == EtlSqlOptions().night_max_gap_min


@pytest.mark.parametrize("model", [PipelineOptions, RetrainOptions])
@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_old_pipeline_names_are_refused_naming_the_new_one(model, old: str, new: str) -> None:
    with pytest.raises(ConfigError, match=rf"`-P {old}=\.\.\.` is now `-P {new}=\.\.\.`"):
        parse_options(model, [f"--{old}", "3"])
    with pytest.raises(ConfigError, match=new):
        model.model_validate({old: "3"})


def test_step_options_forward_the_namespaced_pipeline_options() -> None:
    opts = PipelineOptions(
        cluster_model="kmedoids",
        cluster_k_max=5,
        forecast_epochs=2,
        anomaly_epochs=3,
        resolution=30,
        dask_scheduler="tcp://host:8786",
    )
    clustering = step_options("clustering", opts, profiles_run="r1")
    assert (clustering.model, clustering.k_max, clustering.profiles_run) == ("kmedoids", 5, "r1")
    assert clustering.epochs == ClusteringOptions().epochs  # not the anomaly step's
    assert clustering.dask_scheduler == "tcp://host:8786"
    assert step_options("forecasting", opts).epochs == 2
    assert step_options("anomaly", opts).epochs == 3
    etl = step_options("etl_sql", opts, source_fingerprint="f")
    assert (etl.resolution, etl.source_fingerprint) == (30, "f")
    assert step_options("harmonization", opts).resolution == 30
    assert step_options("load_newmongo", opts) == LoadNewMongoOptions()


def test_the_pipeline_checks_each_child_before_it_runs() -> None:
    with pytest.raises(ConfigError, match=r"clustering: k_min \(5\) > k_max \(3\)"):
        parse_options(PipelineOptions, ["--cluster_k_min", "5", "--cluster_k_max", "3"])
    with pytest.raises(ConfigError, match="anomaly_epochs"):
        parse_options(PipelineOptions, ["--anomaly_epochs", "0"])


def test_a_parameter_declared_once_reaches_every_surface(monkeypatch) -> None:
    """A parameter added to a step's ``Params`` class (here a subclass standing in for the
    edited class, bound where the class is) appears in the step's options, its --help, the
    MLproject, the pipeline's namespaced option and the child options the pipeline builds."""
    from pydantic import Field

    from meterflow import entrypoints
    from meterflow.clustering.params import ClusteringParams
    from meterflow.settings import pipeline, steps

    class Declared(ClusteringParams):
        linger_min: int = Field(5, ge=0, description="minutes the model lingers")

    class Extended(ClusteringOptions, Declared):
        pass

    monkeypatch.setitem(steps.STEP_OPTIONS, "clustering", Extended)
    monkeypatch.setitem(entrypoints.ENTRY_POINTS, "clustering", EntryPoint(
        "steps/clustering.py", Extended, ENTRY_POINTS["clustering"].task
    ))  # fmt: skip
    generated = pipeline.pipeline_options_model()
    monkeypatch.setitem(entrypoints.ENTRY_POINTS, "main", EntryPoint(
        "pipeline.py", generated, ENTRY_POINTS["main"].task
    ))  # fmt: skip

    assert Extended().linger_min == 5
    with pytest.raises(ConfigError, match="linger_min"):
        parse_options(Extended, ["--linger_min", "-1"])
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        parse_options(Extended, ["--help"])
    assert "--linger_min" in shown.getvalue() and "minutes the model lingers" in shown.getvalue()
    rendered = entrypoints.render_mlproject()
    assert "      linger_min: {type: int, default: 5}" in rendered
    assert "      cluster_linger_min: {type: int, default: 5}" in rendered
    assert "--cluster_linger_min {cluster_linger_min}" in rendered
    opts = parse_options(generated, ["--cluster_linger_min", "9"])
    assert step_options("clustering", opts, profiles_run="r").linger_min == 9


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


def test_options_and_help_load_no_numerical_library() -> None:
    """``--help`` and option errors answer at once: the settings import no numerical library."""
    code = (
        "import sys, meterflow.cli, meterflow.entrypoints\n"
        "heavy = {'numpy', 'pandas', 'tensorflow', 'sklearn', 'mlflow'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
