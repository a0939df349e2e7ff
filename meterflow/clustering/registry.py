"""The algorithm registry and the one function every caller uses: :func:`fit_clustering`.

Adding an algorithm: write a module with a :class:`ClusteringAlgorithm` subclass and add one line
to ``ALGORITHMS``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from dtaidistance import dtw as dtai_dtw

from meterflow.clustering.agglomerative import AgglomerativeClusteringAlgo
from meterflow.clustering.base import (
    DISTANCE_METRICS,
    ClusteringAlgorithm,
    ClusteringResult,
    FitContext,
    check_dtw,
    check_profiles,
    option_names,
    parse_options,
)
from meterflow.clustering.distances import NORMALIZATIONS, dtai_window, normalize_profiles
from meterflow.clustering.kmeans import KMeansClustering
from meterflow.clustering.kmedoids import KMedoidsClustering
from meterflow.clustering.kshape import KShapeClustering
from meterflow.clustering.lstm_autoencoder import LSTMAutoencoderClustering
from meterflow.clustering.som import SOMClustering
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, type[ClusteringAlgorithm]] = {
    "kmeans": KMeansClustering,
    "kmedoids": KMedoidsClustering,
    "agglomerative": AgglomerativeClusteringAlgo,
    "som": SOMClustering,
    "kshape": KShapeClustering,
    "lstm_autoencoder": LSTMAutoencoderClustering,
}

# options every algorithm accepts
COMMON_OPTIONS = frozenset({"normalize"})


def algorithm(name: str) -> type[ClusteringAlgorithm]:
    """The registered class for ``name``; ConfigError listing the choices otherwise."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ConfigError(
            f"unknown clustering model {name!r}; choose one of {sorted(ALGORITHMS)}"
        ) from None


def known_options() -> frozenset[str]:
    """Every option name some algorithm (or all of them) accepts."""
    names = set(COMMON_OPTIONS)
    for cls in ALGORITHMS.values():
        names |= option_names(cls.Options)
    return frozenset(names)


def needs_dtw_matrix(name: str, distance_metric: str) -> bool:
    """Whether ``fit_clustering(name, ..., distance_metric=...)`` reads the precomputed matrix."""
    return algorithm(name).needs_dtw_matrix(distance_metric)


def fit_clustering(
    name: str,
    X: np.ndarray,
    *,
    k: int,
    distance_metric: str = "euclidean",
    dtw: np.ndarray | None = None,
    window: int | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
) -> ClusteringResult:
    """Cluster daily profiles ``X`` (n, L) into ``k`` clusters with algorithm ``name``.

    ``distance_metric``: euclidean | dtw (each algorithm lists what it supports). ``dtw``: the
    square (n, n) DTW matrix of the same profiles in the same row order, required by the methods
    that work on the precomputed matrix (kmedoids and agglomerative with dtw). ``window``: the DTW
    band in dtaidistance semantics (None/0 = unconstrained), used by DTW assignment and DTW
    k-means. ``options``: algorithm settings (see each ``Options``) plus ``normalize``
    (none | znorm | minmax, per profile, default none); an option that belongs to another
    algorithm is ignored, an unknown one is a ConfigError. Returns a :class:`ClusteringResult`
    whose ``labels`` equal ``result.assigner.predict(X)``.
    """
    cls = algorithm(name)
    if distance_metric not in DISTANCE_METRICS:
        raise ConfigError(
            f"distance_metric must be one of {DISTANCE_METRICS}, got {distance_metric!r}"
        )
    if distance_metric not in cls.distance_metrics:
        raise ConfigError(
            f"model {name} supports distance_metric {' or '.join(cls.distance_metrics)}, "
            f"not {distance_metric}"
        )
    X = check_profiles(X)
    n = X.shape[0]
    if isinstance(k, bool) or int(k) != k or not 2 <= k <= n:
        raise ConfigError(
            f"number of clusters must be an integer in [2, {n}] (n profiles), got {k}"
        )
    k = int(k)
    dtai_window(window)  # validates
    options = dict(options or {})
    unknown = sorted(set(options) - known_options())
    if unknown:
        raise ConfigError(
            f"unknown clustering option(s) {unknown}; known: {sorted(known_options())}"
        )
    normalize = cls.forced_normalize or str(options.get("normalize") or "none")
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"option normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    own = option_names(cls.Options)
    opts = parse_options(cls.Options, {k_: v for k_, v in options.items() if k_ in own}, where=name)
    Xn = normalize_profiles(X, normalize)
    if cls.needs_dtw_matrix(distance_metric):
        if dtw is None:
            raise ConfigError(
                f"model {name} with distance_metric=dtw clusters on the precomputed DTW matrix, "
                "but none was given: compute it in the harmonization step (or use kmeans, which "
                "computes DTW itself)"
            )
        dtw = check_dtw(dtw, n)
        _warn_if_matrix_differs(Xn, dtw, window, seed)
    else:
        dtw = None  # not used by this method
    ctx = FitContext(k=k, distance_metric=distance_metric, window=window, seed=seed, dtw=dtw)
    log.info(
        "clustering %d profiles x %d slots: %s (%s), k=%d", n, X.shape[1], name, distance_metric, k
    )
    start = time.perf_counter()
    out = cls(opts).fit(Xn, ctx)
    out.assigner.normalize = normalize
    labels = out.assigner.predict(X)
    seconds = time.perf_counter() - start
    agreement = float(np.mean(labels == out.native_labels))
    log.info(
        "%s fitted in %.2f s (labels agree with the library's on %.1f%%)",
        name,
        seconds,
        100 * agreement,
    )
    resolved = {
        "model": name,
        "distance_metric": distance_metric,
        "k": k,
        "seed": seed,
        "normalize": normalize,
        **dataclasses.asdict(opts),
    }
    if distance_metric == "dtw":
        resolved["window"] = window or 0
    return ClusteringResult(
        name=name,
        distance_metric=distance_metric,
        k=k,
        labels=labels,
        centers=out.centers,
        center_kind=out.center_kind,
        assigner=out.assigner,
        options=resolved,
        fit_seconds=seconds,
        info={**out.info, "native_label_agreement": agreement},
    )


def _warn_if_matrix_differs(X: np.ndarray, dtw: np.ndarray, window: int | None, seed: int) -> None:
    """Spot-check a few matrix entries against DTW recomputed here; warn on a mismatch (the
    matrix was then built on other profiles, in another order, or with another band)."""
    n = len(X)
    if n < 2:
        return
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, n, size=(5, 2))
    w = dtai_window(window)
    for i, j in pairs:
        if i == j:
            continue
        # no pruning: dtaidistance 2.5.1's pruned distance_fast returns inf on some inputs
        here = dtai_dtw.distance_fast(X[i], X[j], window=w, use_pruning=False)
        if not np.isclose(here, dtw[i, j], rtol=1e-6, atol=1e-9):
            log.warning(
                "DTW matrix entry (%d, %d) = %.6g but DTW(window=%s) of those profiles is %.6g: "
                "is the matrix for these profiles, in this order, with this window?",
                i,
                j,
                dtw[i, j],
                window,
                here,
            )
            return
