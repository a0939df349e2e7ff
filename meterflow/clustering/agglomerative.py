"""Agglomerative (hierarchical) clustering, Euclidean or on the precomputed DTW matrix.

Two assignment rules (option ``assignment``), for the fitted profiles and for new ones alike:

- ``neighbour``: the cluster of the nearest fitted profile, in the same distance: the
  out-of-sample extension of the linkage cut, so every fitted profile keeps its cluster.
- ``medoid``: the cluster of the nearest cluster medoid (the member with the smallest summed
  distance to the other members): the cut followed by one k-medoids assignment step.

Default: ``neighbour`` for Ward, ``medoid`` for the other linkages. On the public UCR sets
(``benchmarks/clustering_public.py``) the medoid step costs Ward most of its agreement with the
classes (PowerCons ARI 0.86 to 0.71, ElectricDevices 0.21 to 0.05), while it repairs the uneven
clusters of complete linkage on DTW (ElectricDevices 0.20 to 0.38, PowerCons 0.39 to 0.45).
The medoids are the centres shown in the figures under both rules.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import AgglomerativeClustering as SklearnAgglomerative
from sklearn.metrics import pairwise_distances

from meterflow.clustering.assign import Assigner, CentroidAssigner, NeighbourAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

LINKAGES = ("ward", "average", "complete", "single")
ASSIGNMENTS = ("neighbour", "medoid")
_CHUNK = 1024


class AgglomerativeClustering(ClusteringAlgorithm):
    """Hierarchical clustering cut at k clusters; profiles are assigned by ``assignment``;
    centres (for figures) are cluster medoids."""

    name = "agglomerative"
    distance_metrics = ("euclidean", *DTW_FAMILY)
    dtw_matrix_metrics = DTW_FAMILY

    @dataclass(frozen=True)
    class Options:
        linkage: str | None = None  # None = ward (euclidean) or complete (dtw)
        assignment: str | None = None  # None = neighbour (ward) or medoid (other linkages)

        def __post_init__(self) -> None:
            if self.linkage is not None and self.linkage not in LINKAGES:
                raise ConfigError(
                    f"agglomerative option linkage must be one of {LINKAGES}, got {self.linkage!r}"
                )
            if self.assignment is not None and self.assignment not in ASSIGNMENTS:
                raise ConfigError(
                    f"agglomerative option assignment must be one of {ASSIGNMENTS}, "
                    f"got {self.assignment!r}"
                )

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        dtw = ctx.distance_metric in DTW_FAMILY  # cluster on the precomputed matrix
        linkage = self.options.linkage or ("complete" if dtw else "ward")
        if dtw and linkage == "ward":
            raise ConfigError(
                "agglomerative linkage 'ward' needs Euclidean distances; use average or complete "
                f"with distance_metric={ctx.distance_metric}"
            )
        model = SklearnAgglomerative(
            n_clusters=ctx.k,
            linkage=linkage,
            metric="precomputed" if dtw else "euclidean",
        ).fit(ctx.dtw if dtw else X)
        native = np.asarray(model.labels_, dtype=np.int64)
        medoids = np.array(
            [_medoid(X, ctx.dtw, np.flatnonzero(native == c)) for c in range(ctx.k)],
            dtype=np.int64,
        )
        assignment = self.options.assignment or ("neighbour" if linkage == "ward" else "medoid")
        return FitOutput(
            centers=X[medoids].copy(),
            center_kind="medoid",
            assigner=_assigner(assignment, X, native, X[medoids], ctx),
            native_labels=native,
            info={"linkage": linkage, "assignment": assignment, "medoid_rows": medoids.tolist()},
        )


def _assigner(
    assignment: str, X: np.ndarray, native: np.ndarray, medoids: np.ndarray, ctx: FitContext
) -> Assigner:
    """The rule that labels fitted and new profiles (see the module docstring)."""
    dtw = ctx.distance_metric in DTW_FAMILY
    common = {
        "n_slots": X.shape[1],
        "metric": ctx.distance_metric,
        "window": ctx.window if dtw else None,
        "example_rows": medoids[: min(3, ctx.k)],
    }
    if assignment == "medoid":
        return CentroidAssigner(centers=medoids, **common)
    return NeighbourAssigner(members=X, member_labels=native, **common)


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
