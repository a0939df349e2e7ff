"""Post-hoc tables of a clustering (the reference's analysis): the assignment table, cluster
sizes, and what each cluster is made of by meter type, weekday and month.

Counts are of profiles (meter-days): a meter whose days fall in several clusters counts in each.
Wide tables have one row per cluster (column ``cluster``, all clusters 0..k-1 when ``k`` is
given) and one column per category, in a fixed order.
"""

from __future__ import annotations

import calendar
import logging

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError

log = logging.getLogger(__name__)

WEEKDAYS = list(calendar.day_name)  # Monday .. Sunday
MONTHS = list(calendar.month_abbr)[1:]  # Jan .. Dec
UNKNOWN_TYPE = "unknown"


def assignment_table(profiles: pd.DataFrame, labels: np.ndarray) -> pd.DataFrame:
    """(meter_id, [date], [source], cluster) for profiles in the order of ``labels``."""
    if "meter_id" not in profiles.columns:
        raise SchemaError("profile table lacks column 'meter_id'")
    if len(profiles) != len(labels):
        raise SchemaError(f"{len(labels)} labels for {len(profiles)} profiles")
    keys = [c for c in ("meter_id", "date", "source") if c in profiles.columns]
    out = profiles[keys].reset_index(drop=True).copy()
    out["cluster"] = np.asarray(labels, dtype=np.int64)
    return out


def _check(assign: pd.DataFrame, needs: tuple[str, ...]) -> None:
    missing = [c for c in needs if c not in assign.columns]
    if missing:
        raise SchemaError(f"assignment table lacks column(s) {missing}")


def _clusters(assign: pd.DataFrame, k: int | None) -> pd.Index:
    top = int(assign["cluster"].max()) + 1 if len(assign) else 0
    return pd.RangeIndex(max(top, k or 0), name="cluster")


def _wide(
    assign: pd.DataFrame, by: pd.Series, order: list[str], k: int | None, share: bool
) -> pd.DataFrame:
    table = pd.crosstab(assign["cluster"].to_numpy(), by.to_numpy())
    table = table.reindex(index=_clusters(assign, k), columns=order, fill_value=0).astype("int64")
    if share:
        totals = table.sum(axis=1).replace(0, 1)
        table = table.div(totals, axis=0)
    table.columns.name = None
    return table.reset_index()


def cluster_sizes(assign: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """cluster, profiles (count), share (of all profiles), meters (distinct meter ids)."""
    _check(assign, ("meter_id", "cluster"))
    index = _clusters(assign, k)
    grouped = assign.groupby("cluster")
    out = pd.DataFrame(
        {
            "profiles": grouped.size().reindex(index, fill_value=0).astype("int64"),
            "meters": grouped["meter_id"].nunique().reindex(index, fill_value=0).astype("int64"),
        }
    )
    out.insert(1, "share", out["profiles"] / max(len(assign), 1))
    return out.reset_index()


def composition_by_type(
    assign: pd.DataFrame, meters: pd.DataFrame, *, k: int | None = None, share: bool = False
) -> pd.DataFrame:
    """Profiles per cluster and meter type (types sorted; meters missing from ``meters`` count as
    ``unknown`` and are logged)."""
    _check(assign, ("meter_id", "cluster"))
    if not {"meter_id", "type"} <= set(meters.columns):
        raise SchemaError("meters table lacks column 'meter_id' or 'type'")
    types = meters.drop_duplicates("meter_id").set_index("meter_id")["type"].astype(str)
    mapped = assign["meter_id"].map(types)
    missing = assign.loc[mapped.isna(), "meter_id"].unique()
    if len(missing):
        log.warning(
            "%d meter(s) not in the meters table, counted as %r: %s",
            len(missing),
            UNKNOWN_TYPE,
            ", ".join(map(str, missing[:5])),
        )
    mapped = mapped.fillna(UNKNOWN_TYPE)
    return _wide(assign, mapped, sorted(mapped.unique()), k, share)


def composition_by_weekday(
    assign: pd.DataFrame, *, k: int | None = None, share: bool = False
) -> pd.DataFrame:
    """Profiles per cluster and day of the week (Monday .. Sunday)."""
    _check(assign, ("date", "cluster"))
    days = pd.to_datetime(assign["date"]).dt.dayofweek.map(dict(enumerate(WEEKDAYS)))
    return _wide(assign, days, WEEKDAYS, k, share)


def composition_by_month(
    assign: pd.DataFrame, *, k: int | None = None, share: bool = False
) -> pd.DataFrame:
    """Profiles per cluster and calendar month (Jan .. Dec)."""
    _check(assign, ("date", "cluster"))
    months = pd.to_datetime(assign["date"]).dt.month.map(dict(enumerate(MONTHS, start=1)))
    return _wide(assign, months, MONTHS, k, share)


def composition_tables(
    assign: pd.DataFrame, meters: pd.DataFrame | None = None, *, k: int | None = None
) -> dict[str, pd.DataFrame]:
    """All tables that apply, by name: cluster_sizes; by_type (needs ``meters``); by_weekday and
    by_month (need a ``date`` column). Values are counts of profiles."""
    tables = {"cluster_sizes": cluster_sizes(assign, k)}
    if meters is not None:
        tables["by_type"] = composition_by_type(assign, meters, k=k)
    if "date" in assign.columns:
        tables["by_weekday"] = composition_by_weekday(assign, k=k)
        tables["by_month"] = composition_by_month(assign, k=k)
    return tables
