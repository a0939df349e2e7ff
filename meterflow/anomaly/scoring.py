"""From a detector's evidence and the windowed evidence to one anomaly score per reading.

Six components, each on the scale of a standard normal deviate, fitted on validation only:

- ``point``: the detector's evidence as a robust z per meter and slot of day
  (``thresholds.fit_residual_scale``); ``|z|`` for signed evidence, ``max(z, 0)`` otherwise;
- ``spike``: the reading's rise above both its neighbours (``windowed.spike_excess``) as a
  robust z per meter and slot of day, ``max(z, 0)``;
- ``ratio`` and ``base``: the log ratio of the day's imported energy and of its base load
  (``windowed``) as robust z per meter, accumulated over the days a shift lasts
  (``windowed.run_statistic``);
- ``clock``: how much better the day fits the meter's recent days moved by whole hours
  (``clock``) as a robust z per meter, accumulated in the same way;
- ``flat``: a run of ``L`` identical readings as the normal deviate of its chance
  ``p_start * p_cont^(L-2)``, with ``p_start`` the meter's share of readings equal to the
  previous one (shrunk towards the fleet's with ``REPEAT_PRIOR`` pseudo-readings) and ``p_cont``
  the share of its repeats that go on repeating, counting at most ``CONTINUATION_CAP`` per run
  (one long run, perhaps an anomaly, does not make long runs normal) and shrunk towards
  ``p_start`` (independent readings) with ``REPEAT_PRIOR`` pseudo-trials: quantised readings that
  repeat in clusters (a night at the same few watt-hours) make long runs less surprising than
  independent repeats would.

Each component has its own threshold (``calibration`` chooses them on planted anomalies); the
score is the largest ``component / threshold``, so a reading is flagged at score 1
(``FLAG_LEVEL``) and a spike, a multi-day shift and a flat-line each count on their own
evidence; ``component`` says which one decided.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from meterflow.anomaly.thresholds import (
    ResidualScale,
    ResidualStats,
    concat_stats,
    finish_scale,
    residual_stats,
)
from meterflow.anomaly.windowed import day_index, flat_runs, repeats, run_statistic
from meterflow.errors import InputError
from meterflow.series.fleet import FleetSeries

COMPONENTS = ("point", "spike", "ratio", "base", "clock", "flat")
REPEAT_PRIOR = 500.0  # pseudo-readings of the fleet's repeat share in a meter's
CONTINUATION_CAP = 3  # continuations of one run counted at most
REPEAT_FLOOR = 1e-4  # a meter never repeating a reading still may by chance
RATIO_SCALE_FLOOR = 0.05  # log units: a meter's day-to-day spread is never below 5 %
Z_CAP = 40.0  # normal deviates beyond this are all "impossible"
FLAG_LEVEL = 1.0  # a reading whose score (component / its threshold) reaches this is flagged
NO_THRESHOLDS = (np.inf,) * len(COMPONENTS)
DAILY_COMPONENTS = ("ratio", "base", "clock")  # evidence per meter-day
# scales fitted, each with the error raised when no reading has its evidence
NO_RESIDUALS = {
    "point": "no validation reading has the detector's evidence",
    "spike": "no residuals to fit the anomaly score scale on",
    **dict.fromkeys(
        DAILY_COMPONENTS,
        "no day before the test split has a daily-energy ratio (too little history)",
    ),
}


@dataclass(frozen=True)
class Evidence:
    """Raw evidence of the readings of one fleet (NaN = not available): per reading, and per
    meter-day for the daily evidence (grids ``(n_meters, n_days)`` on the fleet's days)."""

    point: np.ndarray  # the detector's
    spike: np.ndarray  # rise above both neighbours
    runs: np.ndarray  # length of the run of identical readings
    ratio: np.ndarray  # day grid: daily-energy relative change against own history and peers
    base: np.ndarray  # day grid: daily base-load relative change against own history and peers
    clock: np.ndarray  # day grid: the day's better fit when moved by whole hours

    def at(self, keep: np.ndarray) -> Evidence:
        """The evidence of the readings where ``keep`` is True (the day grids whole)."""
        return replace(self, point=self.point[keep], spike=self.spike[keep], runs=self.runs[keep])


@dataclass(frozen=True)
class ScoreModel:
    """Normalisation of the components (by meter id) and their thresholds."""

    meter_ids: tuple[str, ...]
    slots_per_day: int
    signed: bool
    point: ResidualScale  # (n_meters, slots_per_day)
    spike: ResidualScale  # (n_meters, slots_per_day)
    ratio: ResidualScale  # (n_meters, 1)
    base: ResidualScale  # (n_meters, 1)
    clock: ResidualScale  # (n_meters, 1)
    repeat_p: np.ndarray  # (n_meters,) chance that a reading equals the previous one
    fleet_repeat_p: float
    repeat_cont: np.ndarray  # (n_meters,) chance that a repeat is repeated again
    fleet_repeat_cont: float
    windowed: bool = True
    thresholds: tuple[float, ...] = NO_THRESHOLDS  # of each component (z scale)

    def with_thresholds(self, thresholds: np.ndarray | tuple[float, ...]) -> ScoreModel:
        values = tuple(float(t) for t in thresholds)
        if len(values) != len(COMPONENTS) or min(values) <= 0:
            raise InputError(f"one positive threshold per component {COMPONENTS}: {values}")
        return replace(self, thresholds=values)

    def components(self, fleet: FleetSeries, ev: Evidence) -> np.ndarray:
        """``(n_components, N)`` z-scale components (``COMPONENTS`` order; NaN = not
        available)."""
        rows = pd.Index(self.meter_ids).get_indexer(fleet.meter_ids.astype(str))
        idx = rows[fleet.meter_idx]
        slot = fleet.time_idx % fleet.slots_per_day
        z = self.point.z(idx, slot, ev.point)
        point = np.abs(z) if self.signed else np.maximum(z, 0.0)
        out = np.full((len(COMPONENTS), len(fleet.values)), np.nan)
        out[0] = np.minimum(point, Z_CAP)
        if self.windowed:
            out[1] = np.minimum(np.maximum(self.spike.z(idx, slot, ev.spike), 0.0), Z_CAP)
            # (row, normalisation, evidence, lowest z: only a better shifted fit is a clock shift)
            daily = (
                (2, self.ratio, ev.ratio, -np.inf),
                (3, self.base, ev.base, -np.inf),
                (4, self.clock, ev.clock, 0.0),
            )
            day, first_slot = day_index(fleet), np.zeros((len(rows), 1), dtype=np.int64)
            for row, scale, grid, lowest in daily:
                day_z = run_statistic(np.maximum(scale.z(rows[:, None], first_slot, grid), lowest))
                out[row] = np.minimum(day_z[fleet.meter_idx, day], Z_CAP)
            known = idx >= 0
            p = np.where(known, self.repeat_p[np.maximum(idx, 0)], self.fleet_repeat_p)
            cont = np.where(known, self.repeat_cont[np.maximum(idx, 0)], self.fleet_repeat_cont)
            out[5] = run_surprise(ev.runs, p, cont)
        return out

    def score(self, components: np.ndarray) -> np.ndarray:
        """The largest available ``component / threshold`` of each reading (NaN when none is);
        ``FLAG_LEVEL`` or more is flagged."""
        known = np.isfinite(components)
        ratio = components / np.asarray(self.thresholds, dtype=np.float64)[:, None]
        best = np.where(known, ratio, -np.inf).max(axis=0)
        return np.where(known.any(axis=0), best, np.nan)


def run_surprise(runs: np.ndarray, repeat_p: np.ndarray, repeat_cont: np.ndarray) -> np.ndarray:
    """Normal deviate of the chance ``p_start * p_cont^(L-2)`` of a run of ``L >= 2``
    identical readings (0 for ``L = 1``), in log space and capped at ``Z_CAP``."""
    runs = np.asarray(runs, dtype=np.float64)
    log_p = np.log(repeat_p) + np.maximum(runs - 2.0, 0.0) * np.log(repeat_cont)
    z = norm.isf(np.exp(np.maximum(log_p, -700.0)))
    return np.where(runs > 1, np.minimum(z, Z_CAP), 0.0)


@dataclass(frozen=True)
class ScoreStats:
    """A meter block's part of what the score model is fitted from (``score_stats``)."""

    scales: dict[str, ResidualStats]  # point; with windowed evidence spike, ratio, base, clock
    pooled: dict[str, np.ndarray]  # residuals that set each scale's fleet centre and spread
    repeats: np.ndarray  # (4, n_meters) repeats, readings, continuations, chances to continue


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
    ``history_mask`` (validation and the history before it: neither is learned by a model).
    One block: ``finish_score_model`` of the ``score_stats`` of the whole fleet."""
    stats = score_stats(fleet, ev, fit_mask, history_mask, windowed)
    ids = tuple(str(x) for x in fleet.meter_ids)
    return finish_score_model([stats], ids, fleet.slots_per_day, signed, windowed, shrinkage)


def score_stats(
    fleet: FleetSeries,
    ev: Evidence,
    fit_mask: np.ndarray,
    history_mask: np.ndarray,
    windowed: bool = True,
    pool: np.ndarray | None = None,
) -> ScoreStats:
    """The statistics of one fleet (a meter block) that ``fit_score_model`` needs; the
    residuals of the meters in ``pool`` (a mask over meters; default all) set the fleet's
    centres and spreads."""
    n_m, slots = len(fleet.meter_ids), fleet.slots_per_day
    m, slot = fleet.meter_idx, fleet.time_idx % slots
    ok = fit_mask & np.isfinite(ev.point)
    samples = {"point": (m[ok], slot[ok], ev.point[ok], slots)}
    if windowed:
        has_spike = history_mask & np.isfinite(ev.spike)
        samples["spike"] = (m[has_spike], slot[has_spike], ev.spike[has_spike], slots)
        for name in DAILY_COMPONENTS:
            samples[name] = (*_daily_values(fleet, getattr(ev, name), history_mask), 1)
    scales = {k: residual_stats(mm, s, r, n_m, width) for k, (mm, s, r, width) in samples.items()}
    pooled = {k: r if pool is None else r[pool[mm]] for k, (mm, _, r, _) in samples.items()}
    same, count = _repeats(fleet, history_mask)
    hits, trials = _continuations(fleet, history_mask)
    return ScoreStats(scales, pooled, np.stack([same, count, hits, trials]))


def finish_score_model(
    parts: list[ScoreStats],
    meter_ids: tuple[str, ...],
    slots: int,
    signed: bool,
    windowed: bool = True,
    shrinkage: float = 10.0,
) -> ScoreModel:
    """The score model of the meters ``meter_ids`` from the ``score_stats`` of their
    consecutive blocks."""
    scales = {}
    for name, empty in NO_RESIDUALS.items():
        if name not in parts[0].scales:
            continue
        stats = concat_stats([p.scales[name] for p in parts])
        if not stats.count.any():
            raise InputError(empty)
        pooled = np.concatenate([p.pooled[name] for p in parts])
        daily = name in DAILY_COMPONENTS
        scales[name] = finish_scale(stats, pooled, 1 if daily else slots, shrinkage)
        if daily:
            scales[name] = replace(
                scales[name], scale=np.maximum(scales[name].scale, RATIO_SCALE_FLOOR)
            )
    point = scales["point"]
    spike, ratio, base, clock = (scales.get(n, point) for n in ("spike", *DAILY_COMPONENTS))
    same, count, hits, trials = np.concatenate([p.repeats for p in parts], axis=1)
    repeat_p, fleet_p = _shrunk_share(same, count)
    repeat_cont = (hits + REPEAT_PRIOR * repeat_p) / (trials + REPEAT_PRIOR)
    repeat_cont = np.clip(np.maximum(repeat_cont, repeat_p), REPEAT_FLOOR, 1 - REPEAT_FLOOR)
    fleet_cont = float(np.clip(np.median(repeat_cont), REPEAT_FLOOR, 1 - REPEAT_FLOOR))
    return ScoreModel(
        *(meter_ids, slots, signed, point, spike, ratio, base, clock),
        *(repeat_p, fleet_p, repeat_cont, fleet_cont, windowed),
    )


def _shrunk_share(hits: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, float]:
    """Each meter's share ``hits / count`` shrunk towards the fleet's with ``REPEAT_PRIOR``
    pseudo-counts, and the fleet's (both at least ``REPEAT_FLOOR``)."""
    fleet = max(float(hits.sum() / max(count.sum(), 1.0)), REPEAT_FLOOR)
    share = (hits + REPEAT_PRIOR * fleet) / (count + REPEAT_PRIOR)
    return np.clip(share, REPEAT_FLOOR, 1.0 - REPEAT_FLOOR), min(fleet, 1.0 - REPEAT_FLOOR)


def _daily_values(
    fleet: FleetSeries, grid: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(meter, slot 0, value)`` of the known values of a day grid on the meter-days whose
    first reading is in ``mask``."""
    days = fleet.time_idx // fleet.slots_per_day
    first = np.ones(len(days), dtype=bool)  # one reading per meter-day
    first[1:] = (days[1:] != days[:-1]) | (fleet.meter_idx[1:] != fleet.meter_idx[:-1])
    pick = np.flatnonzero(mask & first)
    values = grid[fleet.meter_idx[pick], days[pick]]
    known = np.isfinite(values)
    m = fleet.meter_idx[pick[known]]
    return m, np.zeros_like(m), values[known]


def _repeats(fleet: FleetSeries, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per meter: readings in ``mask`` equal to the previous reading, and readings counted."""
    m, n = fleet.meter_idx[mask], len(fleet.meter_ids)
    same = np.bincount(m, weights=repeats(fleet)[mask], minlength=n)
    return same, np.bincount(m, minlength=n).astype(np.float64)


def _continuations(fleet: FleetSeries, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per meter, over the runs of two or more identical readings that start in ``mask``:
    repeats that were repeated again and chances to, at most ``CONTINUATION_CAP`` per run."""
    runs = flat_runs(fleet)
    first = np.ones(len(runs), dtype=bool)
    first[1:] = ~repeats(fleet)[1:]
    start = first & mask & (runs >= 2)
    m, length = fleet.meter_idx[start], runs[start].astype(np.float64)
    n = len(fleet.meter_ids)
    hits = np.bincount(m, weights=np.minimum(length - 2, CONTINUATION_CAP), minlength=n)
    trials = np.bincount(m, weights=np.minimum(length - 1, CONTINUATION_CAP), minlength=n)
    return hits, trials
