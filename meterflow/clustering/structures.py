"""Agreement between partitions, consensus and the distinct structures among many partitions
(pure functions, no fitting).

Two partitions of the same profiles are "the same structure" when their adjusted Rand index
(ARI, chance-corrected, so comparable across k) is at least ``SAME_STRUCTURE``.
:func:`distinct_structures` picks the best partition, sets aside every partition of the same
structure, and picks again among the rest: the structures an analyst would want to compare
side by side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SAME_STRUCTURE = 0.5  # ARI at or above which two partitions count as one structure
TOP_STRUCTURES = 3


def ari_fast(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labelings of the same rows (as scikit-learn's, from the
    contingency table; 1.0 when both put every row in one cluster)."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1), dtype=np.int64)
    np.add.at(table, (ia, ib), 1)
    n = len(a)

    def pairs(x: np.ndarray) -> float:
        return float(np.sum(x * (x - 1)) / 2.0)

    both, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    total = n * (n - 1) / 2.0
    expected = rows * cols / total if total else 0.0
    top = (rows + cols) / 2.0
    if top == expected:
        return 1.0
    return (both - expected) / (top - expected)


def agreement_matrix(labelings: Sequence[np.ndarray]) -> np.ndarray:
    """Symmetric matrix of pairwise ARI between ``labelings`` (ones on the diagonal)."""
    n = len(labelings)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = ari_fast(labelings[i], labelings[j])
    return out


def consensus(
    agreement: np.ndarray,
    owners: Sequence[object],
    families: Sequence[object],
    voters: Sequence[int],
    strata: Sequence[object] | None = None,
) -> np.ndarray:
    """Each partition's consensus: its agreement with the ``voters`` (indices of partitions, the
    ensemble) of every OTHER owner (configuration), averaged within each family of owners and
    then over the families: one vote per family, so that near-duplicate owners do not outvote
    the others. With ``strata`` (e.g. each partition's k), only voters of the partition's own
    stratum vote. NaN when no other owner has a voter."""
    names, kinds = [str(o) for o in owners], [str(f) for f in families]
    levels = list(strata) if strata is not None else [None] * len(names)
    out = np.full(len(names), np.nan)
    for i, own in enumerate(names):
        votes: dict[str, list[float]] = {}
        for j in voters:
            if names[j] != own and levels[j] == levels[i]:
                votes.setdefault(kinds[j], []).append(float(agreement[i, j]))
        if votes:
            out[i] = float(np.mean([np.mean(v) for v in votes.values()]))
    return out


@dataclass(frozen=True)
class Structures:
    """The top distinct structures: ``leaders`` (indices into the partitions, best first),
    ``sizes`` (how many partitions each one's group holds) and ``agreement`` (ARI between the
    leaders)."""

    leaders: list[int]
    sizes: list[int]
    agreement: np.ndarray


def distinct_structures(
    best: Callable[[np.ndarray], int],
    agreement: np.ndarray,
    *,
    threshold: float = SAME_STRUCTURE,
    top: int = TOP_STRUCTURES,
) -> Structures:
    """The choice, repeated on what is left: ``best(remaining)`` picks a partition among the
    indices not yet grouped; it leads a group that takes every ungrouped partition agreeing
    with it at ARI >= ``threshold``; up to ``top`` leaders."""
    remaining = np.ones(len(agreement), dtype=bool)
    leaders, sizes = [], []
    while remaining.any() and len(leaders) < top:
        i = best(np.flatnonzero(remaining))
        members = remaining & (agreement[i] >= threshold)
        members[i] = True
        remaining &= ~members
        leaders.append(int(i))
        sizes.append(int(members.sum()))
    return Structures(leaders, sizes, agreement[np.ix_(leaders, leaders)])
