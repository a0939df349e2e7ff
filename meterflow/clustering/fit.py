"""The one function every caller uses to cluster: :func:`fit_clustering`, with its checks.

The algorithms themselves are looked up by name in ``registry`` and imported on first use.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from meterflow.clustering.base import (
    ClusteringAlgorithm,
    ClusteringResult,
    FitContext,
    FitOutput,
    check_dtw,
    check_profiles,
    option_names,
    parse_options,
)
from meterflow.clustering.registry import ALGORITHMS, DISTANCE_METRICS, DTW_FAMILY, algorithm
from meterflow.clustering.representation import check_representation, represent
from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import band_width
from meterflow.profiles.dtw.variants import distance_cross
from meterflow.profiles.normalize import NORMALIZATIONS, normalize_values

log = logging.getLogger(__name__)

# options every algorithm accepts
COMMON_OPTIONS = frozenset({"normalize", "representation"})


def known_options() -> frozenset[str]:
    """Every option name some algorithm (or all of them) accepts (imports every algorithm)."""
    names = set(COMMON_OPTIONS)
    for name in ALGORITHMS:
        names |= option_names(algorithm(name).Options)
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
    (none | l2 | zscore | max | minmax, per profile, see ``profiles.normalize``; default none)
    and ``representation`` (profile | diff | shape, Euclidean only, see ``representation``);
    an option that belongs to another algorithm is ignored, an unknown one is a ConfigError.
    Returns a :class:`ClusteringResult` whose ``labels`` equal ``result.assigner.predict(X)``.
    """
    cls = algorithm(name)
    _check_distance_metric(cls, name, distance_metric)
    X = check_profiles(X)
    k = _check_k(k, X.shape[0])
    band_width(window, X.shape[1])  # validates the window
    normalize, representation, opts = _algorithm_settings(cls, name, distance_metric, options)
    Xn = normalize_values(X, normalize)
    dtw = _matrix_for(cls, name, distance_metric, dtw, Xn, window, seed)
    ctx = FitContext(k=k, distance_metric=distance_metric, window=window, seed=seed, dtw=dtw)
    log.info("clustering %d profiles x %d slots: %s (%s), k=%d", *X.shape, name, distance_metric, k)
    Xr = represent(Xn, representation)
    out, labels, seconds, agreement = _fit_and_assign(
        cls(opts), Xr, X, ctx, (normalize, representation)
    )
    profile_centers = representation != "profile"  # centres in the profiles' space for people
    return ClusteringResult(
        name=name,
        distance_metric=distance_metric,
        k=k,
        labels=labels,
        centers=_cluster_means(Xn, labels, k) if profile_centers else out.centers,
        center_kind=f"mean ({representation} clusters)" if profile_centers else out.center_kind,
        assigner=out.assigner,
        options=_resolved_options(name, ctx, normalize, opts, out.info)
        | {"representation": representation},
        fit_seconds=seconds,
        info={**out.info, "native_label_agreement": agreement},
        network=out.network,
        network_example=out.network_example,
    )


def _check_distance_metric(cls: type[ClusteringAlgorithm], name: str, distance_metric: str) -> None:
    """ConfigError unless ``distance_metric`` exists and algorithm ``name`` supports it."""
    if distance_metric not in DISTANCE_METRICS:
        raise ConfigError(
            f"distance_metric must be one of {DISTANCE_METRICS}, got {distance_metric!r}"
        )
    if distance_metric not in cls.distance_metrics:
        raise ConfigError(
            f"model {name} supports distance_metric {' or '.join(cls.distance_metrics)}, "
            f"not {distance_metric}"
        )


def _check_k(k: int, n: int) -> int:
    """``k`` as an int in [2, n]; ConfigError otherwise."""
    if isinstance(k, bool) or int(k) != k or not 2 <= k <= n:
        raise ConfigError(
            f"number of clusters must be an integer in [2, {n}] (n profiles), got {k}"
        )
    return int(k)


def _algorithm_settings(
    cls: type[ClusteringAlgorithm],
    name: str,
    distance_metric: str,
    options: Mapping[str, Any] | None,
) -> tuple[str, str, Any]:
    """The normalisation and representation to apply and the algorithm's parsed ``Options``."""
    options = dict(options or {})
    own = option_names(cls.Options)
    if set(options) - COMMON_OPTIONS - own:  # another algorithm's option, or a typo
        unknown = sorted(set(options) - known_options())
        if unknown:
            raise ConfigError(
                f"unknown clustering option(s) {unknown}; known: {sorted(known_options())}"
            )
    normalize = cls.forced_normalize or str(options.get("normalize") or "none")
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"option normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    representation = check_representation(str(options.get("representation") or "profile"))
    if representation != "profile" and distance_metric != "euclidean":
        raise ConfigError(
            f"representation={representation} is for Euclidean clustering; "
            f"distance_metric={distance_metric} compares the profiles themselves"
        )
    opts = parse_options(cls.Options, {k: v for k, v in options.items() if k in own}, where=name)
    return normalize, representation, opts


def _matrix_for(
    cls: type[ClusteringAlgorithm],
    name: str,
    distance_metric: str,
    dtw: np.ndarray | None,
    Xn: np.ndarray,
    window: int | None,
    seed: int,
) -> np.ndarray | None:
    """The checked DTW matrix when the method reads it, else None (a given one is unused)."""
    if not cls.needs_dtw_matrix(distance_metric):
        return None
    if dtw is None:
        raise ConfigError(
            f"model {name} with distance_metric={distance_metric} clusters on the precomputed "
            "distance matrix, but none was given: compute it in the harmonization step (or "
            "use kmeans, which computes DTW itself)"
        )
    dtw = check_dtw(dtw, len(Xn))
    _warn_if_matrix_differs(Xn, dtw, distance_metric, window, seed)
    return dtw


def _fit_and_assign(
    algo: ClusteringAlgorithm,
    Xr: np.ndarray,
    X: np.ndarray,
    ctx: FitContext,
    space: tuple[str, str],
) -> tuple[FitOutput, np.ndarray, float, float]:
    """Fit on the profiles as the algorithm compares them (``Xr``: normalised, represented)
    and label the raw ones with the assigner, which learns the ``space`` (normalisation,
    representation): the output, the labels, the seconds taken and the share of labels equal
    to the library's own."""
    start = time.perf_counter()
    out = algo.fit(Xr, ctx)
    out.assigner.normalize, out.assigner.representation = space
    if space[1] != "profile":  # the model takes raw profiles, not the representation
        out.assigner.n_slots, out.assigner.example_rows = X.shape[1], X[: min(3, len(X))]
    labels = out.assigner.predict(X)
    seconds = time.perf_counter() - start
    agreement = float(np.mean(labels == out.native_labels))
    log.info(
        "%s fitted in %.2f s (labels agree with the library's on %.1f%%)",
        algo.name,
        seconds,
        100 * agreement,
    )
    return out, labels, seconds, agreement


def _cluster_means(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean profile (k, L) of each cluster; an empty cluster's mean is NaN-free zeros."""
    sums = np.zeros((k, X.shape[1]))
    np.add.at(sums, labels, X)
    counts = np.bincount(labels, minlength=k)[:, None]
    return np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)


def _resolved_options(
    name: str, ctx: FitContext, normalize: str, opts: Any, info: Mapping[str, Any]
) -> dict[str, Any]:
    """Every setting of the fit, defaults filled in, ready to log as parameters: an option left
    at None shows the value the fit chose, when the fit reports it in ``info``."""
    chosen = {
        key: info[key]
        for key, value in dataclasses.asdict(opts).items()
        if value is None and key in info
    }
    resolved = {
        "model": name,
        "distance_metric": ctx.distance_metric,
        "k": ctx.k,
        "seed": ctx.seed,
        "normalize": normalize,
        **dataclasses.asdict(opts),
        **chosen,
    }
    if ctx.distance_metric in DTW_FAMILY:
        resolved["window"] = ctx.window or 0
    return resolved


def _warn_if_matrix_differs(
    X: np.ndarray, dtw: np.ndarray, metric: str, window: int | None, seed: int
) -> None:
    """Spot-check a few matrix entries against ``metric`` recomputed here; warn on a mismatch
    (the matrix was then built on other profiles, in another order, or with another band)."""
    n = len(X)
    if n < 2:
        return
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, n, size=(5, 2))
    for i, j in pairs:
        if i == j:
            continue
        here = float(distance_cross(metric, X[i : i + 1], X[j : j + 1], window)[0, 0])
        if not np.isclose(here, dtw[i, j], rtol=1e-6, atol=1e-9):
            log.warning(
                "matrix entry (%d, %d) = %.6g but %s(window=%s) of those profiles is %.6g: "
                "is the matrix for these profiles, in this order, with this window?",
                i,
                j,
                dtw[i, j],
                metric,
                window or "no band",
                here,
            )
            return
