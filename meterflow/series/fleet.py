"""Profiles -> per-meter chronological series, the chronological split and per-meter scaling.

A fleet is held as flat arrays, meter-major and time-sorted, so windows are index arithmetic:
``time_idx`` counts slots since the first day's midnight (naive local time), and a *segment* is a
run of consecutive slots of one meter. Windows never cross a segment boundary, so a missing day
(or a missing slot) is never bridged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from meterflow.domain import SOURCES
from meterflow.errors import SchemaError
from meterflow.schemas import MINUTES_PER_DAY, profile_matrix, profile_slot_columns
from meterflow.schemas import validate_profiles as _validate_profiles

log = logging.getLogger(__name__)

TRAIN, VAL, TEST = 0, 1, 2
SPLIT_NAMES = {TRAIN: "train", VAL: "validation", TEST: "test"}
SCALE_FLOOR_WH = 1.0  # per-meter scale floor (Wh per slot), so flat meters do not blow up
DENSE_LOOKUP_CELLS = 50_000_000  # (meters x slots) up to which lookups use a dense table
CALENDAR_ORIGIN = np.datetime64("1970-01-05T00:00", "ns")  # a Monday midnight


def calendar_index(timestamps: np.ndarray, resolution_min: int) -> np.ndarray:
    """Slots since a Monday midnight of naive local slot-start timestamps (day of week and
    slot of day follow from it)."""
    stamps = np.asarray(timestamps, dtype="datetime64[ns]")
    return ((stamps - CALENDAR_ORIGIN) // np.timedelta64(resolution_min, "m")).astype(np.int64)


def _dedupe_sources(profiles: pd.DataFrame) -> pd.DataFrame:
    """One row per meter-day: where sources overlap keep the preferred one (``SOURCES`` order)."""
    dup = profiles.duplicated(["meter_id", "date"], keep=False)
    if not dup.any():
        return profiles
    rank = {s: i for i, s in enumerate(SOURCES)}
    order = profiles["source"].map(rank).fillna(len(rank))
    kept = (
        profiles.assign(_rank=order)
        .sort_values(["meter_id", "date", "_rank"], kind="stable")
        .drop_duplicates(["meter_id", "date"], keep="first")
        .drop(columns="_rank")
    )
    log.warning(
        "profiles: dropped %d rows of meter-days present in several sources (preference %s)",
        len(profiles) - len(kept),
        SOURCES,
    )
    return kept


def profiles_to_series(profiles: pd.DataFrame) -> pd.DataFrame:
    """Long format ``meter_id, timestamp (naive local start of slot), value (Wh)``.

    Sorted by meter and time; slots that are NaN are left out (they are gaps), days that are
    missing simply have no rows.
    """
    _validate_profiles(profiles, where="forecasting input")
    cols = profile_slot_columns(profiles)
    df = _dedupe_sources(profiles).sort_values(["meter_id", "date"], kind="stable")
    n_slots = len(cols)
    res = np.timedelta64(MINUTES_PER_DAY // n_slots, "m")
    values = profile_matrix(df, cols).ravel()
    dates = df["date"].to_numpy(dtype="datetime64[ns]")
    stamps = (dates[:, None] + (np.arange(n_slots) * res)[None, :]).ravel()
    out = pd.DataFrame(
        {
            "meter_id": np.repeat(df["meter_id"].astype(str).to_numpy(), n_slots),
            "timestamp": stamps,
            "value": values,
        }
    )
    return out.loc[np.isfinite(values)].reset_index(drop=True)


def profiles_panel(profiles: pd.DataFrame, dates: DateSplit) -> FleetSeries:
    """The fleet of a profile table, built straight from its (meter-days x slots) matrix: the
    same arrays as ``build_panel(profiles_to_series(profiles), ...)`` without the long table of
    one row (and one meter id string) per reading, which is most of the memory of a year of a
    large fleet."""
    _validate_profiles(profiles, where="forecasting input")
    cols = profile_slot_columns(profiles)
    df = _dedupe_sources(profiles)
    codes, meter_ids = pd.factorize(df["meter_id"].astype(str), sort=True)
    dates_ns = df["date"].to_numpy(dtype="datetime64[ns]")
    order = np.lexsort((dates_ns, codes))
    matrix = profile_matrix(df, cols)[order]
    codes, dates_ns = codes[order].astype(np.int64), dates_ns[order]
    known = np.isfinite(matrix)
    resolution = MINUTES_PER_DAY // len(cols)
    t0 = pd.Timestamp(dates_ns[known.any(axis=1)].min())
    day = (dates_ns - t0.to_datetime64()) // np.timedelta64(1, "D")
    rows, slots = np.nonzero(known)
    time_idx = day[rows] * len(cols) + slots
    return _panel(
        meter_ids,
        codes[rows],
        time_idx,
        matrix[known],
        t0,
        resolution,
        dates,
        np.zeros((len(rows), 0)),
    )


@dataclass(frozen=True)
class DateSplit:
    """Chronological split by calendar day: train < val_start <= val < test_start <= test."""

    val_start: pd.Timestamp
    test_start: pd.Timestamp
    n_days: tuple[int, int, int]


def split_dates(
    dates: pd.Series | np.ndarray,
    train_frac: float,
    val_frac: float,
    test_start: pd.Timestamp | None = None,
    min_val_days: int = 0,
) -> DateSplit:
    """Split the distinct days of the series chronologically. Without ``test_start``: the first
    ``train_frac`` for training, the next ``val_frac`` for validation (model choice,
    thresholds), the most recent rest for test. With it: every day from ``test_start`` on is
    test, and validation is the most recent ``val_frac / (train_frac + val_frac)`` of the days
    before it (at least one day). Validation takes at least ``min_val_days`` days where that
    leaves two thirds of the days before it for training."""
    days = np.unique(pd.to_datetime(np.asarray(dates)).normalize())
    if test_start is not None:
        n_before = int(np.searchsorted(days, np.datetime64(pd.Timestamp(test_start), "ns")))
        n_val = max(1, round(val_frac / (train_frac + val_frac) * n_before))
    else:
        n_before = round((train_frac + val_frac) * len(days))
        n_val = round(val_frac * len(days))
    n_val = max(n_val, min(min_val_days, n_before // 3))
    n_train = n_before - n_val
    n_test = len(days) - n_train - n_val
    if n_train < 1 or n_val < 1 or n_test < 1:
        where = (
            f"test_start={pd.Timestamp(test_start).date()}"
            if test_start is not None
            else (f"a split of {train_frac:g}/{val_frac:g}/{1 - train_frac - val_frac:g}")
        )
        raise SchemaError(
            f"forecasting input has {len(days)} distinct days ({days[0]!s:.10} to "
            f"{days[-1]!s:.10}): too few for training, validation and test days with {where}"
        )
    return DateSplit(
        val_start=pd.Timestamp(days[n_train]),
        test_start=pd.Timestamp(days[n_train + n_val]),
        n_days=(n_train, n_val, n_test),
    )


@dataclass(frozen=True)
class MeterScaler:
    """Per-meter standard scaling fitted on the training split only."""

    meter_ids: tuple[str, ...]
    mean: np.ndarray  # Wh per slot, one per meter
    scale: np.ndarray  # Wh per slot, >= SCALE_FLOOR_WH
    exog_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # one per exog input
    exog_scale: np.ndarray = field(default_factory=lambda: np.ones(0))

    def scale_exog(self, exog: np.ndarray) -> np.ndarray:
        """Exogenous inputs ``(..., n_exog)`` standardised, unknown (NaN) as 0."""
        return np.nan_to_num((exog - self.exog_mean) / self.exog_scale, nan=0.0)

    def index_of(self, meter_ids: np.ndarray | pd.Series) -> np.ndarray:
        """Positions of ``meter_ids`` in the scaler, -1 where unknown."""
        lookup = pd.Index(self.meter_ids)
        return lookup.get_indexer(pd.Index(np.asarray(meter_ids, dtype=object)))


@dataclass
class FleetSeries:
    """The fleet's series as flat arrays (meter-major, time-sorted), with split and segments."""

    meter_ids: np.ndarray  # (n_meters,) object, index -> meter id
    meter_idx: np.ndarray  # (N,) int64
    time_idx: np.ndarray  # (N,) int64 slots since t0
    values: np.ndarray  # (N,) float64 Wh
    seg_start: np.ndarray  # (N,) int64 position of the first point of the point's segment
    split: np.ndarray  # (N,) int8 TRAIN/VAL/TEST
    t0: pd.Timestamp  # midnight of the first day
    resolution_min: int
    dates: DateSplit
    exog: np.ndarray  # (N, n_exog) float64 extra inputs, raw units (NaN = unknown)
    # (n_series,) the meter whose learned parameters serve each series, where a series is not a
    # meter of its own (a served request may hold several forecasts of one meter); None = itself
    owners: np.ndarray | None = None
    _positions: np.ndarray | None = field(default=None, repr=False)

    @property
    def series_meters(self) -> np.ndarray:
        """The meter id of each series (the series id unless ``owners`` says otherwise)."""
        return self.meter_ids if self.owners is None else self.owners

    def through_validation(self) -> FleetSeries:
        """The same fleet with its validation days counted as training (for a final fit once
        validation has served); arrays are shared, not copied."""
        split = np.where(self.split == VAL, TRAIN, self.split).astype(np.int8)
        return replace(self, split=split, _positions=None)

    def series_range(self, lo: int, hi: int) -> FleetSeries:
        """The fleet of series ``lo..hi-1`` alone (a meter block): same clock, dates and split;
        array slices, renumbered from 0."""
        first, end = np.searchsorted(self.meter_idx, [lo, hi])
        owners = None if self.owners is None else self.owners[lo:hi]
        return replace(
            self,
            meter_ids=self.meter_ids[lo:hi],
            meter_idx=self.meter_idx[first:end] - lo,
            time_idx=self.time_idx[first:end],
            values=self.values[first:end],
            seg_start=self.seg_start[first:end] - first,
            split=self.split[first:end],
            exog=self.exog[first:end],
            owners=owners,
            _positions=None,
        )

    def series_span(self, series: int) -> tuple[int, int]:
        """``(first, end)`` positions of one series (its points are ``first:end``)."""
        lo, hi = np.searchsorted(self.meter_idx, [series, series + 1])
        return int(lo), int(hi)

    @property
    def slots_per_day(self) -> int:
        return MINUTES_PER_DAY // self.resolution_min

    @property
    def calendar_offset(self) -> int:
        """``calendar_index`` of ``t0``: add ``time_idx`` to get any point's."""
        return int(calendar_index(np.array([self.t0.to_datetime64()]), self.resolution_min)[0])

    @property
    def n_times(self) -> int:
        return int(self.time_idx.max()) + 1 if len(self.time_idx) else 0

    def timestamps(self, positions: np.ndarray) -> np.ndarray:
        """Naive local timestamps (start of slot) of the points at ``positions``."""
        step = np.timedelta64(self.resolution_min, "m")
        return self.t0.to_datetime64() + self.time_idx[positions] * step

    def positions_of(self, meter_idx: np.ndarray, time_idx: np.ndarray) -> np.ndarray:
        """Positions of (meter, time) pairs, -1 where the fleet has no such point."""
        table = self._position_table()
        if table is not None:
            inside = (time_idx >= 0) & (time_idx < table.shape[1])
            found = table[meter_idx, np.clip(time_idx, 0, table.shape[1] - 1)]
            return np.where(inside, found, -1)
        span = np.int64(self.n_times + 1)
        keys = self.meter_idx * span + self.time_idx
        want = meter_idx.astype(np.int64) * span + time_idx.astype(np.int64)
        pos = np.searchsorted(keys, want)
        pos = np.minimum(pos, len(keys) - 1)
        ok = (time_idx >= 0) & (keys[pos] == want)
        return np.where(ok, pos, -1)

    def _position_table(self) -> np.ndarray | None:
        """Dense (meter, time) -> position table (-1 = no point), built once, when it fits in
        ``DENSE_LOOKUP_CELLS``; None above that (lookups then search the sorted keys)."""
        cells = len(self.meter_ids) * self.n_times
        if cells > DENSE_LOOKUP_CELLS:
            return None
        if self._positions is None:
            table = np.full((len(self.meter_ids), self.n_times), -1, dtype=np.int64)
            table[self.meter_idx, self.time_idx] = np.arange(len(self.time_idx))
            self._positions = table
        return self._positions

    def history_start(self, positions: np.ndarray, padding: str) -> np.ndarray:
        """First position usable as input for a label at ``positions``: the segment start, or
        with ``padding="zeros"`` the later of that and the meter's first test point."""
        first = self.seg_start[positions]
        if padding == "zeros":
            is_test = self.split == TEST
            starts = np.full(len(self.meter_ids), np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(starts, self.meter_idx[is_test], np.flatnonzero(is_test))
            first = np.maximum(first, starts[self.meter_idx[positions]])
        return first


def build_fleet(
    profiles: pd.DataFrame, train_frac: float, val_frac: float, min_val_days: int = 0
) -> FleetSeries:
    """Series of every meter of a profile table, split chronologically by day."""
    dates = split_dates(profile_days(profiles), train_frac, val_frac, min_val_days=min_val_days)
    return profiles_panel(profiles, dates)


def profile_days(profiles: pd.DataFrame) -> pd.Series:
    """The date of each profile with at least one value; SchemaError when there is none."""
    known = profiles[profile_slot_columns(profiles)].notna().any(axis=1)
    if not known.any():
        raise SchemaError("forecasting input has no finite profile values")
    return profiles.loc[known, "date"]


def build_panel(
    series: pd.DataFrame, resolution_min: int, dates: DateSplit, exog: tuple[str, ...] = ()
) -> FleetSeries:
    """Flat arrays of a long table ``meter_id, timestamp, value[, exog...]`` (any series ids,
    timestamps on a ``resolution_min`` grid, naive), with segment starts and the split."""
    series = series.sort_values(["meter_id", "timestamp"], kind="stable")
    codes, meter_ids = pd.factorize(series["meter_id"].astype(str), sort=True)
    stamps = series["timestamp"].to_numpy(dtype="datetime64[ns]")
    t0 = pd.Timestamp(stamps.min()).normalize()
    time_idx = (stamps - t0.to_datetime64()) // np.timedelta64(resolution_min, "m")
    values = series["value"].to_numpy(dtype=np.float64)
    exog_values = series[list(exog)].to_numpy(dtype=np.float64).reshape(len(series), len(exog))
    return _panel(
        meter_ids,
        codes.astype(np.int64),
        time_idx.astype(np.int64),
        values,
        t0,
        resolution_min,
        dates,
        exog_values,
    )


def _panel(
    meter_ids: pd.Index,
    meter_idx: np.ndarray,
    time_idx: np.ndarray,
    values: np.ndarray,
    t0: pd.Timestamp,
    resolution_min: int,
    dates: DateSplit,
    exog: np.ndarray,
) -> FleetSeries:
    """A fleet of points sorted by meter and time: segment starts and the split added."""
    n = len(values)
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = (meter_idx[1:] != meter_idx[:-1]) | (time_idx[1:] != time_idx[:-1] + 1)
    seg_start = np.maximum.accumulate(np.where(breaks, np.arange(n), 0))
    slots_per_day = MINUTES_PER_DAY // resolution_min
    day = t0.to_datetime64().astype("datetime64[D]") + time_idx // slots_per_day
    split = np.full(n, TRAIN, dtype=np.int8)
    split[day >= dates.val_start.to_datetime64().astype("datetime64[D]")] = VAL
    split[day >= dates.test_start.to_datetime64().astype("datetime64[D]")] = TEST
    fleet = FleetSeries(
        meter_ids=np.asarray(meter_ids, dtype=object),
        meter_idx=meter_idx,
        time_idx=time_idx,
        values=values,
        seg_start=seg_start.astype(np.int64),
        split=split,
        t0=t0,
        resolution_min=resolution_min,
        dates=dates,
        exog=exog,
    )
    log.info(
        "series: %d series, %d points at %d min, %d segments; days train/val/test = %s",
        len(meter_ids),
        n,
        resolution_min,
        int(breaks.sum()),
        dates.n_days,
    )
    return fleet


def fit_scaler(fleet: FleetSeries) -> MeterScaler:
    """Mean and standard deviation of each meter's TRAINING values (floored at 1 Wh).

    Meters without training data get NaN statistics; callers leave them out of training."""
    train = fleet.split == TRAIN
    n_m = len(fleet.meter_ids)
    idx = fleet.meter_idx[train]
    vals = fleet.values[train]
    count = np.bincount(idx, minlength=n_m).astype(np.float64)
    total = np.bincount(idx, weights=vals, minlength=n_m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = np.bincount(idx, weights=(vals - mean[idx]) ** 2, minlength=n_m) / count
    scale = np.maximum(np.sqrt(var), SCALE_FLOOR_WH)
    scale[count == 0] = np.nan
    missing = int((count == 0).sum())
    if missing:
        log.warning("%d meter(s) have no training data and are left out of the model", missing)
    exog = fleet.exog[train]
    with np.errstate(invalid="ignore"):
        exog_mean = np.nan_to_num(np.nanmean(exog, axis=0)) if len(exog) else exog.sum(0)
        exog_std = np.nanstd(exog, axis=0) if len(exog) else exog.sum(0)
    exog_scale = np.where(np.isfinite(exog_std) & (exog_std > 0), exog_std, 1.0)
    return MeterScaler(tuple(str(m) for m in fleet.meter_ids), mean, scale, exog_mean, exog_scale)
