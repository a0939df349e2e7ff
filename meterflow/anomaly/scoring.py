"""From a detector's evidence and the windowed evidence to one anomaly score per reading.

Three components, each on the scale of a standard normal deviate, fitted on validation only:

- ``point``: the detector's evidence as a robust z per meter and slot of day
  (``thresholds.fit_residual_scale``); ``|z|`` for signed evidence, ``max(z, 0)`` otherwise;
- ``ratio``: the daily imported-energy log ratio (``windowed``) as a robust z per meter, accumulated
  over the days a shift lasts (``windowed.run_statistic``);
- ``flat``: a run of ``L`` identical readings as the normal deviate of its chance
  ``p^(L-1)``, with ``p`` the meter's share of readings equal to the previous one (shrunk
  towards the fleet's with ``REPEAT_PRIOR`` pseudo-readings).

The score is the largest component, so a spike, a multi-day shift and a flat-line each count on
their own evidence; ``component`` says which one decided.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from meterflow.anomaly.thresholds import ResidualScale, fit_residual_scale
from meterflow.anomaly.windowed import day_grid, day_index, repeats, run_statistic
from meterflow.forecasting.series import FleetSeries

COMPONENTS = ("point", "ratio", "flat")
REPEAT_PRIOR = 500.0  # pseudo-readings of the fleet's repeat share in a meter's
REPEAT_FLOOR = 1e-4  # a meter never repeating a reading still may by chance
RATIO_SCALE_FLOOR = 0.05  # log units: a meter's day-to-day spread is never below 5 %
Z_CAP = 40.0  # normal deviates beyond this are all "impossible"


@dataclass(frozen=True)
class Evidence:
    """Raw evidence of the readings of one fleet (NaN = not available)."""

    point: np.ndarray  # the detector's
    ratio: np.ndarray  # daily-energy relative change against own history and peers
    runs: np.ndarray  # length of the run of identical readings


@dataclass(frozen=True)
class ScoreModel:
    """Normalisation of the three components (by meter id) and the threshold."""

    meter_ids: tuple[str, ...]
    slots_per_day: int
    signed: bool
    point: ResidualScale  # (n_meters, slots_per_day)
    ratio: ResidualScale  # (n_meters, 1)
    repeat_p: np.ndarray  # (n_meters,) chance that a reading equals the previous one
    fleet_repeat_p: float
    windowed: bool = True
    threshold: float = np.inf

    def with_threshold(self, threshold: float) -> ScoreModel:
        return replace(self, threshold=float(threshold))

    def components(self, fleet: FleetSeries, ev: Evidence) -> np.ndarray:
        """``(3, N)`` z-scale components (``COMPONENTS`` order; NaN = not available)."""
        idx = pd.Index(self.meter_ids).get_indexer(fleet.meter_ids.astype(str))[fleet.meter_idx]
        slot = fleet.time_idx % fleet.slots_per_day
        z = self.point.z(idx, slot, ev.point)
        point = np.abs(z) if self.signed else np.maximum(z, 0.0)
        out = np.full((3, len(fleet.values)), np.nan)
        out[0] = np.minimum(point, Z_CAP)
        if self.windowed:
            day_z = day_grid(fleet, self.ratio.z(idx, np.zeros_like(idx), ev.ratio))
            runs = run_statistic(day_z)[fleet.meter_idx, day_index(fleet)]
            out[1] = np.minimum(runs, Z_CAP)
            p = np.where(idx >= 0, self.repeat_p[np.maximum(idx, 0)], self.fleet_repeat_p)
            out[2] = run_surprise(ev.runs, p)
        return out

    def score(self, components: np.ndarray) -> np.ndarray:
        """The largest available component of each reading (NaN when none is)."""
        known = np.isfinite(components)
        best = np.where(known, components, -np.inf).max(axis=0)
        return np.where(known.any(axis=0), best, np.nan)


def run_surprise(runs: np.ndarray, repeat_p: np.ndarray) -> np.ndarray:
    """Normal deviate of the chance ``p^(L-1)`` of a run of ``L`` identical readings (0 for
    ``L = 1``), computed in log space and capped at ``Z_CAP``."""
    log_p = (np.asarray(runs, dtype=np.float64) - 1.0) * np.log(repeat_p)
    z = norm.isf(np.exp(np.maximum(log_p, -700.0)))
    return np.where(runs > 1, np.minimum(z, Z_CAP), 0.0)


def fit_score_model(
    fleet: FleetSeries,
    ev: Evidence,
    fit_mask: np.ndarray,
    history_mask: np.ndarray,
    signed: bool,
    windowed: bool = True,
    shrinkage: float = 10.0,
) -> ScoreModel:
    """Fit the point normalisation on the readings in ``fit_mask`` (validation) where the
    detector's evidence is known; the daily-ratio normalisation and the repeat shares on
    ``history_mask`` (validation and the history before it: neither is learned by a model)."""
    n_m, slots = len(fleet.meter_ids), fleet.slots_per_day
    m, slot = fleet.meter_idx, fleet.time_idx % slots
    ok = fit_mask & np.isfinite(ev.point)
    if not ok.any():
        raise ValueError("no validation reading has the detector's evidence")
    point = fit_residual_scale(m[ok], slot[ok], ev.point[ok], n_m, slots, shrinkage)
    ratio = point if not windowed else _ratio_scale(fleet, ev, history_mask, shrinkage)
    same, count = _repeats(fleet, history_mask)
    fleet_p = max(float(same.sum() / max(count.sum(), 1.0)), REPEAT_FLOOR)
    repeat_p = np.maximum((same + REPEAT_PRIOR * fleet_p) / (count + REPEAT_PRIOR), REPEAT_FLOOR)
    ids = tuple(str(x) for x in fleet.meter_ids)
    return ScoreModel(ids, slots, signed, point, ratio, repeat_p, fleet_p, windowed)


def _ratio_scale(
    fleet: FleetSeries, ev: Evidence, mask: np.ndarray, shrinkage: float
) -> ResidualScale:
    """Robust centre and spread of each meter's daily ratios (one value per meter-day)."""
    days = fleet.time_idx // fleet.slots_per_day
    ok = mask & np.isfinite(ev.ratio)
    first = np.ones(len(days), dtype=bool)  # one reading per meter-day
    first[1:] = (days[1:] != days[:-1]) | (fleet.meter_idx[1:] != fleet.meter_idx[:-1])
    pick = ok & first
    if not pick.any():
        raise ValueError(
            "no day before the test split has a daily-energy ratio (too little history)"
        )
    m = fleet.meter_idx[pick]
    fitted = fit_residual_scale(
        m, np.zeros_like(m), ev.ratio[pick], len(fleet.meter_ids), 1, shrinkage
    )
    return replace(fitted, scale=np.maximum(fitted.scale, RATIO_SCALE_FLOOR))


def _repeats(fleet: FleetSeries, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per meter: readings in ``mask`` equal to the previous reading, and readings counted."""
    m, n = fleet.meter_idx[mask], len(fleet.meter_ids)
    same = np.bincount(m, weights=repeats(fleet)[mask], minlength=n)
    return same, np.bincount(m, minlength=n).astype(np.float64)
