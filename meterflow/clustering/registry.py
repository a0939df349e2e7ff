"""The clustering algorithms by name: a light table, imported without any algorithm library.

Adding an algorithm: write a module with a :class:`~meterflow.clustering.base.ClusteringAlgorithm`
subclass and add one line to ``ALGORITHMS``: the key is the class's ``name`` and the class is the
key in CamelCase + ``Clustering`` (``lstm_autoencoder`` -> ``LSTMAutoencoderClustering``). The
step's ``model`` choices, the step options handed to the algorithms (those named as some
``Options`` field, ``fit.known_options``) and ``tests/clustering/test_conformance.py`` read this
table, so nothing else changes (that test's toy algorithm is the worked example). The class is
imported on first use (:func:`algorithm`), so listing the names loads neither numpy nor
TensorFlow, scikit-learn, tslearn, minisom or numba. Fitting is
``meterflow.clustering.fit.fit_clustering``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meterflow.errors import ConfigError

if TYPE_CHECKING:
    from meterflow.clustering.base import ClusteringAlgorithm

AUTO_MODEL = "auto"  # the step's model that tries several configurations (``auto.py``)
# name -> "module:Class"; the class's ``name`` equals its key
# DTW, its derivative / weighted variants and the elastic distances ERP, MSM, TWE, shape-DTW
# (``meterflow.profiles.dtw.variants``, ``.elastic``): the matrix methods cluster on their
# precomputed matrix, and new profiles are assigned with the same one
DTW_FAMILY = ("dtw", "ddtw", "wdtw", "wddtw", "erp", "msm", "twe", "shape_dtw")
DISTANCE_METRICS = ("euclidean", *DTW_FAMILY)  # distances the algorithms are offered with

ALGORITHMS: dict[str, str] = {
    "kmeans": "meterflow.clustering.kmeans:KMeansClustering",
    "kmedoids": "meterflow.clustering.kmedoids:KMedoidsClustering",
    "agglomerative": "meterflow.clustering.agglomerative:AgglomerativeClustering",
    "som": "meterflow.clustering.som:SOMClustering",
    "kshape": "meterflow.clustering.kshape:KShapeClustering",
    "dba": "meterflow.clustering.dba:DBAClustering",
    "shape_dba": "meterflow.clustering.shape_dba:ShapeDBAClustering",
    "lstm_autoencoder": "meterflow.clustering.lstm_autoencoder:LSTMAutoencoderClustering",
}


def algorithm_names() -> tuple[str, ...]:
    """The registered algorithm names, in registry order."""
    return tuple(ALGORITHMS)


def algorithm(name: str) -> type[ClusteringAlgorithm]:
    """The class registered as ``name``, imported now; ConfigError listing the choices if none."""
    try:
        path = ALGORITHMS[name]
    except KeyError:
        raise ConfigError(
            f"unknown clustering model {name!r}; choose one of {sorted(ALGORITHMS)}"
        ) from None
    module, _, cls = path.partition(":")
    return getattr(import_module(module), cls)
