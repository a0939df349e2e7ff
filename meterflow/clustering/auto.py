"""``model=auto``: try several configurations (algorithm x distance x representation) at every
k of a range, choose one partition without labels, and show the top distinct structures.

Each (configuration, k) partition is scored three ways, all label-free:
- gap: silhouette on the profiles minus silhouette on a null reference fitted at the same k, the
  same profiles with every slot shuffled across profiles on its own (each slot keeps its
  values, the shapes are gone; the gap statistic's idea), each in the configuration's own space
  (its distance matrix for matrix methods). Silhouettes are not comparable across spaces (eight
  shape features cluster "well" whatever the data); the gap is: structure beyond shapeless data.
- stability (``selection.stability``): mean ARI between the partition and the partitions fitted
  on random 80 % subsamples: does the structure survive resampling?
- consensus (``structures.consensus``): agreement (ARI) with the credible partitions of the
  OTHER configurations at the same k (the ensemble), one vote per distance family (``family``:
  Euclidean whatever the representation, the DTW variants, the edit distances ERP/MSM/TWE,
  shape-DTW, k-Shape's): do other ways of looking at the data find it too? Near-duplicate
  configurations (four DTW variants, three Euclidean representations) would otherwise outvote
  the rest. Only the same k: across k, a partition agrees best with the partitions it nests
  in or splits, which drew the choice to the middle of the k range.

The choice, in two steps. A partition is credible when it is beyond the null (gap > 0) and
stable (stability >= ``STABLE``). 1. k: where the configurations agree most, the largest mean
consensus of the partitions at that k, credible or not (a configuration whose partition at k is
unstable or within the null disagrees as well; consensus clustering's choice of k). 2. At that
k, the credible partition the ensemble agrees with most (the median partition of the ensemble)
wins, ties by the larger gap: a structure found by one distance or algorithm alone is less
trustworthy than one several find. Without an ensemble (one configuration), the credible
partition with the largest gap. Labels, when known, are reported, never used.

Measured on the development sets only (``benchmarks/public_profiles.DEVELOPMENT``, window 0.05,
no normalisation, the partitions screened on <= 1000 profiles, seed 0; ARI of the choice / ARI
of the best configuration at the true k): the former rule (each configuration proposed its
smallest credible k within 10 % of its best gap; consensus with the partitions at every k)
reached Chinatown 0.65, ElectricDevices 0.27, FreezerSmallTrain 0.62, ItalyPowerDemand 0.78,
MelbournePedestrian 0.28, PowerCons 0.85; this one Chinatown 0.35, ElectricDevices 0.67,
FreezerSmallTrain 1.06, ItalyPowerDemand 0.75 (ARI 0.63), MelbournePedestrian 0.83, PowerCons
0.92 (ARI 0.69): mean 0.58 -> 0.76, >= 0.8 on 3 sets of 6 (was 1), mean 0.71-0.76 for
``STABLE`` from 0.5 to 0.8 (was 0.53-0.69); chosen on five sets among 136 variants, it wins
for five of the six left out. ``STABLE`` is a round value, not tuned per set. Where a set holds
two structures (ItalyPowerDemand, Chinatown: a level split most distances find, and the one the
labels follow, which the derivative distances find), the consensus follows the majority or their
product; the other one may show among the top structures. Through
``benchmarks/clustering_public.py`` (1000-row samples, the screening budget applied), auto's
ARI over the best configuration's: ItalyPowerDemand 0.70, PowerCons 0.92, ElectricDevices 0.78,
Chinatown 0.35, MelbournePedestrian 0.93, FreezerSmallTrain 0.40 (screened on 414 profiles,
k = 7 of 2); within 80 % on 2 sets of 6, and on 1 of the 6 held-back sets.

The top distinct structures (``structures.distinct_structures``): the chosen partition; then
the same choice among the partitions that do not agree with it (ARI < ``SAME_STRUCTURE``), and
so on.

Speed: every partition is screened on a seeded sample of at most ``SCREEN_ROWS`` profiles
(each distance matrix computed once on it and reused across k; fewer profiles, then fewer
candidates, where long profiles would exceed ``auto_budget``'s budget: a day of 96 slots is
screened in full; a cut is logged in one line), with short fits
(``SCREEN_OPTIONS``) and native threads limited to one; only the chosen one is refitted on
every fitted profile, as configured, with the caller's matrix (the screened model is kept where
the refit finds another structure: agglomerative trees can change with the rows added).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from meterflow.clustering.auto_budget import plan_screening
from meterflow.clustering.base import ClusteringResult
from meterflow.clustering.fit import fit_clustering, needs_dtw_matrix
from meterflow.clustering.metrics import ari, nmi, silhouette, silhouette_dtw
from meterflow.clustering.registry import ALGORITHMS, DISTANCE_METRICS
from meterflow.clustering.selection import stability
from meterflow.clustering.structures import (
    SAME_STRUCTURE,
    Structures,
    agreement_matrix,
    ari_fast,
    consensus,
    distinct_structures,
)
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.profiles.normalize import normalize_values

log = logging.getLogger(__name__)

AUTO_K_RANGE = (2, 8)
SCREEN_ROWS = 1000  # profiles every partition is screened on
SCREEN_ROUNDS = 3  # subsample fits per stability score while screening
# short screening fits (one restart, at most 10 iterations, 5 barycentre steps): the structure
# is screened, not the best optimum, and the stability rounds refit from other samples anyway;
# the chosen one is refitted as configured
SCREEN_OPTIONS = {"n_init": 1, "max_iter": 10, "ba_iter": 5}
STABLE = 0.6  # stability (mean ARI under resampling) a credible partition reaches
AUTO_CRITERION = "stability, gap to the null and consensus"  # how auto chooses k, for people


_FAMILIES = {"ddtw": "dtw", "wdtw": "dtw", "wddtw": "dtw", "msm": "erp", "twe": "erp"}


@dataclass(frozen=True)
class Candidate:
    """One configuration ``model=auto`` tries."""

    model: str
    distance_metric: str = "euclidean"
    representation: str = "profile"

    @property
    def family(self) -> str:
        """The distance family it votes in (consensus): k-Shape's shape-based distance, the
        Euclidean distance (whatever the representation), the DTW variants, the edit distances
        (ERP, MSM, TWE) or shape-DTW."""
        if self.model == "kshape":
            return "sbd"
        return _FAMILIES.get(self.distance_metric, self.distance_metric)

    @property
    def name(self) -> str:
        parts = [self.model, self.distance_metric]
        return "/".join(
            parts if self.representation == "profile" else [*parts, self.representation]
        )

    def registered(self) -> bool:
        """Whether the registry offers this algorithm and distance."""
        return self.model in ALGORITHMS and self.distance_metric in DISTANCE_METRICS


_CANDIDATES = (  # adding a configuration is one line; unregistered ones are skipped
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
    Candidate("kmedoids", "erp"),
    Candidate("kmedoids", "msm"),
    Candidate("kmedoids", "twe"),
    Candidate("kmedoids", "shape_dtw"),
    Candidate("dba", "dtw"),
    Candidate("shape_dba", "shape_dtw"),
)
AUTO_CANDIDATES = tuple(c for c in _CANDIDATES if c.registered())


@dataclass
class Scored:
    """One screened (configuration, k) partition with its label-free scores."""

    candidate: Candidate
    result: ClusteringResult  # fitted on the screening sample
    stability: float
    silhouette: float
    null_silhouette: float
    consensus: float = float("nan")  # agreement with the ensemble, by family
    credible: bool = False  # beyond the null and stable
    proposed: bool = False  # at the chosen k (its configuration's pick)

    @property
    def gap(self) -> float:
        """Silhouette on the profiles minus silhouette on the null reference."""
        return self.silhouette - self.null_silhouette


@dataclass
class AutoChoice:
    """What ``choose_configuration`` found: every screened partition (``scored``), the chosen
    one (``chosen``), its refit on every profile (``result``), the top distinct structures
    (indices into ``scored``), the screening rows and ``order`` (indices into ``scored``, best
    first)."""

    chosen: Scored
    result: ClusteringResult
    scored: list[Scored]
    structures: Structures
    rows: np.ndarray
    order: list[int]


def choose_configuration(
    X: np.ndarray,
    matrix: Callable[[str], np.ndarray],
    *,
    candidates: Sequence[Candidate] = AUTO_CANDIDATES,
    k: int = 0,
    window: int | None = None,
    seed: int = 0,
    options: Mapping[str, Any] | None = None,
    k_range: tuple[int, int] = AUTO_K_RANGE,
    screen_rows: int = SCREEN_ROWS,
) -> AutoChoice:
    """Screen every candidate at every k (only ``k`` when given) on a sample of ``X``, choose
    one partition (module doc) and refit it on all of ``X``.

    ``matrix(metric)``: the square distance matrix of ``X`` (as the fit sees it, i.e. after the
    ``normalize`` option), asked for only for the chosen configuration's metric.
    """
    ks = 1 if k else k_range[1] - k_range[0] + 1
    plan = plan_screening(len(X), X.shape[1], window, candidates, screen_rows, ks)
    candidates, rows = plan.kept, screening_rows(len(X), plan.rows, seed)
    Xs = X[rows]
    normalize = str((options or {}).get("normalize") or "none")
    null = null_reference(Xs, seed)
    spaces = (_matrices_of(normalize_values(Xs, normalize), window),)
    spaces += (_matrices_of(normalize_values(null, normalize), window),)
    lo, hi = (k, k) if k else (k_range[0], min(k_range[1], len(Xs) - 1))
    setting = (window, seed, options, range(lo, hi + 1))
    scored: list[Scored] = []
    for i, c in enumerate(candidates, 1):
        started = time.monotonic()
        found = _screen(c, Xs, null, spaces, setting)
        scored += found
        best = max((s.gap for s in found), default=float("nan"))
        log.info(
            "auto [%d/%d] %s: k=%d..%d best gap %.3f (%.1f s)",
            *(i, len(candidates), c.name, lo, hi, best, time.monotonic() - started),
        )
    order, structures = choose(scored)
    chosen = scored[order[0]]
    log.info(
        "auto: chose %s k=%d (gap %.3f, stability %.3f, consensus %.3f%s)",
        *(chosen.candidate.name, chosen.result.k, chosen.gap, chosen.stability),
        *(chosen.consensus, "" if chosen.credible else "; no partition was credible"),
    )
    result = _refit(chosen, X, rows, matrix, setting)  # as configured, not SCREEN_OPTIONS
    return AutoChoice(chosen, result, scored, structures, rows, order)


def choose(scored: Sequence[Scored]) -> tuple[list[int], Structures]:
    """Set each partition's credibility, consensus and proposal flag (its configuration's
    partition at the chosen k); return the indices best first and the top distinct structures
    (module doc)."""
    agreement = agreement_matrix([s.result.labels for s in scored])
    for s in scored:
        s.credible = bool(s.gap > 0 and s.stability >= STABLE)
    order, agree = rank_partitions(scored, agreement)
    k = scored[order[0]].result.k
    for s, value in zip(scored, agree, strict=True):
        s.consensus, s.proposed = float(value), s.result.k == k
    structures = distinct_structures(
        lambda left: rank_partitions(scored, agreement, left)[0][0], agreement
    )
    return order, structures


def rank_partitions(
    scored: Sequence[Scored], agreement: np.ndarray, among: Sequence[int] | None = None
) -> tuple[list[int], np.ndarray]:
    """The choice (module doc) among the partitions ``among`` (default all): their indices
    best first (credible first, then by the ensemble's agreement at their k, then by their own
    consensus, then by gap) and every partition's consensus with the credible partitions among
    ``among`` at the same k (all of them when none is credible; NaN outside ``among``)."""
    among = list(range(len(scored))) if among is None else list(among)
    voters = [i for i in among if scored[i].credible] or among
    owners = [s.candidate.name for s in scored]
    families = [s.candidate.family for s in scored]
    ks = [s.result.k for s in scored]
    agree = np.full(len(scored), np.nan)
    agree[among] = consensus(agreement, owners, families, voters, strata=ks)[among]
    level = agreement_by_k(agree, among, ks)
    order = sorted(
        among,
        key=lambda i: (
            not scored[i].credible,
            -level.get(ks[i], -np.inf),
            -_finite(agree[i]),
            -_finite(scored[i].gap),
            ks[i],
        ),
    )
    return order, agree


def agreement_by_k(agree: np.ndarray, among: Sequence[int], ks: Sequence[int]) -> dict[int, float]:
    """How much the configurations agree at each k: the mean consensus (``agree``) of the
    partitions ``among`` at that k, credible or not (an unstable partition disagrees too); only
    the k where one is defined."""
    found: dict[int, list[float]] = {}
    for i in among:
        if np.isfinite(agree[i]):
            found.setdefault(ks[i], []).append(float(agree[i]))
    return {k: float(np.mean(values)) for k, values in found.items()}


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf


def screening_rows(n: int, limit: int, seed: int) -> np.ndarray:
    """All rows when ``n <= limit``, else a seeded sorted sample of ``limit`` of them."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


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


def _common(candidate: Candidate, setting: tuple) -> dict[str, Any]:
    window, seed, options, _ = setting
    opts = {**(options or {}), "representation": candidate.representation}
    return {"distance_metric": candidate.distance_metric, "window": window, "seed": seed} | {
        "options": opts
    }


def _screen(
    candidate: Candidate,
    X: np.ndarray,
    null: np.ndarray,
    spaces: tuple[Callable[[str], np.ndarray], ...],
    setting: tuple,
) -> list[Scored]:
    """Fit one candidate at every k on the sample and on its null; score each partition."""
    seed, ks = setting[1], setting[3]
    metric = candidate.distance_metric
    on_matrix = needs_dtw_matrix(candidate.model, metric)
    D, null_D = (space(metric) for space in spaces) if on_matrix else (None, None)
    common = _common(candidate, setting)
    common["options"] |= SCREEN_OPTIONS
    fit = functools.partial(fit_clustering, candidate.model, **common)
    out = []
    with threadpool_limits(1):  # many small fits: native threads only contend (10-20x slower)
        for k in ks:
            result = fit(X, k=k, dtw=D)
            null_fit = fit(null, k=k, dtw=null_D)
            steady = stability(fit, X, D, result, seed=seed, rounds=SCREEN_ROUNDS)
            own = _own_silhouette(result, X, D, seed)
            shapeless = _own_silhouette(null_fit, null, null_D, seed)
            out.append(Scored(candidate, result, steady, own, shapeless))
    return out


def _refit(
    chosen: Scored,
    X: np.ndarray,
    rows: np.ndarray,
    matrix: Callable[[str], np.ndarray],
    setting: tuple,
) -> ClusteringResult:
    """The chosen configuration at its k, fitted on every row of ``X``; when that fit does not
    reproduce the screened structure on the screening ``rows`` (ARI < ``SAME_STRUCTURE``), the
    scores describe the screened model, not the refit: keep it and assign every row with it."""
    c = chosen.candidate
    D = matrix(c.distance_metric) if needs_dtw_matrix(c.model, c.distance_metric) else None
    started = time.monotonic()
    result = fit_clustering(c.model, X, k=chosen.result.k, dtw=D, **_common(c, setting))
    log.info(
        "auto: refitted %s k=%d on %d profiles (%.1f s)",
        c.name,
        result.k,
        len(X),
        time.monotonic() - started,
    )
    kept = ari_fast(result.labels[rows], chosen.result.labels)
    if kept >= SAME_STRUCTURE:
        return result
    log.warning(
        "auto: the refit found another structure (ARI %.2f with the screened one); the screened"
        " model assigns every profile",
        kept,
    )
    return replace(chosen.result, labels=chosen.result.assigner.predict(X))


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


def candidates_table(choice: AutoChoice, truth: np.ndarray | None = None) -> pd.DataFrame:
    """One row per screened partition: candidate, k, the scores, credible, proposed, chosen (and
    ARI/NMI against ``truth``, the screened rows' known classes, when given; never used)."""
    rows = []
    for s in choice.scored:
        row = {"candidate": s.candidate.name, "k": s.result.k, "silhouette_gap": s.gap}
        row |= {"silhouette": s.silhouette, "null_silhouette": s.null_silhouette}
        row |= {"stability": s.stability, "consensus": s.consensus, "credible": s.credible}
        row |= {"proposed": s.proposed, "chosen": s is choice.chosen}
        if truth is not None:
            row |= {"ari": ari(truth, s.result.labels), "nmi": nmi(truth, s.result.labels)}
        rows.append(row)
    return pd.DataFrame(rows)


def best_per_candidate(choice: AutoChoice) -> list[int]:
    """Each candidate's partition at the chosen k (index into ``scored``), in candidate order."""
    return [i for i, s in enumerate(choice.scored) if s.proposed]


def structures_table(choice: AutoChoice) -> pd.DataFrame:
    """The top distinct structures, best first: rank, configuration, k, gap, stability,
    consensus, agreement with #1 (ARI), the share of the largest cluster and how many screened
    partitions agree with it (``partitions``)."""
    found = choice.structures
    rows = []
    for r, (i, size) in enumerate(zip(found.leaders, found.sizes, strict=True)):
        s = choice.scored[i]
        counts = np.bincount(s.result.labels)
        rows.append(
            {
                "rank": r + 1,
                "configuration": s.candidate.name,
                "k": s.result.k,
                "gap": s.gap,
                "stability": s.stability,
                "consensus": s.consensus,
                "agreement_with_1": float(found.agreement[0, r]),
                "largest_cluster": float(counts.max() / counts.sum()),
                "partitions": size,
            }
        )
    return pd.DataFrame(rows)
