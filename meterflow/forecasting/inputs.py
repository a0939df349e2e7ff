"""What every forecaster reads for a set of forecast origins, built once and shared.

An *origin* is the position (in a ``FleetSeries``) of the last reading known when a forecast is
made; target step ``k`` lies ``k`` slots after it. ``ForecastInputs`` holds the origins of one
batch with two bounds per origin: ``window_first``, the first position an input window may read
(the start of the origin's contiguous segment, so a window never bridges a gap, or the start of
the test stream with zero pre-padding) and ``history_first``, the first position seasonal
references and the recent level may read (the series' first reading, or the stream start).
Derived arrays (seasonal references, recent level and spread, actual targets) are computed on
first use and cached, so candidates forecasting the same origins share them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.features import seasonal_values
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import SCALE_FLOOR_WH, TEST, TRAIN, VAL, FleetSeries
from meterflow.series.windows import windows_at

CHUNK = 65_536  # origins forecast per batch by the evaluation (bounds memory on large fleets)
STOP_BLOCK_DAYS = 2  # training days held out for early stopping come in blocks of 2 days,
STOP_EVERY = 8  # every 8th block (1/8 of the training days; see ``stopping_split``)


@dataclass
class ForecastInputs:
    """Forecast origins of one fleet and the shared arrays derived from them (see module)."""

    fleet: FleetSeries
    origin: np.ndarray  # (n,) positions of the last known readings
    window_first: np.ndarray  # (n,) first position an input window may read
    history_first: np.ndarray  # (n,) first position references and the recent level may read
    steps: np.ndarray  # target steps (slots after the origin)
    seq_length: int
    recent_days: int
    _cache: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.origin)

    def subset(self, sel: slice | np.ndarray) -> ForecastInputs:
        """The same inputs for a subset of the origins (caches are not carried over)."""
        return ForecastInputs(
            *(self.fleet, self.origin[sel], self.window_first[sel], self.history_first[sel]),
            *(self.steps, self.seq_length, self.recent_days),
        )

    @cached_property
    def series(self) -> np.ndarray:
        """(n,) series index of each origin."""
        return self.fleet.meter_idx[self.origin]

    @cached_property
    def origin_index(self) -> np.ndarray:
        """(n,) ``calendar_index`` of each origin (day of week and slot of day follow)."""
        return self.fleet.calendar_offset + self.fleet.time_idx[self.origin]

    @cached_property
    def target_slot(self) -> np.ndarray:
        """(n, steps) slot of day of each target."""
        return (self.origin_index[:, None] + self.steps[None, :]) % self.fleet.slots_per_day

    @cached_property
    def windows_wh(self) -> np.ndarray:
        """(n, seq_length) the readings up to each origin, NaN before ``window_first``."""
        return windows_at(
            self.fleet.values, self.origin, self.window_first, self.seq_length, np.nan, np.float64
        )[0]

    @cached_property
    def seasonal_wh(self) -> np.ndarray:
        """(3, n, steps) the ``SEASONAL`` references of each target, Wh."""
        fleet = self.fleet
        return seasonal_values(fleet, fleet.values, self.origin, self.history_first, self.steps)

    @cached_property
    def recent(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, std, count)`` of each series' readings in the ``recent_days`` days up to its
        origin (from ``history_first`` on)."""
        slots = self.recent_days * self.fleet.slots_per_day
        return recent_stats(self.fleet, self.fleet.values, self.origin, self.history_first, slots)

    @property
    def recent_scale(self) -> np.ndarray:
        """(n,) the recent spread, floored (a flat or empty recent week scales by the floor)."""
        _, std, _ = self.recent
        return np.maximum(np.nan_to_num(std), SCALE_FLOOR_WH)

    @cached_property
    def target_pos(self) -> np.ndarray:
        """(n, steps) positions of the targets (only meaningful where they exist)."""
        return self.origin[:, None] + self.steps[None, :]

    @cached_property
    def actual(self) -> np.ndarray:
        """(n, steps) the actual target values (evaluation inputs only: every target exists)."""
        return self.fleet.values[self.target_pos]


def recent_stats(
    fleet: FleetSeries, values: np.ndarray, origin: np.ndarray, first: np.ndarray, slots: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, standard deviation and count of ``values`` of each origin's series in the ``slots``
    slots ending at the origin, from ``first`` on (NaN mean and spread where none)."""
    origin = np.asarray(origin, dtype=np.int64)
    span = np.int64(fleet.n_times + slots + 1)
    keys = fleet.meter_idx * span + fleet.time_idx + slots  # sorted: meter-major, time order
    want = fleet.meter_idx[origin] * span + fleet.time_idx[origin] + 1
    start = np.maximum(np.searchsorted(keys, want), np.asarray(first, dtype=np.int64))
    end = origin + 1
    known = np.isfinite(values)  # a served request's future rows carry inputs, not readings
    clean = np.where(known, values, 0.0)
    series_first = np.searchsorted(fleet.meter_idx, fleet.meter_idx[origin])
    start = np.minimum(start, end)
    count = _within_series_sum(known.astype(np.float64), fleet.meter_idx, series_first, start, end)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = _within_series_sum(clean, fleet.meter_idx, series_first, start, end) / count
        squares = _within_series_sum(clean**2, fleet.meter_idx, series_first, start, end)
        var = squares / count - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0)), count


def _within_series_sum(
    values: np.ndarray, series: np.ndarray, first: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Sums of ``values[start:end]`` (positions of one series, whose first position is
    ``first``), from cumulative sums restarted at each series (so one series' sums never carry
    another's rounding)."""
    local = pd.Series(values).groupby(series).cumsum().to_numpy()
    upto = np.where(end > first, local[np.maximum(end - 1, 0)], 0.0)
    before = np.where(start > first, local[np.maximum(start - 1, 0)], 0.0)
    return upto - before


def last_readings(fleet: FleetSeries) -> np.ndarray:
    """(n_series,) the position of each series' last finite reading."""
    finite = np.isfinite(fleet.values)
    pos = np.flatnonzero(finite)
    last = np.full(len(fleet.meter_ids), -1, dtype=np.int64)
    np.maximum.at(last, fleet.meter_idx[pos], pos)
    return last


def history_bounds(
    fleet: FleetSeries, origin: np.ndarray, padding: str = "history"
) -> tuple[np.ndarray, np.ndarray]:
    """``(window_first, history_first)`` of forecasts made at ``origin``: the segment start and
    the series start, or with ``padding="zeros"`` (streaming from the test start) neither
    before the series' first test reading."""
    window_first = fleet.seg_start[origin]
    series_first = np.searchsorted(fleet.meter_idx, np.arange(len(fleet.meter_ids)))
    history_first = series_first[fleet.meter_idx[origin]]
    if padding == "zeros":
        stream = fleet.history_start(origin, "zeros")
        window_first, history_first = stream, np.maximum(history_first, stream)
    return window_first, history_first


def origin_positions(
    fleet: FleetSeries,
    splits: tuple[int, ...],
    cfg: ForecastSettings,
    min_history: int,
    usable: np.ndarray | None = None,
    padding: str = "history",
) -> np.ndarray:
    """Origins whose targets (steps ``cfg.steps``) all exist, contiguous after the origin and in
    ``splits``, with at least ``min_history`` readings in their window, on ``usable`` series."""
    horizon = cfg.horizon
    n = len(fleet.values)
    origin = np.arange(max(0, n - horizon), dtype=np.int64)
    last = origin + horizon
    ok = fleet.seg_start[last] <= origin  # the origin and every target in one segment
    in_split = np.isin(fleet.split, splits)
    ok &= in_split[origin + int(cfg.steps[0])] & in_split[last]
    if usable is not None:
        ok &= usable[fleet.meter_idx[origin]]
    origin = origin[ok]
    window_first, _ = history_bounds(fleet, origin, padding)
    return origin[origin + 1 - window_first >= min_history]


def training_origins(
    fleet: FleetSeries, cfg: ForecastSettings, usable: np.ndarray | None = None
) -> np.ndarray:
    """Training origins with full windows, at most ``cfg.max_train_windows`` (seeded sample);
    SchemaError when there is none."""
    origin = origin_positions(fleet, (TRAIN,), cfg, cfg.seq_length, usable)
    _require_windows(origin, cfg)
    return sample(origin, cfg.max_train_windows, cfg.seed)


def _require_windows(origin: np.ndarray, cfg: ForecastSettings) -> None:
    if len(origin) == 0:
        raise SchemaError(
            f"forecasting input has no training window of {cfg.seq_length} readings followed by "
            f"{cfg.horizon} targets: it needs days with longer contiguous history"
        )


def stopping_split(
    fleet: FleetSeries, origin: np.ndarray, cfg: ForecastSettings
) -> tuple[np.ndarray, np.ndarray]:
    """``(fit, stop)``: training origins whose targets avoid the early-stopping days, and those
    whose targets all lie in them. Early-stopping days are every ``STOP_EVERY``-th block of
    ``STOP_BLOCK_DAYS`` days of the training split, so that a network's epochs are chosen
    without the validation split, which stays clean for comparing every candidate."""
    day = fleet.time_idx // fleet.slots_per_day
    stop = (day // STOP_BLOCK_DAYS) % STOP_EVERY == STOP_EVERY - 1
    count = np.concatenate([[0], np.cumsum(stop)])
    first, last = origin + int(cfg.steps[0]), origin + cfg.horizon
    in_stop = count[last + 1] - count[first]
    return origin[in_stop == 0], origin[in_stop == last - first + 1]


def sample(origin: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """At most ``cap`` of the origins, drawn with ``seed``, kept in order."""
    if len(origin) <= cap:
        return origin
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(origin, size=cap, replace=False))


def inputs_at(
    fleet: FleetSeries, origin: np.ndarray, cfg: ForecastSettings, padding: str = "history"
) -> ForecastInputs:
    """The ``ForecastInputs`` of forecasts made at ``origin``."""
    window_first, history_first = history_bounds(fleet, origin, padding)
    return ForecastInputs(
        *(fleet, np.asarray(origin, dtype=np.int64), window_first, history_first),
        *(cfg.steps, cfg.seq_length, cfg.recent_days),
    )


def trained_series(fleet: FleetSeries) -> np.ndarray:
    """(n_series,) the series with readings in the training split (the only ones forecast)."""
    return np.bincount(fleet.meter_idx[fleet.split == TRAIN], minlength=len(fleet.meter_ids)) > 0


def validation_inputs(fleet: FleetSeries, cfg: ForecastSettings) -> ForecastInputs:
    """The validation origins every candidate is scored and combined on: full windows of the
    trained series, at most ``cfg.max_val_windows``, sampled with the run's seed (the same for
    every forecaster)."""
    origin = origin_positions(fleet, (VAL,), cfg, cfg.seq_length, trained_series(fleet))
    return inputs_at(fleet, sample(origin, cfg.max_val_windows, cfg.seed), cfg)


def split_test_inputs(fleet: FleetSeries, cfg: ForecastSettings) -> ForecastInputs:
    """Every test origin of the trained series (at ``cfg.origin_hour`` when set) with at least
    ``cfg.min_history`` readings, with the run's padding."""
    usable = trained_series(fleet)
    origin = origin_positions(fleet, (TEST,), cfg, cfg.min_history, usable, cfg.test_padding)
    if cfg.origin_hour >= 0:
        first_target = (fleet.time_idx[origin] + 1) % fleet.slots_per_day
        origin = origin[first_target == cfg.origin_hour * 60 // fleet.resolution_min]
    return inputs_at(fleet, origin, cfg, cfg.test_padding)
