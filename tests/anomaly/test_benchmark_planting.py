"""The public anomaly benchmark's own planting (benchmarks/anomaly_public.py): fast, no data."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def ap():
    spec = importlib.util.spec_from_file_location(
        "anomaly_public", BENCHMARKS / "anomaly_public.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("anomaly_public", module)
    spec.loader.exec_module(module)
    return module


def window(ap, resolution_min: int, meter: str = "m") -> pd.DataFrame:
    """A clean 25-week window on the benchmark's calendar: positive, never repeating."""
    stamps = pd.date_range(
        ap.ANCHOR, periods=ap.WEEKS * 7 * 24 * 60 // resolution_min, freq=f"{resolution_min}min"
    )
    rng = np.random.default_rng(1)
    values = 100 + 50 * np.sin(np.arange(len(stamps)) / 7) + rng.uniform(0, 1, len(stamps))
    return pd.DataFrame({"meter_id": meter, "timestamp": stamps, "value": values})


@pytest.mark.parametrize("resolution_min", [15, 30, 60])
@pytest.mark.parametrize("position", [0, 1, 2, 3])
def test_planting_fits_the_test_weeks_and_ranges(ap, resolution_min, position):
    clean = window(ap, resolution_min)
    test_start = ap.ANCHOR + pd.Timedelta(weeks=ap.TEST_WEEK)
    kinds = ap.kinds_of(position)
    planted, labels = ap.plant(clean, resolution_min, test_start, kinds, seed=0)

    assert sorted(labels["kind"]) == sorted(kinds) and len(labels) == 8
    assert str(labels["start_utc"].dt.tz) == "UTC"
    start = labels["start_utc"].dt.tz_localize(None)
    end = labels["end_utc"].dt.tz_localize(None)
    last = clean["timestamp"].iloc[-1] + pd.Timedelta(minutes=resolution_min)
    assert (start >= test_start).all() and (end <= last).all()
    gaps = start.iloc[1:].to_numpy() - end.iloc[:-1].to_numpy()
    assert (gaps >= np.timedelta64(ap.MIN_GAP_HOURS, "h")).all()  # no overlap, 24 h apart

    stamps, before, after = clean["timestamp"], clean["value"].to_numpy(), planted["value"]
    inside = np.zeros(len(clean), bool)
    slot = pd.Timedelta(minutes=resolution_min)
    for row, a, b in zip(labels.itertuples(), start, end, strict=True):
        mask = ((stamps >= a) & (stamps < b)).to_numpy()
        inside |= mask
        hours = (b - a) / pd.Timedelta(hours=1)
        got, ref = after.to_numpy()[mask], before[mask]
        if row.kind == "spike":
            assert b - a == slot and 2.5 <= got[0] / ref[0] <= 3.0
        elif row.kind == "flat_line":
            assert 24 <= hours <= 36 and (got == ref[0]).all()
        elif row.kind == "stuck_zero":
            assert 12 <= hours <= 36 and (got == 0).all()
        elif row.kind == "time_shift":
            k = int(row.magnitude) * 60 // resolution_min
            first = int(np.flatnonzero(mask)[0])
            assert 72 <= hours <= 168 and row.magnitude in (1, 2, 3)
            assert np.array_equal(got, before[first - k : first - k + mask.sum()])
        else:
            low, high = ap.PLANTS[row.kind].low, ap.PLANTS[row.kind].high
            lo_h, hi_h = ap.PLANTS[row.kind].hours
            assert lo_h <= hours <= hi_h
            assert np.allclose(got / ref, row.magnitude) and low <= row.magnitude <= high
    assert np.array_equal(after.to_numpy()[~inside], before[~inside])  # nothing else moved


def test_a_set_holds_every_kind_and_planting_is_seeded(ap):
    kinds = {k for i in range(len(ap.DEVELOPMENT)) for k in ap.kinds_of(i)}
    assert kinds == set(ap.PLANTS)
    clean = window(ap, 60, meter="a")
    test_start = ap.ANCHOR + pd.Timedelta(weeks=ap.TEST_WEEK)
    one = ap.plant(clean, 60, test_start, ap.kinds_of(0), seed=3)[1]
    two = ap.plant(clean, 60, test_start, ap.kinds_of(0), seed=3)[1]
    other = ap.plant(clean.assign(meter_id="b"), 60, test_start, ap.kinds_of(0), seed=3)[1]
    pd.testing.assert_frame_equal(one, two)
    assert not one["start_utc"].equals(other["start_utc"])


def test_sets_are_disjoint_monday_windows(ap):
    dev = {s.name for s in ap.DEVELOPMENT}
    held = {s.name for s in ap.HELD_BACK}
    assert not dev & held
    for spec in (*ap.DEVELOPMENT, *ap.HELD_BACK):
        assert pd.Timestamp(spec.start).dayofweek == 0
        assert spec.offset % pd.Timedelta(weeks=1) == pd.Timedelta(0)
