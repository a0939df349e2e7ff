"""Duplicate readings: exact copies are dropped, conflicting ones resolved against neighbours."""

from __future__ import annotations

import numpy as np

FIRST_ARRIVAL_PREFERENCE = 3.0


def resolve_duplicates(
    series: np.ndarray, k: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resolve rows sharing (series, k) in arrays sorted by (series, k).

    ``values`` is (n,) or (n, c); rows of one key are in arrival order. Returns index arrays
    ``(exact, conflicting, chosen_for)``: ``exact`` rows repeat the value of another row of the
    same key; among the remaining rows of a key the first to arrive is kept unless another one
    is more than FIRST_ARRIVAL_PREFERENCE times closer to the mean of the neighbouring keys'
    values (previous and next interval of the same series: a glitch later corrected); the
    others are listed in ``conflicting``, ``chosen_for[i]`` being the row kept instead.
    """
    n = len(k)
    empty = np.array([], dtype=np.int64)
    if n < 2:
        return empty, empty, empty
    vals = values.reshape(n, -1)
    new_key = np.ones(n, dtype=bool)
    new_key[1:] = (series[1:] != series[:-1]) | (k[1:] != k[:-1])
    if new_key.all():
        return empty, empty, empty
    g = np.cumsum(new_key) - 1  # key (group) of each row
    exact = _exact_copies(vals, g)
    alive = np.ones(n, dtype=bool)
    alive[exact] = False
    # conflicts among the distinct survivors
    idx = np.flatnonzero(alive)
    ga = g[idx]
    multi = np.bincount(ga, minlength=g[-1] + 1)[ga] > 1
    if not multi.any():
        return exact, empty, empty
    cost = _neighbour_cost(series, vals, idx, ga)
    conflicting, chosen_for = _losers_and_winners(idx[multi], ga[multi], cost[multi], g[-1] + 1)
    return exact, conflicting, chosen_for


def _exact_copies(vals: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Rows repeating the values (NaN equal to NaN) of an earlier-sorted row of their key."""
    # sort the rows of repeated keys by value and compare with the previous row
    repeated = np.flatnonzero(np.bincount(g)[g] > 1)
    sub = repeated[np.lexsort((*vals[repeated].T[::-1], g[repeated]))]
    sv, sg = vals[sub], g[sub]
    same = np.zeros(len(sub), dtype=bool)
    same[1:] = (sg[1:] == sg[:-1]) & np.all(
        (sv[1:] == sv[:-1]) | (np.isnan(sv[1:]) & np.isnan(sv[:-1])), axis=1
    )
    return np.sort(sub[same])


def _neighbour_cost(
    series: np.ndarray, vals: np.ndarray, idx: np.ndarray, ga: np.ndarray
) -> np.ndarray:
    """Distance of rows ``idx`` (keys ``ga``) to the mean of the neighbouring keys' first
    values, divided by FIRST_ARRIVAL_PREFERENCE for a key's first row; inf for NaN values."""
    first_arrival = np.r_[True, ga[1:] != ga[:-1]]
    first = idx[first_arrival]  # first surviving row of each key, in key order
    keys = ga[first_arrival]
    key_series = series[first]
    pos = np.searchsorted(keys, ga)
    prev_ok = (pos > 0) & (key_series[np.maximum(pos - 1, 0)] == series[idx])
    next_ok = (pos < len(keys) - 1) & (
        key_series[np.minimum(pos + 1, len(keys) - 1)] == series[idx]
    )
    prev_v = np.where(prev_ok[:, None], vals[first[np.maximum(pos - 1, 0)]], np.nan)
    next_v = np.where(next_ok[:, None], vals[first[np.minimum(pos + 1, len(keys) - 1)]], np.nan)
    with np.errstate(invalid="ignore"):
        ref = np.where(
            np.isnan(prev_v), next_v, np.where(np.isnan(next_v), prev_v, 0.5 * (prev_v + next_v))
        )
    cost = np.nansum(np.abs(vals[idx] - ref), axis=1)
    cost[first_arrival] /= FIRST_ARRIVAL_PREFERENCE
    cost[np.isnan(vals[idx]).any(axis=1)] = np.inf
    return cost


def _losers_and_winners(
    rows: np.ndarray, keys: np.ndarray, cost: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per key the cheapest row wins (ties: the earlier row); the others, in row order, with the
    winner of their key."""
    o = np.lexsort((cost, keys))
    rows, grp = rows[o], keys[o]
    keep_first = np.r_[True, grp[1:] != grp[:-1]]
    winner_of_group = np.full(n_keys, -1, dtype=np.int64)
    winner_of_group[grp[keep_first]] = rows[keep_first]
    conflicting = rows[~keep_first]
    chosen_for = winner_of_group[grp[~keep_first]]
    o2 = np.argsort(conflicting, kind="stable")
    return conflicting[o2], chosen_for[o2]
