"""Anomaly alerts an operator can follow: one per event of a meter across runs.

Two layouts. A run's alerts (``alert_rows``, the ``alerts`` table logged with the run): one row
per event this run flagged, ``RUN_ALERT_COLUMNS``. The stored alerts: one row (document) per
event of a meter across runs, ``ALERT_COLUMNS``: ``alert_id``, ``meter_id``, ``kind`` (a guess,
may be null), ``start`` and ``end`` (naive, the series' own local clock, end exclusive),
``status`` ('open' when raised; operators own it: 'acknowledged', 'closed', ...), ``detector``,
``peak_score``, ``n_flagged``, ``first_seen_run``/``first_seen_at`` and
``last_seen_run``/``last_seen_at`` (naive UTC, milliseconds). Ids are
``<meter_id>:<kind or 'unknown'>:<start isoformat>`` (no run id) in both: a stored alert keeps
the id of the event that raised it, and a run logs each event under its own id, also when the
store merges it into an older alert.

``merge_alerts`` decides, without a database, what a run changes. The run's events of one meter
and kind that overlap or touch ([start, end): one's end equal to the other's start) form a
group. A group updates the stored alert of the same meter and kind whose [start, end) overlaps
or touches its span, the earliest-starting one (then the smallest id) when several do; a group
that meets none is a new alert with status 'open'. An update keeps ``alert_id``, ``kind``,
``status`` and ``first_seen_*``; ``start`` becomes the earliest, ``end`` the latest,
``peak_score`` the largest, ``n_flagged`` the largest of the stored count and this run's count
(the most flagged readings one run saw), ``detector`` and ``last_seen_run`` this run's and
``last_seen_at`` ``now`` (kept when this run already was the last to see it). Alerts a run would
not change are not written, so a rerun of a run changes nothing.

Pure: tables in, tables out; the stores are the sinks of ``meterflow.sources.alert_sinks``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import InputError

RUN_ALERT_COLUMNS = (
    "alert_id",
    "run_id",
    "detector",
    "meter_id",
    "start",
    "end",
    "kind",
    "peak_score",
    "n_flagged",
)
ALERT_COLUMNS = (
    "alert_id",
    "meter_id",
    "kind",
    "start",
    "end",
    "status",
    "detector",
    "peak_score",
    "n_flagged",
    "first_seen_run",
    "first_seen_at",
    "last_seen_run",
    "last_seen_at",
)
EVENT_COLUMNS = ("meter_id", "start", "end", "kind", "peak_score", "n_flagged")
# what a later run may change in a stored alert
MUTABLE_COLUMNS = (
    "start",
    "end",
    "detector",
    "peak_score",
    "n_flagged",
    "last_seen_run",
    "last_seen_at",
)
STATUS_OPEN = "open"
UNKNOWN_KIND = "unknown"
_TIMES = "datetime64[ns]"
# pandas' string dtype for ids; ``kind`` stays object so a missing guess is None
_DTYPES: dict[str, Any] = {
    "alert_id": "str",
    "run_id": "str",
    "meter_id": "str",
    "kind": object,
    "start": _TIMES,
    "end": _TIMES,
    "status": "str",
    "detector": "str",
    "peak_score": "float64",
    "n_flagged": "int64",
    "first_seen_run": "str",
    "first_seen_at": _TIMES,
    "last_seen_run": "str",
    "last_seen_at": _TIMES,
}


def typed_alerts(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame``'s ``columns`` in that order with the module's dtypes (``kind``: str or None)."""
    if not len(frame):
        return pd.DataFrame({c: pd.Series([], dtype=_DTYPES[c]) for c in columns})
    kind = pd.Series([None if pd.isna(k) else str(k) for k in frame["kind"]], dtype=object)
    out = frame.reset_index(drop=True)[list(columns)].assign(kind=kind)
    return out.astype({c: _DTYPES[c] for c in columns})


def naive_times(values: pd.Series, name: str) -> pd.Series:
    """``values`` as naive datetime64[ns]; ValueError for missing or time-zone-aware stamps."""
    times = pd.to_datetime(values)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        raise InputError(f"alert {name!r} must be naive (the series' local clock)")
    if times.isna().any():
        raise InputError(f"alert {name!r} has missing times")
    return times.astype(_TIMES)


def _kind_key(kind: pd.Series) -> pd.Series:
    """The kind as matched and written in ids: the guess, or 'unknown' without one."""
    return pd.Series([UNKNOWN_KIND if pd.isna(k) else str(k) for k in kind], index=kind.index)


def _match_key(frame: pd.DataFrame) -> pd.Series:
    """Meter and kind key of each row: rows match only rows of the same key."""
    return frame["meter_id"].astype(str) + "\x00" + _kind_key(frame["kind"])


def _alert_ids(meter: pd.Series, kind: pd.Series, start: pd.Series) -> list[str]:
    keys = zip(meter.astype(str), _kind_key(kind), start, strict=True)
    return [f"{m}:{k}:{pd.Timestamp(s).isoformat()}" for m, k, s in keys]


def alert_rows(events: pd.DataFrame, run_id: str, detector: str) -> pd.DataFrame:
    """The alerts of ``events`` (one per event) in ``RUN_ALERT_COLUMNS`` order, with
    ``run_id``, ``detector`` and ``alert_id`` = ``<meter_id>:<kind or 'unknown'>:<start>``.

    ValueError when a column is missing (a table without rows may have none) or two events
    share a meter, kind and start."""
    missing = [c for c in EVENT_COLUMNS if c not in events.columns]
    if missing and len(events):
        raise InputError(f"events lack column(s) {missing}")
    if not len(events):
        return typed_alerts(pd.DataFrame(), RUN_ALERT_COLUMNS)
    out = events.reset_index(drop=True).assign(
        meter_id=lambda e: e["meter_id"].astype(str),
        start=lambda e: naive_times(e["start"], "start"),
        end=lambda e: naive_times(e["end"], "end"),
        run_id=str(run_id),
        detector=str(detector),
    )
    out["alert_id"] = _alert_ids(out["meter_id"], out["kind"], out["start"])
    dup = out["alert_id"].duplicated()
    if dup.any():
        raise InputError(f"events share a meter, kind and start: {out['alert_id'][dup].iloc[0]}")
    return typed_alerts(out, RUN_ALERT_COLUMNS)


def utc_naive(now: datetime | pd.Timestamp | None) -> pd.Timestamp:
    """``now`` (naive: taken as UTC; None: the current time) as naive UTC, whole milliseconds."""
    stamp = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.floor("ms")


def _groups(new: pd.DataFrame) -> pd.DataFrame:
    """The run's events of one meter and kind that overlap or touch, merged: one row per group
    with its span, largest score, total count and detector (``key`` = meter and kind key)."""
    ev = new.assign(key=_match_key(new))
    ev = ev.sort_values(["key", "start", "end"], kind="stable", ignore_index=True)
    reach = ev.groupby("key")["end"].cummax().groupby(ev["key"]).shift()
    ev["group"] = (reach.isna() | (ev["start"] > reach)).cumsum()
    return ev.groupby("group", sort=True).agg(
        key=("key", "first"),
        meter_id=("meter_id", "first"),
        kind=("kind", "first"),
        start=("start", "min"),
        end=("end", "max"),
        peak_score=("peak_score", "max"),
        n_flagged=("n_flagged", "sum"),
        detector=("detector", "last"),
    )


def _targets(groups: pd.DataFrame, existing: pd.DataFrame) -> pd.Series:
    """For each group, the id of the stored alert it updates (NaN: none meets it)."""
    if not len(existing):
        return pd.Series(np.nan, index=groups.index, dtype=object)
    ex = existing.assign(key=_match_key(existing))
    pairs = groups.reset_index().merge(
        ex[["key", "alert_id", "start", "end"]], on="key", suffixes=("", "_ex")
    )
    meets = (pairs["start_ex"] <= pairs["end"]) & (pairs["start"] <= pairs["end_ex"])
    first = pairs[meets].sort_values(["group", "start_ex", "alert_id"], kind="stable")
    chosen = first.drop_duplicates("group").set_index("group")["alert_id"]
    return chosen.reindex(groups.index).astype(object)


def _updated(
    existing: pd.DataFrame, hits: pd.DataFrame, run_id: str, now: pd.Timestamp
) -> pd.DataFrame:
    """The stored alerts ``hits`` (groups with their ``target``) update, as merged rows."""
    by = hits.groupby("target").agg(
        start=("start", "min"),
        end=("end", "max"),
        peak_score=("peak_score", "max"),
        n_flagged=("n_flagged", "sum"),
        detector=("detector", "last"),
    )
    old = existing.set_index("alert_id").loc[by.index]
    merged = old.assign(
        start=np.minimum(old["start"], by["start"].to_numpy()),
        end=np.maximum(old["end"], by["end"].to_numpy()),
        peak_score=np.fmax(old["peak_score"], by["peak_score"].to_numpy()),
        n_flagged=np.maximum(old["n_flagged"], by["n_flagged"].to_numpy()),
        detector=by["detector"].to_numpy(),
        last_seen_run=str(run_id),
        last_seen_at=old["last_seen_at"].where(old["last_seen_run"] == str(run_id), now),
    )
    same = pd.Series(True, index=merged.index)
    for col in MUTABLE_COLUMNS:
        same &= (merged[col] == old[col]) | (merged[col].isna() & old[col].isna())
    return merged[~same].rename_axis("alert_id").reset_index()


def merge_alerts(
    existing: pd.DataFrame,
    new: pd.DataFrame,
    run_id: str,
    now: datetime | pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What run ``run_id`` changes in the stored alerts: ``(to_update, to_insert)``, both in
    ``ALERT_COLUMNS``. ``existing``: stored alerts (``ALERT_COLUMNS``; those that cannot match
    may be left out); ``new``: the run's ``alert_rows``; ``now``: when the run writes (naive is
    UTC). Pure; see the module docstring for the rules. ValueError when ``new`` lacks a column
    or holds rows of another run."""
    missing = [c for c in RUN_ALERT_COLUMNS if c not in new.columns]
    if missing and len(new):
        raise InputError(f"alerts lack column(s) {missing}")
    empty = typed_alerts(pd.DataFrame(), ALERT_COLUMNS)
    if not len(new):
        return empty, empty
    if (new["run_id"].astype(str) != str(run_id)).any():
        raise InputError(f"alerts hold rows of a run other than {run_id!r}")
    new = typed_alerts(new, RUN_ALERT_COLUMNS)
    existing = typed_alerts(existing, ALERT_COLUMNS) if len(existing) else empty
    when = utc_naive(now)
    groups = _groups(new)
    groups["target"] = _targets(groups, existing)
    hits, fresh = groups[groups["target"].notna()], groups[groups["target"].isna()]
    to_update = _updated(existing, hits, run_id, when) if len(hits) else empty
    to_insert = fresh.assign(
        alert_id=_alert_ids(fresh["meter_id"], fresh["kind"], fresh["start"]),
        status=STATUS_OPEN,
        first_seen_run=str(run_id),
        first_seen_at=when,
        last_seen_run=str(run_id),
        last_seen_at=when,
    )
    return typed_alerts(to_update, ALERT_COLUMNS), typed_alerts(to_insert, ALERT_COLUMNS)
