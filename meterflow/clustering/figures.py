"""Matplotlib figures of a clustering. Each function returns a new ``matplotlib.figure.Figure``
built without pyplot (no global figure state, nothing to close, works headless), ready for
``mlflow.log_figure`` or ``fig.savefig``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.clustering.som import u_matrix

_HOURS = 24.0


def _hours(n_slots: int) -> np.ndarray:
    return np.arange(n_slots) * _HOURS / n_slots


def plot_cluster_members(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    *,
    max_members: int = 100,
    seed: int = 0,
    center_kind: str = "centre",
    title: str | None = None,
) -> Figure:
    """A grid with one panel per cluster (any k): up to ``max_members`` member profiles drawn thin
    and transparent (a fixed-seed sample when there are more) and the centre drawn bold. ``X``
    and ``centers`` must be in the same space (pass ``result.assigner.normalized(X)``)."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    k = len(centers)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    hours = _hours(X.shape[1])
    rng = np.random.default_rng(seed)
    for c in range(k):
        ax = axes[c]
        members = np.flatnonzero(labels == c)
        shown = members
        if len(members) > max_members:
            shown = np.sort(rng.choice(members, max_members, replace=False))
        if len(shown):
            ax.plot(hours, X[shown].T, color="tab:blue", lw=0.5, alpha=0.15)
        ax.plot(hours, centers[c], color="tab:red", lw=2.0, label=center_kind)
        ax.set_title(f"cluster {c} (n={len(members)})", fontsize=9)
        ax.set_xticks(np.arange(0, 25, 6))
    for ax in axes[k:]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("hour of day")
    fig.supylabel("profile value")
    if title:
        fig.suptitle(title)
    return fig


def plot_cluster_sizes(labels: np.ndarray, k: int | None = None, *, title: str = "") -> Figure:
    """Bar chart of members per cluster (clusters 0..k-1, empty ones included)."""
    labels = np.asarray(labels, dtype=np.int64)
    k = k if k is not None else int(labels.max()) + 1
    sizes = np.bincount(labels, minlength=k)
    fig = Figure(figsize=(max(4.0, 0.5 * k + 2), 3.2), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(np.arange(k), sizes, color="tab:blue")
    ax.bar_label(bars, fontsize=7)
    ax.set_xticks(np.arange(k))
    ax.set_xlabel("cluster")
    ax.set_ylabel("profiles")
    ax.set_title(title or "cluster sizes")
    return fig


def plot_som_map(weights_grid: np.ndarray, labels: np.ndarray) -> Figure:
    """The SOM map: hits per node (profiles won) and the U-matrix (mean distance of each node to
    its neighbours; high = cluster border), node numbers as cluster indices (row-major)."""
    rows, cols, _ = weights_grid.shape
    hits = np.bincount(np.asarray(labels, dtype=np.int64), minlength=rows * cols)
    hits = hits.reshape(rows, cols)
    umat = u_matrix(weights_grid)
    fig = Figure(figsize=(2.0 + 1.6 * cols * 2, 1.2 + 1.0 * rows), layout="constrained")
    ax_hits, ax_u = fig.subplots(1, 2)
    for ax, values, name, cmap in (
        (ax_hits, hits, "profiles per node", "Blues"),
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
                text = f"#{i * cols + j}\n{hits[i, j]}" if values is hits else f"{values[i, j]:.2g}"
                dark = (values[i, j] - values.min()) / span > 0.5
                color = "white" if dark else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    return fig


def plot_k_selection(table: pd.DataFrame, *, chosen: int | None = None) -> Figure:
    """The criterion of the choice against k and within-cluster dispersion against k (the elbow
    curve). ``table`` has columns k, criterion, score, dispersion (as ``select_k`` returns)."""
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
    return fig
