"""``model=auto``: try several algorithm x distance x representation configurations and keep the
one that scores best without labels.

Silhouettes are not comparable across spaces: eight shape features cluster "well" whatever the
data, a 144-slot Euclidean space hardly ever does. So each candidate is also fitted, at the same
k, on a null reference: the same profiles with every slot shuffled across profiles on its own
(each slot keeps its values, the shapes are gone; the gap statistic's idea). The score is the
silhouette gap, silhouette on the profiles minus silhouette on the null, each in the
candidate's own space (on its distance matrix for matrix methods): how much more structure the
configuration finds than it would in shapeless data. Reported alongside, not used for the
choice: stability (``selection.stability``) and consensus, the candidate's mean NMI with every
other candidate's labels (the partition the others agree with most, as in cluster ensembles).
On the public UCR sets consensus would have picked better on one set of three (PowerCons ARI
0.71 against 0.45) and the same on the others; too little evidence to switch. Labels, when
known, are reported, never used.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.fit import fit_clustering, needs_dtw_matrix
from meterflow.clustering.metrics import nmi, silhouette, silhouette_dtw
from meterflow.clustering.selection import KSelection, select_k, stability
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.profiles.normalize import normalize_values

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """One configuration ``model=auto`` tries."""

    model: str
    distance_metric: str = "euclidean"
    representation: str = "profile"

    @property
    def name(self) -> str:
        parts = [self.model, self.distance_metric]
        return "/".join(
            parts if self.representation == "profile" else [*parts, self.representation]
        )


AUTO_CANDIDATES = (
    Candidate("kmeans"),
    Candidate("kmeans", representation="diff"),
    Candidate("kmeans", representation="shape"),
    Candidate("kmedoids"),
    Candidate("kmedoids", "dtw"),
    Candidate("kmedoids", "ddtw"),
    Candidate("kmedoids", "wdtw"),
    Candidate("kmedoids", "wddtw"),
    Candidate("agglomerative"),
    Candidate("agglomerative", "dtw"),
    Candidate("agglomerative", "wddtw"),
    Candidate("kshape"),
)


@dataclass
class Scored:
    """A fitted candidate with its label-free scores (and its k table when k was chosen)."""

    candidate: Candidate
    result: ClusteringResult
    stability: float
    silhouette: float
    null_silhouette: float
    k_selection: KSelection | None = None
    consensus: float = float("nan")  # mean NMI with the other candidates' labels

    @property
    def gap(self) -> float:
        """Silhouette on the profiles minus silhouette on the null reference."""
        return self.silhouette - self.null_silhouette


def choose_configuration(
    X: np.ndarray,
    matrix: Callable[[str], np.ndarray],
    *,
    candidates: Sequence[Candidate] = AUTO_CANDIDATES,
    k: int = 0,
    window: int | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    k_range: tuple[int, int] = (2, 12),
    k_criterion: str = "silhouette",
) -> tuple[Scored, list[Scored]]:
    """Fit and score every candidate on ``X``; return the chosen one (largest silhouette gap)
    and all of them.

    ``matrix(metric)``: the square distance matrix of ``X`` (as the fit sees it, i.e. after
    the ``normalize`` option) for a matrix method's metric. ``k``: the number of clusters (0 =
    each candidate chooses by ``k_criterion`` in ``k_range``).
    """
    null = null_reference(X, seed)
    normalize = str((options or {}).get("normalize") or "none")
    null_matrix = _matrices_of(normalize_values(null, normalize), window)
    setting = (window, seed, options, k_range, k_criterion)
    scored = [_score(c, X, null, matrix, null_matrix, k, setting) for c in candidates]
    set_consensus(scored)
    for s in scored:
        log.info(
            "auto: %s k=%d silhouette gap=%.3f (%.3f - null %.3f) stability=%.3f consensus=%.3f",
            s.candidate.name,
            s.result.k,
            s.gap,
            s.silhouette,
            s.null_silhouette,
            s.stability,
            s.consensus,
        )
    finite = [s for s in scored if np.isfinite(s.gap)]
    return max(finite or scored, key=lambda s: s.gap if np.isfinite(s.gap) else -np.inf), scored


def set_consensus(scored: Sequence[Scored]) -> None:
    """Set each candidate's ``consensus``: its mean NMI with the labels of every other one."""
    agreement = np.array([[nmi(a.result.labels, b.result.labels) for b in scored] for a in scored])
    others = max(len(scored) - 1, 1)
    for s, row, own in zip(scored, agreement, np.diag(agreement), strict=True):
        s.consensus = float((row.sum() - own) / others) if len(scored) > 1 else float("nan")


def null_reference(X: np.ndarray, seed: int) -> np.ndarray:
    """``X`` with each column (slot) permuted across rows on its own, seeded."""
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(np.column_stack([rng.permutation(col) for col in X.T]))


def null_silhouette(X: np.ndarray, k: int, seed: int) -> float:
    """The reference for a Euclidean silhouette of ``X``: the silhouette of k-means with ``k``
    clusters (2 restarts: shapeless data has no better optimum to find) on ``X`` with every slot
    shuffled across rows (``null_reference``); NaN where it is undefined."""
    null = null_reference(X, seed)
    if not 2 <= k < len(null):
        return float("nan")
    labels = fit_clustering("kmeans", null, k=k, seed=seed, options={"n_init": 2}).labels
    if not 2 <= len(np.unique(labels)) <= len(labels) - 1:
        return float("nan")
    return silhouette(null, labels, seed=seed)


def _matrices_of(Xn: np.ndarray, window: int | None) -> Callable[[str], np.ndarray]:
    """``matrix(metric)`` for profiles not in any cache: computed in memory, once each."""
    found: dict[str, np.ndarray] = {}

    def matrix(metric: str) -> np.ndarray:
        if metric not in found:
            found[metric] = condensed_to_square(distance_condensed(metric, Xn, window), len(Xn))
        return found[metric]

    return matrix


def _score(
    candidate: Candidate,
    X: np.ndarray,
    null: np.ndarray,
    matrix: Callable[[str], np.ndarray],
    null_matrix: Callable[[str], np.ndarray],
    k: int,
    setting: tuple,
) -> Scored:
    """Fit one candidate on the profiles (choosing its k if ``k`` is 0) and on the null."""
    window, seed, options, (lo, hi), k_criterion = setting
    metric = candidate.distance_metric
    on_matrix = needs_dtw_matrix(candidate.model, metric)
    D = matrix(metric) if on_matrix else None
    opts = {**(options or {}), "representation": candidate.representation}
    common = {"distance_metric": metric, "window": window, "seed": seed, "options": opts}
    chosen = None
    if k:
        result = fit_clustering(candidate.model, X, k=k, dtw=D, **common)
    else:
        chosen = select_k(
            candidate.model, X, dtw=D, k_min=lo, k_max=hi, criterion=k_criterion, **common
        )
        result = chosen.result
    null_D = null_matrix(metric) if on_matrix else None
    null_fit = fit_clustering(candidate.model, null, k=result.k, dtw=null_D, **common)
    fit = functools.partial(fit_clustering, candidate.model, **common)
    return Scored(
        candidate,
        result,
        stability(fit, X, D, result, seed=seed),
        _own_silhouette(result, X, D, seed),
        _own_silhouette(null_fit, null, null_D, seed),
        chosen,
    )


def _own_silhouette(
    result: ClusteringResult, X: np.ndarray, D: np.ndarray | None, seed: int
) -> float:
    """Silhouette in the candidate's own space: its matrix, else Euclidean on what it clusters."""
    labels = result.labels
    if not 2 <= len(np.unique(labels)) <= len(labels) - 1:
        return float("nan")
    if D is not None:
        return silhouette_dtw(D, labels, seed=seed)
    return silhouette(result.assigner.prepare(X), labels, seed=seed)
