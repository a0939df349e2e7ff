"""Windowed evidence every detector shares: what one reading cannot show.

- **Daily-energy change** (level shifts, theft-like under-reading): the log ratio of a
  meter-day's imported energy (its positive readings: what theft or a shifted load changes,
  also on prosumers whose net energy crosses zero) to the meter's recent level: the median of
  its last ``LEVEL_DAYS`` usable days, each less its weekday's effect, plus the effect of the
  day's weekday (weekly rhythms differ between meters; the effects are medians over the
  previous ``REF_DAYS`` days), so that a season's ramp (air conditioning in June) is followed
  within days while a shift of a few days stands out; less the median change of the meter's
  peers that day (the ``N_PEERS`` meters
  whose average week in training has the most similar shape), so that seasons, weather and
  holidays that move similar meters do not. ``scoring`` makes it a robust z per meter and
  ``run_statistic`` accumulates it over the days a shift lasts (up to a week), so that a shift
  is flagged on every one of its days, not only at its edges.
- **Base-load change**: the same change of the day's base load (``daily_base``), where a
  household's shift or theft shows far more clearly than in its day-to-day energy.
- **Spike excess**: how far a reading rises above both its neighbours (``spike_excess``).
- **Flat-line run** (stuck registers, frozen gateways): the number of identical consecutive
  readings the reading belongs to (``scoring`` turns it into a surprise on the z scale with the
  meter's own rate of repeated readings).

Both are computed from the readings of any fleet; a day needs ``DAY_COVERAGE`` of its slots.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from meterflow.anomaly.rowstats import nanmedian, nanquantile
from meterflow.series.fleet import TRAIN, FleetSeries

REF_DAYS = 56  # days of the meter's own history a day is compared with
MIN_REF_DAYS = 3  # fewer known same weekdays before it: no change
LEVEL_DAYS = 14  # recent days whose median (weekday effects removed) is the meter's level
DAY_COVERAGE = 0.75  # share of a day's slots that must be known to compute its energy
DAY_FLOOR = 0.02  # of the meter's median daily import: the least a day counts as importing
BASE_QUANTILE = 0.2  # of a day's positive readings: its base load
MIN_BASE_SHARE = 0.25  # of a day's slots that import, else its base load is 0
SPIKE_FLOOR = 0.1  # of the meter's median import, added to a reading and its neighbours
MIN_PEERS = 3  # fewer peers with a change that day: no peer correction
N_PEERS = 10  # peers of a meter (most similar average week in training)
WEEK_FLOOR = 0.05  # of the meter's mean, added before the log of its average week
SHIFTED_DAY = 0.35  # |log ratio| of a shifted day: left out of later references ...
MAX_CLEAN_DAYS = 28  # ... unless it lasts longer than this: then it is the new normal
RUN_DAYS = 7  # a run's evidence grows with its length up to this many days
STRETCH_MIN_Z = 1.0  # every day of a stretch of shifted days deviates at least this much
PEER_BLOCK = 1024  # meters whose similarities to the fleet are computed at once ...
PEER_CELLS = 1 << 22  # ... at most this many similarities (32 MiB) in a large fleet
SIMILARITY_GRID = 2.0**-26  # week shapes rounded to it: their dot products are exact


def day_index(fleet: FleetSeries) -> np.ndarray:
    """Day of every reading (days since the fleet's first midnight)."""
    return fleet.time_idx // fleet.slots_per_day


def daily_import(fleet: FleetSeries) -> np.ndarray:
    """``(n_meters, n_days)`` imported energy (sum of the positive readings, as mean x slots)
    of each meter-day; NaN below ``DAY_COVERAGE``."""
    n_days = int(fleet.n_times // fleet.slots_per_day) + 1
    cells = fleet.meter_idx * n_days + day_index(fleet)
    size = len(fleet.meter_ids) * n_days
    count = np.bincount(cells, minlength=size).reshape(-1, n_days)
    imported = np.maximum(fleet.values, 0.0)
    total = np.bincount(cells, weights=imported, minlength=size).reshape(-1, n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        energy = total / count * fleet.slots_per_day
    energy[count < DAY_COVERAGE * fleet.slots_per_day] = np.nan
    return energy


def daily_base(fleet: FleetSeries) -> np.ndarray:
    """``(n_meters, n_days)`` base load of each meter-day: the ``BASE_QUANTILE`` of its
    positive readings (night and standby, the load a household varies least from day to day,
    so that a shift of all readings or theft shows in it clearly; a prosumer's hours of net
    export are left out), 0 when fewer than ``MIN_BASE_SHARE`` of its slots import (a dead
    meter); NaN below ``DAY_COVERAGE``."""
    n_days = int(fleet.n_times // fleet.slots_per_day) + 1
    cells = fleet.meter_idx * n_days + day_index(fleet)
    keys, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    grid = np.full((len(keys), fleet.slots_per_day), np.nan)
    grid[inverse, fleet.time_idx % fleet.slots_per_day] = np.where(
        fleet.values > 0, fleet.values, np.nan
    )
    importing = np.isfinite(grid).sum(axis=1)
    base = np.zeros(len(keys))
    some = importing >= MIN_BASE_SHARE * fleet.slots_per_day
    if some.any():
        base[some] = nanquantile(grid[some], BASE_QUANTILE, axis=1)
    out = np.full(len(fleet.meter_ids) * n_days, np.nan)
    enough = counts >= DAY_COVERAGE * fleet.slots_per_day
    out[keys[enough]] = base[enough]
    return out.reshape(len(fleet.meter_ids), n_days)


DAILY = {"energy": daily_import, "base": daily_base}


def energy_change(
    fleet: FleetSeries, peers: dict[str, tuple[str, ...]] | None, daily: str = "energy"
) -> np.ndarray:
    """``(n_meters, n_days)`` ``change_of`` the fleet's ``daily`` statistic (``energy``:
    ``daily_import``; ``base``: ``daily_base``)."""
    return change_of(DAILY[daily](fleet), fleet.meter_ids, peers)


def change_of(
    energy: np.ndarray, meter_ids: np.ndarray, peers: dict[str, tuple[str, ...]] | None
) -> np.ndarray:
    """``(n_meters, n_days)`` log ratio of each day of ``energy`` (a daily statistic of the
    meters ``meter_ids``) to the median of the meter's usable same weekdays of the previous
    ``REF_DAYS`` days, less the median of its peers' ratios that day (peers missing from
    ``meter_ids`` are skipped; fewer than ``MIN_PEERS``: no correction). Peers couple the
    meters, so this runs on the day grid of the whole fleet.

    A day whose change is beyond ``SHIFTED_DAY`` is left out of later references, so that a
    long anomaly neither becomes the meter's normal nor makes the days after it look
    anomalous, unless the meter stays changed for ``MAX_CLEAN_DAYS``: then those days are
    taken back (a lasting change is the new normal). A day importing less than
    ``DAY_FLOOR`` of the meter's median day counts as that floor (a dead meter's zero days are a
    large drop, not unknown). NaN where the reference is unknown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # meters without a known day
        floor = DAY_FLOOR * np.nanmedian(np.where(energy > 0, energy, np.nan), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_import = np.log(np.maximum(energy, floor[:, None]))
    log_import[~np.isfinite(log_import)] = np.nan
    usable = np.isfinite(log_import)
    excluded_since = np.full(len(log_import), -1)
    table = _peer_table(meter_ids, peers)
    out = np.full(log_import.shape, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN medians are expected
        for d in range(log_import.shape[1]):
            own = _own_change(log_import, usable, d)
            if table.shape[1]:
                theirs = np.append(own, np.nan)[table]  # column -1 = no peer
                enough = np.isfinite(theirs).sum(axis=1) >= MIN_PEERS
                own = own - np.where(enough, nanmedian(theirs, axis=1), 0.0)
            out[:, d] = own
            _exclude(usable, excluded_since, np.abs(own) > SHIFTED_DAY, d)
    return out


def _own_change(log_import: np.ndarray, usable: np.ndarray, d: int) -> np.ndarray:
    """Day ``d``'s log import less the meter's recent level on its weekday (module
    docstring); NaN without ``MIN_REF_DAYS`` usable same weekdays in the ``REF_DAYS`` before."""
    lo = max(d - REF_DAYS, 0)
    history = np.where(usable[:, lo:d], log_import[:, lo:d], np.nan)
    weekday = np.arange(lo, d) % 7
    effect = np.full((len(log_import), 7), np.nan)
    overall = nanmedian(history, axis=1) if d > lo else np.full(len(log_import), np.nan)
    for k in np.unique(weekday):
        effect[:, k] = nanmedian(history[:, weekday == k], axis=1) - overall
    deseasoned = history[:, -LEVEL_DAYS:] - effect[:, weekday[-LEVEL_DAYS:]]
    level = nanmedian(deseasoned, axis=1) if d > lo else overall
    enough = np.isfinite(history[:, weekday == d % 7]).sum(axis=1) >= MIN_REF_DAYS
    return np.where(enough, log_import[:, d] - level - effect[:, d % 7], np.nan)


def _exclude(usable: np.ndarray, since: np.ndarray, changed: np.ndarray, d: int) -> None:
    """Leave changed days out of later references, taking a run back once it lasts
    ``MAX_CLEAN_DAYS`` (``since``: first day of each meter's current run, -1 = none)."""
    usable[changed, d] = False
    since[~changed] = -1
    since[changed & (since < 0)] = d
    lasting = np.flatnonzero(changed & (d - since + 1 >= MAX_CLEAN_DAYS))
    for m in lasting:
        usable[m, since[m] : d + 1] = True
        since[m] = -1


def _peer_table(meter_ids: np.ndarray, peers: dict[str, tuple[str, ...]] | None) -> np.ndarray:
    """``(n_meters, width)`` rows of each meter's peers among ``meter_ids`` (-1 = none)."""
    if not peers:
        return np.zeros((len(meter_ids), 0), dtype=np.int64)
    row = {str(m): i for i, m in enumerate(meter_ids)}
    width = max(len(p) for p in peers.values())
    table = np.full((len(row), width), -1, dtype=np.int64)
    for m, i in row.items():
        found = [row[p] for p in peers.get(m, ()) if p in row]
        table[i, : len(found)] = found
    return table


def week_shapes(fleet: FleetSeries) -> np.ndarray:
    """``(n_meters, 7 * slots_per_day)`` each meter's average week of imported energy over the
    TRAIN split (log, centred; one value per weekday and slot) as a unit vector rounded to
    ``SIMILARITY_GRID``, so that dot products of two are exact whatever the summation order
    (any block of rows gives the same similarities). ``PEER_BLOCK`` meters at a time."""
    n = len(fleet.meter_ids)
    parts = [
        _week_shape(fleet.series_range(lo, min(lo + PEER_BLOCK, n)))
        for lo in range(0, n, PEER_BLOCK)
    ]
    unit = np.concatenate(parts) if parts else np.zeros((0, 7 * fleet.slots_per_day))
    return np.round(unit / SIMILARITY_GRID) * SIMILARITY_GRID


def _week_shape(fleet: FleetSeries) -> np.ndarray:
    slots = fleet.slots_per_day
    train = fleet.split == TRAIN
    weekday = (fleet.t0.dayofweek + day_index(fleet)) % 7
    cell = (fleet.meter_idx * 7 + weekday) * slots + fleet.time_idx % slots
    n = len(fleet.meter_ids) * 7 * slots
    total = np.bincount(cell[train], weights=np.maximum(fleet.values[train], 0.0), minlength=n)
    count = np.bincount(cell[train], minlength=n)
    week = (total / np.maximum(count, 1)).reshape(len(fleet.meter_ids), -1)
    shape = np.log(week + WEEK_FLOOR * week.mean(axis=1, keepdims=True) + 1e-9)
    shape -= shape.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(shape / np.linalg.norm(shape, axis=1, keepdims=True))


def fit_peers(
    fleet: FleetSeries, k: int = N_PEERS, block: int = PEER_BLOCK
) -> dict[str, tuple[str, ...]]:
    """Each meter's ``k`` peers: the meters whose average week (``week_shapes``) has the most
    similar shape, so that offices move with offices on a holiday and homes with homes; on a
    tie the meter that comes first. Compared ``block`` meters with the whole fleet at a time
    (fewer in a large fleet: at most ``PEER_CELLS`` similarities), so memory grows with the
    fleet, not with its square."""
    unit = week_shapes(fleet)
    n = len(unit)
    width = max(min(k, n - 1), 0)
    rows = max(1, min(block, PEER_CELLS // max(n, 1)))
    best = np.zeros((n, width), dtype=np.int64)
    for lo in range(0, n if width else 0, rows):
        best[lo : lo + rows] = _most_similar(unit, np.arange(lo, min(lo + rows, n)), width)
    ids = [str(m) for m in fleet.meter_ids]
    return {ids[m]: tuple(ids[j] for j in best[m]) for m in range(n)}


def _most_similar(unit: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """``(len(rows), k)`` the other meters most similar to each of ``rows``, most similar
    first, ties by position."""
    key = unit[rows] @ unit.T
    key[np.arange(len(rows)), rows] = -np.inf  # never its own peer
    return smallest_k(np.negative(key, out=key), k)


def smallest_k(key: np.ndarray, k: int) -> np.ndarray:
    """Columns of the ``k`` smallest values of each row of ``key`` (no NaN; ``k`` at most its
    width), by value then column: ``np.argsort(key, axis=1, kind="stable")[:, :k]`` without
    sorting whole rows."""
    kth = np.partition(key, k - 1, axis=1)[:, k - 1 : k]
    below = key < kth
    tied = key == kth
    room = k - below.sum(axis=1)
    crowded = np.flatnonzero(tied.sum(axis=1) > room)  # more ties at the k-th value than room
    if len(crowded):
        rank = np.cumsum(tied[crowded], axis=1, dtype=np.int32)
        tied[crowded] &= rank <= room[crowded, None]
    cols = np.nonzero(below | tied)[1].reshape(len(key), k)
    order = np.argsort(np.take_along_axis(key, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


def run_statistic(z: np.ndarray, max_days: int = RUN_DAYS) -> np.ndarray:
    """Evidence of sustained shifts in daily z-scores ``(n_meters, n_days)``, both ways: for
    each day, the largest ``sqrt(n) * |mean(z)|`` (the normal deviate of the mean) over the
    stretches of ``n <= max_days`` consecutive days that contain it and whose every day
    deviates the same way by at least ``STRETCH_MIN_Z``. A shift of 2.5 sigma a day scores
    about 6.6 on every one of its days, not only at its edges; the normal days beside it keep
    their own ``|z|``, as does a lone day. Unknown days end stretches. Retrospective: a day's
    evidence can rise with the days after it (a nightly run rescores the last week)."""
    n_d = z.shape[1]
    known = np.isfinite(z)
    best = np.where(known, np.abs(z), np.nan)
    csum = np.concatenate([np.zeros((len(z), 1)), np.cumsum(np.where(known, z, 0.0), axis=1)], 1)
    for sign in (1.0, -1.0):
        low = np.where(known, sign * z, -np.inf)  # weakest day of each stretch
        for length in range(2, min(max_days, n_d) + 1):
            low = np.minimum(low[:, :-1], np.where(known, sign * z, -np.inf)[:, length - 1 :])
            total = sign * (csum[:, length:] - csum[:, :-length])  # stretch starting at day a
            strength = np.where(low >= STRETCH_MIN_Z, total / np.sqrt(length), 0.0)
            for offset in range(length):  # ... covers days a .. a + length - 1
                covered = best[:, offset : offset + strength.shape[1]]
                np.fmax(covered, strength, out=covered)
    return np.where(known, best, np.nan)


def spike_excess(fleet: FleetSeries) -> np.ndarray:
    """How far each reading rises above the higher of its two neighbours, as a log ratio of
    imports (each plus ``SPIKE_FLOOR`` of the meter's median import, so that a meter's quiet
    hours do not make a few watt-hours a spike): a one-slot spike at the series' own
    resolution, which a peak lasting hours is not. NaN without both neighbours."""
    v, m, t = np.maximum(fleet.values, 0.0), fleet.meter_idx, fleet.time_idx
    out = np.full(len(v), np.nan)
    if len(v) < 3:
        return out
    positive = np.where(v > 0, v, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a meter without imports
        typical = pd.Series(positive).groupby(m).median().reindex(range(len(fleet.meter_ids)))
    floor = np.nan_to_num(SPIKE_FLOOR * typical.to_numpy(), nan=1.0)[m] + 1e-9
    inner = (m[1:-1] == m[:-2]) & (m[1:-1] == m[2:]) & (t[:-2] + 1 == t[1:-1])
    inner &= t[1:-1] + 1 == t[2:]
    neighbours = np.maximum(v[:-2], v[2:]) + floor[1:-1]
    ratio = np.log((v[1:-1] + floor[1:-1]) / neighbours)
    out[1:-1] = np.where(inner, ratio, np.nan)
    return out


def repeats(fleet: FleetSeries) -> np.ndarray:
    """Whether each reading equals the meter's previous slot's reading."""
    v, m, t = fleet.values, fleet.meter_idx, fleet.time_idx
    same = np.zeros(len(v), dtype=bool)
    same[1:] = (v[1:] == v[:-1]) & (m[1:] == m[:-1]) & (t[1:] == t[:-1] + 1)
    return same


def flat_runs(fleet: FleetSeries) -> np.ndarray:
    """Length of the run of identical consecutive readings each reading belongs to (1 when it
    differs from both neighbours; a gap or another meter ends a run)."""
    run = np.cumsum(~repeats(fleet)) - 1
    return np.bincount(run)[run] if len(run) else np.zeros(0, dtype=np.int64)
