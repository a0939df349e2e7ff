"""Per-meter data-quality table of one ETL run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.etl.calendar import LocalCalendar
from meterflow.schemas import Action

_COLUMNS = ("readings_in", "readings_kept", "readings_quarantined", "readings_filled",
            "readings_corrected", "days_spanned", "days_kept", "completeness")  # fmt: skip


def quality_table(
    readings: pd.DataFrame,
    context: np.ndarray,
    kept: np.ndarray,
    quarantine: pd.DataFrame,
    profiles: pd.DataFrame,
    cal: LocalCalendar,
) -> pd.DataFrame:
    """One row per meter: readings_in/kept/quarantined/filled/corrected, days_spanned (local
    days from its first to its last reading), days_kept, completeness (days_kept /
    days_spanned) and one ``<action>_<reason>`` count column per reason that occurred."""
    table = _reading_counts(readings, ~context, kept)
    q = quarantine.assign(meter_id=quarantine["meter_id"].astype(object))
    counts = q.groupby(["meter_id", "action", "reason"], observed=True).size()
    by_kind = counts.unstack(["action", "reason"], fill_value=0)
    by_kind.columns = [f"{a}_{r}" for a, r in by_kind.columns]
    by_action = q.groupby(["meter_id", "action"], observed=True).size().unstack(fill_value=0)
    adapter_only = q.loc[~q["meter_id"].isin(table.index), "meter_id"].unique()
    table = table.reindex(table.index.union(pd.Index(adapter_only)))
    table["readings_quarantined"] = by_action.get(str(Action.DROPPED), pd.Series(dtype=int))
    table["readings_filled"] = by_action.get(str(Action.FILLED), pd.Series(dtype=int))
    table["readings_corrected"] = by_action.get(str(Action.CORRECTED), pd.Series(dtype=int))
    table = table.fillna({c: 0 for c in table.columns if c not in ("first", "last")})
    adapter_dropped = table["readings_quarantined"] - (
        table["readings"] - table["readings_kept"]
    ).clip(lower=0)
    table["readings_in"] = table["readings"] + adapter_dropped.clip(lower=0)
    first = table["first"].fillna(0).astype(np.int64).to_numpy()
    last = table["last"].fillna(0).astype(np.int64).to_numpy()
    d0, _ = cal.day_and_minute(first // cal.raw_ns)
    d1, _ = cal.day_and_minute(last // cal.raw_ns)
    table["days_spanned"] = np.where(table["first"].notna(), d1 - d0 + 1, 0)
    table["days_kept"] = profiles.groupby("meter_id").size().reindex(table.index, fill_value=0)
    table["completeness"] = np.where(
        table["days_spanned"] > 0, table["days_kept"] / table["days_spanned"].clip(lower=1), 0.0
    )
    out = table[list(_COLUMNS)].join(by_kind).fillna(0)
    for c in out.columns:
        if c != "completeness":
            out[c] = out[c].astype(np.int64)
    out.index.name = "meter_id"
    return out.reset_index()


def _reading_counts(readings: pd.DataFrame, live: np.ndarray, kept: np.ndarray) -> pd.DataFrame:
    """Per meter (sorted by id; meters without live readings left out): readings, kept, first
    and last timestamp (ns) of the live readings. Counted on integer meter codes (bincount,
    ufunc.at) instead of a groupby on the id strings."""
    col = readings["meter_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        names = col.cat.categories.to_numpy(object)
    else:
        codes, uniq = pd.factorize(col.astype(object).to_numpy())
        names = np.asarray(uniq, dtype=object)
    ts = readings["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    ok = live & (codes >= 0)  # a missing id has no group
    if not ok.all():
        codes, ts, kept = codes[ok], ts[ok], kept[ok]
    n = len(names)
    size = np.bincount(codes, minlength=n)
    n_kept = np.bincount(codes, weights=kept, minlength=n).astype(np.int64)  # exact counts
    first = np.full(n, np.iinfo(np.int64).max)
    last = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(first, codes, ts)
    np.maximum.at(last, codes, ts)
    present = np.flatnonzero(size)
    present = present[np.argsort(names[present], kind="stable")]
    index = pd.Index(names[present], dtype=object, name="meter_id")
    return pd.DataFrame(
        {
            "readings": size[present],
            "readings_kept": n_kept[present],
            "first": first[present],
            "last": last[present],
        },
        index=index,
    )


def quality_with_every_meter(quality: pd.DataFrame, meters: pd.DataFrame) -> pd.DataFrame:
    """The quality table with a row for every meter of the meter table: a meter without any
    reading of this source shows zeros and the note ``no readings`` (nothing skipped silently)."""
    known = quality["meter_id"].astype(str)
    absent = sorted(set(meters["meter_id"].astype(str)) - set(known))
    out = quality.assign(note="")
    if absent:
        zeros = pd.DataFrame({"meter_id": absent, "note": "no readings"})
        out = pd.concat([out, zeros], ignore_index=True)
        numeric = [c for c in out.columns if c not in ("meter_id", "note")]
        out[numeric] = out[numeric].fillna(0)
        out = out.astype({c: quality[c].dtype for c in numeric if c in quality})
    return out.sort_values("meter_id", ignore_index=True)


def combine_quality(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Quality tables of disjoint meter blocks as one table of all their meters, as one pass
    gives it: sorted by meter (quarantine rows of no meter last), the fixed count columns,
    then one per action and reason in sorted order (zero where a block had none)."""
    full = [p for p in parts if len(p)] or parts[:1]
    out = full[0] if len(full) == 1 else pd.concat(full, ignore_index=True)
    fixed = ["meter_id", *_COLUMNS]
    reasons = sorted((c for c in out.columns if c not in fixed), key=lambda c: c.split("_", 1))
    out = out[fixed + reasons].fillna({c: 0 for c in reasons})
    out = out.astype({c: np.int64 for c in (*fixed[1:], *reasons) if c != "completeness"})
    return out.sort_values("meter_id", kind="stable", na_position="last", ignore_index=True)
