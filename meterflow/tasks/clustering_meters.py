"""The clustering step's meter-level view (``meter_level`` option): beside the day-level
clustering, each meter's typical weekday and weekend day clustered into customer classes
(``clustering.meter_level``), read against the meter types and PV.

Typical days are means of energy: from a harmonization run its ``profiles`` table (the Wh
profiles, not the per-day normalised ones the day level clusters), restricted to the meters
the step clusters (``prosumers``); from a profile file, the file's values. Logged: the tables
``meter_clusters`` (meter_id, cluster, cluster_name, meter_type, prosumer) and
``meter_composition`` (one row per meter cluster: meters, count per meter type, prosumer
share), the figure ``meter_level_clusters``, the metrics ``meter_k`` and, with known meter types,
``meter_ari``. It is skipped, with the reason in the description and the log, when the
profiles have no dates or fewer than ``MIN_METERS`` meters have a weekday and a weekend day.
"""

from __future__ import annotations

import logging

import pandas as pd

from meterflow import tracking
from meterflow.clustering.meter_figures import NOT_TYPES, plot_meter_clusters
from meterflow.clustering.meter_level import (
    MIN_METERS,
    PROSUMER_SHARE,
    MeterClusters,
    agreement,
    cluster_meters,
    composition,
    meter_table,
)
from meterflow.clustering.typical_days import typical_days
from meterflow.errors import ConfigError
from meterflow.prose import num, percent
from meterflow.schemas import Table
from meterflow.settings import ClusteringOptions
from meterflow.tasks.clustering_input import ClusteringInput

log = logging.getLogger(__name__)

FIGURE = "meter_level_clusters"
SHOWN = 4  # clusters described in the run description


def _energy(run: tracking.StepRun, data: ClusteringInput) -> pd.DataFrame:
    """The profiles in energy units for the meters the step clusters (module doc)."""
    source_run = tracking.run_tag(run.run_id, "input.profiles_run")
    if not source_run:  # a profile file: its values are what there is
        return data.profiles
    energy = tracking.load_table(source_run, Table.PROFILES)
    return energy[energy["meter_id"].isin(data.profiles["meter_id"].unique())]


def _story(
    clusters: MeterClusters, table: pd.DataFrame, scores: dict[str, float], skipped: int
) -> str:
    """The description's sentence: the clusters by size, their make-up and the agreement."""
    types = [c for c in table.columns if c not in NOT_TYPES]
    parts = []
    for _, row in table.sort_values("meters", ascending=False).head(SHOWN).iterrows():
        mix = [f"{name} {int(row[name])}" for name in types if row[name]]
        mix += [f"PV {percent(row[PROSUMER_SHARE])}"] if PROSUMER_SHARE in row else []
        parts.append(f"{row['cluster_name']}: {int(row['meters'])} meters ({', '.join(mix)})")
    more = f"; {clusters.k - SHOWN} more" if clusters.k > SHOWN else ""
    ari = (
        f"; ARI against the meter types {num(scores['meter_ari'])}" if "meter_ari" in scores else ""
    )
    left_out = f" ({skipped} without a weekday and a weekend mean left out)" if skipped else ""
    return (
        f"{len(clusters.labels)} meters{left_out} clustered on their typical weekday and weekend "
        f"day ({clusters.representation}), k={clusters.k} by silhouette "
        f"{num(clusters.silhouette)}: {'; '.join(parts)}{more}{ari}; see "
        f"`figures/{FIGURE}.png` and `previews/{Table.METER_COMPOSITION}.csv`."
    )


def log_meter_level(run: tracking.StepRun, opts: ClusteringOptions, data: ClusteringInput) -> str:
    """Cluster and log the meters (module doc); return the description's sentence ('' when the
    option is off, the reason when skipped)."""
    if opts.meter_level == "off":
        return ""
    if "date" not in data.profiles.columns:
        return "not clustered: the profiles have no dates, so no weekdays and weekends."
    typical = typical_days(_energy(run, data))
    if len(typical.skipped):
        log.info("meter level: %d meter(s) skipped: %s", len(typical.skipped), typical.skipped)
    if len(typical.table) < MIN_METERS:
        return (
            f"not clustered: {len(typical.table)} meter(s) have both a weekday and a weekend "
            f"day, {MIN_METERS} are needed."
        )
    try:
        clusters = cluster_meters(typical, representation=opts.meter_level, seed=opts.seed)
    except ConfigError as err:  # e.g. every meter alike: no k gives two clusters
        log.warning("meter level: not clustered: %s", err)
        return f"not clustered: {err}."
    table = composition(clusters, data.meters)
    scores = {"meter_k": float(clusters.k)}
    scores |= {f"meter_{k}": v for k, v in agreement(clusters, data.meters).items() if k == "ari"}
    run.log_metrics(scores)
    run.log_table(meter_table(clusters, data.meters), Table.METER_CLUSTERS)
    run.log_table(table, Table.METER_COMPOSITION)
    run.log_figure(plot_meter_clusters(clusters, table), FIGURE)
    return _story(clusters, table, scores, len(typical.skipped))
