"""k-means under DTW with DBA barycentres (Petitjean, Ketterlin & Gançarski 2011), in the
project's own numba kernels (``barycentre.py``)."""

from __future__ import annotations

import numpy as np

from meterflow.clustering.barycentre import VALUES, BarycentreOptions, fit_barycentre_kmeans
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput


class DBAClustering(ClusteringAlgorithm):
    """DBA k-means: k-means++ seeds under DTW, then assignment to the nearest barycentre by DTW
    (band = the run's window) and DBA updates of the barycentres until the labels stop
    changing. Centres are DBA barycentres; new profiles go to the nearest one by the same DTW.
    With ``euclidean`` the alignment is the diagonal: k-means with means."""

    name = "dba"
    distance_metrics = ("euclidean", "dtw")
    Options = BarycentreOptions

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        return fit_barycentre_kmeans(
            X, ctx, self.options, alignment=VALUES, center_kind="dba_barycentre"
        )
