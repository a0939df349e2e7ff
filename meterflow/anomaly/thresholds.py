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

from dataclasses import dataclass, fields

import numpy as np

from meterflow.errors import InputError

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


@dataclass(frozen=True)
class ResidualStats:
    """What ``ResidualScale`` is fitted from, per meter and per meter and slot of day: a
    meter block's part (``concat_stats`` joins the parts; the fleet's own spread comes from
    the residuals pooled apart)."""

    center: np.ndarray  # (n_meters,) median, NaN without residuals
    mad: np.ndarray  # (n_meters,) robust spread
    count: np.ndarray  # (n_meters,)
    cell_mad: np.ndarray  # (n_meters * slots_per_day,) about the meter's centre
    cell_count: np.ndarray  # (n_meters * slots_per_day,)


def residual_stats(
    meter_idx: np.ndarray, slot: np.ndarray, residual: np.ndarray, n_meters: int, slots: int
) -> ResidualStats:
    """The per-meter and per-cell statistics of (validation) residuals in scaled units."""
    center, mad, count = _robust(meter_idx, residual, n_meters)
    cell = meter_idx * slots + slot
    _, cell_mad, cell_count = _robust(cell, residual - center[meter_idx], n_meters * slots)
    return ResidualStats(center, mad, count, cell_mad, cell_count)


def concat_stats(parts: list[ResidualStats]) -> ResidualStats:
    """The statistics of consecutive meter blocks as one fleet's."""
    return ResidualStats(
        *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(ResidualStats))
    )


def finish_scale(
    stats: ResidualStats, pooled: np.ndarray, slots: int, shrinkage: float = 10.0
) -> ResidualScale:
    """Centres and spreads (module docstring), the fleet's centre and spread being those of the
    ``pooled`` residuals."""
    if len(pooled) == 0:
        raise InputError("no residuals to fit the anomaly score scale on")
    fleet_med = float(np.median(pooled))
    fleet_scale = max(MAD_TO_SIGMA * float(np.median(np.abs(pooled - fleet_med))), SCALE_FLOOR)
    center = np.where(np.isfinite(stats.center), stats.center, fleet_med)
    m_n, c_n = stats.count, stats.cell_count
    m_var = (m_n * np.nan_to_num(stats.mad) ** 2 + shrinkage * fleet_scale**2) / (m_n + shrinkage)
    parent = np.repeat(m_var, slots)
    c_var = (c_n * np.nan_to_num(stats.cell_mad) ** 2 + shrinkage * parent) / (c_n + shrinkage)
    c_var = np.maximum(c_var, (SLOT_SHARE_FLOOR**2) * parent)  # quiet hours are not noiseless
    scale = np.maximum(np.sqrt(c_var), SCALE_FLOOR).reshape(len(center), slots)
    return ResidualScale(center, scale, fleet_scale)


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
        raise InputError("no residuals to fit the anomaly score scale on")
    stats = residual_stats(meter_idx, slot, residual, n_meters, slots_per_day)
    return finish_scale(stats, residual, slots_per_day, shrinkage)
