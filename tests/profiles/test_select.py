"""The DTW sample: bounded in rows, stratified across meters and days (and meter types), stable
night to night (a new day swaps only that day's and the oldest day's rows), no incomplete rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.profiles.select import meter_days_mask, meter_rank
from meterflow.schemas import slot_columns
from meterflow.tasks.clustering_input import file_dtw_rows
from meterflow.tasks.harmonization import _dtw_subset


def fleet(meters: int, days: int, start: str = "2025-01-01") -> pd.DataFrame:
    """Every meter on every day (meter-major), ids M0000.."""
    keys = pd.MultiIndex.from_product(
        [[f"M{i:04d}" for i in range(meters)], pd.date_range(start, periods=days)],
        names=["meter_id", "date"],
    )
    return keys.to_frame(index=False)


def chosen(table: pd.DataFrame, mask: np.ndarray) -> set[tuple[str, pd.Timestamp]]:
    return set(table.loc[mask, ["meter_id", "date"]].itertuples(index=False, name=None))


def sample(table: pd.DataFrame, max_rows: int, **kwargs) -> np.ndarray:
    return meter_days_mask(table["meter_id"], table["date"], max_rows, **kwargs)


@pytest.mark.parametrize("max_rows", [0, 1, 3, 6, 7, 50, 137, 699, 700, 1000, 5000])
@pytest.mark.parametrize(("meters", "days"), [(1000, 30), (50, 60), (3, 400), (40, 2)])
def test_never_more_than_max_rows(meters: int, days: int, max_rows: int) -> None:
    table = fleet(meters, days)
    mask = sample(table, max_rows)
    assert mask.sum() <= max_rows
    if len(table) <= max_rows:
        assert mask.all()
    elif max_rows:
        assert mask.sum() >= max_rows // 2  # a full fleet fills most of the budget


def test_many_meters_and_the_most_recent_week() -> None:
    table = fleet(1000, 30)
    mask = sample(table, 700)  # 7 days x 100 meters
    picked = table[mask]
    assert mask.sum() == 700
    assert picked["meter_id"].nunique() == 100
    assert sorted(picked["date"].unique()) == list(pd.date_range("2025-01-24", periods=7))
    assert picked.groupby("meter_id").size().eq(7).all()


def test_few_meters_take_more_days() -> None:
    table = fleet(50, 60)
    picked = table[sample(table, 1000)]  # every meter fits for 20 days
    assert picked["meter_id"].nunique() == 50 and picked["date"].nunique() == 20
    assert picked["date"].min() == pd.Timestamp("2025-01-01") + pd.Timedelta(days=40)


def test_meter_types_are_sampled_in_proportion() -> None:
    table = fleet(1000, 10)
    kinds = ["household"] * 600 + ["commercial"] * 300 + ["agricultural"] * 100
    types = pd.Series(kinds, index=[f"M{i:04d}" for i in range(1000)])
    picked = table[sample(table, 140, meter_types=types)]  # 7 days x 20 meters
    per_type = picked.drop_duplicates("meter_id")["meter_id"].map(types).value_counts()
    assert per_type.to_dict() == {"household": 12, "commercial": 6, "agricultural": 2}
    unknown = sample(table, 140, meter_types=types.iloc[:500])  # the rest: an unknown type
    assert unknown.sum() == 140


def test_a_new_day_swaps_only_that_day_and_the_oldest_one() -> None:
    table = fleet(1000, 30)
    today = chosen(table, sample(table, 700))
    later = fleet(1000, 31)
    tomorrow = chosen(later, sample(later, 700))
    days = sorted({d for _, d in today})
    meters = {m for m, _ in today}
    assert today - tomorrow == {(m, days[0]) for m in meters}
    assert tomorrow - today == {(m, pd.Timestamp("2025-01-31")) for m in meters}


def test_incomplete_rows_are_never_chosen_nor_replaced() -> None:
    table = fleet(1000, 30)
    complete = np.ones(len(table), dtype=bool)
    complete[np.random.default_rng(0).choice(len(table), 3000, replace=False)] = False
    mask = sample(table, 700, usable=complete)
    assert not (mask & ~complete).any()
    assert 600 < mask.sum() <= 700
    assert chosen(table, mask) <= chosen(table, sample(table, 700))  # same meters and days


def test_rows_without_a_date_are_never_chosen() -> None:
    table = fleet(20, 10)
    table.loc[::3, "date"] = pd.NaT
    mask = sample(table, 1000)
    assert mask.sum() == table["date"].notna().sum() and table.loc[mask, "date"].notna().all()


def test_rank_is_seeded_and_stable() -> None:
    ids = pd.Series([f"M{i:04d}" for i in range(50)])
    assert np.array_equal(meter_rank(ids, 0), meter_rank(ids.copy(), 0))
    assert not np.array_equal(meter_rank(ids, 0), meter_rank(ids, 1))
    assert meter_rank(pd.Series(["M0001"]), 0)[0] == meter_rank(pd.Series(["M0001"]))[0]
    table = fleet(1000, 10)
    assert chosen(table, sample(table, 140, seed=1)) != chosen(table, sample(table, 140))


def test_harmonization_subset_skips_incomplete_profiles_and_uses_types() -> None:
    keys = fleet(300, 20)
    values = np.random.default_rng(1).gamma(2.0, 50.0, (len(keys), 24))
    values[[5, 19, 39], [3, 0, 23]] = np.nan  # M0000 on day 5 and the newest day, M0001 newest
    profiles = pd.concat([keys, pd.DataFrame(values, columns=slot_columns(24))], axis=1)
    meters = pd.DataFrame(
        {"meter_id": [f"M{i:04d}" for i in range(300)], "type": ["a", "b", "c"] * 100}
    )
    subset = _dtw_subset(profiles, meters, 700)  # 7 days x 100 meters
    assert len(subset) <= 700 and not subset.filter(like="slot_").isna().any().any()
    assert subset["date"].nunique() == 7 and subset["meter_id"].nunique() == 100
    types = subset.drop_duplicates("meter_id")["meter_id"].map(meters.set_index("meter_id")["type"])
    assert types.value_counts().to_dict() == {"a": 34, "b": 33, "c": 33}


def test_file_rows_sample_meters_and_days() -> None:
    table = fleet(1000, 30)
    rows = file_dtw_rows(table, 700, seed=42)
    assert len(rows) == 700 and table.iloc[rows]["date"].nunique() == 7
    assert np.array_equal(file_dtw_rows(table.iloc[:500], 700, seed=42), np.arange(500))
    undated = table.drop(columns="date")
    assert len(file_dtw_rows(undated, 700, seed=42)) == 700
