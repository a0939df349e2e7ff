"""The anomaly step end to end through MLflow: with ``dask_scheduler`` its per-meter scoring on
a Dask cluster (given by address, like a real one) logs the tables and metrics of the run made
here; a learned detector's run keeps to its metric budget and tells its story."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from meterflow import tracking
from meterflow.anomaly.summary import HEADLINE_KEYS
from meterflow.settings import AnomalyOptions, Environment
from meterflow.tasks.anomaly import run_anomaly
from meterflow.tracking import MAX_METRIC_KEYS
from tests.anomaly.synthetic import clean_series, planted

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips


@pytest.fixture()
def env(store_free_env: Environment) -> Environment:
    return store_free_env


def results(metrics: dict[str, float]) -> dict[str, float]:
    """The run's metrics but its timings and process figures."""
    return {k: v for k, v in metrics.items() if k != "seconds" and not k.startswith("process_")}


def test_the_step_on_a_dask_cluster_logs_what_it_logs_here(env, tmp_path):
    from distributed import LocalCluster

    series, _ = planted(clean_series())
    path = tmp_path / "fleet.csv"
    series.to_csv(path, index=False)
    options = AnomalyOptions(
        in_series=str(path), detector="robust_z", detectors="", write_alerts=False
    )
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        here = run_anomaly(options, env)
        remote = run_anomaly(options.model_copy(update={"dask_scheduler": address}), env)
    for table in ("scores", "events", "holdout", "alerts"):
        pd.testing.assert_frame_equal(
            tracking.load_table(here, table).drop(columns="run_id", errors="ignore"),
            tracking.load_table(remote, table).drop(columns="run_id", errors="ignore"),
        )
    local, dask = (results(mlflow.get_run(r).data.metrics) for r in (here, remote))
    assert local == dask and "planted_f1" in local
    assert mlflow.get_run(remote).data.params["dask_scheduler"] == address


def test_a_learned_detectors_run_logs_its_headlines_and_tells_its_story(env, tmp_path):
    series, labels = planted(clean_series())
    series.to_csv(tmp_path / "fleet.csv", index=False)
    labels.to_csv(tmp_path / "labels.csv", index=False)
    options = AnomalyOptions(
        in_series=str(tmp_path / "fleet.csv"),
        labels=str(tmp_path / "labels.csv"),
        detector="lstm_autoencoder",
        detectors="robust_z,isolation_forest",
        epochs=1,
        units="8",
        max_train_windows=500,
    )
    run = mlflow.get_run(run_anomaly(options, env))
    keys = set(run.data.metrics)
    alerts = {"alerts_raised", "alerts_new", "alerts_updated"}
    headlines = {*HEADLINE_KEYS, "baseline_f1", "baseline_planted_f1", *alerts}
    assert keys == headlines | {
        "train_loss",
        "val_loss",
        "process_peak_rss_mb",
        "process_cpu_seconds",
    }
    assert len(keys) <= MAX_METRIC_KEYS
    m = run.data.metrics
    raised = len(tracking.load_table(run.info.run_id, "alerts"))
    assert m["alerts_raised"] == m["alerts_new"] == raised and m["alerts_updated"] == 0
    splits = tracking.load_table(run.info.run_id, "splits").set_index("split")
    assert splits.loc["labels", "f1"] == pytest.approx(m["f1"])
    kinds = tracking.load_table(run.info.run_id, "kinds")
    assert {"labels", "planted test copy", "validation copies"} == set(kinds["split"])
    assert len(tracking.load_table(run.info.run_id, "thresholds")) > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "figures")}
    for name in ("detectors", "splits", "kinds", "thresholds", "scores_over_time"):
        assert f"figures/{name}.png" in artifacts
    text = run.data.tags["mlflow.note.content"]
    assert text.startswith("**lstm_autoencoder ") and "simple baseline" in text.splitlines()[0]
    assert f"{raised} raised ({raised} new, 0 updated), written to sql" in text
    assert run.data.tags["anomaly.baseline"] in ("robust_z", "isolation_forest")
