"""Parts of a fleet (``FleetSeries``) that keep its clock: a meter block, chosen meters, chosen
readings. Every part has the fleet's ``t0``, so day and slot numbers, the split and anything
computed per meter-day line up with the whole fleet's."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from meterflow.series.fleet import FleetSeries

SAMPLE_METERS = 2000  # fleet-wide fits (thresholds, planted copies) use at most this many meters


def sample_meters(meter_ids: np.ndarray, seed: int, most: int | None = None) -> np.ndarray:
    """Positions of a sample of the meters ``meter_ids`` (sorted): all of them, or in a larger
    fleet ``most`` (default ``SAMPLE_METERS``) drawn with ``seed``."""
    most = SAMPLE_METERS if most is None else most
    if len(meter_ids) <= most:
        return np.arange(len(meter_ids))
    ids = meter_ids.astype(str)
    chosen = sorted(np.random.default_rng(seed).choice(ids, most, replace=False))
    return np.searchsorted(ids, chosen)


def select_meters(fleet: FleetSeries, meters: np.ndarray) -> FleetSeries:
    """The meters at the increasing positions ``meters`` alone, renumbered from 0."""
    meters = np.asarray(meters, dtype=np.int64)
    if len(meters) and meters[-1] - meters[0] == len(meters) - 1:
        return fleet.series_range(int(meters[0]), int(meters[-1]) + 1)
    pos, shift, counts = meter_positions(fleet, meters)
    return replace(
        fleet,
        meter_ids=fleet.meter_ids[meters],
        meter_idx=np.repeat(np.arange(len(meters), dtype=np.int64), counts),
        time_idx=fleet.time_idx[pos],
        values=fleet.values[pos],
        seg_start=fleet.seg_start[pos] - shift,
        split=fleet.split[pos],
        exog=fleet.exog[pos],
        owners=None if fleet.owners is None else fleet.owners[meters],
        _positions=None,
    )


def meter_positions(
    fleet: FleetSeries, meters: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the readings of ``meters`` (increasing positions of meters), how far each
    moves when only they are kept, and each meter's count of readings."""
    lo = np.searchsorted(fleet.meter_idx, meters)
    counts = np.searchsorted(fleet.meter_idx, meters + 1) - lo
    shift = np.repeat(lo - (np.cumsum(counts) - counts), counts)
    return shift + np.arange(len(shift), dtype=np.int64), shift, counts


def readings_at(fleet: FleetSeries, keep: np.ndarray) -> FleetSeries:
    """The readings where ``keep`` is True, with all of the fleet's meters (for scoring them
    with evidence computed on the whole fleet: segments are not kept)."""
    return replace(
        fleet,
        meter_idx=fleet.meter_idx[keep],
        time_idx=fleet.time_idx[keep],
        values=fleet.values[keep],
        seg_start=np.arange(int(np.count_nonzero(keep)), dtype=np.int64),
        split=fleet.split[keep],
        exog=fleet.exog[keep],
        _positions=None,
    )


def n_days(fleet: FleetSeries) -> int:
    """Days of the fleet's day grids (days since ``t0`` up to the last reading's, plus one)."""
    return int(fleet.n_times // fleet.slots_per_day) + 1


def fleet_frame(fleet: FleetSeries) -> pd.DataFrame:
    """The fleet as the long table ``meter_id, timestamp, value`` (its own order)."""
    return pd.DataFrame(
        {
            "meter_id": fleet.meter_ids[fleet.meter_idx].astype(str),
            "timestamp": fleet.timestamps(np.arange(len(fleet.values))),
            "value": fleet.values,
        }
    )
