"""The forecasting step tells its story in the MLflow UI: a headline of at most
``MAX_METRIC_KEYS`` metrics with the loss curves per epoch, every family of numbers as a table and
a figure, and a description whose first line is the verdict against the best baseline."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from meterflow import tracking
from meterflow.forecasting.report import HEADLINE_KEYS
from meterflow.settings import Environment, ForecastingOptions
from meterflow.tasks.forecasting import run_forecasting
from tests.forecasting.test_serving import two_meters

pytestmark = pytest.mark.slow  # end to end through MLflow: `pytest -m 'not slow'` skips

COUNTS = {"aggregate_slots", "aggregate_estimated_slots", "aggregate_gap_slots"}


@pytest.fixture()
def env(store_free_env: Environment) -> Environment:
    return store_free_env


def test_the_fleet_run_logs_a_headline_tables_figures_and_its_verdict(env, tmp_path):
    path = tmp_path / "two_meters.csv"
    two_meters().to_csv(path, index=False)
    options = ForecastingOptions(
        in_series=str(path), scope="fleet", epochs=2, test_start="2024-02-05"
    )
    run = mlflow.get_run(run_forecasting(options, env))
    keys = set(run.data.metrics)
    assert len(keys) <= tracking.MAX_METRIC_KEYS
    process = set(tracking.process_usage())
    assert keys - COUNTS - process == {*HEADLINE_KEYS, "train_loss", "val_loss"}
    losses = MlflowClient().get_metric_history(run.info.run_id, "val_loss")
    training = tracking.load_table(run.info.run_id, "forecast_training")
    assert [p.step for p in losses] == training["epoch"].tolist() == [1, 2]
    candidates = tracking.load_table(run.info.run_id, "candidates").set_index("candidate")
    best = run.data.tags["forecasting.best_baseline"]
    assert candidates.loc[best, "test_mae"] == pytest.approx(
        run.data.metrics["best_baseline_test_mae"]
    )
    artifacts = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert artifacts == {
        f"figures/{n}.png"
        for n in ("candidates", "error_by_step", "test_predictions", "training_curves")
    }
    text = run.data.tags[tracking.DESCRIPTION_TAG]
    first = text.splitlines()[0]
    assert first.startswith("**The ") and f" {best} " in first and "%" in first
    assert "the fleet's total load from series file `two_meters.csv`" in text
    assert "`figures/candidates.png`" in text and "`previews/candidates.csv`" in text
    assert "nan" not in text.lower() and len(text) <= 1500
