"""Robust normalisation of evidence (the thresholds on it: ``calibration``).

Signed normalised evidence ``z = (r - center) / scale``, where ``r`` is a detector's evidence
(e.g. a forecast residual in the meter's scaled units), ``center`` the meter's median and
``scale`` a robust spread (1.4826 x MAD) fitted on validation evidence per meter AND slot of
day (load and PV are far noisier at some hours), shrunk towards the meter's spread, itself
shrunk towards the fleet's, with ``shrinkage`` pseudo-points:
``s^2 = (n s_cell^2 + k s_parent^2) / (n + k)``, and never below ``SLOT_SHARE_FLOOR`` of the
meter's (a warehouse's quiet night would otherwise make every watt an anomaly).

The thresholds are chosen by ``calibration`` on anomalies planted into validation copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826
SCALE_FLOOR = 1e-3  # in scaled units (share of the meter's standard deviation)
SLOT_SHARE_FLOOR = 0.25  # a slot's spread is at least this share of its meter's


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
    c_var = np.maximum(c_var, (SLOT_SHARE_FLOOR**2) * parent)  # quiet hours are not noiseless
    scale = np.maximum(np.sqrt(c_var), SCALE_FLOOR).reshape(n_meters, slots_per_day)
    return ResidualScale(center, scale, fleet_scale)
