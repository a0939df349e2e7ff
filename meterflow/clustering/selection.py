"""Choosing the number of clusters (``number_of_clusters=0``): fit every k of a range, keep the k
with the best silhouette (as the reference did), and report the elbow curve alongside."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.figures import plot_k_selection
from meterflow.clustering.fit import fit_clustering
from meterflow.clustering.metrics import silhouette, silhouette_dtw
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class KSelection:
    """Outcome of :func:`select_k`.

    ``table`` has one row per k tried: k, silhouette (Euclidean, in the clustering's space),
    silhouette_dtw (only with a DTW matrix), score (the criterion's value), dispersion (sum of
    squared distances of profiles to their cluster in the method's own metric, for the elbow),
    fit_seconds. ``result`` is the fitted clustering for the chosen ``k``.
    """

    k: int
    criterion: str  # "silhouette" or "silhouette_dtw"
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
) -> KSelection:
    """Fit ``name`` for k = k_min..k_max (capped at n - 1) and choose the k with the highest
    silhouette: on the DTW matrix when ``distance_metric="dtw"`` and ``dtw`` is given, else
    Euclidean on the profiles in the clustering's space. Ties go to the smaller k; a k whose
    clustering has a single non-empty cluster scores NaN and is never chosen."""
    n = len(X)
    k_max = min(k_max, n - 1)
    if k_min < 2 or k_min > k_max:
        raise ConfigError(f"k range [{k_min}, {k_max}] is empty or below 2 for {n} profiles")
    if options and options.get("som_grid"):
        raise ConfigError("som_grid fixes k; set number_of_clusters to its node count")
    criterion = "silhouette_dtw" if distance_metric == "dtw" and dtw is not None else "silhouette"
    fit = functools.partial(
        fit_clustering,
        name,
        X,
        distance_metric=distance_metric,
        dtw=dtw,
        window=window,
        seed=seed,
        options=options,
    )
    rows, best, best_score = _fit_each_k(fit, range(k_min, k_max + 1), X, dtw, seed, criterion)
    table = pd.DataFrame(rows)
    table.insert(1, "criterion", criterion)
    table.insert(2, "score", table[criterion])
    if best is None:
        raise ConfigError(
            f"no k in [{k_min}, {k_max}] gave two or more non-empty clusters with {name}"
        )
    log.info("chose k=%d by %s (%.4f)", best.k, criterion, best_score)
    return KSelection(
        k=best.k,
        criterion=criterion,
        table=table,
        result=best,
        figure=plot_k_selection(table, chosen=best.k),
    )


def _fit_each_k(
    fit: Callable[..., ClusteringResult],
    ks: range,
    X: np.ndarray,
    dtw: np.ndarray | None,
    seed: int,
    criterion: str,
) -> tuple[list[dict[str, float]], ClusteringResult | None, float]:
    """``fit(k=k)`` for each k: the score rows, the best result by ``criterion`` (the first of
    equals; None if no k has a finite score) and its score."""
    rows: list[dict[str, float]] = []
    best: ClusteringResult | None = None
    best_score = -np.inf
    for k in ks:
        result = fit(k=k)
        row = _scores(result, X, dtw, seed)
        rows.append(row)
        log.info("k=%d: %s=%.4f dispersion=%.4g", k, criterion, row[criterion], row["dispersion"])
        if np.isfinite(row[criterion]) and row[criterion] > best_score:
            best, best_score = result, row[criterion]
    return rows, best, best_score


def _scores(
    result: ClusteringResult, X: np.ndarray, dtw: np.ndarray | None, seed: int
) -> dict[str, float]:
    """One row of the k table: silhouette(s), dispersion and fit time of ``result``."""
    Xp = result.assigner.prepare(X)
    labels = result.labels
    defined = 2 <= len(np.unique(labels)) <= len(labels) - 1
    row: dict[str, float] = {
        "k": result.k,
        "silhouette": silhouette(Xp, labels, seed=seed) if defined else np.nan,
    }
    if dtw is not None:
        row["silhouette_dtw"] = silhouette_dtw(dtw, labels, seed=seed) if defined else np.nan
    nearest = result.assigner.distances(X).min(axis=1)
    row["dispersion"] = float(np.sum(nearest**2))
    row["fit_seconds"] = result.fit_seconds
    return row
