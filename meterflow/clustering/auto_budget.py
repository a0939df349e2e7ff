"""``model=auto``'s screening budget: how many profiles to screen and which candidates are
affordable for profiles of a given length, so that screening long profiles stays practical.

The cost model counts DTW cells (one step of the dynamic programme of a DTW distance inside its
band, ``band_cells``: ~0.2 ns of CPU each on the 2-core development machine). Per candidate,
for ``rows`` profiles of ``slots`` slots, ``cells = band_cells(slots, band)`` and the metric's
cost per cell relative to DTW (``METRIC_FACTOR``, measured at 1000 x 96, window 10):
- its distance matrices (when it reads one, ``needs_dtw_matrix``), for the profiles and the
  null reference, computed once per metric: ``rows^2 x cells x factor``;
- barycentre k-means (DBA, shape-DBA): ``rows x (BARYCENTRE_ROW + passes x cells)``: a fixed
  share per profile (the loops around the alignments) and the alignments themselves, at every
  k, iteration and barycentre step, for the profiles, the null and the stability rounds;
- k-Shape: ``KSHAPE_PASSES x rows x slots^2 + KSHAPE_EIGEN x slots^3`` (cross-correlations of
  every profile; one slots x slots eigendecomposition per cluster and iteration);
- every other fit: ``rows x (FIT_ROW + FIT_PASSES x width)``, the width being ``cells x
  factor`` for an elastic metric (held-out profiles are assigned with it), else ``slots``.
The constants are round values measured on ElectricDevices (300 x 96, window 5) and
FreezerSmallTrain (300 x 301, window 16; 200 x 720 interpolated, window 37): CPU seconds of each
candidate's screening at k = 2..8, measured (estimated): DBA 13.6 (13.3), 22.2 (25.6), 62 (59);
shape-DBA 13.8 (15.5), 41.6 (50.2), 172 (151); k-Shape 2.4 (1.3), 16.5 (16.3), 113 (116);
k-medoids shape-DTW 1.9 (1.0), 5.8 (4.5), 19.6 (15.2). The shares matter, not the seconds: the
barycentres are ~70 % of the estimate at 1000 x 96, ~60 % at 500 x 720 (k-Shape ~20 %).

The budget is what screening the same candidates on ``REFERENCE_ROWS`` profiles of
``REFERENCE_SLOTS`` slots at window ``REFERENCE_WINDOW`` costs: a day of 15-minute slots is
screened in full on 1000 profiles at windows up to 0.1, as before the budget. Over budget, the
screening sample shrinks first (down to ``FLOOR_ROWS`` profiles: 25 per cluster at k = 8, enough
for the stability rounds' 80 % subsamples); when even that is over it, the candidate whose
removal saves the most is dropped and the sample grows back as far as the budget allows, and
so on (one candidate at least is kept). On the development sets (window 0.05) nothing changes
up to 144 slots (ItalyPowerDemand, Chinatown, MelbournePedestrian, ElectricDevices, PowerCons);
FreezerSmallTrain (301 slots, estimate 2.5x the budget) is screened on 414 profiles instead of
1000 (auto's ARI on every profile 0.25 -> 0.21; 0.29 on 440 profiles, 0.12 on the benchmark's
sample: its k moves with the sample); 500 x 720 (5.5x) on 257 without shape-DBA and k-Shape.
Profiles first: dropping those two from the 1000-row screenings of the development sets
changes no choice but PowerCons' (ARI 0.69 -> 0.71) and FreezerSmallTrain's (0.30 -> 0.32,
screened rows), but dropping both barycentres costs PowerCons 0.69 -> 0.57 and
ItalyPowerDemand 0.63 -> 0.58.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from meterflow.clustering.fit import needs_dtw_matrix
from meterflow.profiles.dtw.kernel import band_cells
from meterflow.profiles.dtw.window import window_slots

log = logging.getLogger(__name__)

FLOOR_ROWS = 200  # never screen fewer profiles (25 per cluster at k = 8)
REFERENCE_ROWS = 1000  # the budget: the full screening of this many profiles ...
REFERENCE_SLOTS = 96  # ... of a day of 15-minute slots ...
REFERENCE_WINDOW = 0.1  # ... at this DTW window fraction (twice the default 0.05)
# a metric's cost per DP cell relative to DTW's (1000 x 96, window 10, one core)
METRIC_FACTOR = {"erp": 2.4, "msm": 4.3, "twe": 4.4, "shape_dtw": 7.2}
BARYCENTRE_ROW = 200_000_000  # DTW cells' worth per profile around the alignments (~0.04 s)
BARYCENTRE_PASSES = {"dba": 25_000, "shape_dba": 70_000}  # per profile and band cell
KSHAPE_PASSES = 2_000  # per profile and slot^2 (cross-correlations)
KSHAPE_EIGEN = 1_000  # per slot^3 (eigendecompositions, whatever the profiles)
FIT_ROW = 10_000_000  # per profile, any other fit (~2 ms)
FIT_PASSES = 1_000  # per profile and cell (x factor) of its metric, or slot when Euclidean
MEASURED_KS = 7  # the fits above: k = 2..8


class Configuration(Protocol):
    """What the budget reads of a candidate (``auto.Candidate``)."""

    @property
    def model(self) -> str: ...

    @property
    def distance_metric(self) -> str: ...

    @property
    def name(self) -> str: ...


C = TypeVar("C", bound=Configuration)


@dataclass(frozen=True)
class ScreeningPlan(Generic[C]):
    """The profiles to screen (``rows`` of ``n``), the ``kept`` candidates (in the given order),
    the ``dropped`` ones' names, the estimated cost and the budget (DTW cells)."""

    rows: int
    kept: tuple[C, ...]
    dropped: tuple[str, ...]
    cost: float
    budget: float

    def trimmed(self, n: int, limit: int) -> bool:
        """Whether the budget cut anything: fewer rows than ``min(n, limit)`` or a candidate."""
        return bool(self.dropped) or self.rows < min(n, limit)


@functools.cache
def _cells(slots: int, band: int | None) -> int:
    return band_cells(slots, band or None)


def fit_cost(candidate: Configuration, rows: int, slots: int, band: int | None) -> float:
    """Estimated DTW cells of screening one candidate's fits at k = 2..8 (matrices apart)."""
    metric = candidate.distance_metric
    elastic = metric != "euclidean"
    if candidate.model in BARYCENTRE_PASSES and elastic:
        return rows * (BARYCENTRE_ROW + BARYCENTRE_PASSES[candidate.model] * _cells(slots, band))
    if candidate.model == "kshape":
        return KSHAPE_PASSES * rows * slots**2 + KSHAPE_EIGEN * slots**3
    width = _cells(slots, band) * METRIC_FACTOR.get(metric, 1.0) if elastic else slots
    return rows * (FIT_ROW + FIT_PASSES * width)


def matrix_cost(metric: str, rows: int, slots: int, band: int | None) -> float:
    """Estimated DTW cells of one metric's two screening matrices (profiles and null)."""
    return rows * (rows - 1) * _cells(slots, band) * METRIC_FACTOR.get(metric, 1.0)


def screening_cost(
    candidates: Sequence[Configuration],
    rows: int,
    slots: int,
    band: int | None,
    ks: int = MEASURED_KS,
) -> float:
    """Estimated DTW cells of screening ``candidates`` on ``rows`` profiles of ``slots`` slots
    at ``ks`` values of k: every fit, and each matrix once."""
    on_matrix = (c for c in candidates if needs_dtw_matrix(c.model, c.distance_metric))
    metrics = {c.distance_metric for c in on_matrix}
    fits = sum(fit_cost(c, rows, slots, band) for c in candidates) * ks / MEASURED_KS
    return fits + sum(matrix_cost(m, rows, slots, band) for m in metrics)


def budget_of(candidates: Sequence[Configuration], limit: int) -> float:
    """The budget: screening ``candidates`` on ``min(limit, REFERENCE_ROWS)`` profiles of a
    reference day (``REFERENCE_SLOTS`` slots, window ``REFERENCE_WINDOW``)."""
    band = window_slots(REFERENCE_WINDOW, REFERENCE_SLOTS)
    return screening_cost(candidates, min(limit, REFERENCE_ROWS), REFERENCE_SLOTS, band)


Cost = Callable[[Sequence[Configuration], int], float]  # (candidates, rows) -> DTW cells


def _most_rows(kept: Sequence[Configuration], hi: int, lo: int, cost: Cost, budget: float) -> int:
    """The most rows in ``[lo, hi]`` whose screening fits the budget (``lo`` when none does);
    the cost grows with the rows."""
    if cost(kept, hi) <= budget:
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if cost(kept, mid) <= budget else (lo, mid)
    return lo


def _saving(kept: Sequence[Configuration], i: int, rows: int, cost: Cost) -> float:
    """How much dropping ``kept[i]`` saves (its fits, and its matrices unless shared)."""
    return cost(kept, rows) - cost([c for j, c in enumerate(kept) if j != i], rows)


def plan_screening(
    n: int,
    slots: int,
    band: int | None,
    candidates: Sequence[C],
    limit: int,
    ks: int = MEASURED_KS,
) -> ScreeningPlan[C]:
    """The screening plan for ``n`` profiles of ``slots`` slots at DTW band ``band`` (the kernels'
    window: 0 or None unconstrained), ``ks`` values of k and at most ``limit`` rows (module
    doc): the most rows within the budget, no fewer than ``FLOOR_ROWS``; when even those are
    over it, the candidate whose removal saves the most is dropped (the last on a tie), and
    again, keeping one at least. One INFO line says what was cut, if anything."""

    def cost(kept: Sequence[Configuration], rows: int) -> float:
        return screening_cost(kept, rows, slots, band, ks)

    budget = budget_of(candidates, limit)
    top = min(n, limit)
    floor = min(top, FLOOR_ROWS)
    kept = list(candidates)
    dropped: list[str] = []
    rows = _most_rows(kept, top, floor, cost, budget)
    while len(kept) > 1 and cost(kept, rows) > budget:
        savings = [_saving(kept, i, rows, cost) for i in range(len(kept))]
        worst = max(range(len(kept)), key=lambda i: (savings[i], i))
        dropped.append(kept.pop(worst).name)
        rows = _most_rows(kept, top, floor, cost, budget)
    plan = ScreeningPlan(rows, tuple(kept), tuple(dropped), cost(kept, rows), budget)
    if plan.trimmed(n, limit):
        log.info(
            "auto: screening budget (profiles of %d slots, band %s, estimate %.1fx the budget):"
            " %d of %d profiles screened; dropped: %s",
            *(slots, band or "unconstrained", cost(candidates, top) / budget, rows, top),
            ", ".join(dropped) or "none",
        )
    return plan
