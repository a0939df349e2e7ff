"""Ground-truth label alignment, flagged events and detection metrics.

Labels table: ``meter_id, kind, start_utc, end_utc (exclusive), magnitude``. Series timestamps
are naive local slot starts, so label bounds are converted UTC -> ``timezone`` -> naive; a
point is labelled when its slot ``[t, t + resolution)`` overlaps ``[start, end)``.

Metrics (point-wise on the evaluated split, only when it holds a labelled point):
``precision``, ``recall``, ``f1``, ``auc_roc`` (on the continuous score; only when both classes
occur), ``recall_<kind>`` per kind, ``event_recall`` (share of labelled anomalies with at least
one flagged point) and ``event_recall_<kind>``. Always: ``flagged_share`` and ``n_events``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from meterflow.anomaly.windowed import SHIFTED_DAY
from meterflow.errors import SchemaError

LABEL_COLUMNS = ("meter_id", "kind", "start_utc", "end_utc")


def _to_local_naive(values: pd.Series, timezone: str, what: str) -> pd.Series:
    try:
        ts = pd.to_datetime(values)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"anomaly labels: column {what!r} is not a timestamp ({exc})") from exc
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        ts = ts.dt.tz_localize("UTC")  # naive label bounds are UTC by contract
    return ts.dt.tz_convert(timezone).dt.tz_localize(None).astype("datetime64[ns]")


def prepare_labels(labels: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Checked labels with ``start``/``end`` in naive local time and a ``label_id``."""
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise SchemaError(f"anomaly labels lack column(s) {missing}")
    out = pd.DataFrame(
        {
            "label_id": np.arange(len(labels)),
            "meter_id": labels["meter_id"].astype(str).to_numpy(),
            "kind": labels["kind"].astype(str).to_numpy(),
            "start": _to_local_naive(labels["start_utc"], timezone, "start_utc").to_numpy(),
            "end": _to_local_naive(labels["end_utc"], timezone, "end_utc").to_numpy(),
        }
    )
    bad = out["end"] <= out["start"]
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SchemaError(
            f"anomaly labels row {i} (meter={out['meter_id'].iloc[i]}): end_utc is not after "
            f"start_utc"
        )
    return out


def align_labels(
    meter_ids: np.ndarray,
    timestamps: np.ndarray,
    labels: pd.DataFrame,
    resolution_min: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For points (meter, naive local slot start), sorted by meter then time: the label flag,
    the kind (None when unlabelled) and the label id (-1) of the first overlapping label."""
    n = len(meter_ids)
    label_id = np.full(n, -1, dtype=np.int64)
    ids = np.asarray(meter_ids, dtype=object)
    stamps = np.asarray(timestamps, dtype="datetime64[ns]")
    slot = np.timedelta64(resolution_min, "m")
    bounds = pd.Series(np.arange(n)).groupby(ids).agg(["min", "max"])
    for row in labels.itertuples(index=False):
        if row.meter_id not in bounds.index:
            continue
        lo, hi = bounds.loc[row.meter_id]
        t = stamps[lo : hi + 1]
        # overlap: t < end and t + slot > start
        a = lo + np.searchsorted(t, np.datetime64(row.start, "ns") - slot, side="right")
        b = lo + np.searchsorted(t, np.datetime64(row.end, "ns"), side="left")
        if b > a:
            part = label_id[a:b]
            part[part < 0] = row.label_id
    kinds = labels["kind"].to_numpy(dtype=object)
    kind = np.where(label_id >= 0, kinds[np.maximum(label_id, 0)] if len(kinds) else None, None)
    return label_id >= 0, kind, label_id


def find_events(
    meter_ids: np.ndarray,
    timestamps: np.ndarray,
    flagged: np.ndarray,
    scores: np.ndarray,
    resolution_min: int,
    merge_gap: int = 1,
    kind: np.ndarray | None = None,
) -> pd.DataFrame:
    """Runs of flagged points per meter (sorted by meter then time), bridging up to
    ``merge_gap`` missing or unflagged slots: ``meter_id, start, end (exclusive), n_flagged,
    peak_score`` and, with labels, the most frequent ``kind`` among the event's points."""
    columns = ["meter_id", "start", "end", "n_flagged", "peak_score"]
    idx = np.flatnonzero(flagged)
    if len(idx) == 0:
        dtypes = ["object", "datetime64[ns]", "datetime64[ns]", "int64", "float64", "object"]
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip([*columns, "kind"], dtypes, strict=True)}
        )
    ids = np.asarray(meter_ids, dtype=object)[idx]
    stamps = np.asarray(timestamps, dtype="datetime64[ns]")[idx]
    step = np.timedelta64(resolution_min, "m")
    new = np.ones(len(idx), dtype=bool)
    new[1:] = (ids[1:] != ids[:-1]) | (stamps[1:] - stamps[:-1] > step * (merge_gap + 1))
    event = np.cumsum(new) - 1
    df = pd.DataFrame(
        {"event": event, "meter_id": ids, "t": stamps, "score": np.asarray(scores)[idx]}
    )
    if kind is not None:
        df["kind"] = np.asarray(kind, dtype=object)[idx]
    grouped = df.groupby("event", sort=True)
    out = pd.DataFrame(
        {
            "meter_id": grouped["meter_id"].first(),
            "start": grouped["t"].min(),
            "end": grouped["t"].max() + step,
            "n_flagged": grouped.size(),
            "peak_score": grouped["score"].max(),
        }
    )
    if kind is not None:
        out["kind"] = grouped["kind"].agg(
            lambda k: k.dropna().mode().iloc[0] if k.notna().any() else None
        )
    else:
        out["kind"] = None
    return out.reset_index(drop=True)


def _metric_name(kind: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(kind).lower()).strip("_") or "unknown"


def detection_metrics(
    label: np.ndarray | None,
    label_id: np.ndarray | None,
    kind: np.ndarray | None,
    score: np.ndarray,
    flagged: np.ndarray,
    events: pd.DataFrame,
    n_meter_months: float,
) -> dict[str, float]:
    """Point-wise and event-level metrics (see the module docstring); never NaN."""
    false_events = events["label_kind"].isna().sum() if "label_kind" in events else len(events)
    out = {
        "flagged_share": float(np.mean(flagged)) if len(flagged) else 0.0,
        "n_events": float(len(events)),
        "false_alarms_per_meter_month": float(false_events / max(n_meter_months, 1e-9)),
    }
    if label is None or label_id is None or kind is None or not np.any(label):
        return out
    label = np.asarray(label, dtype=bool)
    p, r, f, _ = precision_recall_fscore_support(
        label, flagged, average="binary", zero_division=0.0
    )
    out.update(precision=float(p), recall=float(r), f1=float(f))
    if not label.all():
        out["auc_roc"] = float(roc_auc_score(label, score))
        out["auc_pr"] = float(average_precision_score(label, score))
    kinds = np.asarray(kind, dtype=object)
    for k in sorted({str(x) for x in kinds[label]}):
        mask = label & (kinds == k)
        out[f"recall_{_metric_name(k)}"] = float(flagged[mask].mean())
    ev = pd.DataFrame({"id": label_id[label], "kind": kinds[label], "hit": flagged[label]})
    per_event = ev.groupby("id").agg(kind=("kind", "first"), hit=("hit", "any"))
    out["event_recall"] = float(per_event["hit"].mean())
    out["n_label_events"] = float(len(per_event))
    for k, part in per_event.groupby("kind"):
        out[f"event_recall_{_metric_name(k)}"] = float(part["hit"].mean())
    if "label_kind" in events and events["label_kind"].notna().any():
        found = events.loc[events["label_kind"].notna()]
        family = found["label_kind"].astype(str).str.replace(r"_(up|down)$", "", regex=True)
        out["kind_guess_accuracy"] = float((found["kind"] == family).mean())
    return out


SPIKE_HOURS = 12  # a point-driven event flagged this long at most, on unshifted days: a spike
THEFT_CHANGE = float(np.log(0.5))  # daily imports halved or worse: theft-like under-reading


def guess_kinds(events: pd.DataFrame, scores: pd.DataFrame, resolution_min: int) -> list[str]:
    """A kind for each event from the evidence that flagged it: a flat-line run (stuck at
    zero when every flagged reading is 0), a clock shift, a spike (the spike evidence, or a short
    point-driven excursion on days that are not shifted), or else a change of level
    (theft-like under-reading when the days' imports fell by ``THEFT_CHANGE`` in log or more,
    else a level shift)."""
    kinds = []
    by_meter = {m: part for m, part in scores.groupby("meter_id", sort=False)}
    for ev in events.itertuples(index=False):
        part = by_meter[ev.meter_id]
        inside = part.loc[(part["timestamp"] >= ev.start) & (part["timestamp"] < ev.end)]
        inside = inside.loc[inside["flagged"]]
        decided = inside["component"].mode()
        component = decided.iloc[0] if len(decided) else "point"
        change = (
            float(np.nanmedian(inside["day_change"])) if inside["day_change"].notna().any() else 0.0
        )
        if component == "flat":
            kinds.append("stuck_zero" if (inside["value"] == 0).all() else "flat_line")
        elif component == "clock":
            kinds.append("time_shift")
        elif component == "spike" or (
            component == "point"
            and ev.n_flagged * resolution_min <= SPIKE_HOURS * 60
            and abs(change) < SHIFTED_DAY
        ):
            kinds.append("spike")
        elif change <= THEFT_CHANGE:
            kinds.append("theft")
        else:
            kinds.append("level_shift")
    return kinds
