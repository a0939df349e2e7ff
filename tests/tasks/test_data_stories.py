"""The data runs (load_newmongo, the three ETLs, harmonization) on a small demo fleet in real
stores tell their story: at most 20 metric keys, the keys the pipeline reads, and a
description with the verdict first; an ETL that stops on a malformed export says which file,
meter and row in its description."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from meterflow.cli import run_entry
from meterflow.demo import DemoSpec
from meterflow.prose import count
from meterflow.settings import (
    Environment,
    EtlNewMongoOptions,
    EtlOldMongoOptions,
    EtlSqlOptions,
    HarmonizationOptions,
    LoadNewMongoOptions,
)
from meterflow.tasks.etl import run_etl_newmongo, run_etl_oldmongo, run_etl_sql
from meterflow.tasks.harmonization import run_harmonization
from meterflow.tasks.newmongo import run_load_newmongo
from tests.tasks.conftest import demo_environment
from tests.test_pipeline_e2e import REQUIRED_METRICS

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips

SPEC = DemoSpec(n_meters=6, history_days=24, mongo_days=3, seed=7)
ETL_STEPS = ("etl_newmongo", "etl_sql", "etl_oldmongo")


@pytest.fixture(scope="module")
def env(tmp_path_factory, mongo_uri, tracking_server) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("stories")
    with demo_environment(root, mongo_uri, tracking_server, SPEC, "stories") as env:
        yield env


@pytest.fixture(scope="module")
def runs(env) -> dict[str, mlflow.entities.Run]:
    ids = {"load_newmongo": run_load_newmongo(LoadNewMongoOptions(since="watermark"), env)}
    ids["etl_newmongo"] = run_etl_newmongo(EtlNewMongoOptions(raw_run=ids["load_newmongo"]), env)
    ids["etl_sql"] = run_etl_sql(EtlSqlOptions(), env)
    ids["etl_oldmongo"] = run_etl_oldmongo(EtlOldMongoOptions(reference_run=ids["etl_sql"]), env)
    etl = ",".join(ids[k] for k in ETL_STEPS)
    harmonization = HarmonizationOptions(etl_runs=etl, dtw_max_profiles=60, dtw_window=0.1)
    ids["harmonization"] = run_harmonization(harmonization, env)
    return {step: mlflow.get_run(run_id) for step, run_id in ids.items()}


def test_every_data_run_has_few_metrics_the_required_ones_and_a_description(runs):
    for step, run in runs.items():
        metrics, text = run.data.metrics, run.data.tags["mlflow.note.content"]
        assert len(metrics) <= 20, (step, sorted(metrics))
        assert set(REQUIRED_METRICS[step]) <= set(metrics), step
        assert text.startswith("**") and "**Look next:**" in text, step
        assert "None" not in text and "nan" not in text and len(text) <= 1500, (step, text)


def test_the_etl_verdicts_carry_the_reconciled_counts(runs):
    for step in ETL_STEPS:
        m = runs[step].data.metrics
        first = runs[step].data.tags["mlflow.note.content"].splitlines()[0]
        assert f"of {count(m['readings_in'])} readings" in first, first
        assert f"{count(m['readings_quarantined'])} quarantined" in first, first
        assert not any(k.startswith(("filled_", "corrected_")) for k in m), step
    assert "table historian" in runs["etl_sql"].data.tags["mlflow.note.content"]


def test_the_first_load_says_from_the_start_and_harmonization_names_its_dtw_pairs(runs):
    load = runs["load_newmongo"].data.tags["mlflow.note.content"]
    assert "from the start (full read)" in load.splitlines()[0]
    harm = runs["harmonization"]
    text, m = harm.data.tags["mlflow.note.content"], harm.data.metrics
    assert f"{count(m['dtw_pairs_computed'])} pairs computed" in text
    assert "priority newmongo > sql > oldmongo" in text
    assert "sources.csv" in {a.path.split("/")[-1] for a in _artifacts(harm, "previews")}


def _artifacts(run, folder: str) -> list:
    return MlflowClient().list_artifacts(run.info.run_id, folder)


def test_an_etl_stopped_by_a_malformed_export_names_file_meter_and_row(
    env, runs, tmp_path, monkeypatch
):
    """Under ``mlflow run`` (the run exists before the command starts), the failed run's
    description is one line naming the file, its meter and the row."""
    bad = tmp_path / "exports"
    shutil.copytree(env.exports_dir, bad)
    victim = sorted(bad.glob("*.csv"))[1]
    lines = victim.read_text().splitlines()
    meter, stamp, *_ = lines[4].split(",")
    lines[4] = f"{meter},{stamp},abc,0.0"
    victim.write_text("\n".join(lines) + "\n")
    experiment = mlflow.get_experiment_by_name(env.experiment)
    run_id = MlflowClient().create_run(experiment.experiment_id).info.run_id
    for name, value in _variables(env, run_id).items():
        monkeypatch.setenv(name, value)
    args = ["--on_bad_file", "raise", "--exports_dir", str(bad)]
    assert run_entry("etl_oldmongo", args) == 2
    run = MlflowClient().get_run(run_id)
    text = run.data.tags["mlflow.note.content"]
    assert run.info.status == "FAILED" and "\n" not in text
    assert text.startswith("**etl_oldmongo failed.**")
    assert f"file={victim.name}" in text and f"meter={Path(victim).stem}" in text
    assert "row=5" in text, text


def _variables(env: Environment, run_id: str) -> dict[str, str]:
    return {
        "METERFLOW_DATA_DIR": str(env.data_dir),
        "METERFLOW_SQL_URL": env.sql_url,
        "MLFLOW_EXPERIMENT_NAME": env.experiment,
        "MLFLOW_RUN_ID": run_id,
    }
