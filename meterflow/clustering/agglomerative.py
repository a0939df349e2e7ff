"""Agglomerative (hierarchical) clustering, Euclidean or on the precomputed DTW matrix.

Assignment rule: every profile belongs to the cluster of its nearest cluster medoid (the member
with the smallest summed distance to the other members of its linkage cluster). ``labels`` follow
this rule, so they can differ from the raw linkage cut for a few border profiles;
``info["linkage_agreement"]`` reports the share that did not move.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import pairwise_distances

from meterflow.clustering.assign import CentroidAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

LINKAGES = ("ward", "average", "complete", "single")
_CHUNK = 1024


class AgglomerativeClusteringAlgo(ClusteringAlgorithm):
    """Hierarchical clustering cut at k clusters; centres are cluster medoids."""

    name = "agglomerative"
    distance_metrics = ("euclidean", *DTW_FAMILY)
    dtw_matrix_metrics = DTW_FAMILY

    @dataclass(frozen=True)
    class Options:
        linkage: str | None = None  # None = ward (euclidean) or complete (dtw)

        def __post_init__(self) -> None:
            if self.linkage is not None and self.linkage not in LINKAGES:
                raise ConfigError(
                    f"agglomerative option linkage must be one of {LINKAGES}, got {self.linkage!r}"
                )

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        dtw = ctx.distance_metric in DTW_FAMILY  # cluster on the precomputed matrix
        linkage = self.options.linkage or ("complete" if dtw else "ward")
        if dtw and linkage == "ward":
            raise ConfigError(
                "agglomerative linkage 'ward' needs Euclidean distances; use average or complete "
                f"with distance_metric={ctx.distance_metric}"
            )
        model = AgglomerativeClustering(
            n_clusters=ctx.k,
            linkage=linkage,
            metric="precomputed" if dtw else "euclidean",
        ).fit(ctx.dtw if dtw else X)
        native = np.asarray(model.labels_, dtype=np.int64)
        medoids = np.array(
            [_medoid(X, ctx.dtw, np.flatnonzero(native == c)) for c in range(ctx.k)],
            dtype=np.int64,
        )
        centers = X[medoids]
        assigner = CentroidAssigner(
            n_slots=X.shape[1],
            centers=centers,
            metric=ctx.distance_metric,
            window=ctx.window if dtw else None,
            example_rows=centers[: min(3, ctx.k)],
        )
        return FitOutput(
            centers=centers.copy(),
            center_kind="medoid",
            assigner=assigner,
            native_labels=native,
            info={"linkage": linkage, "medoid_rows": medoids.tolist()},
        )


def _medoid(X: np.ndarray, dtw: np.ndarray | None, members: np.ndarray) -> int:
    """Row index of the member with the smallest summed distance to the other members."""
    sums = np.empty(len(members))
    for start in range(0, len(members), _CHUNK):
        rows = members[start : start + _CHUNK]
        if dtw is not None:
            block = dtw[np.ix_(rows, members)]
        else:
            block = pairwise_distances(X[rows], X[members], metric="euclidean")
        sums[start : start + len(rows)] = block.sum(axis=1)
    return int(members[int(np.argmin(sums))])
