"""Anomalies planted into a copy of real readings, sized to each meter's own variability.

Calibration (``calibration``) and the promotion holdout use them to learn and judge what a
detector finds without anyone having labelled the data. Every kind a utility meets:

============== ================================================ ==========================
kind           what happens to the readings                     size and duration
============== ================================================ ==========================
spike          one slot rises by a multiple of the meter's      4-8 spreads, kept within
               slot-to-slot spread                              x1.5 .. x5 of its level
flat_line      one reading repeated (frozen register/gateway)   12-48 h
stuck_zero     readings 0 (dead meter or lost CT)               6-48 h
level_shift_up the load times a factor (new appliance, wiring)  2-4 daily spreads,
level_shift_down                                                x1.2 .. x2 (or its inverse),
                                                                3-7 days
theft          positive readings times a factor (bypass)        x0.3 .. x0.7, 7-14 days
time_shift     readings delayed by whole hours (clock error)    1-3 h, 3-7 days
============== ================================================ ==========================

The spreads are robust (1.4826 MAD) and measured on the readings before the planting window:
the change from the same slot a day before (``slot``) and the log change of the day's imported
energy from the same weekday a week before (``day``). Pure: tables in, tables out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = (
    "spike",
    "flat_line",
    "stuck_zero",
    "level_shift_up",
    "level_shift_down",
    "theft",
    "time_shift",
)
MAD_TO_SIGMA = 1.4826
SPIKE_SPREADS = (4.0, 8.0)
SPIKE_LEVELS = (0.5, 4.0)  # a spike adds at least half the meter's level, at most four times
SHIFT_SPREADS = (2.0, 4.0)
SHIFT_FACTORS = (1.2, 2.0)
THEFT_FACTORS = (0.3, 0.7)
# duration ranges in hours
HOURS = {
    "spike": (0, 0),  # one slot
    "flat_line": (12, 48),
    "stuck_zero": (6, 48),
    "level_shift_up": (72, 168),
    "level_shift_down": (72, 168),
    "theft": (168, 336),
    "time_shift": (72, 168),
}
LABEL_COLUMNS = ["label_id", "meter_id", "kind", "start", "end", "magnitude"]


@dataclass(frozen=True)
class Variability:
    """What a meter's normal readings look like before the planting window."""

    level: float  # median of the positive readings
    slot: float  # robust spread of the change from the same slot a day before
    day: float  # robust spread of the log change of daily imports from a week before


def variability(values: np.ndarray, stamps: np.ndarray, resolution_min: int) -> Variability:
    """The ``Variability`` of one meter's readings (NaN-free arrays, time-sorted)."""
    s = pd.Series(values, index=pd.DatetimeIndex(stamps))
    positive = s[s > 0]
    level = float(positive.median()) if len(positive) else float(np.abs(s).median())
    daily = s.where(s > 0, 0.0).resample("D").sum(min_count=1)
    change_slot = s - s.shift(freq=pd.Timedelta(days=1)).reindex(s.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_day = np.log(daily.where(daily > 0))
    change_day = log_day - log_day.shift(7)
    return Variability(max(level, 1e-9), _spread(change_slot), _spread(change_day))


def _spread(change: pd.Series) -> float:
    known = change.to_numpy(dtype=np.float64)
    known = known[np.isfinite(known)]
    if len(known) < 3:
        return 0.0
    return float(MAD_TO_SIGMA * np.median(np.abs(known - np.median(known))))


@dataclass(frozen=True)
class Plant:
    """One anomaly applied to the readings of one meter inside ``[start, end)``."""

    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    magnitude: float


def plant_anomalies(
    series: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    resolution_min: int,
    seed: int,
    meters: list[str] | None = None,
    first_kind: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A copy of the long table ``meter_id, timestamp, value`` (sorted by meter then time) with
    one anomaly planted in ``[start, end)`` on each of ``meters`` (default: every meter), kinds
    taken in turn from ``KINDS[first_kind]`` on; sizes from each meter's readings before
    ``start``. Returns ``(series, labels)``, labels being ``LABEL_COLUMNS`` (naive times on the
    series' clock, end exclusive)."""
    return Planter(start, end, resolution_min, seed, first_kind).plant(series, meters)


class Planter:
    """``plant_anomalies`` one meter block after another: kinds, random draws and label ids go
    on from block to block, so the blocks together get what one call on all of them would."""

    def __init__(
        self,
        start: pd.Timestamp,
        end: pd.Timestamp,
        resolution_min: int,
        seed: int,
        first_kind: int = 0,
    ) -> None:
        self.start, self.end, self.resolution_min = start, end, resolution_min
        self.rng = np.random.default_rng(seed)
        self.next_kind = first_kind
        self.n_labels = 0

    def plant(
        self, series: pd.DataFrame, meters: list[str] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``plant_anomalies`` of the next block (``series``: its readings)."""
        out = series.copy()
        values = out["value"].to_numpy(dtype=np.float64, copy=True)
        ids = out["meter_id"].astype(str).to_numpy()
        stamps = out["timestamp"].to_numpy(dtype="datetime64[ns]")
        bounds = pd.Series(np.arange(len(ids))).groupby(ids).agg(["min", "max"])
        chosen = [str(m) for m in bounds.index] if meters is None else meters
        rows = []
        for meter in chosen:
            lo, hi = bounds.loc[meter]
            part = slice(int(lo), int(hi) + 1)
            kind = KINDS[self.next_kind % len(KINDS)]
            self.next_kind += 1
            plant = _plant_one(
                kind, values[part], stamps[part], self.start, self.end, self.resolution_min,
                self.rng,
            )  # fmt: skip
            if plant is not None:
                rows.append((self.n_labels, meter, plant.kind, plant.start, plant.end,
                             plant.magnitude))  # fmt: skip
                self.n_labels += 1
        out["value"] = values
        labels = pd.DataFrame(rows, columns=LABEL_COLUMNS)
        return out, labels.astype({"start": "datetime64[ns]", "end": "datetime64[ns]"})


def _plant_one(
    kind: str,
    values: np.ndarray,
    stamps: np.ndarray,
    start: pd.Timestamp,
    end: pd.Timestamp,
    resolution_min: int,
    rng: np.random.Generator,
) -> Plant | None:
    """Plant one anomaly of ``kind`` into one meter's ``values`` (in place); None when the
    meter has no reading in the window or no history to size it."""
    before = stamps < np.datetime64(start, "ns")
    known = before & np.isfinite(values)
    window = (stamps >= np.datetime64(start, "ns")) & (stamps < np.datetime64(end, "ns"))
    if known.sum() < 2 or not window.any():
        return None
    var = variability(values[known], stamps[known], resolution_min)
    slot = pd.Timedelta(minutes=resolution_min)
    lo_h, hi_h = HOURS[kind]
    length = slot if hi_h == 0 else pd.Timedelta(hours=float(rng.uniform(lo_h, hi_h)))
    length = max(slot, min(length, pd.Timestamp(end) - pd.Timestamp(start)).floor(slot))
    n_slots = int((pd.Timestamp(end) - pd.Timestamp(start) - length) / slot) + 1
    first = pd.Timestamp(start) + slot * int(rng.integers(0, max(n_slots, 1)))
    inside = (stamps >= np.datetime64(first, "ns")) & (stamps < np.datetime64(first + length, "ns"))
    if not inside.any():
        return None
    magnitude = APPLY[kind](values, stamps, inside, var, rng, slot)
    return Plant(kind, first, first + length, magnitude)


def _spike(values, stamps, inside, var, rng, slot) -> float:
    height = float(rng.uniform(*SPIKE_SPREADS)) * var.slot
    height = float(np.clip(height, SPIKE_LEVELS[0] * var.level, SPIKE_LEVELS[1] * var.level))
    values[inside] = np.maximum(values[inside], 0.0) + height
    return height / var.level


def _flat_line(values, stamps, inside, var, rng, slot) -> float:
    held = values[np.flatnonzero(inside)[0]]
    values[inside] = held
    return float(held)


def _stuck_zero(values, stamps, inside, var, rng, slot) -> float:
    values[inside] = 0.0
    return 0.0


def _shift_factor(var: Variability, rng: np.random.Generator) -> float:
    size = float(rng.uniform(*SHIFT_SPREADS)) * var.day
    return float(np.exp(np.clip(size, np.log(SHIFT_FACTORS[0]), np.log(SHIFT_FACTORS[1]))))


def _level_up(values, stamps, inside, var, rng, slot) -> float:
    factor = _shift_factor(var, rng)
    values[inside] *= factor
    return factor


def _level_down(values, stamps, inside, var, rng, slot) -> float:
    factor = 1.0 / _shift_factor(var, rng)
    values[inside] *= factor
    return factor


def _theft(values, stamps, inside, var, rng, slot) -> float:
    factor = float(rng.uniform(*THEFT_FACTORS))
    values[inside] = np.where(values[inside] > 0, values[inside] * factor, values[inside])
    return factor


def _time_shift(values, stamps, inside, var, rng, slot) -> float:
    hours = int(rng.integers(1, 4))
    original = pd.Series(values.copy(), index=pd.DatetimeIndex(stamps))
    delayed = original.reindex(pd.DatetimeIndex(stamps[inside]) - pd.Timedelta(hours=hours))
    values[inside] = np.where(delayed.notna(), delayed.to_numpy(), values[inside])
    return float(hours)


APPLY: dict[str, Callable[..., float]] = {
    "spike": _spike,
    "flat_line": _flat_line,
    "stuck_zero": _stuck_zero,
    "level_shift_up": _level_up,
    "level_shift_down": _level_down,
    "theft": _theft,
    "time_shift": _time_shift,
}
