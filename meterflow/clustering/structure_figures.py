"""The ``model=auto`` figure of the top distinct structures (built without pyplot, like
``figures``): one row of cluster-mean panels per structure and the agreement between them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

_HOURS = 24.0


def plot_structures(
    X: np.ndarray,
    labelings: Sequence[np.ndarray],
    titles: Sequence[str],
    agreement: np.ndarray,
) -> Figure:
    """Row i: the mean profile of every cluster of ``labelings[i]`` over the rows of ``X`` (the
    screened profiles, as the candidates saw them), thin lines for the cluster's spread (10th
    and 90th percentiles), each panel titled with its share of the profiles; ``titles[i]``
    names the structure. Right: ``agreement`` (ARI between the structures) as a heatmap."""
    X = np.asarray(X, dtype=np.float64)
    n = len(labelings)
    cols = max(int(np.max(labelings[i]) + 1) for i in range(n)) if n else 1
    fig = Figure(figsize=(2.1 * cols + 3.4, 2.0 * max(n, 1) + 0.6), layout="constrained")
    grid = fig.add_gridspec(max(n, 1), cols + 2)
    hours = np.arange(X.shape[1]) * _HOURS / max(X.shape[1], 1)
    low, high = np.nanmin(X), np.nanmax(X)
    for i, (labels, title) in enumerate(zip(labelings, titles, strict=True)):
        for c in range(int(np.max(labels)) + 1):
            ax = fig.add_subplot(grid[i, c])
            members = X[labels == c]
            if len(members):
                ax.plot(hours, members.mean(axis=0), color="tab:blue", lw=1.6)
                for q in (10, 90):
                    ax.plot(hours, np.percentile(members, q, axis=0), color="tab:blue", lw=0.5)
            ax.set_ylim(low, high)
            ax.set_xticks([0, 12, 24])
            ax.tick_params(labelsize=6)
            ax.set_title(f"{len(members) / max(len(labels), 1):.0%}", fontsize=7)
            if c == 0:
                ax.set_ylabel(f"#{i + 1} {title}", fontsize=7)
    ax = fig.add_subplot(grid[:, cols:])
    image = ax.imshow(agreement, vmin=-0.1, vmax=1.0, cmap="viridis")
    ticks = [f"#{i + 1}" for i in range(n)]
    ax.set_xticks(range(n), ticks)
    ax.set_yticks(range(n), ticks)
    for (r, c), value in np.ndenumerate(agreement):
        shade = "black" if value > 0.6 else "white"  # readable on the light high end
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=8, color=shade)
    fig.colorbar(image, ax=ax, shrink=0.6, label="agreement (ARI)")
    fig.suptitle("model=auto: top distinct structures (cluster means; hours on x)", fontsize=9)
    return fig
