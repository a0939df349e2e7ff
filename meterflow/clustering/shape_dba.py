"""k-means under shape-DTW with shape-DBA barycentres (Ismail-Fawaz, Ismail Fawaz, Forestier &
Devanne 2023, "ShapeDBA"): the warping paths align the shape descriptors of the members and of
the average (``profiles.dtw.shape_dtw``, aeon's identity descriptor), the raw values are
averaged along them (``barycentre.py``)."""

from __future__ import annotations

import numpy as np

from meterflow.clustering.barycentre import Alignment, BarycentreOptions, fit_barycentre_kmeans
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.profiles.dtw.shape_dtw import shape_descriptors

# aeon's identity descriptors at their default reach, the reach of the "shape_dtw" distance
DESCRIPTORS = Alignment(shape_descriptors, shifted=True)


class ShapeDBAClustering(ClusteringAlgorithm):
    """Shape-DBA k-means: k-means++ seeds under shape-DTW, then assignment to the nearest
    barycentre by shape-DTW (band = the run's window) and shape-DBA updates of the barycentres
    until the labels stop changing. Centres are shape-DBA barycentres (raw values); new profiles
    go to the nearest one by the same shape-DTW. With ``euclidean`` the alignment is the
    diagonal: k-means with means."""

    name = "shape_dba"
    distance_metrics = ("euclidean", "shape_dtw")
    Options = BarycentreOptions

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        return fit_barycentre_kmeans(
            X, ctx, self.options, alignment=DESCRIPTORS, center_kind="shape_dba_barycentre"
        )
