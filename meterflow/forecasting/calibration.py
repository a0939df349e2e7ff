"""Forecast intervals, learned on the VALIDATION targets (never the test ones).

- ``interval_scales`` / ``apply_scales``: a quantile forecast's spread around its median,
  widened or narrowed per target step so that the outermost quantiles cover their nominal share
  of validation (a quantile loss alone tends to give intervals that are too narrow once early
  stopping picks the epoch with the best median; a combination of forecasters needs it too).
- ``residual_offsets``: quantiles for a forecaster of one value per target, from its
  validation residuals.
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


MIN_RESIDUALS = 20  # residuals per step below which the steps' residuals are pooled


def residual_offsets(
    point: np.ndarray, actual: np.ndarray, scale: np.ndarray, quantiles: tuple[float, ...]
) -> np.ndarray:
    """``(steps, quantiles)`` offsets of each quantile from a point forecast, in units of each
    window's ``scale``: per step, the quantiles of the scaled residuals ``(actual - point) /
    scale`` less their median (so the point forecast stays the median). Steps with fewer than
    ``MIN_RESIDUALS`` finite residuals use every step's; zero offsets without any."""
    resid = (np.asarray(actual) - np.asarray(point)) / np.asarray(scale)[:, None]
    q = np.asarray(quantiles, dtype=np.float64)
    pooled = resid[np.isfinite(resid)]
    if len(pooled) == 0:
        return np.zeros((resid.shape[1], len(q)))
    fallback = np.quantile(pooled, q) - np.quantile(pooled, 0.5)
    out = np.tile(fallback, (resid.shape[1], 1))
    for k in range(resid.shape[1]):
        finite = resid[np.isfinite(resid[:, k]), k]
        if len(finite) >= MIN_RESIDUALS:
            out[k] = np.quantile(finite, q) - np.quantile(finite, 0.5)
    return out
