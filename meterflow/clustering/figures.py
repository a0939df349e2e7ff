"""Matplotlib figures of a clustering. Each function returns a new ``matplotlib.figure.Figure``
built without pyplot (no global figure state, nothing to close, works headless), ready for
``mlflow.log_figure`` or ``fig.savefig``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.clustering.som import u_matrix

_HOURS = 24.0


def _hours(n_slots: int) -> np.ndarray:
    return np.arange(n_slots) * _HOURS / n_slots


def _titles(names: Sequence[str] | None, k: int) -> list[str]:
    return list(names) if names is not None else [f"cluster {c}" for c in range(k)]


def plot_cluster_members(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    *,
    names: Sequence[str] | None = None,
    assigned: np.ndarray | None = None,
    max_members: int = 100,
    seed: int = 0,
    center_kind: str = "centre",
) -> Figure:
    """A grid with one panel per cluster (any k), titled with its name and size: up to
    ``max_members`` of the fitted profiles ``X`` (cluster ``labels``) drawn thin and transparent
    (a fixed-seed sample when there are more) and the centre drawn bold. ``X`` and ``centers``
    must be in the same space (pass ``result.assigner.normalized(X)``). The sizes count
    ``assigned`` (the clusters of every assigned profile, as ``plot_cluster_sizes``), else
    ``labels``; the figure's title says which."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    k = len(centers)
    counted = np.asarray(labels if assigned is None else assigned, dtype=np.int64)
    sizes = np.bincount(counted, minlength=k)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    fig = Figure(figsize=(3.4 * cols, 2.5 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    hours = _hours(X.shape[1])
    rng = np.random.default_rng(seed)
    for c, title in enumerate(_titles(names, k)):
        ax = axes[c]
        members = np.flatnonzero(labels == c)
        shown = members
        if len(members) > max_members:
            shown = np.sort(rng.choice(members, max_members, replace=False))
        if len(shown):
            ax.plot(hours, X[shown].T, color="tab:blue", lw=0.5, alpha=0.15)
        ax.plot(hours, centers[c], color="tab:red", lw=2.0, label=center_kind)
        share = sizes[c] / max(len(counted), 1)
        ax.set_title(f"{title}\n{sizes[c]:,} days ({100 * share:.3g} %)", fontsize=9)
        ax.set_xticks(np.arange(0, 25, 6))
    for ax in axes[k:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("hour of day")
    fig.supylabel("profile value")
    which = "assigned" if assigned is not None else "fitted"
    fig.suptitle(
        f"cluster members: days counted over all {len(counted):,} {which} profiles (meter-days)"
        f"\ndrawn: up to {max_members} of the {len(labels):,} fitted profiles per cluster",
        fontsize=9,
    )
    return fig


def plot_cluster_sizes(
    labels: np.ndarray, k: int | None = None, *, names: Sequence[str] | None = None
) -> Figure:
    """Bar chart of profiles (meter-days) per cluster, ``labels`` being every assigned
    profile's cluster (clusters 0..k-1, empty ones included), named by ``names``."""
    labels = np.asarray(labels, dtype=np.int64)
    k = k if k is not None else int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    fig = Figure(figsize=(max(4.5, 0.9 * k + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(np.arange(k), sizes, color="tab:blue")
    total = max(len(labels), 1)
    ax.bar_label(bars, [f"{n:,} ({100 * n / total:.3g} %)" for n in sizes], fontsize=7)
    tilted = {"rotation": 30, "ha": "right"} if k > 2 else {}
    ax.set_xticks(np.arange(k), _titles(names, k), fontsize=8, **tilted)
    ax.set_ylabel("profiles (meter-days)")
    ax.set_title(f"cluster sizes\nall {len(labels):,} assigned profiles (meter-days)", fontsize=9)
    return fig


def plot_som_map(
    weights_grid: np.ndarray, labels: np.ndarray, names: Sequence[str] | None = None
) -> Figure:
    """The SOM map: hits per node (profiles won, ``labels`` of every assigned profile) and the
    U-matrix (mean distance of each node to its neighbours; high = cluster border), node
    numbers as cluster indices (row-major), with the nodes' ``names``."""
    rows, cols, _ = weights_grid.shape
    hits = np.bincount(np.asarray(labels, dtype=np.int64), minlength=rows * cols)
    hits = hits.reshape(rows, cols)
    umat = u_matrix(weights_grid)
    fig = Figure(figsize=(2.0 + 1.6 * cols * 2, 1.2 + 1.0 * rows), layout="constrained")
    ax_hits, ax_u = fig.subplots(1, 2)
    for ax, values, name, cmap in (
        (ax_hits, hits, "profiles (meter-days) per node", "Blues"),
        (ax_u, umat, "U-matrix", "bone_r"),
    ):
        image = ax.imshow(values, cmap=cmap, aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(name)
        ax.set_xticks(np.arange(cols))
        ax.set_yticks(np.arange(rows))
        ax.set_xlabel("map column")
        ax.set_ylabel("map row")
        span = float(values.max() - values.min()) or 1.0
        for i in range(rows):
            for j in range(cols):
                node = i * cols + j
                label = f"#{node} {names[node]}" if names is not None else f"#{node}"
                text = f"{label}\n{hits[i, j]:,}" if values is hits else f"{values[i, j]:.2g}"
                dark = (values[i, j] - values.min()) / span > 0.5
                color = "white" if dark else "black"
                size = 6 if values is hits and names is not None else 8
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color=color)
    return fig


def plot_k_selection(
    table: pd.DataFrame, *, chosen: int | None = None, names: Sequence[str] = ()
) -> Figure:
    """The criterion of the choice against k and within-cluster dispersion against k (the elbow
    curve). ``table`` has columns k, criterion, score, dispersion (as ``select_k`` returns);
    ``names``: the chosen clusters' names, shown in the title."""
    fig = Figure(figsize=(8.0, 3.2), layout="constrained")
    ax_s, ax_e = fig.subplots(1, 2)
    criterion = str(table["criterion"].iloc[0]) if "criterion" in table else "score"
    ax_s.plot(table["k"], table["score"], marker="o")
    ax_s.set_ylabel(criterion)
    ax_e.plot(table["k"], table["dispersion"], marker="o", color="tab:orange")
    ax_e.set_ylabel("within-cluster dispersion")
    for ax in (ax_s, ax_e):
        ax.set_xlabel("k")
        ax.set_xticks(table["k"])
        if chosen is not None:
            ax.axvline(chosen, color="grey", ls="--", lw=1)
    ax_s.set_title(f"{criterion} (chosen k dashed)")
    ax_e.set_title("elbow")
    if names:
        listed = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        fig.suptitle(f"chosen k={chosen}: {listed}", fontsize=9)
    return fig


def plot_validation(table: pd.DataFrame, *, skip: frozenset[str] = frozenset()) -> Figure:
    """The clustering's scores (the ``validation`` table: metric, value, rows, run_metric) as
    horizontal bars, run metrics dark and variants light, each labelled with its value and the
    profiles it was computed on; metrics in ``skip`` (counts) are left out."""
    shown = table.loc[~table["metric"].isin(skip)].iloc[::-1]
    fig = Figure(figsize=(7.5, 0.32 * len(shown) + 1.2), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:blue" if run else "lightsteelblue" for run in shown["run_metric"]]
    bars = ax.barh(shown["metric"], shown["value"], color=colors)
    labels = [f"{v:.3g} ({rows})" for v, rows in zip(shown["value"], shown["rows"], strict=True)]
    ax.bar_label(bars, labels, fontsize=7, padding=2)
    ax.axvline(0, color="grey", lw=0.8)
    ax.margins(x=0.25)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("value (rows: the fitted, all assigned or the distance matrix's profiles)")
    ax.set_title("clustering scores: run metrics dark, variants (table only) light", fontsize=9)
    return fig


def plot_auto_candidates(table: pd.DataFrame) -> Figure:
    """``model=auto``'s candidates (the ``auto_candidates`` table: candidate, k, silhouette,
    null_silhouette, silhouette_gap, chosen): the silhouette gap each one found over shapeless
    data, the kept one dark."""
    rows = table.iloc[::-1]
    fig = Figure(figsize=(7.0, 0.32 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    colors = ["tab:blue" if chosen else "lightsteelblue" for chosen in rows["chosen"]]
    bars = ax.barh(rows["candidate"], rows["silhouette_gap"], color=colors)
    labels = [
        f"{gap:.3g} (k={k}: {sil:.3g} - null {null:.3g})"
        for gap, k, sil, null in rows[
            ["silhouette_gap", "k", "silhouette", "null_silhouette"]
        ].itertuples(index=False)
    ]
    ax.bar_label(bars, labels, fontsize=7, padding=2)
    ax.axvline(0, color="grey", lw=0.8)
    ax.margins(x=0.4)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_xlabel("silhouette gap: silhouette on the profiles minus on slot-shuffled profiles")
    ax.set_title(
        "model=auto: candidates, the kept one dark (credible, most agreed with)", fontsize=9
    )
    return fig
