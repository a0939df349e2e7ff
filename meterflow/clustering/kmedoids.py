"""k-medoids with FasterPAM (package ``kmedoids``) on Euclidean or precomputed DTW distances."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import kmedoids
import numpy as np
from sklearn.metrics import pairwise_distances

from meterflow.clustering.assign import CentroidAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

INITS = ("build", "random", "first")


class KMedoidsClustering(ClusteringAlgorithm):
    """k-medoids (FasterPAM). Euclidean: on the n x n Euclidean matrix (memory O(n^2));
    DTW family: on the precomputed matrix. Centres are medoids (training profiles); new profiles go
    to the nearest medoid by the same distance."""

    name = "kmedoids"
    distance_metrics = ("euclidean", *DTW_FAMILY)
    dtw_matrix_metrics = DTW_FAMILY

    @dataclass(frozen=True)
    class Options:
        init: str = "build"  # build (deterministic PAM BUILD), random or first
        max_iter: int = 100

        def __post_init__(self) -> None:
            if self.init not in INITS:
                raise ConfigError(f"kmedoids option init must be one of {INITS}, got {self.init!r}")

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        matrix = ctx.distance_metric in DTW_FAMILY
        if matrix:
            diss = ctx.dtw
        else:
            log.info(
                "k-medoids: Euclidean matrix of %d profiles (%.0f MB)", len(X), len(X) ** 2 / 1.25e5
            )
            diss = pairwise_distances(X, metric="euclidean")
        res = kmedoids.fasterpam(
            diss,
            ctx.k,
            max_iter=self.options.max_iter,
            init=self.options.init,
            random_state=ctx.seed,
            n_cpu=1,
        )
        medoids = np.asarray(res.medoids, dtype=np.int64)
        centers = X[medoids]
        assigner = CentroidAssigner(
            n_slots=X.shape[1],
            centers=centers,
            metric=ctx.distance_metric,
            window=ctx.window if matrix else None,
            example_rows=centers[: min(3, ctx.k)],
        )
        return FitOutput(
            centers=centers.copy(),
            center_kind="medoid",
            assigner=assigner,
            native_labels=np.asarray(res.labels, dtype=np.int64),
            info={
                "loss": float(res.loss),
                "medoid_rows": medoids.tolist(),
                "n_iter": int(res.n_iter),
            },
        )
