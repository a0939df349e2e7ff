"""Windowed evidence (daily-energy change, flat runs) and its normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.clock import clock_shift
from meterflow.anomaly.scoring import COMPONENTS, Evidence, fit_score_model, run_surprise
from meterflow.anomaly.windowed import (
    REF_DAYS,
    energy_change,
    fit_peers,
    flat_runs,
    run_statistic,
    spike_excess,
)
from meterflow.series.fleet import DateSplit, build_panel, split_dates
from tests.anomaly.synthetic import TEST_DAY, clean_series, planted


def fleet_of(series: pd.DataFrame):
    return build_panel(series, 60, split_dates(series["timestamp"], 0.7, 0.1))


def test_a_stretch_of_shifted_days_scores_on_every_day_and_not_beside_it():
    z = np.array([[0.1, -0.3, 0.5, -5, -5, -4, -6, -5, -5, -4, -5, -5, 0.2, 0.1, np.nan, 0.3]])
    out = run_statistic(z)
    # the nine shifted days: sqrt(7) x the mean of the best week-long stretch
    week = np.convolve(np.abs(z[0, 3:12]), np.ones(7), "valid").max() / np.sqrt(7)
    np.testing.assert_allclose(out[0, 3:12], week)
    np.testing.assert_allclose(out[0, [0, 1, 2, 12, 13, 15]], np.abs(z[0, [0, 1, 2, 12, 13, 15]]))
    assert np.isnan(out[0, 14])
    # a lone day keeps its |z|; a weak day (|z| < 1) breaks a stretch
    assert run_statistic(np.array([[3.0, 0, 0, 0]]))[0].tolist() == [3.0, 0, 0, 0]
    broken = run_statistic(np.array([[3.0, 3.0, 0.5, 3.0, 3.0]]))[0]
    np.testing.assert_allclose(broken, [3 * np.sqrt(2)] * 2 + [0.5] + [3 * np.sqrt(2)] * 2)


def test_flat_runs_count_identical_readings_of_one_meter_without_gaps():
    hours = [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    series = pd.DataFrame(
        {
            "meter_id": ["A"] * 7 + ["B"] * 3,
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(hours, unit="h"),
            "value": [5.0, 5, 5, 1, 1, 1, 2, 2, 2, 2],
        }
    )
    start = pd.Timestamp("2024-01-01")
    fleet = build_panel(series, 60, DateSplit(start, start, (0, 0, 1)))
    # A: 5,5,5 | 1 | gap | 1,1 | 2 ; B: 2,2,2 (another meter: a new run)
    assert flat_runs(fleet).tolist() == [3, 3, 3, 1, 2, 2, 1, 3, 3, 3]


def test_run_surprise_grows_with_the_run_and_the_rarity_of_repeats():
    runs = np.array([1, 2, 4, 8, 500])
    z = run_surprise(runs, np.full(5, 0.01), np.full(5, 0.01))
    assert z[0] == 0.0 and np.all(np.diff(z) > 0) and 37 < z[-1] <= 40.0
    often = run_surprise(np.array([4]), np.array([0.3]), np.array([0.3]))[0]
    assert often < z[2]  # a meter that often repeats
    # quantised readings repeat in clusters: once a repeat started, it goes on more often
    clustered = run_surprise(np.array([4]), np.array([0.3]), np.array([0.8]))[0]
    assert clustered < often


def test_a_planted_shift_shows_in_the_daily_change_and_peers_remove_common_moves():
    series, _ = planted(clean_series())
    fleet = fleet_of(series)
    peers = fit_peers(fleet, k=5)
    assert set(peers) == {f"M{m:02d}" for m in range(8)}
    assert all(len(p) == 5 and m not in p for m, p in peers.items())
    change = energy_change(fleet, peers)
    m2 = list(fleet.meter_ids).index("M02")
    shifted = change[m2, TEST_DAY + 12 : TEST_DAY + 17]
    np.testing.assert_allclose(shifted, np.log(0.6), atol=0.15)
    clean = change[m2, REF_DAYS : TEST_DAY + 12]
    assert np.nanstd(clean) < 0.1 and np.isfinite(clean).mean() > 0.95
    # every meter doubling on one day is a common move, not an anomaly
    common = series.copy()
    day = common["timestamp"].dt.normalize() == pd.Timestamp("2024-04-05")
    common.loc[day, "value"] *= 2
    moved = energy_change(fleet_of(common), peers)
    assert np.nanmax(np.abs(moved[:, 95])) < 0.2
    assert change.shape == (8, fleet.n_times // 24 + 1)  # one per meter-day


def test_a_lasting_change_becomes_the_new_normal():
    series = clean_series()
    late = series["timestamp"] >= pd.Timestamp("2024-02-01")
    series.loc[late & (series["meter_id"] == "M01"), "value"] *= 2
    fleet = fleet_of(series)
    change = energy_change(fleet, None)
    m1 = list(fleet.meter_ids).index("M01")
    assert np.nanmean(change[m1, 31:38]) == pytest.approx(np.log(2), abs=0.15)
    # weeks later it moves with the others again (the shared trend moves them all)
    later = slice(31 + 28 + 56, 126)
    assert np.nanmean(np.abs(change[m1, later] - np.nanmedian(change[:, later], axis=0))) < 0.1


def test_score_model_normalises_on_validation_and_takes_the_strongest_component():
    series, _ = planted(clean_series())
    fleet = fleet_of(series)
    rng = np.random.default_rng(1)
    ev = Evidence(
        point=rng.normal(0, 2, len(fleet.values)),
        spike=spike_excess(fleet),
        runs=flat_runs(fleet),
        ratio=energy_change(fleet, None),
        base=energy_change(fleet, None, "base"),
        clock=clock_shift(fleet),
    )
    val = fleet.split == 1
    model = fit_score_model(fleet, ev, val, np.ones(len(val), bool), signed=True)
    parts = model.components(fleet, ev)
    assert parts.shape == (len(COMPONENTS), len(fleet.values))
    assert np.median(parts[0][val]) == pytest.approx(0.674, abs=0.1)  # |N(0,1)|
    np.testing.assert_array_equal(model.score(parts), np.zeros(len(fleet.values)))  # no thresholds
    thresholds = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
    calibrated = model.with_thresholds(thresholds)
    expected = np.nanmax(parts / thresholds[:, None], axis=0)
    np.testing.assert_allclose(calibrated.score(parts), expected)
    with pytest.raises(ValueError, match="positive threshold"):
        model.with_thresholds((1.0, 0.0, 1.0, 1.0, 1.0, 1.0))
    m1 = fleet.meter_idx == list(fleet.meter_ids).index("M01")
    assert parts[COMPONENTS.index("flat")][m1].max() > 8  # the planted ten-hour flat-line
    m0 = fleet.meter_idx == list(fleet.meter_ids).index("M00")
    assert np.nanmax(parts[COMPONENTS.index("spike")][m0]) > 8  # the planted one-hour spike
    unsigned = fit_score_model(fleet, ev, val, np.ones(len(val), bool), signed=False)
    assert (unsigned.components(fleet, ev)[0] >= 0).all()


def test_a_clock_shift_shows_as_a_better_fit_when_moved_back():
    series = clean_series()
    delayed = series.copy()
    rows = np.flatnonzero(
        (series["meter_id"] == "M00")
        & series["timestamp"].between(pd.Timestamp("2024-04-10"), pd.Timestamp("2024-04-14 23:00"))
    )
    delayed.loc[rows, "value"] = series["value"].to_numpy()[rows - 2]  # two hours late
    shift = clock_shift(fleet_of(delayed))
    day = (pd.Timestamp("2024-04-10") - pd.Timestamp("2024-01-01")).days
    assert (shift[0, day : day + 5] > 0.5).all()  # moved back, the days fit far better
    others = np.delete(shift, np.s_[day : day + 5], axis=1)
    assert np.nanmax(others) < 0.2  # ordinary days: a shift fits no better
    assert np.isnan(shift[:, :3]).all()  # no evidence without days before
