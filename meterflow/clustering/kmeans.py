"""k-means: Euclidean (scikit-learn, centres = means) or DTW (tslearn, DBA barycentres)."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

from meterflow.clustering.assign import CentroidAssigner
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.distances import sakoe_chiba_radius

log = logging.getLogger(__name__)


class KMeansClustering(ClusteringAlgorithm):
    """k-means. With ``distance_metric="dtw"`` it is tslearn's ``TimeSeriesKMeans(metric="dtw")``:
    assignment by DTW in the Sakoe-Chiba band of the run's window, centres by DTW barycentre
    averaging (DBA); new profiles go to the nearest barycentre by the same DTW."""

    name = "kmeans"
    distance_metrics = ("euclidean", "dtw")

    @dataclass(frozen=True)
    class Options:
        n_init: int | None = None  # restarts; None = 10 (euclidean) or 2 (dtw)
        max_iter: int | None = None  # None = 300 (euclidean) or 50 (dtw)

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        opts = self.options
        if ctx.distance_metric == "euclidean":
            model = KMeans(
                n_clusters=ctx.k,
                n_init=opts.n_init or 10,
                max_iter=opts.max_iter or 300,
                random_state=ctx.seed,
            ).fit(X)
            centers = model.cluster_centers_
            kind, metric = "mean", "euclidean"
        else:
            with warnings.catch_warnings():  # tslearn warns that optional h5py is missing
                warnings.filterwarnings("ignore", message="h5py not installed")
                from tslearn.clustering import TimeSeriesKMeans  # slow import (numba)

            radius = sakoe_chiba_radius(ctx.window)
            band = "no band" if radius is None else f"sakoe_chiba_radius={radius}"
            log.info("tslearn DTW k-means (DBA), %s", band)
            model = TimeSeriesKMeans(
                n_clusters=ctx.k,
                metric="dtw",
                metric_params=None if radius is None else {"sakoe_chiba_radius": radius},
                n_init=opts.n_init or 2,
                max_iter=opts.max_iter or 50,
                random_state=ctx.seed,
            ).fit(X)
            centers = model.cluster_centers_.reshape(ctx.k, X.shape[1])
            kind, metric = "dba_barycentre", "dtw"
        assigner = CentroidAssigner(
            n_slots=X.shape[1],
            centers=centers,
            metric=metric,
            window=ctx.window if metric == "dtw" else None,
            example_rows=centers[: min(3, ctx.k)],
        )
        return FitOutput(
            centers=np.asarray(centers, dtype=np.float64),
            center_kind=kind,
            assigner=assigner,
            native_labels=np.asarray(model.labels_, dtype=np.int64),
            info={"inertia": float(model.inertia_), "n_iter": int(model.n_iter_)},
        )
