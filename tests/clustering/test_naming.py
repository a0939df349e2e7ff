"""Cluster names from synthetic centres of each shape, at every resolution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.clustering.naming import (
    days_suffix,
    keeps_sign,
    name_clusters,
    shape_name,
    slot_hours,
    weekend_shares,
)
from meterflow.errors import SchemaError

RESOLUTIONS = (24, 48, 96, 144)


def bump(hours: np.ndarray, at: float, width: float) -> np.ndarray:
    """A bump at hour ``at``, wrapping around midnight."""
    gap = (hours - at + 12) % 24 - 12
    return np.exp(-(gap**2) / (2 * width**2))


def shapes(n_slots: int, seed: int = 0) -> dict[str, np.ndarray]:
    """One centre per named shape (Wh-like, noisy at fine resolutions)."""
    h = slot_hours(n_slots)
    noise = np.random.default_rng(seed).normal(0, 0.01, n_slots)
    return {
        "evening peak": 200 + 800 * bump(h, 19, 1.5) + noise,
        "morning and evening peaks": 150 + 600 * bump(h, 7.5, 1) + 700 * bump(h, 19.5, 1.2),
        "midday export (PV)": 300 - 1200 * bump(h, 13, 2) + 300 * bump(h, 19, 1.2) + noise,
        "flat (baseload)": 1000 + 60 * np.sin(h / 3) + noise,
        "night load": 150 + 900 * bump(h, 2, 2) + noise,
        "daytime plateau": 200
        + 800 / (1 + np.exp(-(h - 8) * 2))
        - 800 / (1 + np.exp(-(h - 19) * 2)),
        "midday peak": 100 + 500 * bump(h, 12.5, 1.5),
        "evening export": 500 - 900 * bump(h, 18, 1),
        "midday dip": 600 - 400 * bump(h, 12.5, 1.5),
    }


@pytest.mark.parametrize("n_slots", RESOLUTIONS)
def test_each_shape_gets_its_name_at_every_resolution(n_slots):
    centres = shapes(n_slots)
    assert name_clusters(np.stack(list(centres.values()))) == list(centres)


@pytest.mark.parametrize("n_slots", RESOLUTIONS)
def test_scale_only_normalisations_keep_the_names(n_slots):
    centres = np.stack(list(shapes(n_slots).values()))
    l2 = centres / np.linalg.norm(centres, axis=1, keepdims=True)
    assert name_clusters(l2) == name_clusters(centres)


def test_shifted_values_have_no_sign_so_no_export_and_no_flatness():
    h = slot_hours(48)
    pv = 300 - 1200 * bump(h, 13, 2) + 300 * bump(h, 19, 1.2)
    z = (pv - pv.mean()) / pv.std()
    assert shape_name(pv)[0] == "midday export (PV)"
    assert shape_name(z, signed=False)[0] == "midday dip"
    flat = 1000 + 60 * np.sin(h / 3)
    assert shape_name(flat, signed=False)[0] != "flat (baseload)"
    assert shape_name(np.zeros(48), signed=False)[0] == "flat (baseload)"
    assert not keeps_sign("l2", "zscore") and keeps_sign("none", "max") and keeps_sign("external")


def test_the_days_suffix_compares_with_the_share_among_all_days():
    base = 2 / 7
    assert days_suffix(0.6, base) == ", weekends"
    assert days_suffix(0.05, base) == ", weekdays"
    assert days_suffix(0.3, base) == ""
    assert days_suffix(0.6, None) == "" and days_suffix(float("nan"), base) == ""
    assert days_suffix(0.6, 1.0) == ""  # every day a weekend day: nothing to tell apart


def test_names_are_unique_by_peak_hour_then_by_number():
    h = slot_hours(96)
    early = 200 + 800 * bump(h, 18.2, 1)
    late = 200 + 800 * bump(h, 21.2, 1)
    names = name_clusters(np.stack([early, late, late * 1.01, early]))
    assert names == [
        "evening peak (18 h)",
        "evening peak (21 h)",
        "evening peak (21 h) (2)",
        "evening peak (18 h) (2)",
    ]
    assert len(set(names)) == 4


def test_weekday_and_weekend_clusters_are_told_apart():
    h = slot_hours(24)
    work = 200 + 800 * bump(h, 19, 1.5)
    home = 200 + 800 * bump(h, 20, 1.5)
    dates = pd.date_range("2025-01-06", periods=28, freq="D")  # four whole weeks
    cluster = (dates.dayofweek >= 5).astype(int)
    assign = pd.DataFrame({"meter_id": "m", "date": dates, "cluster": cluster})
    shares, base = weekend_shares(assign, 3)
    assert base == pytest.approx(2 / 7)
    np.testing.assert_allclose(shares[:2], [0.0, 1.0])
    assert np.isnan(shares[2])  # an empty cluster
    names = name_clusters(
        np.stack([work, home, home]), weekend_shares=shares, base_weekend_share=base
    )
    assert names == ["evening peak, weekdays", "evening peak, weekends", "evening peak"]
    assert weekend_shares(assign.drop(columns="date"), 3) == (None, None)


def test_a_centre_that_is_not_a_finite_profile_is_refused():
    with pytest.raises(SchemaError, match="finite profile"):
        shape_name(np.array([1.0, np.nan, 2.0]))
    with pytest.raises(SchemaError, match=r"\(k, slots\)"):
        name_clusters(np.ones(24))
