"""Complete meter-days to daily profiles: wall-clock slots, DST days, pivot.

Fixed slot columns follow the local wall clock: ``slot_i`` covers wall-clock minutes
``[i*resolution, (i+1)*resolution)`` of the local day.

- Fall-back day (25 h): the repeated wall-clock hour holds two real hours; each of its raw slots
  gets the mean of the two occurrences (both readings are kept; they are recorded as corrected,
  reason ``dst_fallback_merge``, with the mean as new value).
- Spring-forward day (23 h): the skipped wall-clock hour has no reading; its raw slots are
  filled by linear interpolation between the neighbouring slots (recorded as filled, reason
  ``dst_spring_gap``, register ``net``).

So every day has the same columns, shapes line up by time of day, and the daily energy of DST
days differs from the metered one by the merged/interpolated hour (documented trade-off).
Resampling to the output resolution: ``meterflow.etl.resample``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.schemas import slot_columns, slots_per_day


@dataclass(frozen=True)
class WallClockDays:
    """Net energy per meter-day and raw wall-clock slot, with the DST bookkeeping."""

    matrix: np.ndarray  # (meter-days, raw slots per day) Wh, net of import and export
    merged_entry: np.ndarray  # entries whose value was merged with a repeated-hour twin
    merged_value: np.ndarray  # the mean they were replaced with
    spring_row: np.ndarray  # meter-day row of each interpolated (skipped-hour) slot
    spring_slot: np.ndarray  # its raw wall-clock slot
    spring_value: np.ndarray  # its interpolated net value


def wall_clock_matrix(
    md: np.ndarray,
    wall_slot: np.ndarray,
    register: np.ndarray,
    energy_wh: np.ndarray,
    n_meter_days: int,
    raw_per_day: int,
) -> WallClockDays:
    """Accumulate entries (meter-day row ``md``, raw wall slot, register code, value) into a
    (meter-days x raw slots) net matrix, averaging repeated hours and interpolating skipped
    ones (see module docstring)."""
    size = n_meter_days * raw_per_day
    # one pass over the entries for both registers: (register, cell) bins
    cell2 = md * raw_per_day
    cell2 += wall_slot
    cell2 += register * size
    net, seen, merged_entry, merged_value = _net_of_registers(cell2, register, energy_wh, size)
    matrix = net.reshape(n_meter_days, raw_per_day)
    missing = ~seen.reshape(n_meter_days, raw_per_day)
    spring_row, spring_slot, spring_value = _interpolate_skipped_slots(matrix, missing)
    return WallClockDays(matrix, merged_entry, merged_value, spring_row, spring_slot, spring_value)


def _net_of_registers(
    cell2: np.ndarray, register: np.ndarray, energy_wh: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Net of the per-cell register means, cells seen, and the merged (repeated-hour) entries
    with their mean."""
    net = np.zeros(size)
    seen = np.zeros(size, dtype=bool)
    merged_entry, merged_value = [], []
    s2 = np.bincount(cell2, weights=energy_wh, minlength=2 * size).reshape(2, size)
    c2 = np.bincount(cell2, minlength=2 * size).reshape(2, size)
    dup_cells = np.flatnonzero(c2.ravel() > 1)  # repeated wall-clock hours (fall-back days)
    if len(dup_cells):
        is_dup = np.zeros(2 * size, dtype=bool)
        is_dup[dup_cells] = True
        dup_entry = np.flatnonzero(is_dup[cell2])
    for r in (0, 1):  # register by register: import, then export
        c = c2[r]
        if not c.any():
            continue
        # = s / c where c > 0; where c == 0 the sum is 0.0 and so is 0.0 / 1
        mean = s2[r] / np.maximum(c, 1)
        net += mean
        seen |= c > 0
        if len(dup_cells):
            sel = dup_entry[register[dup_entry] == r]
            merged_entry.append(sel)
            merged_value.append(mean[cell2[sel] - r * size])
    return net, seen, _cat(merged_entry, np.int64), _cat(merged_value, float)


def _interpolate_skipped_slots(
    matrix: np.ndarray, missing: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill ``missing`` cells of ``matrix`` in place by linear interpolation along each row;
    return their rows, slots and values."""
    spring_row, spring_slot, spring_value = [], [], []
    x = np.arange(matrix.shape[1])
    for i in np.flatnonzero(missing.any(axis=1)):  # one per meter and spring-forward day
        miss = missing[i]
        matrix[i, miss] = np.interp(x[miss], x[~miss], matrix[i, ~miss])
        spring_row.append(np.full(miss.sum(), i))
        spring_slot.append(x[miss])
        spring_value.append(matrix[i, miss])
    return _cat(spring_row, np.int64), _cat(spring_slot, np.int64), _cat(spring_value, float)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """Concatenation of ``parts`` as ``dtype`` (empty when there are none)."""
    return np.concatenate(parts).astype(dtype) if parts else np.array([], dtype=dtype)


def pivot_profiles(
    meter_id: np.ndarray, date: pd.DatetimeIndex, source: str, values: np.ndarray
) -> pd.DataFrame:
    """Profiles table: one row per meter-day, slot columns in Wh."""
    cols = slot_columns(values.shape[1])
    keys = pd.DataFrame(
        {
            "meter_id": pd.Series(np.asarray(meter_id, dtype=object), dtype="str"),
            "date": date,
            "source": pd.Series([source] * len(date), dtype="str"),
        }
    )
    slots = pd.DataFrame(values, columns=cols)
    return pd.concat([keys, slots], axis=1).sort_values(["meter_id", "date"], ignore_index=True)


def empty_profiles(resolution_min: int) -> pd.DataFrame:
    """A profiles table without rows for ``resolution_min``."""
    n = slots_per_day(resolution_min)
    return pivot_profiles(
        np.array([], dtype=object), pd.DatetimeIndex([]).as_unit("ns"), "", np.zeros((0, n))
    )
