"""Unify the daily-profile tables of all sources into one table with provenance.

Rules
    1. Every input table must satisfy the profiles contract (``validate_profiles``). Tables may be
       at different resolutions; each is brought to ``resolution_min`` energy-conservingly
       (``resample.py``: finer slots are summed; coarser-than-target input is rejected unless
       ``split_coarse=True``).
    2. Each meter-day appears once in the output. When several sources cover it, the winner is
       the first of: complete profiles (no NaN slot) before incomplete ones, then the order of
       ``priority`` — by default ``("newmongo", "sql", "oldmongo")``, newest store first (it holds
       the most recent corrections, and old exports carry the unit-scale problems).
    3. The winning ``source`` stays as the provenance column; every other candidate is listed in
       ``losers`` with the winner's source, a reason (``lower_priority`` or ``incomplete``) and
       ``max_abs_diff_wh``, the largest slot difference to the winner (NaN when no slot pair is
       comparable). Nothing is dropped silently.

A source not named in ``priority`` is a ConfigError (its rank would otherwise be a guess).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.domain import SOURCE_NEWMONGO, SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import ConfigError
from meterflow.schemas import (
    PROFILE_KEYS,
    profile_slot_columns,
    slot_columns,
    slots_per_day,
    validate_profiles,
)

from .resample import resample_profiles

log = logging.getLogger(__name__)

DEFAULT_PRIORITY = (SOURCE_NEWMONGO, SOURCE_SQL, SOURCE_OLDMONGO)
LOSER_COLUMNS = ("meter_id", "date", "source", "winner_source", "reason", "max_abs_diff_wh")
REASON_LOWER_PRIORITY = "lower_priority"
REASON_INCOMPLETE = "incomplete"


@dataclass(frozen=True, eq=False)
class Harmonized:
    """Result of ``harmonize``.

    ``profiles``: meter_id, date, source (the winner: provenance), slot_00.. (Wh at
    ``resolution_min``), one row per (meter_id, date), sorted by meter_id then date.
    ``losers``: one row per overlapping candidate that lost (``LOSER_COLUMNS``).
    """

    profiles: pd.DataFrame
    losers: pd.DataFrame
    resolution_min: int

    @property
    def overlaps(self) -> int:
        """Meter-days that more than one source covered."""
        if self.losers.empty:
            return 0
        return int(self.losers[["meter_id", "date"]].drop_duplicates().shape[0])


def _check_priority(priority: Sequence[str]) -> dict[str, int]:
    if isinstance(priority, str) or not priority:
        raise ConfigError(
            f"priority must be a non-empty sequence of source names, got {priority!r}"
        )
    ranks = {str(s): k for k, s in enumerate(priority)}
    if len(ranks) != len(priority):
        raise ConfigError(f"priority lists a source twice: {list(priority)}")
    return ranks


def harmonize(
    tables: Sequence[pd.DataFrame],
    *,
    resolution_min: int,
    priority: Sequence[str] = DEFAULT_PRIORITY,
    split_coarse: bool = False,
) -> Harmonized:
    """Merge profiles tables into one row per meter-day; see the module doc for the rules."""
    if not tables:
        raise ConfigError("harmonize needs at least one profiles table")
    n_slots = slots_per_day(resolution_min)
    ranks = _check_priority(priority)
    cols = slot_columns(n_slots)
    parts = []
    for k, df in enumerate(tables):
        where = f"harmonize input table {k}"
        validate_profiles(df, where=where)
        unknown = sorted(set(df["source"].astype(str)) - set(ranks))
        if unknown:
            raise ConfigError(
                f"{where}: source(s) {unknown} not in priority {list(priority)}; add them to "
                "the priority order"
            )
        slots = profile_slot_columns(df)
        part = resample_profiles(
            df[[*PROFILE_KEYS, *slots]], resolution_min, split_coarse=split_coarse
        )
        part["meter_id"] = part["meter_id"].astype(str)
        part["source"] = part["source"].astype(str)
        part["date"] = part["date"].astype("datetime64[ns]")
        parts.append(part)
    allp = pd.concat(parts, ignore_index=True)
    validate_profiles(allp, where="harmonize inputs taken together")  # same source twice?

    values = allp[cols].to_numpy(dtype=np.float64)
    allp["_incomplete"] = np.isnan(values).any(axis=1)
    allp["_rank"] = allp["source"].map(ranks).astype(np.int64)
    allp["_row"] = np.arange(len(allp))
    allp = allp.sort_values(
        ["meter_id", "date", "_incomplete", "_rank"], kind="stable", ignore_index=True
    )
    lost = allp.duplicated(["meter_id", "date"], keep="first").to_numpy()
    winners = allp.loc[~lost]
    losers = _losers(allp.loc[lost], winners, values, cols)

    profiles = winners[[*PROFILE_KEYS, *cols]].reset_index(drop=True)
    validate_profiles(profiles, where="harmonize output")
    result = Harmonized(profiles=profiles, losers=losers, resolution_min=resolution_min)
    log.info(
        "harmonized %d input profiles into %d meter-days at %d min; %d overlapping meter-days, "
        "%d losing candidates recorded",
        len(allp),
        len(profiles),
        resolution_min,
        result.overlaps,
        len(losers),
    )
    return result


def _losers(
    lost: pd.DataFrame, winners: pd.DataFrame, values: np.ndarray, cols: list[str]
) -> pd.DataFrame:
    """The losers table: each losing candidate against its meter-day's winner."""
    if lost.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in LOSER_COLUMNS})
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame["max_abs_diff_wh"] = frame["max_abs_diff_wh"].astype(np.float64)
        return frame
    win = winners[["meter_id", "date", "source", "_incomplete", "_row"]].rename(
        columns={"source": "winner_source", "_incomplete": "_w_incomplete", "_row": "_w_row"}
    )
    merged = lost.merge(win, on=["meter_id", "date"], how="left", validate="many_to_one")
    diff = np.abs(values[merged["_row"].to_numpy()] - values[merged["_w_row"].to_numpy()])
    with warnings.catch_warnings():  # rows with no comparable slot give NaN on purpose
        warnings.simplefilter("ignore", RuntimeWarning)
        max_diff = np.nanmax(diff, axis=1) if diff.shape[1] else np.full(len(diff), np.nan)
    incomplete = merged["_incomplete"].to_numpy() & ~merged["_w_incomplete"].to_numpy()
    reason = np.where(incomplete, REASON_INCOMPLETE, REASON_LOWER_PRIORITY)
    out = merged[["meter_id", "date", "source", "winner_source"]].copy()
    out["reason"] = reason
    out["max_abs_diff_wh"] = max_diff.astype(np.float64)
    return out.reset_index(drop=True)
