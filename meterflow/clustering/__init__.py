"""Clustering of daily load profiles (pure layer: arrays and DataFrames in, results out).

- ``registry``: ``ALGORITHMS``, the algorithm names and where each class lives (light)
- ``fit``: ``fit_clustering``, the one function every caller uses (one module per algorithm)
- ``assign``: the picklable predictors that assign new profiles to clusters
- ``selection``: choose k by silhouette; ``metrics`` and ``peaks``: validation scores
- ``composition``: post-hoc tables; ``figures``: matplotlib figures
- ``naming``: cluster names from the centres' shapes; ``scores``: run metrics vs the
  ``validation`` table; ``story``: the run's description

Names are imported lazily, so unpickling an assigner or listing the algorithms does not load
the fitting libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.clustering.base import ClusteringResult
    from meterflow.clustering.fit import fit_clustering, known_options, needs_dtw_matrix
    from meterflow.clustering.metrics import all_metrics
    from meterflow.clustering.registry import ALGORITHMS, algorithm, algorithm_names
    from meterflow.clustering.selection import KSelection, select_k

_WHERE = {
    "ALGORITHMS": "registry",
    "ClusteringResult": "base",
    "KSelection": "selection",
    "algorithm": "registry",
    "algorithm_names": "registry",
    "all_metrics": "metrics",
    "fit_clustering": "fit",
    "known_options": "fit",
    "needs_dtw_matrix": "fit",
    "select_k": "selection",
}
__all__ = [
    "ALGORITHMS",
    "ClusteringResult",
    "KSelection",
    "algorithm",
    "algorithm_names",
    "all_metrics",
    "fit_clustering",
    "known_options",
    "needs_dtw_matrix",
    "select_k",
]

__getattr__ = lazy_attributes(__name__, _WHERE)
