"""Clock-shift evidence: a meter-day whose profile matches the meter's recent days better when
moved by whole slots (a meter or gateway clock that drifted, a wrong time zone, a missed
daylight-saving change) than where it is.

Each day's profile and the meter's reference (the slot-wise median of its previous
``CLOCK_REF_DAYS`` days) are divided by their own mean, so a change of level does not count.
For each shift of 1 .. ``MAX_SHIFT_HOURS`` hours either way, the mean absolute difference
with the reference is compared with the unshifted one on the same slots; the evidence is the
largest relative improvement (near 0 on an ordinary day, towards 1 on a shifted one). The
scoring layer makes it a robust z per meter accumulated over the days a shift lasts, like the
daily-energy change.
"""

from __future__ import annotations

import warnings

import numpy as np

from meterflow.anomaly.rowstats import nanmedian
from meterflow.series.fleet import FleetSeries

MAX_SHIFT_HOURS = 3
CLOCK_REF_DAYS = 14
MIN_CLOCK_DAYS = 3  # fewer known days before it: no evidence


def day_profiles(fleet: FleetSeries) -> np.ndarray:
    """``(n_meters, n_days, slots_per_day)`` readings (NaN where missing)."""
    n_days = int(fleet.n_times // fleet.slots_per_day) + 1
    grid = np.full((len(fleet.meter_ids), n_days, fleet.slots_per_day), np.nan)
    day = fleet.time_idx // fleet.slots_per_day
    grid[fleet.meter_idx, day, fleet.time_idx % fleet.slots_per_day] = fleet.values
    return grid


def clock_shift(fleet: FleetSeries) -> np.ndarray:
    """``(n_meters, n_days)`` relative improvement of the best shifted fit (module docstring);
    NaN without ``MIN_CLOCK_DAYS`` known days before."""
    grid = day_profiles(fleet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN days and slots are expected
        level = np.nanmean(grid, axis=2, keepdims=True)
        shape = grid / np.where(level > 0, level, np.nan)
        out = np.full(grid.shape[:2], np.nan)
        max_lag = max(1, MAX_SHIFT_HOURS * 60 // fleet.resolution_min)
        for d in range(MIN_CLOCK_DAYS, grid.shape[1]):
            past = shape[:, max(0, d - CLOCK_REF_DAYS) : d]
            known = np.isfinite(past).all(axis=2).sum(axis=1) >= MIN_CLOCK_DAYS
            reference = nanmedian(past, axis=1)
            out[:, d] = np.where(known, _best_shift(shape[:, d], reference, max_lag), np.nan)
    return out


def _best_shift(day: np.ndarray, reference: np.ndarray, max_lag: int) -> np.ndarray:
    """Largest relative improvement over lags ``±1 .. max_lag`` (rows: meters): a delayed
    day (``day[t + k] ~ reference[t]``) and an advanced one (``day[t] ~ reference[t + k]``),
    each against the unshifted fit of the same slots of the day."""
    best = np.full(len(day), -np.inf)
    for k in range(1, max_lag + 1):
        for part, shifted_ref, same_ref in (
            (day[:, k:], reference[:, :-k], reference[:, k:]),  # delayed
            (day[:, :-k], reference[:, k:], reference[:, :-k]),  # advanced
        ):
            same = np.nanmean(np.abs(part - same_ref), axis=1)
            moved = np.nanmean(np.abs(part - shifted_ref), axis=1)
            best = np.fmax(best, (same - moved) / np.where(same > 0, same, np.nan))
    return np.where(np.isfinite(best), best, np.nan)
