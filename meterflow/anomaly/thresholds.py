"""From forecast residuals to anomaly scores and a threshold.

Signed normalised residual ``z = (r - center) / scale``, where ``r`` is the forecast residual
in the meter's scaled units (residual in Wh / the meter's training standard deviation),
``center`` the meter's median residual and ``scale`` a robust spread (1.4826 x MAD) fitted on
validation residuals per meter AND slot of day (load and PV are far noisier at some hours),
shrunk towards the meter's spread, itself shrunk towards the fleet's, with ``shrinkage``
pseudo-points: ``s^2 = (n s_cell^2 + k s_parent^2) / (n + k)``. The score is ``|z|``, or with
a smoothing window also the weighted trailing run of residuals when larger (``combine_scores``,
``trailing_run``; the weight equalises both parts' validation quantiles).

Threshold (chosen on the validation split only):

- ``quantile``: the ``q`` quantile of the validation scores (expects about ``1 - q`` of points
  flagged);
- ``sigma``: mean + ``k`` standard deviations of the validation scores;
- ``best_f1``: the validation score that maximises point-wise F1 against the validation labels
  (falls back to ``quantile`` when validation has no labelled anomaly).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from meterflow.errors import ConfigError

log = logging.getLogger(__name__)

MAD_TO_SIGMA = 1.4826
SCALE_FLOOR = 1e-3  # in scaled units (share of the meter's standard deviation)
RUN_CLIP = 3.0  # |z| counted at most this much in a trailing run
THRESHOLD_METHODS = ("quantile", "sigma", "best_f1")


@dataclass(frozen=True)
class ResidualScale:
    """Per-meter centre and per-meter-and-slot robust spread of scaled residuals."""

    center: np.ndarray  # (n_meters,)
    scale: np.ndarray  # (n_meters, slots_per_day)
    fleet_scale: float  # for meters never seen

    def z(self, meter_idx: np.ndarray, slot: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """Signed normalised residuals; ``meter_idx == -1`` uses centre 0 and the fleet scale."""
        known = meter_idx >= 0
        m = np.maximum(meter_idx, 0)
        center = np.where(known, self.center[m], 0.0)
        scale = np.where(known, self.scale[m, slot], self.fleet_scale)
        return (residual - center) / scale


def _robust(groups: np.ndarray, values: np.ndarray, n_groups: int) -> tuple[np.ndarray, ...]:
    """Median and MAD spread of ``values`` per group (NaN for empty groups) and counts."""
    order = np.argsort(groups, kind="stable")
    g, v = groups[order], values[order]
    counts = np.bincount(g, minlength=n_groups)
    med = np.full(n_groups, np.nan)
    mad = np.full(n_groups, np.nan)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for i in np.flatnonzero(counts):
        part = v[bounds[i] : bounds[i + 1]]
        med[i] = np.median(part)
        mad[i] = MAD_TO_SIGMA * np.median(np.abs(part - med[i]))
    return med, mad, counts


def fit_residual_scale(
    meter_idx: np.ndarray,
    slot: np.ndarray,
    residual: np.ndarray,
    n_meters: int,
    slots_per_day: int,
    shrinkage: float = 10.0,
) -> ResidualScale:
    """Fit centres and spreads on (validation) residuals in scaled units."""
    if len(residual) == 0:
        raise ValueError("no residuals to fit the anomaly score scale on")
    fleet_med = float(np.median(residual))
    fleet_scale = max(MAD_TO_SIGMA * float(np.median(np.abs(residual - fleet_med))), SCALE_FLOOR)
    center, m_mad, m_n = _robust(meter_idx, residual, n_meters)
    center = np.where(np.isfinite(center), center, fleet_med)
    m_var = (m_n * np.nan_to_num(m_mad) ** 2 + shrinkage * fleet_scale**2) / (m_n + shrinkage)
    cell = meter_idx * slots_per_day + slot
    _, c_mad, c_n = _robust(cell, residual - center[meter_idx], n_meters * slots_per_day)
    parent = np.repeat(m_var, slots_per_day)
    c_var = (c_n * np.nan_to_num(c_mad) ** 2 + shrinkage * parent) / (c_n + shrinkage)
    scale = np.maximum(np.sqrt(c_var), SCALE_FLOOR).reshape(n_meters, slots_per_day)
    return ResidualScale(center, scale, fleet_scale)


def combine_scores(
    meter_idx: np.ndarray,
    time_idx: np.ndarray,
    z: np.ndarray,
    window: int,
    run_weight: float = 1.0,
) -> np.ndarray:
    """Anomaly score from signed normalised residuals ``z`` (sorted by meter then time).

    ``window == 1``: ``|z|``. Otherwise the larger of ``|z|`` and ``run_weight`` x the trailing
    run (``trailing_run``): a sustained shift whose single residuals stay below the threshold
    adds up, while a spike keeps its full point score. ``run_weight`` (``fit_run_weight``) puts
    the run on the point score's scale.
    """
    z = np.asarray(z, dtype=np.float64)
    point = np.abs(z)
    if window <= 1 or len(z) == 0:
        return point
    return np.maximum(point, run_weight * trailing_run(meter_idx, time_idx, z, window))


def trailing_run(
    meter_idx: np.ndarray, time_idx: np.ndarray, z: np.ndarray, window: int
) -> np.ndarray:
    """Evidence of a sustained shift: ``sqrt(n) x min(|mean_long|, |mean_short|)`` where the
    means are over the trailing ``n <= window`` and ``window // 4`` consecutive slots of the
    meter (a gap restarts both), of ``z`` clipped to +-``RUN_CLIP``; 0 when the two means
    disagree in sign. Clipping keeps one spike from carrying a whole window; the short mean
    ends the run soon after the shift ends."""
    z = np.clip(np.asarray(z, dtype=np.float64), -RUN_CLIP, RUN_CLIP)
    n = len(z)
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = (meter_idx[1:] != meter_idx[:-1]) | (time_idx[1:] != time_idx[:-1] + 1)
    start = np.maximum.accumulate(np.where(breaks, np.arange(n), 0))
    csum = np.concatenate([[0.0], np.cumsum(z)])
    at = np.arange(n)

    def trailing_mean(w: int) -> tuple[np.ndarray, np.ndarray]:
        lo = np.maximum(at - w + 1, start)
        count = at + 1 - lo
        return (csum[at + 1] - csum[lo]) / count, count

    long_mean, count = trailing_mean(window)
    short_mean, _ = trailing_mean(max(1, window // 4))
    agree = np.sign(long_mean) == np.sign(short_mean)
    return np.where(agree, np.sqrt(count) * np.minimum(np.abs(long_mean), np.abs(short_mean)), 0.0)


def fit_run_weight(
    meter_idx: np.ndarray, time_idx: np.ndarray, z: np.ndarray, window: int, quantile: float
) -> float:
    """Weight that gives the trailing run the same ``quantile`` as ``|z|`` on (validation)
    residuals, so that neither part of ``combine_scores`` dominates the flags."""
    if window <= 1 or len(z) == 0:
        return 1.0
    run = trailing_run(meter_idx, time_idx, np.asarray(z, dtype=np.float64), window)
    q_run = float(np.quantile(run, quantile))
    return float(np.quantile(np.abs(z), quantile)) / q_run if q_run > 0 else 1.0


def choose_threshold(
    val_scores: np.ndarray,
    method: str,
    quantile: float = 0.99,
    sigma_k: float = 4.0,
    val_labels: np.ndarray | None = None,
) -> float:
    """The flagging threshold from validation scores (see the module docstring)."""
    if method not in THRESHOLD_METHODS:
        raise ConfigError(f"threshold must be one of {THRESHOLD_METHODS}, got {method!r}")
    scores = np.asarray(val_scores, dtype=np.float64)
    if len(scores) == 0:
        raise ValueError("no validation scores to choose a threshold on")
    if method == "best_f1":
        if val_labels is not None and val_labels.any() and not val_labels.all():
            precision, recall, thresholds = precision_recall_curve(val_labels, scores)
            f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
            best = int(np.argmax(f1[:-1]))
            log.info("threshold best_f1: validation F1 %.3f at %.3f", f1[best], thresholds[best])
            return float(thresholds[best])
        log.info("threshold best_f1: no labelled anomaly in validation, using quantile")
        method = "quantile"
    if method == "sigma":
        return float(scores.mean() + sigma_k * scores.std())
    return float(np.quantile(scores, quantile))
