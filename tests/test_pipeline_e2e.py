"""End to end: `mlflow run` of the whole pipeline on a small demo fleet against a real MLflow
tracking server (SQLite backend), a real MongoDB wire-protocol server and a SQLite historian;
then a second run that reuses every step."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import repo_copy, subprocess_env

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips

STEPS = (
    "load_newmongo", "etl_newmongo", "etl_sql", "etl_oldmongo",
    "harmonization", "clustering", "forecasting", "anomaly",
)  # fmt: skip
REQUIRED_METRICS = {
    "load_newmongo": ("documents",),
    "etl_newmongo": ("readings_in", "readings_kept", "readings_quarantined", "meter_days_out"),
    "etl_sql": ("readings_in", "readings_kept", "readings_quarantined", "meter_days_out"),
    "etl_oldmongo": ("readings_in", "readings_kept", "readings_quarantined", "meter_days_out"),
    "harmonization": ("profiles", "dtw_pairs_computed", "dtw_pairs_reused"),
    "clustering": (
        "davies_bouldin", "silhouette", "silhouette_null", "silhouette_dtw", "ari", "peak_match",
        "meter_k",
    ),
    "forecasting": ("test_mae", "best_baseline_test_mae", "skill_vs_best_baseline", "train_loss"),
    "anomaly": ("planted_f1", "flagged_share", "alerts_raised", "baseline_planted_f1"),
}  # fmt: skip
PREFIX = "e2e"  # registered models e2e-clustering, e2e-forecasting, e2e-anomaly
MODEL_STEPS = ("clustering", "forecasting", "anomaly")
ARGS = [
    "-P",
    "demo_meters=10",
    "-P",
    "demo_days=40",
    "-P",
    "anomaly_epochs=2",
    "-P",
    "forecast_epochs=2",
    "-P",
    "dtw_max_profiles=300",
    "-P",
    "dtw_window=0.2",
]


def _mlflow_run(
    project: Path,
    data_dir: Path,
    tracking: str,
    experiment: str,
    *,
    launch: bool = False,
    extra: tuple[str, ...] = (),
) -> None:
    """``mlflow run`` as the README shows it, or (``launch``) as ``make demo`` starts it."""
    command = (
        ["meterflow.orchestration.launch", "--experiment-name", experiment]
        if launch
        else [
            "mlflow",
            "run",
            str(project),
            "--env-manager",
            "local",
            "--experiment-name",
            experiment,
        ]
    )
    out = subprocess.run(
        [sys.executable, "-m", *command, *ARGS, *extra],
        cwd=project, capture_output=True, text=True, timeout=1500,
        env=subprocess_env(
            MLFLOW_TRACKING_URI=tracking, METERFLOW_DATA_DIR=str(data_dir),
            METERFLOW_REGISTRY_PREFIX=PREFIX,
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        ),
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-6000:]


@pytest.fixture(scope="module")
def pipeline(tracking_server, tmp_path_factory):
    project = repo_copy(tmp_path_factory.mktemp("project"))
    data_dir = tmp_path_factory.mktemp("data")
    experiment = "e2e"
    _mlflow_run(project, data_dir, tracking_server, experiment)
    mlflow.set_tracking_uri(tracking_server)
    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment)
    return {"client": client, "exp": exp, "project": project, "data_dir": data_dir,
            "tracking": tracking_server}  # fmt: skip


def _runs(client, exp, filter_string=""):
    return client.search_runs([exp.experiment_id], filter_string=filter_string, max_results=500)


def test_parent_run_with_one_finished_child_per_step(pipeline):
    from meterflow.tracking import model_name

    client, exp = pipeline["client"], pipeline["exp"]
    parents = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'main'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    children = _runs(client, exp, f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    by_step = {r.data.tags["mlflow.project.entryPoint"]: r for r in children}
    assert sorted(by_step) == sorted(STEPS) and len(children) == len(STEPS)
    for step, run in by_step.items():
        assert run.info.status == "FINISHED", step
        assert run.data.params, step
        for name in REQUIRED_METRICS[step]:
            assert name in run.data.metrics, (step, name)
        assert all(math.isfinite(v) for v in run.data.metrics.values()), step
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert "tables" in artifacts, (step, artifacts)
        models = mlflow.search_logged_models(
            experiment_ids=[exp.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}'",
            output_format="list",
        )
        names, family = sorted(m.name for m in models), model_name(step)
        network = f"{family}_network"
        if step == "forecasting":  # + every candidate; + the Keras network when the kept
            # model has a deep member
            candidates = [family, f"{family}_candidates"]
            assert names in (candidates, [*candidates, network])
        elif step == "anomaly":  # + the Keras network when auto chose a deep detector
            deep = run.data.tags["anomaly.detector"] in ("lstm_autoencoder", "lstm_residual")
            assert names == ([family, network] if deep else [family]), step
        else:
            assert names == [family], step
        assert parent.data.tags[f"meterflow.step.{step}"] == run.info.run_id
    assert parent.data.metrics["steps_run"] == len(STEPS)


def test_etl_counts_reconcile_and_harmonization_covers_all_sources(pipeline):
    client, exp = pipeline["client"], pipeline["exp"]
    total_days = 0
    for step in ("etl_newmongo", "etl_sql", "etl_oldmongo"):
        (run,) = _runs(client, exp, f"tags.`mlflow.project.entryPoint` = '{step}'")
        m = run.data.metrics
        assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"] > 0
        assert m["readings_quarantined"] > 0  # the demo fleet has injected defects
        assert m["meter_days_out"] > 0
        total_days += m["meter_days_out"]
    (harm,) = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'harmonization'")
    m = harm.data.metrics
    # overlapping days between sources are deduplicated, never added twice
    assert m["profiles"] == total_days - m["losing_candidates"]
    assert m["profiles_from_newmongo"] > 0 and m["profiles_from_sql"] > 0
    assert m["profiles_from_oldmongo"] > 0
    assert m["dtw_pairs_computed"] == m["dtw_profiles"] * (m["dtw_profiles"] - 1) / 2


def test_clustering_uses_the_window_the_pipeline_harmonized_with(pipeline):
    """-P dtw_window=0.2 reaches harmonization (band 5 of 24 slots), and clustering reads that
    run's window: no matrix for the clustering default's window is computed."""
    client, exp = pipeline["client"], pipeline["exp"]
    (harm,) = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'harmonization'")
    (clus,) = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'clustering'")
    assert harm.data.params["dtw_window"] == clus.data.params["dtw_window_used"] == "0.2"
    assert harm.data.params["dtw_window_slots"] == clus.data.params["dtw_window_slots_used"] == "5"
    cache = pipeline["data_dir"] / "cache" / "dtw"
    assert {p.name.split("-")[1] for p in cache.iterdir() if p.is_dir()} == {"w5"}


def test_every_model_loads_in_a_fresh_process_and_predicts(pipeline):
    from meterflow.tracking import logged_model_uri

    client, exp = pipeline["client"], pipeline["exp"]
    uris = {
        r.data.tags["mlflow.project.entryPoint"]: logged_model_uri(
            r.info.run_id, r.data.tags["mlflow.project.entryPoint"]
        )
        for r in _runs(client, exp, "tags.`mlflow.project.entryPoint` != 'main'")
    }
    logged = mlflow.search_logged_models(experiment_ids=[exp.experiment_id], output_format="list")
    for m in logged:  # every model a step logs, Keras networks too
        info = mlflow.models.get_model_info(m.model_uri)
        assert info.signature is not None and info.saved_input_example_info, m.name
    script = r"""
import json, sys, mlflow, pandas as pd
from mlflow.models import Model
out = {}
for step, uri in json.loads(sys.argv[1]).items():
    model = mlflow.pyfunc.load_model(uri)
    example = Model.load(uri).load_input_example(mlflow.artifacts.download_artifacts(uri))
    pred = model.predict(example)
    out[step] = len(pred)
print(json.dumps(out))
"""
    res = subprocess.run(
        [sys.executable, "-c", script, json.dumps(uris)], capture_output=True, text=True,
        timeout=600, cwd=pipeline["data_dir"],
        env=subprocess_env(MLFLOW_TRACKING_URI=pipeline["tracking"]),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-4000:]
    counts = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(counts) == set(STEPS)
    assert all(n > 0 for n in counts.values()), counts


def test_clustering_model_reproduces_the_logged_assignments(pipeline):
    from meterflow import tracking

    client, exp = pipeline["client"], pipeline["exp"]
    (run,) = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'clustering'")
    (harm,) = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'harmonization'")
    assignments = tracking.load_table(run.info.run_id, "assignments")
    profiles = tracking.load_table(harm.info.run_id, "normalized_profiles")
    model = mlflow.pyfunc.load_model(tracking.logged_model_uri(run.info.run_id, "clustering"))
    out = model.predict(profiles)  # a profile table's rows as they are: keys and slots
    assert len(assignments) == len(profiles)
    assert (out["cluster"].to_numpy() == assignments["cluster"].to_numpy()).all()
    assert (out["cluster_name"].to_numpy() == assignments["cluster_name"].to_numpy()).all()
    assert assignments["cluster"].nunique() == run.data.metrics["k"]


def test_first_run_registers_a_champion_per_model_step(pipeline):
    client = pipeline["client"]
    parents = _runs(client, pipeline["exp"], "tags.`mlflow.project.entryPoint` = 'main'")
    parent = min(parents, key=lambda r: r.info.start_time)
    promotion = {row["step"]: row for row in _table(client, parent.info.run_id, "promotion")}
    assert set(promotion) == set(MODEL_STEPS)
    for step in MODEL_STEPS:
        champion = client.get_model_version_by_alias(f"{PREFIX}-{step}", "champion")
        assert champion.run_id == parent.data.tags[f"meterflow.step.{step}"]
        assert promotion[step]["reason"] == "first version"
        assert champion.description.startswith("**Champion: held-out ")
        assert f"models:/{PREFIX}-{step}@champion" in champion.description
        assert "Input:" in client.get_registered_model(f"{PREFIX}-{step}").description
    for name in ("forecast_test_mae", "anomaly_f1", "clustering_silhouette", "readings_kept"):
        assert name in parent.data.metrics, name


def _table(client, run_id: str, name: str) -> list[dict]:
    import pandas as pd

    path = client.download_artifacts(run_id, f"tables/{name}.parquet")
    return pd.read_parquet(path).to_dict("records")


def test_second_run_reuses_every_step(pipeline):
    client, exp = pipeline["client"], pipeline["exp"]
    state = json.loads((pipeline["data_dir"] / "state.json").read_text())
    _mlflow_run(pipeline["project"], pipeline["data_dir"], pipeline["tracking"], "e2e", launch=True)
    parents = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'main'")
    assert state["last_run_id"] == min(parents, key=lambda r: r.info.start_time).info.run_id
    assert len(parents) == 2
    latest = max(parents, key=lambda r: r.info.start_time)
    assert latest.info.status == "FINISHED"
    assert latest.data.metrics["steps_reused"] == len(STEPS)
    first = min(parents, key=lambda r: r.info.start_time)
    for step in STEPS:
        assert (
            latest.data.tags[f"meterflow.step.{step}"] == first.data.tags[f"meterflow.step.{step}"]
        )
    for step in MODEL_STEPS:  # no new model: nothing registered, no alias moved
        versions = client.search_model_versions(f"name = '{PREFIX}-{step}'")
        assert [v.version for v in versions] == ["1"], step
        assert client.get_model_version_by_alias(f"{PREFIX}-{step}", "champion").version == "1"


def test_results_notebook_executes_against_the_runs_made_here(pipeline, monkeypatch):
    """``results.ipynb`` reads the newest ``main`` run and the registry's champions through the
    MLflow API; executed here (nbclient) against this test's tracking server."""
    import nbformat
    from nbclient import NotebookClient

    from tests.conftest import REPO

    monkeypatch.setenv("MLFLOW_TRACKING_URI", pipeline["tracking"])
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "e2e")
    monkeypatch.setenv("METERFLOW_REGISTRY_PREFIX", PREFIX)
    for leftover in ("MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):  # of earlier in-process tests
        monkeypatch.delenv(leftover, raising=False)
    notebook = nbformat.read(REPO / "results.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3").execute(
        cwd=str(pipeline["project"])
    )
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "\n".join(str(o.get("text", "")) for o in outputs)
    assert "champion MAE on 20 held-out day-ahead forecasts" in text


def test_steps_record_the_tables_they_read_as_datasets(pipeline):
    client = pipeline["client"]
    parents = _runs(client, pipeline["exp"], "tags.`mlflow.project.entryPoint` = 'main'")
    parent = min(parents, key=lambda r: r.info.start_time)
    for step, expected in (
        ("harmonization", {"profiles", "meters"}),
        ("anomaly", {"profiles"}),
    ):
        run = client.get_run(parent.data.tags[f"meterflow.step.{step}"])
        names = {d.dataset.name.split(" ")[0] for d in run.inputs.dataset_inputs}
        assert expected <= names, (step, names)


def test_a_reused_model_that_was_never_registered_is_registered(pipeline):
    """A night that ended before promotion (here ``promote=false``) leaves a model run nobody
    registered; the next night reuses the run and registers its model then."""
    client = pipeline["client"]
    run = (pipeline["project"], pipeline["data_dir"], pipeline["tracking"], "e2e")
    _mlflow_run(*run, extra=("-P", "forecast_seed=7", "-P", "promote=false"))
    versions = client.search_model_versions(f"name = '{PREFIX}-forecasting'")
    assert [v.version for v in versions] == ["1"]
    _mlflow_run(*run, extra=("-P", "forecast_seed=7"))
    versions = client.search_model_versions(f"name = '{PREFIX}-forecasting'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    for step in ("clustering", "anomaly"):  # reused and registered already: nothing new
        assert len(client.search_model_versions(f"name = '{PREFIX}-{step}'")) == 1


def test_every_run_tells_its_story_and_the_report_opens_in_chromium(pipeline, tmp_path):
    """Issue 28 on the runs made here: every finished run has a description, no run logs more
    than 20 metric keys, every logged model has a signature and an input example, and the
    newest parent's ``report.html`` opens in Chromium without errors. Every breach is listed
    at once. Runs alone (with the pipeline it needs): ``pytest
    tests/test_pipeline_e2e.py::test_every_run_tells_its_story_and_the_report_opens_in_chromium``.
    """
    from mlflow.models import get_model_info

    from tests.report.browser import open_in_chromium

    client, exp = pipeline["client"], pipeline["exp"]
    runs = _runs(client, exp)
    problems = []
    for run in runs:
        tags = run.data.tags
        name = f"{tags.get('mlflow.project.entryPoint', run.info.run_name)} {run.info.run_id[:8]}"
        if run.info.status == "FINISHED" and not tags.get("mlflow.note.content", "").strip():
            problems.append(f"{name}: no description")
        if len(run.data.metrics) > 20:
            problems.append(f"{name}: {len(run.data.metrics)} metric keys")
    for model in client.search_logged_models([exp.experiment_id], max_results=1000):
        info = get_model_info(model.model_uri)
        where = f"model {model.name} of run {model.source_run_id[:8]}"
        if info.signature is None:
            problems.append(f"{where}: no signature")
        if info.saved_input_example_info is None:
            problems.append(f"{where}: no input example")
    parents = _runs(client, exp, "tags.`mlflow.project.entryPoint` = 'main'")
    parent = max(parents, key=lambda r: r.info.start_time).info.run_id
    page = Path(client.download_artifacts(parent, "report.html", str(tmp_path)))
    seen = open_in_chromium(page)
    problems += [f"report.html: console error {e}" for e in seen.console_errors]
    problems += [f"report.html: page error {e}" for e in seen.page_errors + seen.requests]
    if not seen.image_widths or min(seen.image_widths) == 0:
        problems.append(f"report.html: images {seen.image_widths}")
    assert seen.headings[1:] == [
        "The night", "Data quality", "Clusters", "Forecasts against baselines", "Alerts"
    ]  # fmt: skip
    assert not problems, "\n".join(problems)
