"""Harmonisation: cross-source dedupe with provenance and losers, resampling, normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import ConfigError, SchemaError
from meterflow.profiles.harmonize import LOSER_COLUMNS, harmonize
from meterflow.profiles.normalize import normalize, normalize_values
from meterflow.profiles.resample import profile_resolution, resample_profiles
from meterflow.schemas import slot_columns, validate_profiles


def table(source: str, rows: list[tuple[str, str, np.ndarray]]) -> pd.DataFrame:
    """A profiles table of one source from (meter, day, values) rows."""
    width = len(rows[0][2])
    values = np.stack([r[2] for r in rows]).astype(np.float64)
    df = pd.DataFrame(values, columns=slot_columns(width))
    df.insert(0, "meter_id", [r[0] for r in rows])
    df.insert(1, "date", pd.to_datetime([r[1] for r in rows]))
    df.insert(2, "source", source)
    return validate_profiles(df)


def quarter_hours(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.0, 250.0, 96)


def hourly(values_15: np.ndarray) -> np.ndarray:
    return values_15.reshape(24, 4).sum(axis=1)


@pytest.fixture
def sources() -> dict[str, pd.DataFrame]:
    """newmongo and sql at 15 min, oldmongo hourly; overlaps on M1/2024-03-02 (all three) and
    M2/2024-03-01 (sql incomplete vs oldmongo complete)."""
    m1d2 = quarter_hours(2)
    sql_m1d2 = m1d2.copy()
    sql_m1d2[10] += 40.0  # the historian disagrees on one quarter hour
    sql_m2 = quarter_hours(5)
    sql_m2[50] = np.nan
    return {
        "newmongo": table(
            "newmongo", [("M1", "2024-03-02", m1d2), ("M1", "2024-03-03", quarter_hours(3))]
        ),
        "sql": table(
            "sql",
            [
                ("M1", "2024-03-01", quarter_hours(1)),
                ("M1", "2024-03-02", sql_m1d2),
                ("M2", "2024-03-01", sql_m2),
            ],
        ),
        "oldmongo": table(
            "oldmongo",
            [
                ("M1", "2024-03-02", hourly(m1d2) * 1.01),
                ("M2", "2024-03-01", hourly(quarter_hours(5))),
                ("M3", "2024-02-28", hourly(quarter_hours(9))),
            ],
        ),
    }


def test_dedupe_keeps_provenance_and_records_losers(sources: dict[str, pd.DataFrame]) -> None:
    res = harmonize(
        list(sources.values()), resolution_min=60, priority=("newmongo", "sql", "oldmongo")
    )
    p = res.profiles
    assert list(p.columns[:3]) == ["meter_id", "date", "source"]
    assert len(p.columns) == 3 + 24
    keys = [
        (m, d.strftime("%Y-%m-%d"), s)
        for m, d, s in p[["meter_id", "date", "source"]].itertuples(index=False)
    ]
    assert keys == [
        ("M1", "2024-03-01", "sql"),
        ("M1", "2024-03-02", "newmongo"),
        ("M1", "2024-03-03", "newmongo"),
        ("M2", "2024-03-01", "oldmongo"),  # sql's profile has a gap: the complete one wins
        ("M3", "2024-02-28", "oldmongo"),
    ]
    assert res.overlaps == 2
    losers = res.losers.sort_values(["meter_id", "date", "source"]).reset_index(drop=True)
    assert list(losers.columns) == list(LOSER_COLUMNS)
    assert losers[["meter_id", "source", "winner_source", "reason"]].values.tolist() == [
        ["M1", "oldmongo", "newmongo", "lower_priority"],
        ["M1", "sql", "newmongo", "lower_priority"],
        ["M2", "sql", "oldmongo", "incomplete"],
    ]
    m1d2 = hourly(quarter_hours(2))
    assert losers.loc[0, "max_abs_diff_wh"] == pytest.approx(0.01 * m1d2.max())
    assert losers.loc[1, "max_abs_diff_wh"] == pytest.approx(40.0)
    assert losers.loc[2, "max_abs_diff_wh"] == pytest.approx(0.0, abs=1e-9)  # NaN hour skipped
    # the winner's values are the winner source's, resampled
    row = p[(p.meter_id == "M1") & (p.source == "newmongo")].iloc[0]
    assert np.allclose(row[slot_columns(24)].to_numpy(dtype=float), m1d2)


def test_priority_order_decides(sources: dict[str, pd.DataFrame]) -> None:
    res = harmonize(
        list(sources.values()), resolution_min=60, priority=("oldmongo", "sql", "newmongo")
    )
    won = res.profiles.set_index(["meter_id", res.profiles["date"].dt.strftime("%Y-%m-%d")])[
        "source"
    ]
    assert won[("M1", "2024-03-02")] == "oldmongo"
    assert won[("M2", "2024-03-01")] == "oldmongo"
    assert len(res.losers) == 3
    with pytest.raises(ConfigError, match="newmongo"):
        harmonize(list(sources.values()), resolution_min=60, priority=("sql", "oldmongo"))
    with pytest.raises(ConfigError, match="twice"):
        harmonize(list(sources.values()), resolution_min=60, priority=("sql", "sql"))


def test_mixed_resolutions_conserve_energy(sources: dict[str, pd.DataFrame]) -> None:
    no_overlap = [sources["newmongo"], sources["oldmongo"][sources["oldmongo"].meter_id == "M3"]]
    res = harmonize(no_overlap, resolution_min=60, priority=("newmongo", "oldmongo"))
    assert res.losers.empty and list(res.losers.columns) == list(LOSER_COLUMNS)
    before = pd.concat([df[slot_columns(df.shape[1] - 3)].sum(axis=1) for df in no_overlap])
    after = res.profiles[slot_columns(24)].sum(axis=1)
    assert np.allclose(np.sort(after.to_numpy()), np.sort(before.to_numpy()), rtol=0, atol=1e-9)
    assert profile_resolution(res.profiles) == 60
    # 15 -> 30 min sums pairs of quarter hours
    half = resample_profiles(sources["newmongo"], 30)
    assert half.shape[1] == 3 + 48
    assert half.loc[0, "slot_00"] == pytest.approx(
        sources["newmongo"].loc[0, ["slot_00", "slot_01"]].sum()
    )
    # a missing quarter hour makes its hour missing, it is not filled
    sql_hourly = resample_profiles(sources["sql"], 60)
    m2 = sql_hourly[sql_hourly.meter_id == "M2"].iloc[0]
    assert np.isnan(m2["slot_12"]) and m2[slot_columns(24)].isna().sum() == 1


def test_coarser_input_than_target(sources: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(SchemaError, match="coarser"):
        harmonize(list(sources.values()), resolution_min=15)
    res = harmonize(list(sources.values()), resolution_min=15, split_coarse=True)
    m3 = res.profiles[res.profiles.meter_id == "M3"].iloc[0][slot_columns(96)].to_numpy(dtype=float)
    expected = np.repeat(hourly(quarter_hours(9)) / 4, 4)
    assert np.allclose(m3, expected)
    assert m3.sum() == pytest.approx(quarter_hours(9).sum())
    with pytest.raises(SchemaError, match="multiple"):
        resample_profiles(sources["oldmongo"], 90)  # 90 is not a multiple of 60
    with pytest.raises(SchemaError, match="divide"):
        harmonize(list(sources.values()), resolution_min=7)


def test_bad_inputs(sources: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(ConfigError):
        harmonize([], resolution_min=60)
    twice = [sources["sql"], sources["sql"]]
    with pytest.raises(SchemaError, match="duplicate key meter=M1"):
        harmonize(twice, resolution_min=60)
    broken = sources["sql"].drop(columns=["slot_05"])
    with pytest.raises(SchemaError, match="input table 0"):
        harmonize([broken], resolution_min=60)


def test_normalizations() -> None:
    x = np.array(
        [
            [1.0, 2.0, 2.0, 4.0],
            [0.0, 0.0, 0.0, 0.0],  # all zero
            [0.3, 0.3, 0.3, 0.3],  # constant
            [-2.0, 1.0, 0.0, 1.0],  # net export in one slot
            [np.nan, 3.0, 0.0, 4.0],  # a missing slot
        ]
    )
    assert np.array_equal(normalize_values(x, "none"), x, equal_nan=True)
    l2 = normalize_values(x, "l2")
    assert np.allclose(l2[0], [0.2, 0.4, 0.4, 0.8])
    assert np.allclose(l2[2], [0.5] * 4)
    assert np.allclose(l2[4], [np.nan, 0.6, 0.0, 0.8], equal_nan=True)
    z = normalize_values(x, "zscore")
    assert np.allclose(z[0], (x[0] - 2.25) / np.std(x[0]))
    assert np.allclose(z[0].mean(), 0.0) and np.allclose(z[0].std(), 1.0)
    assert np.array_equal(z[2], [0.0] * 4)  # constant: zeros, not NaN or noise
    mx = normalize_values(x, "max")
    assert np.allclose(mx[0], [0.25, 0.5, 0.5, 1.0])
    assert np.allclose(mx[3], [-1.0, 0.5, 0.0, 0.5])  # divided by max |x|, sign kept
    for method in ("l2", "zscore", "max"):
        out = normalize_values(x, method)
        assert np.array_equal(out[1], [0.0] * 4), method  # all-zero stays all zero
        assert np.isnan(out[4, 0]) and not np.isnan(out[4, 1:]).any(), method
    with pytest.raises(ConfigError, match="unknown normalization"):
        normalize_values(x, "cube")


def test_normalize_table_keeps_keys(sources: dict[str, pd.DataFrame]) -> None:
    df = sources["newmongo"]
    out = normalize(df, "l2")
    assert out[["meter_id", "date", "source"]].equals(df[["meter_id", "date", "source"]])
    norms = np.linalg.norm(out[slot_columns(96)].to_numpy(), axis=1)
    assert np.allclose(norms, 1.0)
    assert not df[slot_columns(96)].equals(out[slot_columns(96)])  # input untouched, copy out
