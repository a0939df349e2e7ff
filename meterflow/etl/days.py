"""Rules 6-7 of the shared cleaning (``etl.pipeline``): complete local meter-days, then the
DST-aware wall-clock profiles of those days.
"""

from __future__ import annotations

import numpy as np

from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.cleaning_state import (
    KIND_READING,
    CleanInput,
    CleanOutput,
    Entries,
    MeterDays,
    QuarantineLog,
)
from meterflow.etl.config import CleaningConfig
from meterflow.etl.profiles import empty_profiles, pivot_profiles, wall_clock_matrix
from meterflow.etl.quarantine import Reason
from meterflow.etl.resample import resample_values
from meterflow.schemas import Action, validate_profiles

_LOW32 = (1 << 32) - 1


def complete_days(
    entries: Entries,
    present_regs: np.ndarray,
    n_series: int,
    cal: LocalCalendar,
    qlog: QuarantineLog,
) -> MeterDays:
    """Rule 6: find the complete local meter-days (every present register, every interval);
    drop the readings of the others."""
    day, wall_slot = cal.day_and_slot(entries.k)
    day0 = day.min() if len(day) else 0
    sd_uniq, sd_inv, sd_count = _series_days(entries.series, day, n_series)
    sd_complete = sd_count == cal.expected_intervals((sd_uniq & _LOW32) + day0)
    md_key = ((sd_uniq >> 32) // 2) * (1 << 32) + (sd_uniq & _LOW32)
    md_uniq, md_inv = np.unique(md_key, return_inverse=True)
    md_ok_regs = np.bincount(md_inv, weights=sd_complete, minlength=len(md_uniq))
    md_meter = md_uniq >> 32
    md_complete = md_ok_regs == present_regs[md_meter].sum(axis=1)
    entry_md = md_inv[sd_inv]
    entry_ok = md_complete[entry_md]
    inc = (entries.kind == KIND_READING) & ~entry_ok
    detail = np.char.add(
        np.char.add("day has ", sd_count[sd_inv[inc]].astype(str)),
        np.char.add(" of ", cal.expected_intervals(day[inc]).astype(str)),
    ).astype(object)
    qlog.add(entries.pos[inc], Action.DROPPED, Reason.INCOMPLETE_DAY, detail)
    md_day = (md_uniq & _LOW32) + day0
    return MeterDays(wall_slot, entry_md, entry_ok, md_meter, md_day, md_complete)


def daily_profiles(
    entries: Entries, days: MeterDays, inp: CleanInput, config: CleaningConfig, cal: LocalCalendar
) -> CleanOutput:
    """Rule 7: the complete meter-days on DST-aware wall-clock slots, resampled and pivoted."""
    ok_md = np.flatnonzero(days.md_complete)
    row_of_md = np.full(len(days.md_complete), -1)
    row_of_md[ok_md] = np.arange(len(ok_md))
    sel = None if days.entry_ok.all() else np.flatnonzero(days.entry_ok)
    if sel is None:  # the usual case: no gather needed
        md, slot, reg, energy = days.entry_md, days.wall_slot, entries.series & 1, entries.energy
    else:
        md, slot = days.entry_md[sel], days.wall_slot[sel]
        reg, energy = entries.series[sel] % 2, entries.energy[sel]
    wall = wall_clock_matrix(row_of_md[md], slot, reg, energy, len(ok_md), config.raw_per_day)
    if len(ok_md):
        # split_coarse: a resolution finer than the raw interval spreads each raw interval's
        # energy evenly; one that is not a multiple of it interpolates the cumulative energy
        values = resample_values(
            wall.matrix, config.raw_interval_min, config.resolution_min, split_coarse=True
        )
        meter_id = inp.meter_ids[days.md_meter[ok_md]].to_numpy(object)
        date = cal.day_to_date(days.md_day[ok_md])
        profiles = pivot_profiles(meter_id, date, inp.source, values)
    else:
        profiles = empty_profiles(config.resolution_min)
    validate_profiles(profiles, where=f"{inp.source} ETL output")
    return CleanOutput(profiles, wall, sel, ok_md)


def kept_rows(entries: Entries, sel: np.ndarray | None) -> np.ndarray:
    """Input rows of the readings whose value is in a profile."""
    if sel is None:
        kept_reading = np.flatnonzero(entries.kind == KIND_READING)
    else:
        kept_reading = sel[entries.kind[sel] == KIND_READING]
    return entries.pos[kept_reading]


def _series_days(
    series: np.ndarray, day: np.ndarray, n_series: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(series << 32 | day - min(day), return_inverse, return_counts)``, counted in a
    dense (series x day) table when that is small (no sort of the entries)."""
    d0 = int(day.min()) if len(day) else 0
    n_days = int(day.max()) - d0 + 1 if len(day) else 0
    size = n_series * n_days
    if len(day) == 0 or size > 4 * len(day) + (1 << 20):
        key = series * (1 << 32) + (day - d0)
        return np.unique(key, return_inverse=True, return_counts=True)
    dense = series * n_days
    dense += day
    dense -= d0
    count = np.bincount(dense, minlength=size)
    present = np.flatnonzero(count)
    rank = np.cumsum(count > 0) - 1
    uniq = (present // n_days) * (1 << 32) + present % n_days
    return uniq, rank[dense], count[present]
