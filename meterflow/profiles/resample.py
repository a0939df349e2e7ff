"""Energy-conserving change of resolution of daily-profile tables.

A profile slot holds the energy (Wh) of its interval, so going to a coarser resolution sums whole
groups of consecutive finer slots: the daily total is unchanged and a missing (NaN) finer slot
makes its coarse slot NaN (no energy is invented). Going finer cannot recover the shape inside a
slot: by default it is rejected; with ``split_coarse=True`` each coarse slot's energy is split
evenly over its finer slots (still energy-conserving, but flat inside the slot; lengths that are
not multiples of each other: cumulative energy interpolated) — the caller must opt in knowingly.
The array function is the ETL's: :func:`meterflow.etl.resample.resample_values`.
"""

from __future__ import annotations

import pandas as pd

from meterflow.errors import SchemaError
from meterflow.etl.resample import resample_values
from meterflow.schemas import (
    MINUTES_PER_DAY,
    PROFILE_KEYS,
    profile_matrix,
    profile_slot_columns,
    slot_columns,
)


def profile_resolution(df: pd.DataFrame) -> int:
    """Resolution in minutes of a profiles table (1440 / number of slot columns)."""
    n = len(profile_slot_columns(df))
    if MINUTES_PER_DAY % n:
        raise SchemaError(f"profiles table: {n} slots do not divide a day")
    return MINUTES_PER_DAY // n


def resample_profiles(
    df: pd.DataFrame, resolution_min: int, *, split_coarse: bool = False
) -> pd.DataFrame:
    """A profiles table at ``resolution_min``: keys unchanged, slot columns replaced.

    Extra (non-key, non-slot) columns are kept. See ``resample_values`` for the rules.
    """
    from_min = profile_resolution(df)
    cols = profile_slot_columns(df)
    new = resample_values(
        profile_matrix(df, cols), from_min, resolution_min, split_coarse=split_coarse
    )
    keep = [c for c in df.columns if c not in cols]
    out = df[keep].reset_index(drop=True)
    slots = pd.DataFrame(new, columns=slot_columns(new.shape[1]))
    out = pd.concat([out, slots], axis=1)
    first = [c for c in PROFILE_KEYS if c in out.columns]
    return out[first + [c for c in out.columns if c not in first]]
