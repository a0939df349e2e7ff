"""Planted anomalies and the thresholds learned from them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.calibration import (
    Scored,
    aftermath,
    allocate_thresholds,
    planted_metrics,
    tail_levels,
)
from meterflow.anomaly.planting import KINDS, plant_anomalies, variability
from meterflow.anomaly.scoring import COMPONENTS
from tests.anomaly.synthetic import VAL_DAY, clean_series

START = pd.Timestamp("2024-01-01")


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    return clean_series(n_meters=len(KINDS))


def test_every_kind_is_planted_once_inside_the_window_and_nothing_else_changes(series):
    start, end = START + pd.Timedelta(days=VAL_DAY), START + pd.Timedelta(days=VAL_DAY + 13)
    damaged, labels = plant_anomalies(series, start, end, 60, seed=1)
    assert sorted(labels["kind"]) == sorted(KINDS)
    assert (labels["start"] >= start).all() and (labels["end"] <= end).all()
    changed = damaged["value"].to_numpy() != series["value"].to_numpy()
    inside = np.zeros(len(series), dtype=bool)
    for row in labels.itertuples():
        inside |= (
            (series["meter_id"] == row.meter_id)
            & (series["timestamp"] >= row.start)
            & (series["timestamp"] < row.end)
        ).to_numpy()
    assert not (changed & ~inside).any()  # nothing outside a label moves
    again, same = plant_anomalies(series, start, end, 60, seed=1)
    pd.testing.assert_frame_equal(labels, same)  # seeded
    np.testing.assert_array_equal(again["value"], damaged["value"])


def test_planted_sizes_follow_each_meters_own_variability(series):
    quiet = series.loc[series["meter_id"] == "M00"].copy()
    noisy = quiet.assign(meter_id="NOISY")
    rng = np.random.default_rng(0)
    noisy["value"] = noisy["value"] * rng.lognormal(0, 0.3, len(noisy))
    both = pd.concat([quiet, noisy], ignore_index=True)
    start = START + pd.Timedelta(days=VAL_DAY)
    spread = {
        m: variability(p["value"].to_numpy(), p["timestamp"].to_numpy(), 60)
        for m, p in both.loc[both["timestamp"] < start].groupby("meter_id")
    }
    assert spread["NOISY"].slot > 3 * spread["M00"].slot
    assert spread["NOISY"].day > 3 * spread["M00"].day
    end = start + pd.Timedelta(days=13)
    spikes = {
        m: plant_anomalies(both, start, end, 60, seed=3, meters=[m])[1]["magnitude"].iloc[0]
        for m in ("M00", "NOISY")
    }
    assert spikes["NOISY"] > spikes["M00"] and all(0.5 <= v <= 4.0 for v in spikes.values())


def scored(z: list[list[float]], event: list[int], day: list[int]) -> Scored:
    e = np.array(event)
    return Scored(
        np.array(z, dtype=float),
        e,
        np.where(e >= 0, "spike", None).astype(object),
        np.array(day),
        n_meter_days=len(set(day)),
    )


def test_thresholds_spend_the_budget_where_they_find_the_most():
    # component 0 separates the anomalies (events 0 and 1) from the normal days; component 1
    # would need to flag three normal days to find the same
    s = scored(
        [[5, 6, 1, 1, 1, 1, 1, 1], [2, 2, 3, 3, 3, 0, 0, 0], *[[0] * 8] * (len(COMPONENTS) - 2)],
        [0, 1, -1, -1, -1, -1, -1, -1],
        [0, 3, 10, 12, 14, 16, 18, 20],
    )
    start = np.full(len(COMPONENTS), 9.0)
    theta = allocate_thresholds(s, budget_days=1.0, start=start, floors=np.zeros(len(start)))
    assert theta[0] <= 5 and theta[1] > 3 and (theta[2:] == 9.0).all()
    m = planted_metrics(s, theta)
    assert m["val_planted_event_recall"] == 1.0 and m["val_planted_f1"] == 1.0
    assert m["val_false_days_per_meter_month"] == 0.0
    # floors hold the thresholds up whatever the copies say
    held = allocate_thresholds(s, budget_days=5.0, start=start, floors=np.full(len(start), 8.0))
    np.testing.assert_array_equal(held, start)  # at the floor it would find nothing more


def test_tail_levels_extrapolate_where_validation_is_short():
    rng = np.random.default_rng(0)
    many = rng.exponential(1.0, 100_000)
    day = np.arange(len(many))
    level = tail_levels(many[None, :], day, budget=0.1)[0]
    assert level == pytest.approx(np.log(30.44 / 0.1), abs=0.2)  # exact exponential quantile
    few = tail_levels(many[None, :40], day[:40], budget=0.1)[0]
    assert few > many[:40].max()  # beyond anything seen in 40 days


def test_the_day_of_an_anomaly_and_the_next_are_neither_found_nor_false():
    day = np.array([0, 0, 1, 2, 5])
    np.testing.assert_array_equal(
        aftermath(day, np.array([True, False, False, False, False])),
        [True, True, True, False, False],
    )
