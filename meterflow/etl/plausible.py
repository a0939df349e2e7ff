"""Values a user's file may hold at all: finite, and not absurdly large (pure).

The bound has two parts. ``MAX_ABS`` (1e15) is beyond any reading in any unit (1e15 Wh is a
terawatt-hour in one slot) yet ~1e293 below the float64 overflow, so the squares and sums that
normalisation, distances, fits and figures take over many slots and profiles stay finite and
precise; ``1e308`` or ``inf`` would overflow there (matplotlib then fails on the axis limits).
``ABSURD_FACTOR`` (1e6) times the 99th percentile of the non-zero ``|v|`` of a value's group
(its series, or the whole file) catches sentinels and overflow values far below that bound,
while a unit slip (x1000) passes; zeros are left out of the reference so that a mostly-zero
series does not make every reading absurd.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

ABSURD_FACTOR = 1e6
MAX_ABS = 1e15


def _reference(magnitude: np.ndarray) -> float:
    """99th percentile (lower) of the finite non-zero magnitudes; 0 without any."""
    usable = magnitude[np.isfinite(magnitude) & (magnitude > 0)]
    return float(np.quantile(usable, 0.99, method="lower")) if len(usable) else 0.0


def implausible(
    values: np.ndarray, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(mask of the values that are not finite or absurdly large, the reference magnitude of
    each value's group); ``groups`` (one key per value) default: one group. NaN counts as
    missing, not as implausible."""
    values = np.asarray(values, dtype=np.float64)
    magnitude = np.abs(values)
    keys = np.zeros(len(values)) if groups is None else np.asarray(groups)
    reference = (
        pd.Series(magnitude).groupby(keys).transform(lambda m: _reference(m.to_numpy())).to_numpy()
    )
    limit = np.where(reference > 0, np.minimum(ABSURD_FACTOR * reference, MAX_ABS), MAX_ABS)
    bad = np.isinf(values) | (magnitude > limit)
    return bad, reference


def describe(value: float, reference: float, of: str) -> str:
    """Why ``value`` is refused, e.g. ``value 1e+300 is absurdly large for its series (...)``."""
    value = float(value)
    if not np.isfinite(value):
        return f"value {value:g} is not finite"
    bound = min(ABSURD_FACTOR * reference, MAX_ABS) if reference > 0 else MAX_ABS
    return (
        f"value {value:.6g} is absurdly large for {of} (beyond {bound:.4g}: {ABSURD_FACTOR:g} x "
        f"the 99th percentile of its non-zero |value|, {reference:.4g}, at most {MAX_ABS:g})"
    )
