"""Elastic barycentres and k-means around them: DBA (Petitjean, Ketterlin & Gançarski 2011) and
shape-DBA (Ismail-Fawaz, Ismail Fawaz, Forestier & Devanne 2023).

One barycentre step aligns every member of a cluster to the cluster's current average by DTW
and replaces each slot of the average by the mean of the member values warped onto it. The
alignment compares per-slot *features* (``features(X) -> (n, m, d)``): the values themselves
for DBA (``d = 1``), the shape descriptors of ``meterflow.profiles.dtw.shape_dtw`` for
shape-DBA; the average is always of the raw values. A cell costs the squared Euclidean distance
between the two feature vectors and the path is the cheapest; ties in the traceback prefer the
diagonal, then a step of the member, then a step of the average (tslearn's and aeon's rule). A
member's cost is the squared raw differences summed along its path: its squared DTW (DBA) or
squared shape-DTW (shape-DBA) to the average.

``band``: dtaidistance's band in slots (``|a - b| < band``; ``band >= m`` unconstrained,
``kernel.band_width``). With ``band = 1`` the path is the diagonal and a barycentre is the
cluster mean.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
from numba import njit, prange

from meterflow.clustering.assign import CentroidAssigner
from meterflow.clustering.base import FitContext, FitOutput
from meterflow.clustering.distances import euclidean_cross
from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import band_width
from meterflow.profiles.dtw.variants import distance_cross

log = logging.getLogger(__name__)

Features = Callable[[np.ndarray], np.ndarray]  # (n, m) profiles -> (n, m, d) per-slot features
Distances = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (n, m), (k, m) -> (n, k)
_BLOCK = 2048  # members aligned per call of the kernel
_FEATURE_BYTES = 1 << 28  # member features kept between barycentre steps up to this size


def value_features(X: np.ndarray) -> np.ndarray:
    """The profiles as one feature per slot, (n, m, 1): the features of DBA."""
    return np.ascontiguousarray(X[:, :, None], dtype=np.float64)


@dataclass(frozen=True)
class Alignment:
    """What the warping paths compare: ``features`` of each slot, and whether they are
    ``shifted`` (``f[a + 1, t] == f[a, t + 1]``, as shape descriptors are: cell costs are then
    updated along the diagonals instead of summed afresh)."""

    features: Features
    shifted: bool = False


VALUES = Alignment(value_features)  # DBA


@njit(cache=True, nogil=True, boundscheck=False)
def _cell(fx, fc, a, b):  # pragma: no cover (compiled)
    """Squared Euclidean distance between feature vectors ``fx[a]`` and ``fc[b]``."""
    cost = 0.0
    for t in range(fx.shape[1]):
        diff = fx[a, t] - fc[b, t]
        cost += diff * diff
    return cost


@njit(cache=True, nogil=True, boundscheck=False)
def _accumulate(fx, fc, band, shifted, cell, acc):  # pragma: no cover (compiled)
    """Accumulated path costs of member features ``fx`` (m, d) against average features ``fc``
    into the banded ``acc`` (m, 2 band - 1): cell ``(a, b)`` at ``acc[a, b - a + band - 1]``,
    inf outside the band; ``cell`` (same layout) receives the cell costs. ``shifted``: the
    features of slot ``a + 1`` are those of slot ``a`` moved by one (``f[a + 1, t] ==
    f[a, t + 1]``, shape descriptors), so a cell's cost is its diagonal predecessor's with one
    term dropped and one added (clipped at 0 against rounding)."""
    m, d = fx.shape
    width = acc.shape[1]
    for a in range(m):
        for o in range(width):
            acc[a, o] = np.inf
        for b in range(max(0, a - band + 1), min(m, a + band)):
            o = b - a + band - 1
            if shifted and a > 0 and b > 0:
                out = fx[a - 1, 0] - fc[b - 1, 0]
                new = fx[a, d - 1] - fc[b, d - 1]
                cell[a, o] = max(0.0, cell[a - 1, o] - out * out + new * new)
            else:
                cell[a, o] = _cell(fx, fc, a, b)
            best = 0.0 if a == 0 and b == 0 else np.inf
            if a > 0 and b > 0:
                best = acc[a - 1, o]
            if a > 0 and o + 1 < width:
                best = min(best, acc[a - 1, o + 1])
            if b > 0 and o > 0:
                best = min(best, acc[a, o - 1])
            acc[a, o] = cell[a, o] + best


@njit(cache=True, nogil=True, boundscheck=False)
def _trace(x, c, acc, band, sums, counts):  # pragma: no cover (compiled)
    """Walk the best path back from the last cell, adding member value ``x[a]`` to ``sums[b]``
    and one to ``counts[b]`` for each cell ``(a, b)`` on it; returns the squared differences
    of the raw values ``x[a] - c[b]`` summed along the path."""
    m = x.shape[0]
    width = acc.shape[1]
    a = b = m - 1
    cost = 0.0
    while True:
        sums[b] += x[a]
        counts[b] += 1.0
        cost += (x[a] - c[b]) ** 2
        if a == 0 and b == 0:
            return cost
        if a == 0:
            b -= 1
        elif b == 0:
            a -= 1
        else:
            o = b - a + band - 1
            diag = acc[a - 1, o]
            up = acc[a - 1, o + 1] if o + 1 < width else np.inf
            left = acc[a, o - 1] if o > 0 else np.inf
            if diag <= up and diag <= left:
                a -= 1
                b -= 1
            elif up <= left:
                a -= 1
            else:
                b -= 1


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _aligned(F, X, owner, active, FC, C, band, shifted, sums, counts, costs):  # pragma: no cover
    """For each member ``i`` of an ``active`` average ``owner[i]`` (``C``: values, ``FC``:
    features): its values warped onto it as ``sums[i]`` and ``counts[i]`` per slot of the
    average, and the raw cost along its path ``costs[i, 0]`` (zeros for the other members)."""
    n, m = X.shape
    for i in prange(n):
        sums[i, :] = 0.0
        counts[i, :] = 0.0
        costs[i, 0] = 0.0
        if not active[owner[i]]:
            continue
        acc, cell = np.empty((m, 2 * band - 1)), np.empty((m, 2 * band - 1))
        _accumulate(F[i], FC[owner[i]], band, shifted, cell, acc)
        costs[i, 0] = _trace(X[i], C[owner[i]], acc, band, sums[i], counts[i])


@njit(cache=True, nogil=True, boundscheck=False)
def _add_rows(owner, rows, out):  # pragma: no cover (compiled)
    """``out[owner[i]] += rows[i]`` for every ``i`` (no BLAS: its spinning threads would fight
    numba's)."""
    for i in range(rows.shape[0]):
        for j in range(rows.shape[1]):
            out[owner[i], j] += rows[i, j]


class Members:
    """Profiles ``X`` (n, m) with their alignment features, in blocks of ``_BLOCK`` rows: the
    features are computed once when all of them fit in ``_FEATURE_BYTES``, else again at each
    use."""

    def __init__(self, X: np.ndarray, alignment: Alignment) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.alignment = alignment
        self.parts = [slice(lo, min(len(X), lo + _BLOCK)) for lo in range(0, len(X), _BLOCK)]
        width = alignment.features(self.X[:1]).shape[2]
        keep = self.X.size * width * 8 <= _FEATURE_BYTES
        self._kept = [self._features(part) for part in self.parts] if keep else None

    def _features(self, part: slice) -> np.ndarray:
        return np.ascontiguousarray(self.alignment.features(self.X[part]))

    def blocks(self) -> Iterator[tuple[slice, np.ndarray]]:
        """Each block's rows and features (rows, m, d)."""
        for i, part in enumerate(self.parts):
            yield part, self._features(part) if self._kept is None else self._kept[i]


def aligned_sums(
    members: Members, owner: np.ndarray, centres: np.ndarray, band: int, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each member whose average ``centres[owner[i]]`` is ``active`` warped onto it, totalled
    per average: the sums and counts of the values mapped to each of its slots, (k, m) each,
    and the raw costs along its members' paths, (k,) (squared DTW for DBA, squared shape-DTW
    for shape-DBA)."""
    k, m = centres.shape
    sums, counts, costs = np.zeros((k, m)), np.zeros((k, m)), np.zeros((k, 1))
    centres = np.ascontiguousarray(centres, dtype=np.float64)
    fc = np.ascontiguousarray(members.alignment.features(centres))
    owner = np.ascontiguousarray(owner, dtype=np.int64)
    shifted = members.alignment.shifted
    for part, fx in members.blocks():
        block, size = members.X[part], part.stop - part.start
        each = np.empty((size, m)), np.empty((size, m)), np.empty((size, 1))
        _aligned(fx, block, owner[part], active, fc, centres, band, shifted, *each)
        for total, rows in zip((sums, counts, costs), each, strict=True):
            _add_rows(owner[part], rows, total)
    return sums, counts, costs[:, 0]


def refine(
    members: Members,
    labels: np.ndarray,
    centres: np.ndarray,
    *,
    band: int,
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, int]:
    """Barycentre steps for every cluster at once, starting from ``centres`` (k, m): at most
    ``max_iter``; a cluster stops once a step lowers its total path cost by no more than
    ``tol`` times that cost. A step that raised the cost is undone (possible for shape-DBA: its
    paths minimise the descriptor cost, not the raw one), as aeon does: the last step's averages
    are costed once more, so each cluster ends on the cheapest average it reached. An empty
    cluster keeps its centre. Returns the new centres and the steps taken."""
    k = centres.shape[0]
    centres = np.array(centres, dtype=np.float64)
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    sizes = np.bincount(labels, minlength=k)
    active = sizes > 0
    if band == 1:  # diagonal paths: the barycentre is the mean
        sums = np.zeros_like(centres)
        _add_rows(labels, members.X, sums)
        centres[active] = sums[active] / sizes[active, None]
        return centres, 1
    previous = np.full(k, np.inf)  # the cost of ``best``
    best = centres.copy()
    pending = np.zeros(k, dtype=bool)  # moved since its cost was last measured
    steps = 0
    while steps < max_iter and active.any():
        steps += 1
        sums, counts, cost = aligned_sums(members, labels, centres, band, active)
        worse = active & (cost > previous)
        centres[worse] = best[worse]
        better = active & ~worse
        settled = better & (previous - cost <= tol * np.minimum(previous, cost))
        best[better], previous[better] = centres[better], cost[better]
        centres[better] = sums[better] / counts[better]
        pending = (pending & ~active) | better
        active &= ~(settled | worse)
    if pending.any():
        cost = aligned_sums(members, labels, centres, band, pending)[2]
        worse = pending & (cost > previous)
        centres[worse] = best[worse]
    return centres, steps


@dataclass(frozen=True)
class BarycentreOptions:
    """Settings of k-means around elastic barycentres (DBA, shape-DBA)."""

    # greedy k-means++ restarts, the run of lowest inertia wins; one, as the KASBA tables run
    # aeon (its own default: 10 from random rows): on the development sets the restart of lowest
    # inertia is not the better partition (Chinatown DBA 0.11 ARI with 3, 0.28 with one, aeon 0.28)
    n_init: int = 1
    max_iter: int = 30  # k-means iterations per run (assignment + barycentre update; aeon: 300)
    ba_iter: int = 30  # barycentre steps per update (Petitjean et al.; aeon, tslearn: 30)
    ba_tol: float = 1e-5  # a cluster's steps stop below this relative decrease of its cost
    # each update's steps start from the mean of the cluster's members (aeon's
    # init_barycenter="mean"), not from the current centre
    ba_from_mean: bool = False

    def __post_init__(self) -> None:
        for name in ("n_init", "max_iter", "ba_iter"):
            if getattr(self, name) < 1:
                raise ConfigError(f"option {name} must be >= 1, got {getattr(self, name)}")
        if not self.ba_tol >= 0:
            raise ConfigError(f"option ba_tol must be >= 0, got {self.ba_tol}")


@dataclass
class KMeansRun:
    """One k-means run: centres (k, m), labels (n,), inertia (sum of squared distances to the
    own centre) and the k-means iterations done."""

    centres: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


def barycentre_kmeans(
    members: Members,
    k: int,
    *,
    distances: Distances,
    band: int,
    settings: BarycentreOptions,
    seed: int,
) -> KMeansRun:
    """k-means of the ``members`` with elastic barycentres: ``n_init`` runs from k-means++ seeds
    drawn under ``distances``, each alternating assignment to the nearest centre and barycentre
    steps (:func:`refine`, from the current centres or, with ``ba_from_mean``, from the
    members' means) until the labels stop changing or ``max_iter`` iterations; the run of lowest
    inertia wins (the first on a tie)."""
    rng = np.random.default_rng(seed)
    best: KMeansRun | None = None
    for attempt in range(settings.n_init):
        seeds = _plus_plus(members.X, k, distances, rng)
        run = _one_run(members, seeds, distances, band, settings)
        log.info(
            "barycentre k-means run %d: inertia %.6g, %d iterations",
            attempt,
            run.inertia,
            run.n_iter,
        )
        if best is None or run.inertia < best.inertia:
            best = run
    assert best is not None  # n_init >= 1
    return best


def _one_run(
    members: Members,
    centres: np.ndarray,
    distances: Distances,
    band: int,
    settings: BarycentreOptions,
) -> KMeansRun:
    """Lloyd iterations from ``centres``."""
    X = members.X
    dist = distances(X, centres)
    labels = _fill_empty(dist, centres, X)
    n_iter = 0
    while n_iter < settings.max_iter:
        n_iter += 1
        if settings.ba_from_mean:
            centres = _member_means(X, labels, centres)
        centres, _ = refine(
            members, labels, centres, band=band, max_iter=settings.ba_iter, tol=settings.ba_tol
        )
        dist = distances(X, centres)
        new = _fill_empty(dist, centres, X)
        if np.array_equal(new, labels):
            break
        labels = new
    inertia = float(np.sum(dist[np.arange(len(X)), labels] ** 2))
    return KMeansRun(centres=centres, labels=labels, inertia=inertia, n_iter=n_iter)


def _member_means(X: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``centres`` with each non-empty cluster's replaced by the mean of its members."""
    sizes = np.bincount(labels, minlength=centres.shape[0])
    sums = np.zeros_like(centres)
    _add_rows(np.ascontiguousarray(labels, dtype=np.int64), X, sums)
    out = centres.copy()
    out[sizes > 0] = sums[sizes > 0] / sizes[sizes > 0, None]
    return out


def _fill_empty(dist: np.ndarray, centres: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Nearest-centre labels; each empty cluster, in index order, takes the profile farthest
    from its own centre among clusters of more than one member and that profile becomes its
    centre (``centres`` and ``dist`` are updated in place)."""
    labels = dist.argmin(axis=1)
    for c in range(centres.shape[0]):
        sizes = np.bincount(labels, minlength=centres.shape[0])
        if sizes[c]:
            continue
        own = dist[np.arange(len(X)), labels]
        own[sizes[labels] < 2] = -np.inf
        row = int(own.argmax())
        centres[c] = X[row]
        labels[row] = c
        dist[row, c] = 0.0
    return labels


def _plus_plus(X: np.ndarray, k: int, distances: Distances, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeds (Arthur & Vassilvitskii 2007; scikit-learn's greedy variant) under
    ``distances``: the first profile at random; each next one the best, by the summed squared
    distance to the nearest seed, of ``2 + log k`` candidates drawn with probability
    proportional to that squared distance (the first profile not chosen when all are zero)."""
    n = len(X)
    chosen = [int(rng.integers(n))]
    nearest = distances(X, X[chosen[-1]][None])[:, 0] ** 2
    trials = 2 + int(np.log(k))
    while len(chosen) < k:
        total = nearest.sum()
        if total > 0:
            candidates = rng.choice(n, size=trials, p=nearest / total)
        else:
            candidates = np.setdiff1d(np.arange(n), chosen)[:1]
        options = np.minimum(nearest[:, None], distances(X, X[candidates]) ** 2)
        best = int(options.sum(axis=0).argmin())
        chosen.append(int(candidates[best]))
        nearest = options[:, best]
    return X[chosen].copy()


def fit_barycentre_kmeans(
    X: np.ndarray,
    ctx: FitContext,
    options: BarycentreOptions,
    *,
    alignment: Alignment,
    center_kind: str,
) -> FitOutput:
    """The ``fit`` of DBA / shape-DBA k-means: under the run's elastic distance (its band
    ``ctx.window``) with barycentres aligned by ``alignment``; under ``euclidean`` the paths are
    diagonal, so it is k-means with means. New profiles go to the nearest centre by the same
    distance (``CentroidAssigner``)."""
    elastic = ctx.distance_metric != "euclidean"
    window = ctx.window if elastic else None
    if elastic:
        distances: Distances = partial(distance_cross, ctx.distance_metric, window=window)
    else:
        distances = euclidean_cross
    run = barycentre_kmeans(
        Members(X, alignment if elastic else VALUES),
        ctx.k,
        distances=distances,
        band=band_width(window, X.shape[1]) if elastic else 1,
        settings=options,
        seed=ctx.seed,
    )
    assigner = CentroidAssigner(
        n_slots=X.shape[1],
        centers=run.centres,
        metric=ctx.distance_metric,
        window=window,
        example_rows=run.centres[: min(3, ctx.k)],
    )
    return FitOutput(
        centers=run.centres.copy(),
        center_kind=center_kind if elastic else "mean",
        assigner=assigner,
        native_labels=run.labels.astype(np.int64),
        info={"inertia": run.inertia, "n_iter": run.n_iter},
    )
