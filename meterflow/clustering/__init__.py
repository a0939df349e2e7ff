"""Clustering of daily load profiles (pure layer: arrays and DataFrames in, results out).

- ``registry``: ``ALGORITHMS`` and ``fit_clustering`` (one module per algorithm behind it)
- ``assign``: the picklable predictors that assign new profiles to clusters
- ``selection``: choose k by silhouette; ``metrics`` and ``peaks``: validation scores
- ``composition``: post-hoc tables; ``figures``: matplotlib figures
"""

from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.metrics import all_metrics
from meterflow.clustering.registry import ALGORITHMS, fit_clustering, needs_dtw_matrix
from meterflow.clustering.selection import KSelection, select_k

__all__ = [
    "ALGORITHMS",
    "ClusteringResult",
    "KSelection",
    "all_metrics",
    "fit_clustering",
    "needs_dtw_matrix",
    "select_k",
]
