"""Choosing the number of clusters without labels (``number_of_clusters=0``): fit every k of a
range and keep the best by one criterion, with every criterion's curve in the table.

Criteria (``K_CRITERIA``):
- ``silhouette`` (the reference's): mean silhouette, on the DTW matrix for DTW methods, else
  Euclidean in the clustering's space; higher is better.
- ``davies_bouldin``: Davies-Bouldin index in the clustering's space; lower is better.
- ``stability``: how well the clustering survives resampling (``stability``): fit on
  ``STABILITY_ROUNDS`` random 80 % subsamples, assign every profile with each, and average the
  adjusted Rand index against the full fit. Merging true clusters is stable too, so the most
  stable k is often too small: the choice is the best silhouette among the k whose stability
  is within ``STABILITY_TOLERANCE`` of the most stable one. Costs that many fits more per k.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import adjusted_rand_score

from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.figures import plot_k_selection
from meterflow.clustering.fit import fit_clustering
from meterflow.clustering.metrics import davies_bouldin, silhouette, silhouette_dtw
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

K_CRITERIA = ("silhouette", "davies_bouldin", "stability")
LOWER_IS_BETTER = frozenset({"davies_bouldin"})
STABILITY_ROUNDS = 5
STABILITY_FRACTION = 0.8
STABILITY_TOLERANCE = 0.05

Fit = Callable[..., ClusteringResult]  # fit(X, k=..., dtw=...) -> result


def stability(
    fit: Fit,
    X: np.ndarray,
    dtw: np.ndarray | None,
    reference: ClusteringResult,
    *,
    seed: int = 0,
    rounds: int = STABILITY_ROUNDS,
    fraction: float = STABILITY_FRACTION,
) -> float:
    """Mean adjusted Rand index between ``reference``'s labels of every profile and the labels
    that models fitted on ``rounds`` random subsamples (``fraction`` of the rows, seeded) give
    the same profiles. 1 = every subsample finds the same partition."""
    rng = np.random.default_rng(seed)
    size = max(reference.k + 1, round(fraction * len(X)))
    scores = []
    for _ in range(rounds):
        rows = np.sort(rng.choice(len(X), size=size, replace=False))
        sub_dtw = None if dtw is None else dtw[np.ix_(rows, rows)]
        sub = fit(X[rows], k=reference.k, dtw=sub_dtw)
        scores.append(adjusted_rand_score(reference.labels, sub.assigner.predict(X)))
    return float(np.mean(scores))


@dataclass
class KSelection:
    """Outcome of :func:`select_k`.

    ``table`` has one row per k tried: k, criterion, score (the criterion's value), silhouette
    and davies_bouldin (Euclidean, in the clustering's space), silhouette_dtw (only with a DTW
    matrix), stability (only when it is the criterion), dispersion (sum of squared distances
    of profiles to their cluster in the method's own metric, for the elbow), fit_seconds.
    ``result`` is the fitted clustering for the chosen ``k``.
    """

    k: int
    criterion: str  # one of K_CRITERIA, or "silhouette_dtw"
    table: pd.DataFrame
    result: ClusteringResult
    figure: Figure


def select_k(
    name: str,
    X: np.ndarray,
    *,
    distance_metric: str = "euclidean",
    dtw: np.ndarray | None = None,
    window: int | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    k_min: int = 2,
    k_max: int = 12,
    criterion: str = "silhouette",
) -> KSelection:
    """Fit ``name`` for k = k_min..k_max (capped at n - 1) and choose the best k by
    ``criterion`` (see the module doc; the silhouette is on the DTW matrix when
    ``distance_metric="dtw"`` and ``dtw`` is given). Ties go to the smaller k; a k whose
    clustering has a single non-empty cluster scores NaN and is never chosen."""
    n = len(X)
    k_max = min(k_max, n - 1)
    if k_min < 2 or k_min > k_max:
        raise ConfigError(f"k range [{k_min}, {k_max}] is empty or below 2 for {n} profiles")
    if options and options.get("som_grid"):
        raise ConfigError("som_grid fixes k; set number_of_clusters to its node count")
    if criterion not in K_CRITERIA:
        raise ConfigError(f"k criterion must be one of {K_CRITERIA}, got {criterion!r}")
    matrix_score = f"silhouette_{distance_metric}"  # on the precomputed matrix, if any
    if criterion == "silhouette" and distance_metric in DTW_FAMILY and dtw is not None:
        criterion = matrix_score
    fit = functools.partial(
        fit_clustering,
        name,
        distance_metric=distance_metric,
        window=window,
        seed=seed,
        options=options,
    )
    rows = _fit_each_k(fit, range(k_min, k_max + 1), X, (dtw, matrix_score), seed, criterion)
    table = pd.DataFrame([row for row, _ in rows])
    table.insert(1, "criterion", criterion)
    table.insert(2, "score", table[criterion])
    best = _best(rows, criterion)
    if best is None:
        raise ConfigError(
            f"no k in [{k_min}, {k_max}] gave two or more non-empty clusters with {name}"
        )
    log.info("chose k=%d by %s", best.k, criterion)
    return KSelection(
        k=best.k,
        criterion=criterion,
        table=table,
        result=best,
        figure=plot_k_selection(table, chosen=best.k),
    )


def _fit_each_k(
    fit: Fit,
    ks: range,
    X: np.ndarray,
    matrix: tuple[np.ndarray | None, str],
    seed: int,
    criterion: str,
) -> list[tuple[dict[str, float], ClusteringResult]]:
    """``fit(X, k=k)`` for each k, with its row of scores (``matrix``: the distance matrix, if
    any, and the name of the silhouette on it)."""
    dtw = matrix[0]
    out = []
    for k in ks:
        result = fit(X, k=k, dtw=dtw)
        row = _scores(result, X, matrix, seed)
        if criterion == "stability":
            row["stability"] = stability(fit, X, dtw, result, seed=seed)
        out.append((row, result))
        log.info("k=%d: %s=%.4f dispersion=%.4g", k, criterion, row[criterion], row["dispersion"])
    return out


def _best(
    rows: list[tuple[dict[str, float], ClusteringResult]], criterion: str
) -> ClusteringResult | None:
    """The result with the best finite ``criterion`` (the first, i.e. smallest k, of equals);
    for ``stability``, the best silhouette among the nearly most stable (module doc)."""
    if criterion == "stability":
        top = max((row["stability"] for row, _ in rows), default=np.nan)
        rows = [(row, r) for row, r in rows if row["stability"] >= top - STABILITY_TOLERANCE]
        criterion = "silhouette"
    sign = -1.0 if criterion in LOWER_IS_BETTER else 1.0
    scored = [(sign * row[criterion], -i, r) for i, (row, r) in enumerate(rows)]
    scored = [s for s in scored if np.isfinite(s[0])]
    return max(scored, key=lambda s: (s[0], s[1]))[2] if scored else None


def _scores(
    result: ClusteringResult, X: np.ndarray, matrix: tuple[np.ndarray | None, str], seed: int
) -> dict[str, float]:
    """One row of the k table: silhouette(s), Davies-Bouldin, dispersion and fit time."""
    Xp = result.assigner.prepare(X)
    labels = result.labels
    defined = 2 <= len(np.unique(labels)) <= len(labels) - 1
    row: dict[str, float] = {
        "k": result.k,
        "silhouette": silhouette(Xp, labels, seed=seed) if defined else np.nan,
        "davies_bouldin": davies_bouldin(Xp, labels) if defined else np.nan,
    }
    dtw, matrix_score = matrix
    if dtw is not None:
        row[matrix_score] = silhouette_dtw(dtw, labels, seed=seed) if defined else np.nan
    nearest = result.assigner.distances(X).min(axis=1)
    row["dispersion"] = float(np.sum(nearest**2))
    row["fit_seconds"] = result.fit_seconds
    return row
