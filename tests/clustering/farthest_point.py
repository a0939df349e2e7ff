"""A toy clustering algorithm, the worked example of adding one: this module plus one line
``"farthest_point": "tests.clustering.farthest_point:FarthestPointClustering"`` in
``meterflow.clustering.registry.ALGORITHMS`` (``test_conformance`` adds it with monkeypatch).

Farthest-point clustering: the first centre is a seeded random profile, each next one the profile
farthest from the centres so far; every profile goes to its nearest centre (Euclidean).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meterflow.clustering.assign import CentroidAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.distances import euclidean_cross


class FarthestPointClustering(ClusteringAlgorithm):
    """Greedy farthest-point centres (Gonzalez's k-centre heuristic), nearest-centre labels."""

    name = "farthest_point"

    @dataclass(frozen=True)
    class Options:
        first: int | None = None  # row of the first centre; None = drawn with the seed

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        first = self.options.first
        rows = [int(np.random.default_rng(ctx.seed).integers(len(X))) if first is None else first]
        nearest = euclidean_cross(X, X[rows]).min(axis=1)
        while len(rows) < ctx.k:
            rows.append(int(nearest.argmax()))
            nearest = np.minimum(nearest, euclidean_cross(X, X[rows[-1:]])[:, 0])
        centers = X[rows]
        assigner = CentroidAssigner(
            n_slots=X.shape[1], centers=centers, example_rows=centers[: min(3, ctx.k)]
        )
        return FitOutput(
            centers=centers,
            center_kind="farthest_point",
            assigner=assigner,
            native_labels=euclidean_cross(X, centers).argmin(axis=1),
            info={"first": rows[0], "center_rows": rows},
        )
