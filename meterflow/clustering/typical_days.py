"""Each meter's typical days: its mean weekday profile and mean weekend profile, side by side.

From a profile table (``meter_id``, ``date``, one ``slot_NN`` column per slot, one row per
meter-day) :func:`typical_days` averages, slot by slot, each meter's Monday-Friday days and its
Saturday-Sunday days, and puts the two means in one row per meter: ``weekday_slot_00`` ..,
``weekend_slot_00`` .., with the number of days behind each (``weekdays``, ``weekend_days``).

Meters that cannot be described are listed, never dropped silently: a meter with fewer than
``min_weekdays`` weekdays or ``min_weekend_days`` weekend days, or whose mean has a slot with no
value at all (every day of that kind lacks it), goes to ``skipped`` with the reason. Missing
slots on some days are ignored by the mean (the other days of that kind fill the slot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import ConfigError, SchemaError
from meterflow.schemas import slot_columns

WEEKEND = (5, 6)  # Saturday, Sunday (pandas dayofweek)
HALVES = ("weekday", "weekend")
COUNT_COLUMNS = ("weekdays", "weekend_days")


@dataclass(frozen=True)
class TypicalDays:
    """``table``: one row per meter described (meter_id, weekdays, weekend_days, the weekday
    slots, the weekend slots); ``skipped``: meter_id, weekdays, weekend_days, reason;
    ``slots``: slots per day."""

    table: pd.DataFrame
    skipped: pd.DataFrame
    slots: int

    def values(self) -> np.ndarray:
        """The typical days as an array (meters, 2 * slots): weekday slots, then weekend."""
        return self.table[half_columns(self.slots)].to_numpy(dtype=np.float64)

    def half(self, which: str) -> np.ndarray:
        """The ``weekday`` or ``weekend`` mean profiles (meters, slots)."""
        return self.table[half_columns(self.slots, which)].to_numpy(dtype=np.float64)


def half_columns(slots: int, which: str = "") -> list[str]:
    """The columns of one half (``weekday`` / ``weekend``), or of both in order (``''``)."""
    halves = HALVES if not which else (which,)
    if not set(halves) <= set(HALVES):
        raise ConfigError(f"a typical day is one of {HALVES}, got {which!r}")
    return [f"{h}_{c}" for h in halves for c in slot_columns(slots)]


def typical_days(
    profiles: pd.DataFrame, *, min_weekdays: int = 1, min_weekend_days: int = 1
) -> TypicalDays:
    """Each meter's mean weekday and weekend profile (module doc)."""
    if min_weekdays < 1 or min_weekend_days < 1:
        raise ConfigError("typical days need at least one day of each kind")
    missing = {"meter_id", "date"} - set(profiles.columns)
    if missing:
        raise SchemaError(f"profile table lacks column(s) {sorted(missing)}")
    slots = [c for c in profiles.columns if c.startswith("slot_")]
    if not slots:
        raise SchemaError("profile table has no slot columns")
    weekend = pd.to_datetime(profiles["date"]).dt.dayofweek.isin(WEEKEND).to_numpy()
    means, counts = {}, {}
    for name, rows in zip(HALVES, (~weekend, weekend), strict=True):
        grouped = profiles.loc[rows, ["meter_id", *slots]].groupby("meter_id", sort=True)
        means[name] = grouped[slots].mean()
        counts[name] = grouped.size()
    meters = pd.Index(sorted(profiles["meter_id"].unique()), name="meter_id")
    out = pd.DataFrame(index=meters)
    for name, count in zip(HALVES, COUNT_COLUMNS, strict=True):
        out[count] = counts[name].reindex(meters, fill_value=0).astype("int64")
    for name in HALVES:
        half = means[name].reindex(meters)
        half.columns = [f"{name}_{c}" for c in slot_columns(len(slots))]
        out = out.join(half)
    reason = _reasons(out, len(slots), min_weekdays, min_weekend_days)
    kept = reason == ""
    skipped = out.loc[~kept, list(COUNT_COLUMNS)].assign(reason=reason[~kept]).reset_index()
    return TypicalDays(out.loc[kept].reset_index(), skipped, len(slots))


def _reasons(out: pd.DataFrame, slots: int, min_weekdays: int, min_weekend: int) -> pd.Series:
    """Why each meter cannot be described ('' = it can), the first reason that applies."""
    reason = pd.Series("", index=out.index, dtype=object)
    gaps = out[half_columns(slots)].isna().any(axis=1)
    reason[gaps] = "a slot without any value"
    reason[out["weekend_days"] < min_weekend] = f"fewer than {min_weekend} weekend day(s)"
    reason[out["weekdays"] < min_weekdays] = f"fewer than {min_weekdays} weekday(s)"
    return reason
