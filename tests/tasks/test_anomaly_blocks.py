"""The anomaly step with ``dask_scheduler``: per-meter scoring on a Dask cluster (given by
address, like a real one) logs the tables and metrics of the run made here."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from meterflow import tracking
from meterflow.settings import AnomalyOptions, Environment
from meterflow.tasks.anomaly import run_anomaly
from tests.anomaly.synthetic import clean_series, planted

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips


@pytest.fixture()
def env(tmp_path: Path, tracking_server: str, monkeypatch: pytest.MonkeyPatch) -> Environment:
    stamp = time.time_ns()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_server)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(tracking_server)
    return Environment(
        data_dir=tmp_path,
        sql_url=f"sqlite:///{tmp_path / 'alerts.db'}",
        mongodb_uri=None,
        mongo_database="unused",
        experiment=f"anomaly-blocks-{stamp}",
        tracking_uri=tracking_server,
        registry_prefix=f"blocks{stamp}",
    )


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
