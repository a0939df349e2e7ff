"""Validation metrics of a clustering, each a documented function, and :func:`all_metrics`.

Internal: Davies-Bouldin, silhouette (Euclidean), silhouette on the DTW matrix, the peak scores
(``peaks``). External (when true labels exist): ARI, NMI, Rand index. Internal scores that are
undefined for the given labels (fewer than 2 non-empty clusters, or as many clusters as
profiles) are left out of ``all_metrics`` rather than reported as NaN.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn import metrics as skm

from meterflow.clustering.peaks import peak_scores
from meterflow.errors import SchemaError

log = logging.getLogger(__name__)

# silhouettes above this many rows use a fixed-seed sample: on 10 000 profiles x 24 slots the
# estimate moves by <= 0.001 against the full score and costs 0.3 CPU-s instead of 4
SILHOUETTE_SAMPLE = 5_000


def _n_clusters(labels: np.ndarray) -> int:
    return len(np.unique(labels))


def _defined(labels: np.ndarray) -> bool:
    return 2 <= _n_clusters(labels) <= len(labels) - 1


def davies_bouldin(X: np.ndarray, labels: np.ndarray) -> float:
    """Davies-Bouldin index on Euclidean distances to the cluster means (lower is better, >= 0)."""
    return float(skm.davies_bouldin_score(X, labels))


def silhouette(X: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Mean Euclidean silhouette in [-1, 1]; on a sample of ``SILHOUETTE_SAMPLE`` rows drawn with
    ``seed`` when there are more rows."""
    sample = SILHOUETTE_SAMPLE if len(X) > SILHOUETTE_SAMPLE else None
    return float(skm.silhouette_score(X, labels, sample_size=sample, random_state=seed))


def silhouette_dtw(dtw_square: np.ndarray, labels: np.ndarray, *, seed: int = 0) -> float:
    """Mean silhouette on a precomputed square DTW matrix (rows in the order of ``labels``);
    sampled like :func:`silhouette` above ``SILHOUETTE_SAMPLE`` rows."""
    dtw_square = np.asarray(dtw_square, dtype=np.float64)
    if dtw_square.shape != (len(labels), len(labels)):
        raise SchemaError(
            f"DTW matrix shape {dtw_square.shape} does not match {len(labels)} labelled profiles"
        )
    sample = SILHOUETTE_SAMPLE if len(labels) > SILHOUETTE_SAMPLE else None
    return float(
        skm.silhouette_score(
            dtw_square, labels, metric="precomputed", sample_size=sample, random_state=seed
        )
    )


def ari(truth: np.ndarray, labels: np.ndarray) -> float:
    """Adjusted Rand index (1 = same partition, about 0 = chance)."""
    return float(skm.adjusted_rand_score(truth, labels))


def nmi(truth: np.ndarray, labels: np.ndarray) -> float:
    """Normalised mutual information (arithmetic normalisation), in [0, 1]."""
    return float(skm.normalized_mutual_info_score(truth, labels))


def rand_index(truth: np.ndarray, labels: np.ndarray) -> float:
    """Rand index: share of profile pairs on which the two partitions agree, in [0, 1]."""
    return float(skm.rand_score(truth, labels))


TRUTH_METRICS = ("ari", "nmi", "rand_index")


def truth_metrics(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Agreement with the known classes: ``ari``, ``nmi`` and ``rand_index``."""
    truth = np.asarray(truth)
    if len(truth) != len(labels):
        raise SchemaError(f"{len(truth)} true labels for {len(labels)} profiles")
    return {
        "ari": ari(truth, labels),
        "nmi": nmi(truth, labels),
        "rand_index": rand_index(truth, labels),
    }


def all_metrics(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    dtw: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    *,
    seed: int = 0,
    prominence: float = 0.2,
    tolerance: int = 1,
) -> dict[str, float]:
    """Every applicable metric, by its logged name.

    ``X`` (n, L) profiles, ``labels`` (n,) cluster indices into ``centers`` (k, L), ``dtw`` the
    square DTW matrix of the same rows (adds ``silhouette_dtw``), ``truth`` (n,) true labels of
    any hashable type (adds ``ari``, ``nmi``, ``rand_index``). Names: davies_bouldin,
    silhouette, silhouette_dtw, the eight peak scores of ``peaks``, ari, nmi, rand_index.
    All values are finite (a non-finite one is left out with a warning).
    """
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) != len(X):
        raise SchemaError(f"{len(labels)} labels for {len(X)} profiles")
    out: dict[str, float] = {}
    if _defined(labels):
        out["davies_bouldin"] = davies_bouldin(X, labels)
        out["silhouette"] = silhouette(X, labels, seed=seed)
        if dtw is not None:
            out["silhouette_dtw"] = silhouette_dtw(dtw, labels, seed=seed)
    else:
        log.warning(
            "%d cluster(s) for %d profiles: no internal scores", _n_clusters(labels), len(X)
        )
    out.update(peak_scores(X, labels, centers, prominence=prominence, tolerance=tolerance))
    if truth is not None:
        out.update(truth_metrics(truth, labels))
    bad = [name for name, value in out.items() if not np.isfinite(value)]
    if bad:
        log.warning("left out non-finite metric(s) %s", bad)
    return {name: value for name, value in out.items() if name not in bad}
