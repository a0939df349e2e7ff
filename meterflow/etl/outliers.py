"""Outliers: energy beyond what contractual power (import) or production (export) allows.

The bound of a reading is ``power x interval length x (1 + tolerance) + absolute tolerance``.
A reading that exceeds the bound for its own interval but fits the bound of its interval plus
the gap just before it is taken as energy accumulated over that gap (a meter that was silent and
then reported everything at once): it is moved to cover the gap and spread by the gap filling
instead of being rejected.
"""

from __future__ import annotations

import numpy as np


def preceding_gap(series: np.ndarray, k: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Missing intervals between each reading and the previous one of its series (sorted)."""
    gap = np.zeros(len(k), dtype=np.int64)
    if len(k) > 1:
        same = series[1:] == series[:-1]
        gap[1:] = np.where(same, k[1:] - (k[:-1] + span[:-1]), 0)
    return np.maximum(gap, 0)


def classify_outliers(
    series: np.ndarray,
    k: np.ndarray,
    span: np.ndarray,
    energy_wh: np.ndarray,
    bound_per_interval_wh: np.ndarray,
    abs_tolerance_wh: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(outlier, accumulated, gap_before)`` for readings sorted by (series, k).

    ``bound_per_interval_wh`` is the largest magnitude one raw interval may hold (per reading).
    ``accumulated`` readings exceed their own bound but fit over the preceding gap too.
    """
    mag = np.abs(energy_wh)
    gap = preceding_gap(series, k, span)
    over = mag > bound_per_interval_wh * span + abs_tolerance_wh
    fits_gap = mag <= bound_per_interval_wh * (span + gap) + abs_tolerance_wh
    accumulated = over & (gap > 0) & fits_gap
    return over & ~accumulated, accumulated, gap
