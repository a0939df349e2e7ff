"""Large fleets: the fleet built straight from the profile matrix, and the test split scored
meter block by meter block (the same numbers as one block, and again on a Dask cluster)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.forecasting import ForecastSettings, evaluate, evaluate_forecaster
from meterflow.series.fleet import (
    build_fleet,
    build_panel,
    profile_days,
    profiles_panel,
    profiles_to_series,
    split_dates,
)
from tests.forecasting.fleets import synthetic_fleet

QUICK = dict(
    model="linear", epochs=1, max_train_windows=500, max_val_windows=200, threads=1, horizon=24
)


@pytest.fixture(scope="module")
def fleet():
    profiles, _ = synthetic_fleet(n_meters=7, n_days=40)
    return build_fleet(profiles, 0.6, 0.2)


def test_the_profile_matrix_gives_the_fleet_of_the_long_table():
    profiles, _ = synthetic_fleet(n_meters=4, n_days=20, seed=3)
    profiles.loc[5, "slot_07"] = np.nan  # a gap inside a day
    profiles.loc[9, [c for c in profiles.columns if c.startswith("slot_")]] = np.nan  # empty day
    copy = profiles.iloc[[30, 31]].assign(source="oldmongo")  # the same meter-days again
    profiles = pd.concat([profiles.drop(index=[12]), copy]).sample(frac=1.0, random_state=1)
    dates = split_dates(profile_days(profiles), 0.6, 0.2)
    direct = profiles_panel(profiles, dates)
    long = build_panel(profiles_to_series(profiles), 60, dates)
    assert direct.t0 == long.t0
    assert list(direct.meter_ids) == list(long.meter_ids)
    for name in ("meter_idx", "time_idx", "values", "seg_start", "split"):
        np.testing.assert_array_equal(getattr(direct, name), getattr(long, name))
    assert direct.exog.shape == long.exog.shape == (len(long.values), 0)


def test_a_series_range_is_the_fleet_of_those_meters_alone(fleet):
    profiles, _ = synthetic_fleet(n_meters=7, n_days=40)
    alone = build_fleet(profiles[profiles["meter_id"].isin(["M02", "M03", "M04"])], 0.6, 0.2)
    block = fleet.series_range(2, 5)
    assert list(block.meter_ids) == ["M02", "M03", "M04"]
    for name in ("meter_idx", "values", "seg_start", "split"):
        np.testing.assert_array_equal(getattr(block, name), getattr(alone, name))
    offset = (alone.t0 - block.t0) // np.timedelta64(60, "m")
    np.testing.assert_array_equal(block.time_idx, alone.time_idx + offset)


def test_blocks_of_two_meters_score_as_one_block(fleet, monkeypatch):
    whole = evaluate_forecaster(fleet, None, ForecastSettings(**QUICK))
    monkeypatch.setattr(evaluate, "BLOCK_METERS", 2)
    blocked = evaluate_forecaster(fleet, None, ForecastSettings(**QUICK))
    assert blocked.metrics["n_test_windows"] == whole.metrics["n_test_windows"]
    for key, value in whole.metrics.items():
        if not key.endswith("seconds"):
            assert blocked.metrics[key] == pytest.approx(value, rel=1e-9), key
    assert len(blocked.predictions) == len(whole.predictions)


def test_the_predictions_table_keeps_the_first_meters_only(fleet, monkeypatch):
    monkeypatch.setattr(evaluate, "BLOCK_METERS", 2)
    monkeypatch.setattr(evaluate, "PREDICTION_METERS", 3)
    result = evaluate_forecaster(fleet, None, ForecastSettings(**QUICK))
    assert sorted(result.predictions["meter_id"].unique()) == ["M00", "M01", "M02", "M03"]


def test_blocks_on_a_dask_cluster_give_the_local_numbers(fleet, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(evaluate, "BLOCK_METERS", 3)
    cfg = ForecastSettings(**QUICK)
    local = evaluate_forecaster(fleet, None, cfg)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = evaluate_forecaster(fleet, None, cfg, cluster.scheduler_address)
    for key, value in local.metrics.items():
        if not key.endswith("seconds"):
            assert remote.metrics[key] == value, key
    assert remote.predictions.equals(local.predictions)
