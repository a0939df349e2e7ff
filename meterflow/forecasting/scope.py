"""What is forecast: each meter, each cluster's total load, or the fleet's total load.

Totals are taken over a fixed set of members (a cluster's members are the meters whose days
mostly fell in it, so a future day's shape never decides where its load is counted). A slot
where some members did not report is estimated as the reporting members' total scaled to all
members, only while at least ``min_coverage`` of them reported; below that it is a gap.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError

log = logging.getLogger(__name__)

SCOPES = ("meter", "cluster", "fleet")
FLEET_ID = "fleet"
MIN_COVERAGE = 0.9


def dominant_clusters(assignments: pd.DataFrame) -> pd.Series:
    """Each meter's cluster: the one most of its profiles were assigned to (meter_id ->
    ``cluster_<k>``)."""
    if not {"meter_id", "cluster"} <= set(assignments.columns):
        raise SchemaError("cluster assignments need columns meter_id and cluster")
    counts = assignments.groupby(["meter_id", "cluster"]).size().rename("n").reset_index()
    top = counts.sort_values(["meter_id", "n", "cluster"], ascending=[True, False, True])
    top = top.drop_duplicates("meter_id")
    return pd.Series(
        [f"cluster_{int(c)}" for c in top["cluster"]], index=top["meter_id"].astype(str)
    )


def aggregate(
    series: pd.DataFrame, groups: pd.Series, min_coverage: float = MIN_COVERAGE
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Total ``value`` per group and timestamp of a long table ``meter_id, timestamp, value``
    (``groups``: meter_id -> group; other meters are left out). Returns the long table of the
    groups and counts: ``aggregate_slots``, ``aggregate_estimated_slots`` (some members missing,
    scaled up) and ``aggregate_gap_slots`` (too few members)."""
    member = series["meter_id"].astype(str).map(groups)
    used = series.loc[member.notna()].assign(meter_id=member.dropna())
    if used.empty:
        raise SchemaError("no series belongs to any group of the forecast scope")
    size = groups.value_counts()
    totals = used.groupby(["meter_id", "timestamp"])["value"].agg(["sum", "count"]).reset_index()
    members = totals["meter_id"].map(size).to_numpy(dtype=np.float64)
    coverage = totals["count"].to_numpy() / members
    enough = coverage >= min_coverage
    out = totals.loc[enough, ["meter_id", "timestamp"]].copy()
    out["value"] = (totals["sum"] * members / totals["count"]).to_numpy()[enough]
    counts = {
        "aggregate_slots": float(enough.sum()),
        "aggregate_estimated_slots": float((enough & (coverage < 1)).sum()),
        "aggregate_gap_slots": float((~enough).sum()),
    }
    log.info(
        "scope totals: %d group(s), %d slots (%d estimated from >= %.0f %% of members, %d gaps)",
        *(len(size), counts["aggregate_slots"], counts["aggregate_estimated_slots"]),
        *(100 * min_coverage, counts["aggregate_gap_slots"]),
    )
    return out.reset_index(drop=True), counts


def scoped_series(
    series: pd.DataFrame, scope: str, assignments: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """The long table to forecast for ``scope`` (meter: as is; fleet / cluster: totals)."""
    if scope == "meter":
        return series, {}
    meters = pd.Index(series["meter_id"].astype(str).unique())
    if scope == "fleet":
        return aggregate(series, pd.Series(FLEET_ID, index=meters))
    if scope == "cluster":
        if assignments is None:
            raise SchemaError("scope=cluster needs a clustering run's assignments")
        return aggregate(series, dominant_clusters(assignments))
    raise SchemaError(f"scope must be one of {SCOPES}, got {scope!r}")
