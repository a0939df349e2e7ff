"""What an ETL or load run tells a person in the MLflow UI (pure: numbers and tables in, text
out): the run's headline metrics (at most a handful; the per-reason counts live in the
``corrections_summary`` table and the ``quarantine_reasons`` figure) and its Markdown
description, verdict first."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from meterflow.etl.result import EtlResult
from meterflow.prose import count, description, percent, seconds
from meterflow.schemas import Action

# per-(action, reason) counts of the shared cleaning: a family, logged as a table instead
FAMILY_PREFIXES = ("quarantined_", "filled_", "corrected_")
NOT_FAMILY = ("quarantined_share",)
TOP_REASONS = 3  # reasons named in a description
QUARANTINE_FILES = (
    "`tables/quarantine.parquet` (every record; first rows in `previews/quarantine.csv`)"
)


def share_of(part: float, whole: float) -> float:
    """``part / whole``, NaN when ``whole`` is 0 (shown as ``n/a``)."""
    return part / whole if whole else math.nan


def fleet_completeness(quality: pd.DataFrame) -> float:
    """Meter-days kept out of meter-days spanned (first to last reading of each meter), over
    the whole fleet of the quality table; NaN without any spanned day."""
    if quality.empty:
        return math.nan
    return share_of(float(quality["days_kept"].sum()), float(quality["days_spanned"].sum()))


def headline_metrics(metrics: dict[str, float], quality: pd.DataFrame) -> dict[str, float]:
    """The ETL run's metrics: the result's counts without the per-(action, reason) family, plus
    ``completeness`` (:func:`fleet_completeness`, 0 without any spanned day)."""
    out = {k: v for k, v in metrics.items() if k in NOT_FAMILY or not k.startswith(FAMILY_PREFIXES)}
    share = fleet_completeness(quality)
    out["completeness"] = 0.0 if math.isnan(share) else share
    return out


def top_reasons(summary: pd.DataFrame, action: str, n: int = TOP_REASONS) -> pd.DataFrame:
    """The ``n`` largest reasons of ``action`` in a ``corrections_summary`` table (reason,
    count), largest first."""
    rows = summary.loc[summary["action"].astype(str) == action, ["reason", "count"]]
    rows = rows.assign(reason=rows["reason"].astype(str))
    return rows.sort_values("count", ascending=False, kind="stable").head(n)


def _reason_list(summary: pd.DataFrame, action: str, total: float | None = None) -> str:
    """``"52 100 duplicate (41 %), 300 outlier (0.2 %) and 2 more reason(s)"`` for the largest
    reasons of ``action``; without ``total`` no shares."""
    top = top_reasons(summary, action)
    if top.empty:
        return ""
    parts = [
        f"{count(c)} {r}" + ("" if total is None else f" ({percent(share_of(c, total))})")
        for r, c in top.itertuples(index=False)
    ]
    more = (summary["action"].astype(str) == action).sum() - len(top)
    return ", ".join(parts) + (f" and {more} more reason(s)" if more > 0 else "")


def period(profiles: pd.DataFrame) -> str:
    """``2024-10-01 to 2025-10-14 (379 days)`` of the profiles' dates, ``no days`` if none."""
    if profiles.empty:
        return "no days"
    first, last = pd.Timestamp(profiles["date"].min()), pd.Timestamp(profiles["date"].max())
    days = (last - first).days + 1
    return f"{first.date()} to {last.date()} ({days} days)"


@dataclass(frozen=True)
class EtlStory:
    """What the description of one ETL run says besides the result: the store in words
    (``SQL historian``), where it is (no credentials) and how many meters the meter table
    holds."""

    title: str
    store: str
    meters_known: int


def etl_verdict(result: EtlResult, story: EtlStory) -> str:
    """The first line: kept share of the readings, what was quarantined and why, meter-days out."""
    m = result.metrics
    n_in, n_quar = m["readings_in"], m["readings_quarantined"]
    if not n_in:
        return f"No readings read from the {story.title}: no profiles out."
    top = top_reasons(result.corrections_summary, str(Action.DROPPED), 2)
    why = ", ".join(f"{percent(share_of(c, n_quar))} {r}" for r, c in top.itertuples(index=False))
    days = m["meter_days_out"]
    complete = fleet_completeness(result.quality)
    return (
        f"Kept {percent(share_of(m['readings_kept'], n_in))} of {count(n_in)} readings from the "
        f"{story.title}; {count(n_quar)} quarantined" + (f" ({why})" if why else "") + "; "
        f"{count(days)} meter-days out, {percent(complete)} of the days spanned complete."
    )


def _data_line(result: EtlResult, story: EtlStory) -> str:
    m = result.metrics
    extra = []
    if "documents_in" in m:
        extra.append(
            f"{count(m['documents_in'])} documents (+{count(m.get('documents_context', 0))} "
            "context documents of earlier loads)"
        )
    if "files_in" in m:
        extra.append(f"{count(m['files_in'])} files, {count(m['files_not_read'])} not read")
    if "rows_read" in m:
        extra.append(f"{count(m['rows_read'])} rows read in {seconds(m['read_seconds'])}")
    detail = "; ".join(extra)
    return (
        f"{story.title} at {story.store}; {period(result.profiles)}; "
        f"{count(m.get('meters_out', 0))} of {count(story.meters_known)} meters with profiles"
        + (f"; {detail}" if detail else "")
    )


def _changes(result: EtlResult) -> list[tuple[str, str]]:
    m = result.metrics
    summary = result.corrections_summary
    n_quar = m["readings_quarantined"]
    dropped = _reason_list(summary, str(Action.DROPPED), n_quar)
    rejected = f"{count(n_quar)} readings" + (f": {dropped}" if dropped else "")
    changed = []
    kinds = ((Action.CORRECTED, "readings_corrected"), (Action.FILLED, "readings_filled"))
    for action, key in kinds:
        reasons = _reason_list(summary, str(action))
        if m.get(key):
            changed.append(f"{count(m[key])} {action}" + (f": {reasons}" if reasons else ""))
    if m.get("scale_corrections"):
        changed.append(f"{count(m['scale_corrections'])} scale corrections")
    return [("Rejected", rejected), ("Changed", "; ".join(changed) if changed else "nothing")]


def _look_next(result: EtlResult) -> str:
    m = result.metrics
    where = ["`figures/quarantine_reasons.png`", QUARANTINE_FILES]
    where.append("`previews/quality.csv` (per meter) and `figures/completeness.png`")
    if m.get("scale_corrections"):
        where.append("`previews/scale_corrections.csv`")
    if m.get("files_not_read"):
        where.append("`previews/files.csv` (why files were not read)")
    return "; ".join(where) + "; reason codes in `previews/reasons.csv`"


def etl_description(result: EtlResult, story: EtlStory) -> str:
    """The Markdown description of an ETL run: verdict, data, what was rejected or changed and
    why, where to look next."""
    bullets = [
        ("Data", _data_line(result, story)),
        *_changes(result),
        ("Look next", _look_next(result)),
    ]
    return description(etl_verdict(result, story), bullets)


@dataclass(frozen=True)
class LoadStory:
    """What one ``load_newmongo`` run did: the documents it loaded (``late`` of them read time
    at or before ``since``), the window it read and where from."""

    store: str  # host/database.collection, no credentials
    documents: int
    late: int
    meters: int
    context: int
    with_issue: int
    since: pd.Timestamp | None  # documents after it are new; None: from the start
    read_since: pd.Timestamp | None  # where the read began (look-back), None: from the start
    watermark: pd.Timestamp | None
    incremental: bool  # since=watermark and an earlier load had one


def when(ts: pd.Timestamp | None, empty: str = "the start") -> str:
    """A UTC time for people (``2025-10-14 22:00 UTC``), ``empty`` for None."""
    if ts is None or pd.isna(ts):
        return empty
    stamp = pd.Timestamp(ts)
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M UTC")


def after(since: pd.Timestamp | None) -> str:
    """``after 2025-10-14 22:00 UTC``, or ``from the start`` for None."""
    return "from the start" if since is None else f"after {when(since)}"


def load_description(load: LoadStory) -> str:
    """The Markdown description of a ``load_newmongo`` run."""
    window = after(load.since)
    how = (
        "incremental: after the last load's watermark"
        if load.incremental
        else "full read"
        if load.since is None
        else "from the given time"
    )
    if load.documents:
        verdict = (
            f"Loaded {count(load.documents)} documents of {count(load.meters)} meters {window} "
            f"({how}); watermark now {when(load.watermark, 'n/a')}."
        )
    else:
        stays = when(load.watermark, "n/a")
        verdict = f"No new documents {window} ({how}); watermark stays {stays}."
    result = (
        f"{count(load.documents - load.late)} new, {count(load.late)} late (stored after an "
        f"earlier load read their time), {count(load.context)} context documents for "
        f"differencing across the boundary, {count(load.with_issue)} with an issue (the ETL "
        "quarantines or corrects them)"
    )
    bullets = [
        ("Data", f"MongoDB {load.store}; read window from {when(load.read_since)}"),
        ("Result", result),
        (
            "Look next",
            "`previews/documents.csv`, `previews/context.csv`; the `etl_newmongo` run that "
            "reads this load",
        ),
    ]
    return description(verdict, bullets)
