"""Forecasting inputs: notebook windows, padding, chronological split, seasonal references,
recent level, naive baselines, metrics, settings, the hybrid's neighbour grid."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting import ForecastSettings
from meterflow.forecasting.features import seasonal_values
from meterflow.forecasting.inputs import inputs_at, recent_stats
from meterflow.forecasting.linear import LinearSteps
from meterflow.forecasting.metrics import forecast_metrics, skill
from meterflow.forecasting.naive import Climatology, climatology_table
from meterflow.forecasting.spatial import build_layout, grids_from_recent, recent_from_wide
from meterflow.schemas import slot_columns
from meterflow.series.fleet import TEST, TRAIN, VAL, build_fleet, fit_scaler, profiles_to_series
from meterflow.series.windows import (
    gather_windows,
    label_positions,
    sliding_windows,
    streaming_windows,
)
from tests.forecasting.fleets import SPD, make_profiles

# --- windows exactly as the notebook -------------------------------------------------------


def notebook_training_windows(series: np.ndarray, seq_length: int, ph: int):
    seq_arrays, seq_labs = [], []
    for i in range(len(series) - seq_length - ph):
        seq_arrays.append(series[i : i + seq_length])
        seq_labs.append(series[i + seq_length + ph - 1])
    return np.array(seq_arrays), np.array(seq_labs)


def notebook_streaming_windows(series: np.ndarray, seq_length: int, ph: int):
    val_arrays, val_labs = [], []
    for i in range(2, len(series) - ph):
        seq = series[0:i][-seq_length:]  # pad_sequences truncates 'pre' by default
        val_arrays.append(np.concatenate([np.zeros(seq_length - len(seq)), seq]))  # 'pre' pad
        val_labs.append(series[i + ph - 1])
    return np.array(val_arrays), np.array(val_labs)


def test_training_windows_match_notebook_indexing():
    series = np.arange(100, 150, dtype=float)  # distinct values: indices are visible
    x, y = sliding_windows(series, seq_length=30, horizon=5)
    nb_x, nb_y = notebook_training_windows(series, 30, 5)
    assert x.shape == (len(series) - 30 - 5 + 1, 30)
    np.testing.assert_array_equal(x[: len(nb_x)], nb_x)
    np.testing.assert_array_equal(y[: len(nb_y)], nb_y)
    # first window: readings 0..29, label index 0 + 30 + 5 - 1 = 34
    np.testing.assert_array_equal(x[0], series[:30])
    assert y[0] == series[34]
    # the one extra window the notebook's range() leaves out predicts the last reading
    np.testing.assert_array_equal(x[-1], series[-35:-5])
    assert y[-1] == series[-1]


def test_streaming_windows_prepad_like_notebook():
    series = np.arange(1, 41, dtype=float)
    x, y = streaming_windows(series, seq_length=30, horizon=5, min_history=2)
    nb_x, nb_y = notebook_streaming_windows(series, 30, 5)
    assert x.shape == (len(series) - 6, 30) and len(nb_x) == len(series) - 7
    np.testing.assert_array_equal(x[: len(nb_x)], nb_x)
    np.testing.assert_array_equal(y[: len(nb_y)], nb_y)
    # predictions start after two readings: 28 zeros then readings 0 and 1, label index 6
    np.testing.assert_array_equal(x[0], np.r_[np.zeros(28), series[:2]])
    assert y[0] == series[6]
    # once 30 readings are known there is no padding left
    np.testing.assert_array_equal(x[28], series[:30])
    assert y[-1] == series[-1]


def test_gather_windows_counts_real_values():
    values = np.arange(10, dtype=float)
    windows, n_real = gather_windows(values, np.array([4, 9]), np.array([2, 0]), 4, 2, np.nan)
    # label 4: inputs end at index 2 (exclusive 3), only index 2 is >= first=2
    np.testing.assert_array_equal(windows[0], [np.nan, np.nan, np.nan, 2.0])
    np.testing.assert_array_equal(windows[1], [4.0, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(n_real, [1, 4])


# --- series, split, scaling ----------------------------------------------------------------


def ramp_profiles(n_days: int = 10, skip_day: int | None = None) -> pd.DataFrame:
    dates = pd.date_range("2024-03-01", periods=n_days, freq="D")
    values = np.arange(n_days * SPD, dtype=float).reshape(n_days, SPD)
    keep = np.ones(n_days, dtype=bool)
    if skip_day is not None:
        keep[skip_day] = False
    return make_profiles(values[keep], dates[keep])


def test_profiles_to_series_drops_nan_and_keeps_local_slots():
    profiles = ramp_profiles(3)
    profiles.loc[1, "slot_05"] = np.nan
    series = profiles_to_series(profiles)
    assert list(series.columns) == ["meter_id", "timestamp", "value"]
    assert len(series) == 3 * SPD - 1
    assert series["timestamp"].iloc[0] == pd.Timestamp("2024-03-01 00:00")
    assert series["timestamp"].iloc[SPD + 5] == pd.Timestamp("2024-03-02 06:00")
    assert series["value"].iloc[SPD + 5] == SPD + 6


def test_overlapping_sources_keep_one_row_per_day():
    a = ramp_profiles(2)
    b = a.iloc[[1]].assign(source="oldmongo", slot_00=-1.0)
    series = profiles_to_series(pd.concat([a, b], ignore_index=True))
    assert len(series) == 2 * SPD and (series["value"] >= 0).all()  # sql preferred


def test_windows_never_cross_a_missing_day():
    fleet = build_fleet(ramp_profiles(10, skip_day=4), train_frac=0.5, val_frac=0.2)
    pos, _ = label_positions(fleet, (TRAIN, VAL, TEST), None, 30, 5, 30)
    windows, _ = gather_windows(fleet.values, pos, fleet.seg_start[pos], 30, 5)
    # the ramp is contiguous within a segment, so every window is consecutive values
    assert np.all(np.diff(windows, axis=1) == 1)
    # nothing on day 5 (first day after the gap) can be a label of a full window: the segment
    # restarted, and its first label needs 34 earlier slots
    day5 = pd.Timestamp("2024-03-06")
    stamps = pd.DatetimeIndex(fleet.timestamps(pos))
    assert not ((stamps >= day5) & (stamps < day5 + pd.Timedelta(hours=10))).any()
    assert len(np.unique(fleet.seg_start)) == 2


def test_split_is_chronological_and_scaler_uses_train_only():
    profiles = ramp_profiles(10)
    fleet = build_fleet(profiles, train_frac=0.5, val_frac=0.2)
    stamps = pd.DatetimeIndex(fleet.timestamps(np.arange(len(fleet.values))))
    assert stamps[fleet.split == TRAIN].max() < stamps[fleet.split == VAL].min()
    assert stamps[fleet.split == VAL].max() < stamps[fleet.split == TEST].min()
    assert fleet.dates.n_days == (5, 2, 3)
    scaler = fit_scaler(fleet)
    train_values = np.arange(5 * SPD, dtype=float)
    assert scaler.mean[0] == pytest.approx(train_values.mean())
    assert scaler.scale[0] == pytest.approx(train_values.std())
    # changing validation/test values does not move the scaler
    changed = profiles.copy()
    changed.loc[5:, slot_columns(SPD)] = 1e6
    assert fit_scaler(build_fleet(changed, 0.5, 0.2)).mean[0] == scaler.mean[0]


def test_test_padding_history_vs_zeros():
    fleet = build_fleet(ramp_profiles(10), train_frac=0.5, val_frac=0.2)
    first_test = int(np.flatnonzero(fleet.split == TEST)[0])  # value 168 at 2024-03-08 00:00
    for padding, expected_first in (("history", 0), ("zeros", first_test)):
        first = fleet.history_start(np.arange(len(fleet.values)), padding)
        pos, start = label_positions(fleet, (TEST,), first, 30, 5, 2)
        windows, n_real = gather_windows(fleet.values, pos, start, 30, 5)
        assert start[0] == expected_first
        if padding == "history":  # the first test value is predicted from real history
            assert pos[0] == first_test
            np.testing.assert_array_equal(windows[0], np.arange(first_test - 34, first_test - 4))
        else:  # as the notebook: two readings, then label horizon slots later
            assert pos[0] == first_test + 6 and n_real[0] == 2
            np.testing.assert_array_equal(windows[0], np.r_[np.zeros(28), 168.0, 169.0])


# --- baselines and metrics -----------------------------------------------------------------


def test_seasonal_references_recent_level_and_climatology_on_a_ramp():
    profiles = ramp_profiles(10, skip_day=6)
    fleet = build_fleet(profiles, train_frac=0.5, val_frac=0.2)
    stamps = pd.DatetimeIndex(fleet.timestamps(np.arange(len(fleet.values))))
    after_gap = np.flatnonzero(stamps == pd.Timestamp("2024-03-08 02:00"))  # Mar 7 is missing
    origin = np.flatnonzero(stamps == pd.Timestamp("2024-03-10 22:00"))
    steps = np.array([5])  # the target is 03:00 the next day
    # seasonal naive: same slot the day and the week before
    day, week, recent = seasonal_values(fleet, fleet.values, origin, np.zeros(1, int), steps)
    target = fleet.values[origin][0] + 5
    assert day[0, 0] == target - SPD
    assert week[0, 0] == target - 7 * SPD
    # the mean of the slot over the known days of the last seven (the gap day is skipped)
    known = [target - SPD * d for d in range(1, 8) if d != 4]
    assert recent[0, 0] == pytest.approx(np.mean(known))
    # a slot the day before that is missing falls back to the last reading (persistence)
    day, week, _ = seasonal_values(fleet, fleet.values, after_gap, np.zeros(1, int), steps - 4)
    assert day[0, 0] == fleet.values[after_gap][0] and week[0, 0] == 3.0  # Mar 1 03:00
    # recent level and spread: the readings of the last 2 days up to the origin
    mean, std, count = recent_stats(fleet, fleet.values, origin, np.zeros(1, int), 2 * SPD)
    last = fleet.values[origin[0] - 2 * SPD + 1 : origin[0] + 1]
    assert count[0] == 2 * SPD and mean[0] == pytest.approx(last.mean())
    assert std[0] == pytest.approx(last.std())
    # climatology: mean of the slot over the training days of the ramp (4 of the 9 days)
    assert fleet.dates.n_days[0] == 4
    table = climatology_table(fleet)
    assert table[0, 3] == pytest.approx(np.mean([3 + SPD * d for d in range(4)]))
    cfg = ForecastSettings(horizon=5, quantiles=())
    clim = Climatology(cfg).fit(fleet)
    inputs = inputs_at(fleet, origin, cfg)
    assert clim.predict(inputs)[0, -1, 0] == table[0, 3]
    # linear regression on the window recovers an exact linear relation
    windows, targets = sliding_windows(np.arange(200, dtype=float), 30, 5)
    model = LinearSteps.fit(windows, np.zeros((0, len(windows), 1)), targets[:, None])
    prediction = model.predict(windows[:3], np.zeros((0, 3, 1)))[:, 0]
    np.testing.assert_allclose(prediction, targets[:3], rtol=1e-3)


def test_forecast_metrics_mape_floor_and_wape():
    y = np.array([100.0, 100.0, 1.0, 0.0])
    pred = np.array([110.0, 90.0, 30.0, 5.0])
    m = forecast_metrics(y, pred, np.array(["a"] * 4), floor_frac=0.05)
    assert m["mae"] == pytest.approx(np.mean([10, 10, 29, 5]))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean([100, 100, 841, 25])))
    # the floor is 5 % of mean |y| = 2.525: the 1.0 and 0.0 actuals are left out
    assert m["mape"] == pytest.approx(10.0)
    assert m["wape"] == pytest.approx(100 * 54 / 201)
    assert "mape" not in forecast_metrics(np.zeros(3), np.ones(3), np.array(["a"] * 3))
    assert skill(5.0, 10.0) == 0.5


def test_settings_reject_bad_values():
    with pytest.raises(ConfigError, match="model"):
        ForecastSettings(model="transformer")
    with pytest.raises(ConfigError, match="candidates"):
        ForecastSettings(candidates=("lstm", "prophet"))
    with pytest.raises(ConfigError, match="no test split"):
        ForecastSettings(train_frac=0.8, val_frac=0.2)
    with pytest.raises(ConfigError, match="min_history"):
        ForecastSettings(min_history=0)


def test_settings_and_model_names_import_without_tensorflow():
    code = (
        "import sys; from meterflow.forecasting.registry import model_names; "
        "from meterflow.forecasting.settings import ForecastSettings; ForecastSettings(); "
        "print(model_names()[:3], [m for m in ('tensorflow', 'keras') if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "('auto', 'lstm', 'hybrid') []"


def test_too_few_days_is_a_clear_error():
    with pytest.raises(SchemaError, match="distinct days"):
        build_fleet(ramp_profiles(2), 0.7, 0.1)


# --- hybrid --------------------------------------------------------------------------------


def test_hybrid_grid_is_built_from_neighbours():
    meters = pd.DataFrame(
        {
            "meter_id": ["A", "B", "C", "D"],
            "latitude": [45.0, 45.0, 45.01, 46.0],  # B east of A, C north of A, D far away
            "longitude": [9.0, 9.01, 9.0, 9.0],
        }
    )
    layout = build_layout(np.array(["A", "B", "C", "D"]), meters, n_neighbours=2, grid_size=5)
    assert set(layout.neighbours[0]) == {1, 2}
    b_cell = layout.cells[0][list(layout.neighbours[0]).index(1)]
    c_cell = layout.cells[0][list(layout.neighbours[0]).index(2)]
    assert divmod(int(b_cell), 5) == (2, 4)  # middle row, east edge
    assert divmod(int(c_cell), 5) == (0, 2)  # top row (north), middle column
    wide = np.array([[0.0] * 4, [1.0, 2.0, 3.0, 4.0], [-1.0] * 4, [9.0] * 4], dtype=np.float32)
    recent = recent_from_wide(layout, wide, np.array([0]), np.array([3]), 2)
    grid = grids_from_recent(layout, np.array([0]), recent).transpose(0, 3, 1, 2)  # channels
    assert grid.shape == (1, 3, 5, 5)
    np.testing.assert_array_equal(grid[0, :2, 2, 4], [3.0, 4.0])  # B's last two readings
    np.testing.assert_array_equal(grid[0, :2, 0, 2], [-1.0, -1.0])  # C
    assert grid[0, 2, 2, 4] == 0.5 and grid[0, 2].sum() == pytest.approx(1.0)  # occupancy
    assert np.count_nonzero(grid[0, :2]) == 4  # nothing else: not A itself, not far-away D
    wide_far = wide.copy()
    wide_far[3] = -50.0
    again = grids_from_recent(
        layout, np.array([0]), recent_from_wide(layout, wide_far, np.array([0]), np.array([3]), 2)
    )
    np.testing.assert_array_equal(grid, again.transpose(0, 3, 1, 2))
