"""Scale detection on synthetic meters: factors, periods and no false alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.etl import CleaningConfig, clean_readings, make_readings
from meterflow.schemas import profile_matrix

TZ = "Europe/Rome"
CFG = CleaningConfig(resolution_min=15, detect_scale=True)


def series(
    days: int, seed: int = 0, start: str = "2024-01-08"
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """A household-like meter: Wh per 15 min with a daily shape, weekends and noise."""
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start).tz_localize(TZ)
    ts = pd.date_range(t0, periods=days * 96, freq="15min").tz_convert("UTC")
    local = ts.tz_convert(TZ)
    hour = local.hour + local.minute / 60
    shape = 60 + 120 * np.exp(-((hour - 8) ** 2) / 2) + 220 * np.exp(-((hour - 20) ** 2) / 4)
    weekend = np.where(local.dayofweek >= 5, 1.25, 1.0)
    return ts, np.round(np.asarray(shape * weekend) * rng.lognormal(0, 0.15, len(ts)), 1)


def meters(cap_kw: float = 6.0) -> pd.DataFrame:
    return pd.DataFrame(
        {"meter_id": ["M1"], "contractual_power_kw": [cap_kw], "production_kw": [0.0],
         "type": "household", "latitude": 0.0, "longitude": 0.0}
    )  # fmt: skip


def run(ts, values, **kwargs):
    r = make_readings(np.full(len(ts), "M1"), ts, values, source="oldmongo", register="import")
    return clean_readings(r, meters(), CFG, source="oldmongo", **kwargs)


def test_no_correction_on_a_clean_meter():
    ts, v = series(90)
    res = run(ts, v)
    assert res.scale_corrections.empty
    assert res.metrics.get("corrected_scale", 0) == 0


@pytest.mark.parametrize("factor", [1000.0, 0.001, 10.0, 4.0, 60.0])
def test_period_found_with_its_factor_and_exact_bounds(factor: float):
    ts, v = series(60, seed=int(factor * 7) % 97)  # no DST day: energy comparable
    a, b = 30 * 96 + 37, 52 * 96 + 11  # starts and ends mid-day
    raw = v.copy()
    raw[a:b] = raw[a:b] * factor
    res = run(ts, raw)
    rep = res.scale_corrections
    assert len(rep) == 1
    row = rep.iloc[0]
    assert row["factor"] == factor and row["meter_id"] == "M1"
    assert row["start"] == ts[a] and row["end"] == ts[b]
    assert "neighbouring periods" in row["evidence"]
    fixed = res.quarantine[res.quarantine["reason"] == "scale"]
    assert len(fixed) == b - a
    assert np.allclose(fixed["new_value"], v[a:b][np.argsort(ts[a:b])])
    assert profile_matrix(res.profiles).sum() == pytest.approx(v.sum(), rel=1e-9)


def test_whole_series_beyond_the_contract_found_from_contractual_power():
    ts, v = series(40, seed=3)
    res = run(ts, v * 60)
    rep = res.scale_corrections
    assert len(rep) == 1 and rep.iloc[0]["factor"] == 60.0
    assert rep.iloc[0]["evidence"].startswith("whole series")


def test_whole_series_factor_anchored_by_another_sources_profiles():
    ts, v = series(40, seed=5)
    truth = run(ts, v).profiles  # the same meter-days from a trusted source
    res = run(ts, v * 10, reference_profiles=truth.iloc[-3:])
    rep = res.scale_corrections
    assert len(rep) == 1 and rep.iloc[0]["factor"] == 10.0
    assert np.allclose(profile_matrix(res.profiles), profile_matrix(truth))


def test_short_drops_like_holidays_are_not_taken_for_unit_errors():
    ts, v = series(60, seed=11)
    raw = v.copy()
    raw[20 * 96 : 22 * 96] *= 0.1  # two days at a tenth: a closure, not a 3-day unit error
    res = run(ts, raw)
    assert res.scale_corrections.empty
