"""Each meter's typical weekday and weekend day, on hand-built tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.clustering.typical_days import half_columns, typical_days
from meterflow.errors import ConfigError, SchemaError

MONDAY = pd.Timestamp("2024-01-01")  # a Monday


def table(rows: list[tuple[str, int, list[float]]]) -> pd.DataFrame:
    """(meter_id, day offset from a Monday, slot values) rows as a profile table."""
    return pd.DataFrame(
        [
            {"meter_id": m, "date": MONDAY + pd.Timedelta(days=d)}
            | {f"slot_{i:02d}": v for i, v in enumerate(values)}
            for m, d, values in rows
        ]
    )


def test_weekday_and_weekend_means_are_exact():
    profiles = table(
        [
            ("a", 0, [1.0, 2.0, 3.0]),  # Monday
            ("a", 2, [3.0, 4.0, 5.0]),  # Wednesday
            ("a", 5, [10.0, 0.0, 0.0]),  # Saturday
            ("a", 6, [20.0, 0.0, 4.0]),  # Sunday
            ("b", 4, [7.0, 7.0, 7.0]),  # Friday
            ("b", 12, [1.0, 2.0, 3.0]),  # Saturday
        ]
    )
    typical = typical_days(profiles)
    assert typical.slots == 3 and typical.skipped.empty
    assert typical.table["meter_id"].tolist() == ["a", "b"]
    assert typical.table["weekdays"].tolist() == [2, 1]
    assert typical.table["weekend_days"].tolist() == [2, 1]
    np.testing.assert_allclose(typical.half("weekday"), [[2.0, 3.0, 4.0], [7.0, 7.0, 7.0]])
    np.testing.assert_allclose(typical.half("weekend"), [[15.0, 0.0, 2.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(
        typical.values(), np.hstack([typical.half("weekday"), typical.half("weekend")])
    )
    assert half_columns(3)[:4] == [
        "weekday_slot_00",
        "weekday_slot_01",
        "weekday_slot_02",
        "weekend_slot_00",
    ]


def test_meters_without_weekend_or_weekdays_are_listed_with_the_reason():
    profiles = table(
        [
            ("full", 0, [1.0, 1.0]),
            ("full", 5, [2.0, 2.0]),
            ("no_weekend", 1, [1.0, 1.0]),
            ("no_weekend", 3, [1.0, 1.0]),
            ("no_weekdays", 6, [1.0, 1.0]),
        ]
    )
    typical = typical_days(profiles)
    assert typical.table["meter_id"].tolist() == ["full"]
    reasons = typical.skipped.set_index("meter_id")["reason"]
    assert reasons["no_weekend"] == "fewer than 1 weekend day(s)"
    assert reasons["no_weekdays"] == "fewer than 1 weekday(s)"
    assert typical.skipped.set_index("meter_id").loc["no_weekend", "weekdays"] == 2


def test_minimum_day_counts_and_slots_without_any_value():
    profiles = table(
        [
            ("a", 0, [1.0, np.nan]),
            ("a", 1, [3.0, 2.0]),  # the weekday NaN is filled by the other weekday
            ("a", 5, [1.0, 1.0]),
            ("b", 0, [1.0, 1.0]),
            ("b", 5, [1.0, np.nan]),  # no weekend value at all in slot 1
        ]
    )
    typical = typical_days(profiles)
    np.testing.assert_allclose(typical.half("weekday"), [[2.0, 2.0]])
    assert typical.skipped.set_index("meter_id").loc["b", "reason"] == "a slot without any value"
    strict = typical_days(profiles, min_weekdays=2, min_weekend_days=2)
    assert strict.table.empty
    reasons = strict.skipped.set_index("meter_id")["reason"]
    assert reasons["a"] == "fewer than 2 weekend day(s)"  # two weekdays, one weekend day
    assert reasons["b"] == "fewer than 2 weekday(s)"  # the first reason that applies


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="at least one day"):
        typical_days(table([("a", 0, [1.0])]), min_weekend_days=0)
    with pytest.raises(SchemaError, match="date"):
        typical_days(pd.DataFrame({"meter_id": ["a"], "slot_00": [1.0]}))
    with pytest.raises(ConfigError, match="typical day"):
        half_columns(3, "holiday")
