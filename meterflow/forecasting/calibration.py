"""Calibrated forecast intervals: the quantile network's spread around its median, widened or
narrowed per target step so that the outermost quantiles cover their nominal share of the
VALIDATION targets (never the test ones). A quantile loss alone tends to give intervals that
are too narrow once early stopping picks the epoch with the best median.
"""

from __future__ import annotations

import numpy as np


def interval_scales(
    quantile_pred: np.ndarray, actual: np.ndarray, quantiles: tuple[float, ...], median: int
) -> np.ndarray:
    """Per step, the factor ``s`` that makes ``median + s * (q - median)`` of the lowest and
    highest quantile cover ``q_high - q_low`` of ``actual`` (``quantile_pred (n, steps, Q)``,
    ``actual (n, steps)``); 1 where it cannot be estimated."""
    low, high = quantile_pred[..., 0], quantile_pred[..., -1]
    mid = quantile_pred[..., median]
    with np.errstate(divide="ignore", invalid="ignore"):
        below = np.where(actual < mid, (mid - actual) / (mid - low), 0.0)
        above = np.where(actual > mid, (actual - mid) / (high - mid), 0.0)
    score = np.maximum(below, above)  # the widening each target needs to be covered
    nominal = quantiles[-1] - quantiles[0]
    scales = np.ones(actual.shape[1])
    for k in range(actual.shape[1]):
        finite = score[np.isfinite(score[:, k]), k]
        if len(finite) >= 20:
            scales[k] = float(np.quantile(finite, nominal))
    return np.clip(scales, 0.1, 10.0)


def apply_scales(quantile_pred: np.ndarray, scales: np.ndarray, median: int) -> np.ndarray:
    """``quantile_pred (n, steps, Q)`` with each quantile's distance to the median scaled by
    its step's factor (the median is unchanged, the order is kept)."""
    mid = quantile_pred[..., median : median + 1]
    return mid + scales[None, :, None] * (quantile_pred - mid)
