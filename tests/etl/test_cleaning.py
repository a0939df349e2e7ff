"""Shared cleaning on small hand-made readings: every rule, counts and DST days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import ConfigError
from meterflow.etl import CleaningConfig, clean_readings, make_readings
from meterflow.schemas import QUARANTINE, profile_matrix, validate_profiles

TZ = "Europe/Rome"


def meters_table(**caps: tuple[float, float]) -> pd.DataFrame:
    ids = list(caps) or ["M1"]
    return pd.DataFrame(
        {
            "meter_id": ids,
            "contractual_power_kw": [caps[m][0] if caps else 3.0 for m in ids],
            "production_kw": [caps[m][1] if caps else 0.0 for m in ids],
            "type": "household",
            "latitude": 42.0,
            "longitude": 12.0,
        }
    )


def local_day(day: str, periods: int | None = None) -> pd.DatetimeIndex:
    """UTC interval starts of the local day ``day`` (all of them unless ``periods``)."""
    start = pd.Timestamp(day).tz_localize(TZ)
    end = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(TZ)
    idx = pd.date_range(start, end, freq="15min", inclusive="left").tz_convert("UTC")
    return idx if periods is None else idx[:periods]


def readings(ts: pd.DatetimeIndex, values, meter: str = "M1", register: str = "import"):
    values = np.broadcast_to(np.asarray(values, float), len(ts))
    return make_readings(np.full(len(ts), meter), ts, values, source="sql", register=register)


def reconcile(result) -> None:
    m = result.metrics
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
    dropped = (result.quarantine["action"] == "dropped").sum()
    assert dropped == m["readings_quarantined"]
    QUARANTINE.validate(result.quarantine)
    validate_profiles(result.profiles)


def test_clean_days_pass_unchanged_and_counts_reconcile():
    ts = local_day("2024-01-10").append(local_day("2024-01-11"))
    res = clean_readings(
        readings(ts, 100.0), meters_table(), CleaningConfig(resolution_min=15), source="sql"
    )
    reconcile(res)
    assert res.metrics["readings_in"] == 192 and res.metrics["readings_kept"] == 192
    assert res.metrics["meter_days_out"] == 2
    assert list(res.profiles["date"]) == [pd.Timestamp("2024-01-10"), pd.Timestamp("2024-01-11")]
    assert np.allclose(profile_matrix(res.profiles), 100.0)
    assert res.quarantine.empty
    q = res.quality.set_index("meter_id").loc["M1"]
    assert (q["days_kept"], q["days_spanned"], q["completeness"]) == (2, 2, 1.0)


def test_duplicates_exact_dropped_conflicting_resolved_by_neighbours():
    ts = local_day("2024-01-10")
    r = readings(ts, 100.0)
    extra = readings(ts[[10, 20]], [100.0, 180.0])  # exact copy, conflicting copy
    res = clean_readings(pd.concat([r, extra], ignore_index=True), meters_table(),
                         CleaningConfig(resolution_min=15), source="sql")  # fmt: skip
    reconcile(res)
    reasons = res.quarantine.groupby("reason").size().to_dict()
    assert reasons == {"duplicate": 1, "conflicting_duplicate": 1}
    conflict = res.quarantine[res.quarantine["reason"] == "conflicting_duplicate"].iloc[0]
    assert conflict["original_value"] == 180.0 and conflict["timestamp"] == ts[20]
    assert np.allclose(profile_matrix(res.profiles), 100.0)
    assert res.metrics["readings_in"] == 98 and res.metrics["readings_kept"] == 96


def test_outlier_beyond_contract_is_dropped_and_filled():
    ts = local_day("2024-01-10")
    values = np.full(96, 100.0)
    values[40] = 1e6  # 1 GWh in 15 min with a 3 kW contract
    res = clean_readings(
        readings(ts, values), meters_table(), CleaningConfig(resolution_min=15), source="sql"
    )
    reconcile(res)
    q = res.quarantine.set_index("reason")
    assert q.loc["outlier", "original_value"] == 1e6
    assert q.loc["outlier", "timestamp"] == ts[40]
    assert q.loc["gap", "action"] == "filled" and q.loc["gap", "new_value"] == 100.0
    assert np.allclose(profile_matrix(res.profiles), 100.0)


def test_energy_accumulated_over_a_gap_is_spread_not_rejected():
    ts = local_day("2024-01-10")
    values = np.full(96, 100.0)
    values[33] = 400.0  # intervals 30..32 missing, their energy reported with interval 33
    keep = np.ones(96, bool)
    keep[30:33] = False
    meters = meters_table(M1=(0.5, 0.0))  # 0.5 kW: at most ~137 Wh per interval
    res = clean_readings(
        readings(ts[keep], values[keep]), meters, CleaningConfig(resolution_min=15), source="sql"
    )
    reconcile(res)
    assert res.metrics["readings_quarantined"] == 0
    q = res.quarantine
    acc = q[q["reason"] == "accumulated_over_gap"]
    assert len(acc) == 1 and acc.iloc[0]["new_value"] == 100.0
    assert sorted(q.loc[q["action"] == "filled", "timestamp"]) == list(ts[30:33])
    mat = profile_matrix(res.profiles)
    assert np.allclose(mat, 100.0) and mat.sum() == pytest.approx(9600.0)


def test_short_gap_interpolated_long_gap_drops_the_day():
    ts = local_day("2024-01-10").append(local_day("2024-01-11"))
    values = np.r_[np.linspace(0, 95, 96), np.full(96, 50.0)]
    keep = np.ones(192, bool)
    keep[[41, 42]] = False  # 30 min: filled
    keep[96 + 20 : 96 + 28] = False  # 2 h: longer than max_gap_min=60 -> day dropped
    cfg = CleaningConfig(resolution_min=15)
    res = clean_readings(readings(ts[keep], values[keep]), meters_table(), cfg, source="sql")
    reconcile(res)
    assert list(res.profiles["date"]) == [pd.Timestamp("2024-01-10")]
    assert np.allclose(profile_matrix(res.profiles)[0], np.linspace(0, 95, 96))
    fills = res.quarantine[res.quarantine["action"] == "filled"]
    assert list(fills["new_value"]) == pytest.approx([41.0, 42.0])
    incomplete = res.quarantine[res.quarantine["reason"] == "incomplete_day"]
    assert len(incomplete) == 88 and incomplete["detail"].iloc[0] == "day has 88 of 96"
    assert res.metrics["readings_quarantined"] == 88


@pytest.mark.parametrize(("start", "filled"), [(4, True), (52, False)])
def test_night_rule_allows_longer_gaps_at_night(start: int, filled: bool):
    ts = local_day("2024-01-10")  # local 01:00 is interval 4, 13:00 is 52
    keep = np.ones(96, bool)
    keep[start : start + 12] = False  # 3 h
    cfg = CleaningConfig(
        resolution_min=15,
        max_gap_min=60,
        night_max_gap_min=180,
        night_start_hour=0,
        night_end_hour=5,
    )
    res = clean_readings(readings(ts[keep], 70.0), meters_table(), cfg, source="sql")
    reconcile(res)
    assert (res.metrics["meter_days_out"] == 1) is filled
    assert res.metrics["readings_filled"] == (12 if filled else 0)


def test_fall_back_day_repeated_hour_is_averaged_into_fixed_slots():
    ts = local_day("2024-10-27")
    assert len(ts) == 100
    values = np.full(100, 100.0)
    repeated = ts.hour == 1  # 01:00-01:45 UTC = second occurrence of local 02:00-02:45
    values[repeated] = 300.0
    res = clean_readings(
        readings(ts, values), meters_table(), CleaningConfig(resolution_min=15), source="sql"
    )
    reconcile(res)
    mat = profile_matrix(res.profiles)
    assert mat.shape == (1, 96)
    assert np.allclose(mat[0, 8:12], 200.0) and np.allclose(np.delete(mat[0], range(8, 12)), 100)
    merged = res.quarantine[res.quarantine["reason"] == "dst_fallback_merge"]
    assert len(merged) == 8 and set(merged["new_value"]) == {200.0}
    assert res.metrics["readings_kept"] == 100


def test_spring_forward_day_skipped_hour_is_interpolated():
    ts = local_day("2024-03-31")
    assert len(ts) == 92
    res = clean_readings(
        readings(ts, 100.0), meters_table(), CleaningConfig(resolution_min=15), source="sql"
    )
    reconcile(res)
    assert np.allclose(profile_matrix(res.profiles), 100.0)
    spring = res.quarantine[res.quarantine["reason"] == "dst_spring_gap"]
    assert len(spring) == 4 and set(spring["register"]) == {"net"}
    assert list(spring["detail"]) == [
        f"skipped wall-clock slot 02:{m:02d}" for m in (0, 15, 30, 45)
    ]


@pytest.mark.parametrize(("resolution", "n_slots"), [(15, 96), (60, 24), (20, 72), (5, 288)])
def test_resampling_to_any_divisor_of_a_day_conserves_energy(resolution: int, n_slots: int):
    ts = local_day("2024-01-10")
    values = np.arange(96, dtype=float)
    res = clean_readings(readings(ts, values), meters_table(),
                         CleaningConfig(resolution_min=resolution), source="sql")  # fmt: skip
    mat = profile_matrix(res.profiles)
    assert mat.shape == (1, n_slots)
    assert mat.sum() == pytest.approx(values.sum())
    if resolution == 60:
        assert np.allclose(mat[0], values.reshape(24, 4).sum(axis=1))
    if resolution == 5:
        assert np.allclose(mat[0], np.repeat(values / 3, 3))


def test_edge_checks_quarantine_unknown_meter_wrong_sign_and_off_grid():
    ts = local_day("2024-01-10")
    r = readings(ts, 100.0)
    bad = pd.concat(
        [
            readings(ts[:3], 10.0, meter="GHOST"),
            readings(ts[5:6], -50.0),  # import below zero
            readings(ts[6:7] + pd.Timedelta(minutes=7), 10.0),  # not on the 15-min grid
            readings(ts[7:8], np.nan),
        ],
        ignore_index=True,
    )
    res = clean_readings(pd.concat([r, bad], ignore_index=True), meters_table(),
                         CleaningConfig(resolution_min=15), source="sql")  # fmt: skip
    reconcile(res)
    got = res.quarantine.groupby("reason").size().to_dict()
    assert got == {"unknown_meter": 3, "negative_energy": 1, "off_grid_timestamp": 1,
                   "missing_value": 1}  # fmt: skip
    assert res.metrics["readings_in"] == 102 and res.metrics["readings_kept"] == 96
    ghost = res.quality.set_index("meter_id").loc["GHOST"]
    assert ghost["readings_in"] == 3 and ghost["readings_quarantined"] == 3


def test_import_and_export_are_netted_and_export_bounded_by_production():
    ts = local_day("2024-01-10")
    imp = readings(ts, 100.0, register="import")
    exp_values = np.full(96, -40.0)
    exp_values[50] = -5000.0  # beyond 2 kW production for 15 min
    exp = readings(ts, exp_values, register="export")
    res = clean_readings(pd.concat([imp, exp], ignore_index=True), meters_table(M1=(3.0, 2.0)),
                         CleaningConfig(resolution_min=15), source="sql")  # fmt: skip
    reconcile(res)
    out = res.quarantine[res.quarantine["reason"] == "outlier"]
    assert list(out["register"]) == ["export"] and list(out["original_value"]) == [-5000.0]
    assert np.allclose(profile_matrix(res.profiles), 60.0)
    assert res.metrics["readings_in"] == 192


def test_day_missing_a_register_of_its_meter_is_incomplete():
    ts = local_day("2024-01-10").append(local_day("2024-01-11"))
    imp = readings(ts, 100.0, register="import")
    exp = readings(ts[:96], -10.0, register="export")  # export only on the first day
    res = clean_readings(pd.concat([imp, exp], ignore_index=True), meters_table(M1=(3.0, 2.0)),
                         CleaningConfig(resolution_min=15), source="sql")  # fmt: skip
    reconcile(res)
    assert list(res.profiles["date"]) == [pd.Timestamp("2024-01-10")]
    assert res.metrics["quarantined_incomplete_day"] == 96


@pytest.mark.parametrize(
    "kwargs",
    [{"resolution_min": 7}, {"timezone": "Mars/Base"}, {"max_gap_min": -1},
     {"night_end_hour": 25}, {"scale_candidates": (1.0,)}],
)  # fmt: skip
def test_bad_settings_raise_config_error(kwargs):
    with pytest.raises(ConfigError):
        CleaningConfig(**kwargs)
