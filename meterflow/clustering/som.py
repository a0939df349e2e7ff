"""Self-organising map (minisom): each node of a rows x cols grid is a cluster.

Default grid k x 1; option ``som_grid="MxN"`` sets an M x N map (then k must be M*N). A profile's
cluster is its winning node (nearest weight vector, Euclidean), nodes numbered row-major. Nodes
that win no training profile stay as (empty) clusters: their weights still tile the map.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np
from minisom import MiniSom

from meterflow.clustering.assign import SOMAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.distances import euclidean_cross
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)


def parse_grid(grid: str | None, k: int) -> tuple[int, int]:
    """``"MxN"`` -> (M, N); None/"" -> (k, 1). ConfigError if malformed or M*N != k."""
    if not grid:
        return (k, 1)
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", grid)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise ConfigError(f"som_grid must look like '3x4', got {grid!r}")
    rows, cols = int(m.group(1)), int(m.group(2))
    if rows * cols != k:
        raise ConfigError(
            f"som_grid {rows}x{cols} has {rows * cols} nodes but number_of_clusters is {k}; "
            "each node is a cluster, so set number_of_clusters to rows*cols"
        )
    return rows, cols


class SOMClustering(ClusteringAlgorithm):
    """minisom SOM, Gaussian neighbourhood, trained for ``som_epochs`` passes in random order."""

    name = "som"

    @dataclass(frozen=True)
    class Options:
        som_grid: str | None = None  # "MxN"; None = k x 1
        som_sigma: float = 1.0  # neighbourhood radius (grid units) at the start
        som_learning_rate: float = 0.5
        som_epochs: int = 10
        som_init: str = "random"  # random (training profiles) or pca

        def __post_init__(self) -> None:
            if self.som_init not in ("random", "pca"):
                raise ConfigError(f"som_init must be random or pca, got {self.som_init!r}")
            if self.som_epochs < 1 or self.som_sigma <= 0 or self.som_learning_rate <= 0:
                raise ConfigError("som_epochs, som_sigma and som_learning_rate must be positive")

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        opts = self.options
        rows, cols = parse_grid(opts.som_grid, ctx.k)
        som = MiniSom(
            rows,
            cols,
            X.shape[1],
            sigma=opts.som_sigma,
            learning_rate=opts.som_learning_rate,
            neighborhood_function="gaussian",
            random_seed=ctx.seed,
        )
        if opts.som_init == "pca":
            som.pca_weights_init(X)
        else:
            som.random_weights_init(X)
        log.info("SOM %dx%d: %d epochs over %d profiles", rows, cols, opts.som_epochs, len(X))
        som.train(X, opts.som_epochs, random_order=True, use_epochs=True)
        centers = np.asarray(som.get_weights(), dtype=np.float64).reshape(rows * cols, X.shape[1])
        assigner = SOMAssigner(
            n_slots=X.shape[1],
            centers=centers,
            grid=(rows, cols),
            example_rows=centers[: min(3, len(centers))],
        )
        return FitOutput(
            centers=centers.copy(),
            center_kind="som_node",
            assigner=assigner,
            native_labels=euclidean_cross(X, centers).argmin(axis=1).astype(np.int64),
            info={
                "grid": f"{rows}x{cols}",
                "quantization_error": float(som.quantization_error(X)),
            },
        )


def u_matrix(weights_grid: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance of each node's weights to its (up to 8) grid neighbours,
    (rows, cols); 0 for a 1 x 1 map."""
    rows, cols, _ = weights_grid.shape
    out = np.zeros((rows, cols))
    for i in range(rows):
        for j in range(cols):
            dists = [
                np.linalg.norm(weights_grid[i, j] - weights_grid[a, b])
                for a in range(max(0, i - 1), min(rows, i + 2))
                for b in range(max(0, j - 1), min(cols, j + 2))
                if (a, b) != (i, j)
            ]
            out[i, j] = float(np.mean(dists)) if dists else 0.0
    return out
