"""The deep forecasters on a small synthetic fleet: metrics beside every baseline, determinism
across processes, streaming zero padding, pickling, the hybrid's neighbours, and the recent
scaling that carries a change of level from training to test."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import ConfigError
from meterflow.forecasting import ForecastSettings, train_forecaster
from meterflow.forecasting.inputs import split_test_inputs
from meterflow.forecasting.registry import BASELINES, make_forecaster
from meterflow.series.fleet import TEST, build_fleet, build_panel, split_dates
from tests.conftest import REPO
from tests.forecasting.fleets import SPD, synthetic_fleet

FAST = dict(
    epochs=6,
    patience=3,
    learning_rate=1e-2,
    max_train_windows=2000,
    max_val_windows=1000,
    threads=1,
)
# the reference notebook's forecaster: one value `horizon` slots ahead, on the MSE
NOTEBOOK = dict(output="last", quantiles=(), seasonal_inputs=False, horizon=5)
DETERMINISM = {**FAST, "epochs": 2, "max_train_windows": 500}


@pytest.fixture(scope="module")
def fleet_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_fleet()


@pytest.fixture(scope="module")
def lstm_result(fleet_tables):
    profiles, meters = fleet_tables
    return train_forecaster(profiles, meters, ForecastSettings(model="lstm", **FAST, **NOTEBOOK))


@pytest.fixture(scope="module")
def hybrid_result(fleet_tables):
    profiles, meters = fleet_tables
    cfg = ForecastSettings(model="hybrid", n_neighbours=3, **{**FAST, "epochs": 3}, **NOTEBOOK)
    return train_forecaster(profiles, meters, cfg)


def test_lstm_beats_persistence_and_reports_every_baseline(lstm_result):
    m = lstm_result.metrics
    for key in ("test_mae", "test_rmse", "test_mape", "test_wape", "skill_vs_best_baseline"):
        assert np.isfinite(m[key]), key
    for name in BASELINES:
        for metric in ("mae", "rmse", "mape"):
            assert np.isfinite(m[f"baseline_{name}_{metric}"])
    assert m["test_mae"] < 0.6 * m["baseline_persistence_mae"]
    assert m["test_mae"] < m["baseline_climatology_mae"]
    assert lstm_result.choice.name == "lstm" and lstm_result.model.name == "lstm"
    preds = lstm_result.predictions
    assert (preds["timestamp"] >= lstm_result.split.test_start).all()
    assert preds["timestamp"].min() == lstm_result.split.test_start  # history padding
    assert lstm_result.histories["lstm"].best_epoch >= 1
    scores = lstm_result.scores.set_index("candidate")
    assert scores.loc["lstm", "kept"] and scores["kept"].sum() == 1
    assert {"test_predictions", "error_by_step", "candidates"} <= set(lstm_result.figures)


def test_training_is_deterministic_across_processes(fleet_tables, fresh_process):
    """Fixed seeds: the same predictions in a fresh process (Keras seeds and deterministic
    TensorFlow ops; the fresh process also rules out state carried over in this one)."""
    profiles, meters = fleet_tables
    cfg = ForecastSettings(model="lstm", **DETERMINISM, **NOTEBOOK)
    here = train_forecaster(profiles, meters, cfg).predictions["prediction"].to_numpy()
    np.testing.assert_array_equal(here, np.load(fresh_process / "trained_out.npy"))


def test_zero_padding_mode_predicts_after_two_readings(fleet_tables):
    profiles, meters = fleet_tables
    cfg = ForecastSettings(
        model="lstm", **{**FAST, "epochs": 1, "test_padding": "zeros"}, **NOTEBOOK
    )
    result = train_forecaster(profiles, meters, cfg)
    first = result.predictions.groupby("meter_id")["timestamp"].min()
    expected = result.split.test_start + pd.Timedelta(hours=1 + 5)  # 2 readings + horizon 5
    assert (first == expected).all()


@pytest.fixture(scope="module")
def fresh_process(lstm_result, hybrid_result, fleet_tables, tmp_path_factory) -> Path:
    """One fresh process (TensorFlow imported once) that unpickles the trained forecasters and
    forecasts the test origins, and trains ``DETERMINISM`` from scratch; its outputs."""
    folder = tmp_path_factory.mktemp("fresh")
    for name, result in (("lstm", lstm_result), ("hybrid", hybrid_result)):
        (folder / f"{name}.pkl").write_bytes(pickle.dumps(result.model))
    script = folder / "fresh.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pickle, sys, numpy as np
            sys.path.insert(0, {str(REPO)!r})
            from meterflow.forecasting import ForecastSettings, train_forecaster
            from meterflow.forecasting.inputs import split_test_inputs
            from meterflow.series.fleet import build_fleet
            from tests.forecasting.fleets import synthetic_fleet
            from tests.forecasting.test_models import DETERMINISM, NOTEBOOK
            folder = {str(folder)!r}
            profiles, meters = synthetic_fleet()
            for name in ("lstm", "hybrid"):
                with open(f"{{folder}}/{{name}}.pkl", "rb") as fh:
                    model = pickle.load(fh)
                cfg = model.settings
                fleet = build_fleet(profiles, cfg.train_frac, cfg.val_frac, cfg.min_val_days)
                np.save(f"{{folder}}/{{name}}_out.npy",
                        model.predict(split_test_inputs(fleet, cfg)))
            cfg = ForecastSettings(model="lstm", **DETERMINISM, **NOTEBOOK)
            result = train_forecaster(profiles, meters, cfg)
            np.save(f"{{folder}}/trained_out.npy", result.predictions["prediction"].to_numpy())
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return folder


def test_forecasters_pickle_into_a_fresh_process(
    lstm_result, hybrid_result, fleet_tables, fresh_process
):
    profiles, _ = fleet_tables
    for name, result in (("lstm", lstm_result), ("hybrid", hybrid_result)):
        cfg = result.model.settings
        fleet = build_fleet(profiles, cfg.train_frac, cfg.val_frac, cfg.min_val_days)
        expected = result.model.predict(split_test_inputs(fleet, cfg))
        np.testing.assert_array_equal(np.load(fresh_process / f"{name}_out.npy"), expected)


def test_hybrid_trains_and_reads_its_neighbours(hybrid_result, fleet_tables):
    profiles, _ = fleet_tables
    m = hybrid_result.metrics
    assert np.isfinite(m["test_mae"]) and m["test_mae"] < m["baseline_persistence_mae"]
    model, cfg = hybrid_result.model, hybrid_result.model.settings
    fleet = build_fleet(profiles, cfg.train_frac, cfg.val_frac, cfg.min_val_days)
    test = split_test_inputs(fleet, cfg)
    full = model.predict(test)
    alone = build_fleet(
        profiles[profiles["meter_id"] == "M00"], cfg.train_frac, cfg.val_frac, cfg.min_val_days
    )
    mine = test.series == 0
    assert not np.allclose(model.predict(split_test_inputs(alone, cfg)), full[mine])
    with pytest.raises(ConfigError, match="meters"):
        train_forecaster(profiles, None, cfg)


def shifted_series(drop: float) -> pd.DataFrame:
    """60 days of a noisy daily pattern whose level drops by ``drop`` from day 40 on (a summer
    peak in training, a quieter autumn in test)."""
    rng = np.random.default_rng(1)
    hours = np.arange(60 * SPD)
    shape = 1.0 + 0.6 * np.sin(2 * np.pi * (hours % SPD) / SPD)
    level = np.where(hours >= 40 * SPD, 1000.0 * (1 - drop), 1000.0)
    values = level * shape * (1 + rng.normal(0, 0.03, len(hours)))
    stamps = pd.date_range("2024-06-03", periods=len(hours), freq="h")
    return pd.DataFrame({"meter_id": "S", "timestamp": stamps, "value": values})


def test_recent_scaling_carries_a_change_of_level_into_test():
    series = shifted_series(drop=0.4)
    dates = split_dates(series["timestamp"], 0.7, 0.1, pd.Timestamp("2024-07-16"))
    fleet = build_panel(series, 60, dates)
    assert fleet.values[fleet.split == TEST].mean() < 0.7 * fleet.values[fleet.split == 0].mean()
    errors = {}
    for scaling in ("recent", "meter"):
        cfg = ForecastSettings(model="lstm", horizon=SPD, scaling=scaling, **FAST)
        model = make_forecaster("lstm", cfg).fit(fleet)
        test = split_test_inputs(fleet, cfg)
        errors[scaling] = np.abs(model.predict(test)[..., 1] - test.actual).mean()
    assert errors["recent"] < 0.5 * errors["meter"]
