"""The figure of a meter-level clustering (``meter_level``): each cluster's typical weekday and
weekend day, and what the clusters are made of (meter types, PV). Built without pyplot, like
``figures``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.clustering.meter_level import PROSUMER_SHARE, MeterClusters

# columns of the composition table that are not meter types
NOT_TYPES = frozenset({"cluster", "cluster_name", "meters", PROSUMER_SHARE})


def _centres(fig: Figure, clusters: MeterClusters, sizes: np.ndarray) -> None:
    """One panel per cluster: its weekday and weekend centre over the hours of the day."""
    k, slots = clusters.k, clusters.centers.shape[1] // 2
    cols = min(k, 4)
    axes = fig.subplots(math.ceil(k / cols), cols, sharex=True, sharey=True, squeeze=False)
    hours = np.arange(slots) * 24.0 / slots
    for c, ax in enumerate(axes.ravel()):
        if c >= k:
            ax.set_visible(False)
            continue
        ax.plot(hours, clusters.centers[c, :slots], color="tab:blue", lw=2, label="weekday")
        ax.plot(hours, clusters.centers[c, slots:], color="tab:orange", lw=2, label="weekend")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_title(f"{clusters.names[c]}\n{sizes[c]} meters", fontsize=8)
        ax.set_xticks(np.arange(0, 25, 6))
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("hour of day", fontsize=8)
    fig.supylabel("share of peak import", fontsize=8)


def _bars(ax, table: pd.DataFrame) -> None:
    """Stacked bars: meters of each type per cluster, the prosumer share written beside."""
    types = [c for c in table.columns if c not in NOT_TYPES]
    labels = table["cluster_name"].tolist()
    y = np.arange(len(table))
    if not types:  # no meter table: the cluster sizes alone
        ax.barh(y, table["meters"], color="tab:grey", label="meters")
    left = np.zeros(len(table))
    for name in types:
        ax.barh(y, table[name], left=left, label=name)
        left += table[name].to_numpy(dtype=np.float64)
    if PROSUMER_SHARE in table.columns:
        for row, (total, share) in enumerate(
            zip(table["meters"], table[PROSUMER_SHARE], strict=True)
        ):
            ax.text(total, row, f"  PV {100 * share:.0f} %", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("meters", fontsize=8)
    ax.set_xlim(0, 1.25 * max(float(table["meters"].max()), 1.0))
    ax.legend(fontsize=7, loc="lower right")


def plot_meter_clusters(clusters: MeterClusters, table: pd.DataFrame, *, title: str = "") -> Figure:
    """Top: each cluster's typical weekday and weekend day (its centre, in units of the meters'
    peak import); bottom: the composition ``table`` (``meter_level.composition``) as stacked
    bars of meter types with each cluster's share of PV meters."""
    sizes = table["meters"].to_numpy()
    rows = math.ceil(clusters.k / min(clusters.k, 4))
    fig = Figure(figsize=(12, 2.6 * rows + 0.5 * clusters.k + 2.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=(2.6 * rows, 0.5 * clusters.k + 1.6))
    _centres(top, clusters, sizes)
    _bars(bottom.subplots(), table)
    what = f"meter-level clusters ({clusters.representation}), k={clusters.k}"
    fig.suptitle(f"{what}{': ' + title if title else ''}", fontsize=10)
    return fig
