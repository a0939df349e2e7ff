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
        d = gap[1:]
        np.subtract(k[1:], k[:-1], out=d)
        d -= span[:-1]
        d[series[1:] != series[:-1]] = 0
        np.maximum(gap, 0, out=gap)
    return gap


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
    accumulated = np.zeros(len(k), dtype=bool)
    cand = np.flatnonzero(over)  # few: test the gap only there
    if len(cand):
        g = gap[cand]
        bound = np.broadcast_to(bound_per_interval_wh, len(k))[cand]
        fits_gap = mag[cand] <= bound * (span[cand] + g) + abs_tolerance_wh
        accumulated[cand] = (g > 0) & fits_gap
    return over & ~accumulated, accumulated, gap
