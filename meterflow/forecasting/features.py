"""Decoder inputs of multi-step forecasts: per target step, the same slot one day and one week
earlier (the latest known) and its mean over the last days, the target's calendar, exogenous
values, static series features and the step's position.

A forecast is made at an *origin*, the position of its last known reading; target step ``k``
lies ``k`` slots after it.
"""

from __future__ import annotations

import warnings

import numpy as np

from meterflow.forecasting.settings import RECENT_DAYS
from meterflow.series.fleet import FleetSeries
from meterflow.series.windows import calendar_channels

WEEK_DAYS = 7


def seasonal_lag(steps: np.ndarray, period: int) -> np.ndarray:
    """Slots back from each target step to the latest same-phase slot known at the origin:
    ``period * ceil(k / period)`` (a day back for steps within the day, two for the next)."""
    steps = np.asarray(steps, dtype=np.int64)
    return period * -(-steps // period)


def seasonal_values(
    fleet: FleetSeries,
    values: np.ndarray,
    origin: np.ndarray,
    first: np.ndarray,
    steps: np.ndarray,
) -> np.ndarray:
    """The ``SEASONAL`` inputs ``(3, n, len(steps))`` of ``values`` for the targets ``steps``
    slots after each ``origin`` (the position of the last known reading): the same slot a day and
    a week before (the latest such slot known at the origin) and its mean over the
    ``RECENT_DAYS`` latest known days. Missing or pre-``first`` slots fall back: week -> day ->
    the last reading (persistence); the mean skips missing days (the day's value if none)."""
    origin = np.asarray(origin, dtype=np.int64)
    last = values[origin][:, None]
    spd = fleet.slots_per_day
    day_back = seasonal_lag(steps, spd)[None, :]
    days = [_known(fleet, values, origin, first, steps[None, :] - day_back - d * spd)
            for d in range(RECENT_DAYS)]  # fmt: skip
    week_back = seasonal_lag(steps, WEEK_DAYS * spd)[None, :]
    week = _known(fleet, values, origin, first, steps[None, :] - week_back)
    day = np.where(np.isnan(days[0]), last, days[0])
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing means fall back below
        recent = np.nanmean(np.stack(days), axis=0)
    return np.stack(
        [day, np.where(np.isnan(week), day, week), np.where(np.isnan(recent), day, recent)]
    )


def _known(
    fleet: FleetSeries, values: np.ndarray, origin: np.ndarray, first: np.ndarray, offset
) -> np.ndarray:
    """``values`` ``offset`` slots (<= 0) after each origin, NaN where absent or before
    ``first``."""
    found = _positions_back(fleet, origin, offset)
    usable = (found >= np.asarray(first)[:, None]) & (found >= 0)
    return np.where(usable, values[np.maximum(found, 0)], np.nan)


def _positions_back(fleet: FleetSeries, origin: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Positions of the points ``offset`` slots (<= 0) after each origin, -1 where absent."""
    times = fleet.time_idx[origin][:, None] + offset
    meters = np.broadcast_to(fleet.meter_idx[origin][:, None], times.shape)
    return fleet.positions_of(meters.ravel(), times.ravel()).reshape(times.shape)


def decoder_inputs(
    seasonal_scaled: np.ndarray | None,
    origin_index: np.ndarray,
    exog_scaled: np.ndarray,
    static: np.ndarray,
    steps: np.ndarray,
    horizon: int,
    slots_per_day: int,
    *,
    calendar: bool,
) -> np.ndarray:
    """The decoder input ``(n, len(steps), n_future)`` float32: seasonal inputs (scaled,
    ``(3, n, len(steps))``, or None when not used), the
    target's calendar (``origin_index``: ``calendar_index`` of each origin), exogenous values at
    the targets (``(n, len(steps), n_exog)``, scaled), static series features (``(n, n_static)``)
    and ``step / horizon``."""
    n, n_steps = len(origin_index), len(steps)
    parts = []
    if seasonal_scaled is not None:
        parts += [s[..., None] for s in seasonal_scaled]
    if calendar:
        target_index = np.asarray(origin_index, dtype=np.int64)[:, None] + steps[None, :]
        parts.append(calendar_channels(target_index, slots_per_day))
    parts.append(exog_scaled.reshape(n, n_steps, -1))
    parts.append(np.broadcast_to(static[:, None, :], (n, n_steps, static.shape[1])))
    parts.append(np.broadcast_to((steps / horizon)[None, :, None], (n, n_steps, 1)))
    return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=-1)
