"""Meter-level clustering: customer classes from each meter's typical weekday and weekend day.

Day-level clustering groups days (a sunny day of a PV home beside a sunny day of a PV shop);
an analyst asking "what kinds of customers do we have" wants meters grouped. Each meter is
described by its typical days (``typical_days``), clustered with k-means, k chosen by the
silhouette in ``K_RANGE`` (no labels), and the clusters are read against what is known of the
meters: their type and whether they have PV (``composition``, ``agreement``).

What a meter is compared on (``REPRESENTATIONS``), chosen on principles, not on one data set:

- ``rhythm`` (default): the weekday minus the weekend typical day, divided by the meter's peak
  import. Customer classes differ first in how they follow the working week: businesses work on
  weekdays and close at weekends, households are home more at weekends, farms and continuous
  processes keep one rhythm all week. The contrast is what PV cannot touch: a prosumer's net
  profile is consumption minus production, and production follows the sun and the weather,
  which are on average the same on weekdays and weekends, so it cancels from the difference.
  The net shape itself does not have that property: with PV meters included, clusterings of the
  typical shapes separate exporters from the rest before they separate customer classes.
- ``week``: both typical days side by side, divided by the meter's peak import: the whole
  weekly shape (weekday and weekend levels relative to each other kept), for fleets without PV.

Why the peak import as the scale: meter size (a large home, a small shop) is not the class, so
each meter is scaled on its own; one scale for both halves keeps the weekday/weekend ratio (a
scale per half, or a z-score, would erase a shop's weekend closure); the peak import (largest
positive mean slot) is the meter's consumption peak, which PV export does not inflate the way
the largest absolute value (the export peak) or the l2 norm would. A meter that never imports
on average falls back to its largest absolute value; an all-zero meter stays all zeros.

The typical days should be energy, not per-day normalised shapes: averaging days scaled one
by one removes the weekday/weekend level difference the rhythm is made of.

Limits: a meter whose consumption peaks at midday (an office) and whose PV covers much of it
has its peak import lowered, so its rhythm is magnified and it may form a cluster of its own;
a class with the same rhythm as another (a farm and a household that is home all week) is told
apart only by the ``week`` view. Level (annual energy) is left out on purpose: meter size
separates classes on a demo fleet drawn that way, but a large home and a small shop overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.clustering.metrics import ari, nmi
from meterflow.clustering.naming import name_clusters
from meterflow.clustering.selection import select_k
from meterflow.clustering.typical_days import TypicalDays
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

REPRESENTATIONS = ("rhythm", "week")
DEFAULT_REPRESENTATION = "rhythm"
K_RANGE = (2, 8)  # customer classes an analyst reads at a glance
MIN_METERS = 3  # k >= 2 and a silhouette need at least three meters
PROSUMER_SHARE = "prosumer_share"
WEEKEND_CHANGE = 0.8  # weekend/weekday mean below this: quieter; above its inverse: busier


@dataclass(frozen=True)
class MeterClusters:
    """The meters' clusters: ``meter_ids`` and ``labels`` (one per meter), ``centers`` (k,
    2 * slots: the slot-wise median of the members' typical weekday then weekend, in units of
    peak import: the typical member, which a minority of PV meters does not drag below zero),
    ``names``, how k came about (``k_table``: k, silhouette, ...) and the silhouette at k."""

    meter_ids: np.ndarray
    labels: np.ndarray
    centers: np.ndarray
    names: list[str]
    representation: str
    k_table: pd.DataFrame
    silhouette: float

    @property
    def k(self) -> int:
        return len(self.centers)


def peak_scale(typical: np.ndarray) -> np.ndarray:
    """Each meter's scale (meters, 1): its peak import, else its largest absolute value, else 1
    for an all-zero meter (module doc)."""
    peak = np.clip(typical, 0.0, None).max(axis=1, keepdims=True)
    largest = np.abs(typical).max(axis=1, keepdims=True)
    return np.where(peak > 0, peak, np.where(largest > 0, largest, 1.0))


def represent(typical: np.ndarray, slots: int, representation: str) -> np.ndarray:
    """What meters are compared on, from their typical days (meters, 2 * slots; module doc)."""
    if representation not in REPRESENTATIONS:
        raise ConfigError(
            f"meter-level representation must be one of {REPRESENTATIONS}, got {representation!r}"
        )
    typical = np.asarray(typical, dtype=np.float64)
    if typical.ndim != 2 or typical.shape[1] != 2 * slots:
        raise ConfigError(f"typical days must be (meters, {2 * slots}), got {typical.shape}")
    scaled = typical / peak_scale(typical)
    if representation == "week":
        return scaled
    return scaled[:, :slots] - scaled[:, slots:]


def cluster_meters(
    typical: TypicalDays,
    *,
    representation: str = DEFAULT_REPRESENTATION,
    k_range: tuple[int, int] = K_RANGE,
    seed: int = 0,
) -> MeterClusters:
    """Cluster the meters of ``typical`` (module doc): k-means on ``represent``, k by the
    silhouette in ``k_range`` (capped at meters - 1); clusters named from their weekday centre."""
    values = typical.values()
    n = len(values)
    if n < MIN_METERS:
        raise ConfigError(f"meter-level clustering needs {MIN_METERS} meters, got {n}")
    X = np.ascontiguousarray(represent(values, typical.slots, representation))
    chosen = select_k("kmeans", X, k_min=k_range[0], k_max=min(k_range[1], n - 1), seed=seed)
    labels = chosen.result.labels.astype(np.int64)
    scaled = values / peak_scale(values)
    centers = np.stack([np.median(scaled[labels == c], axis=0) for c in range(chosen.k)])
    names = rhythm_names(centers, typical.slots)
    score = chosen.table.set_index("k").loc[chosen.k, "score"]
    log.info("meter level (%s): k=%d by silhouette %.3f", representation, chosen.k, score)
    return MeterClusters(
        meter_ids=typical.table["meter_id"].to_numpy(),
        labels=labels,
        centers=centers,
        names=names,
        representation=representation,
        k_table=chosen.table,
        silhouette=float(score),
    )


def rhythm_names(centers: np.ndarray, slots: int) -> list[str]:
    """Each centre's name: the shape of its weekday (``naming``) and its weekly rhythm,
    ``quieter weekends`` / ``busier weekends`` when the weekend's mean is below
    ``WEEKEND_CHANGE`` times / above ``1 / WEEKEND_CHANGE`` times the weekday's, else
    ``same all week``."""
    shapes = name_clusters(centers[:, :slots], signed=True)
    weekday, weekend = centers[:, :slots].mean(axis=1), centers[:, slots:].mean(axis=1)
    names = []
    for shape, wd, we in zip(shapes, weekday, weekend, strict=True):
        rhythm = "same all week"
        if we < WEEKEND_CHANGE * wd:
            rhythm = "quieter weekends"
        elif WEEKEND_CHANGE * we > wd:
            rhythm = "busier weekends"
        names.append(f"{shape}, {rhythm}")
    return names


def _meter_facts(meter_ids: np.ndarray, meters: pd.DataFrame | None) -> pd.DataFrame:
    """meter_id, meter_type and prosumer of each meter, where the meter table has them."""
    out = pd.DataFrame({"meter_id": meter_ids})
    if meters is None:
        return out
    known = meters.drop_duplicates("meter_id").set_index("meter_id")
    if "type" in known.columns:
        out["meter_type"] = out["meter_id"].map(known["type"].astype(str))
    if "production_kw" in known.columns:
        production = out["meter_id"].map(known["production_kw"])
        out["prosumer"] = production.fillna(0).to_numpy() > 0
    return out


def meter_table(clusters: MeterClusters, meters: pd.DataFrame | None) -> pd.DataFrame:
    """meter_id, cluster, cluster_name and, where known, meter_type and prosumer."""
    out = _meter_facts(clusters.meter_ids, meters)
    out.insert(1, "cluster", clusters.labels)
    out.insert(2, "cluster_name", np.asarray(clusters.names, dtype=object)[clusters.labels])
    return out


def composition(clusters: MeterClusters, meters: pd.DataFrame | None) -> pd.DataFrame:
    """One row per meter cluster: cluster, cluster_name, meters (count), the count of each
    meter type (types sorted, unknown ones as ``unknown``) and ``prosumer_share``, where the
    meter table has types and production."""
    facts = meter_table(clusters, meters)
    index = pd.RangeIndex(clusters.k, name="cluster")
    out = pd.DataFrame({"cluster_name": clusters.names}, index=index)
    out["meters"] = facts.groupby("cluster").size().reindex(index, fill_value=0)
    if "meter_type" in facts.columns:
        types = facts["meter_type"].fillna("unknown")
        counts = pd.crosstab(facts["cluster"], types).reindex(index, fill_value=0)
        out = out.join(counts[sorted(counts.columns)].astype("int64"))
    if "prosumer" in facts.columns:
        out[PROSUMER_SHARE] = facts.groupby("cluster")["prosumer"].mean().reindex(index)
    out.columns.name = None
    return out.reset_index()


def agreement(clusters: MeterClusters, meters: pd.DataFrame | None) -> dict[str, float]:
    """ARI and NMI of the meter clusters against the meter types, when every meter's type is
    known (else empty)."""
    facts = _meter_facts(clusters.meter_ids, meters)
    if "meter_type" not in facts.columns or facts["meter_type"].isna().any():
        return {}
    truth = facts["meter_type"].to_numpy()
    return {"ari": ari(truth, clusters.labels), "nmi": nmi(truth, clusters.labels)}
