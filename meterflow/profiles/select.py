"""Choosing which meter-days enter quadratic computations (DTW matrix, O(n^2) clustering)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

MIN_SAMPLE_DAYS = 7  # a week: every weekday once, when the data has that many days
SAMPLE_SEED = 0  # seed of the meters' hash rank (changing it changes the whole sample)


def meter_days_mask(
    meter_ids: pd.Series,
    dates: pd.Series,
    max_rows: int,
    *,
    usable: np.ndarray | None = None,
    meter_types: pd.Series | None = None,
    min_days: int = MIN_SAMPLE_DAYS,
    seed: int = SAMPLE_SEED,
) -> np.ndarray:
    """A sample of at most ``max_rows`` rows, stratified across meters and days, stable night to
    night: a fixed set of meters times the ``D`` most recent days.

    Only ``usable`` rows (default: all) with a date are candidates; if they fit, all are taken.
    Otherwise, with ``M`` meters and ``T`` days among them:

    - ``D = min(T, max(min_days, max_rows // M))`` days: at least a week when the data has it
      (weekly structure), more when every meter fits for longer;
    - the ``max_rows // D`` meters (of those with a usable row in the ``D`` days) of lowest seeded
      hash rank of their id; with ``meter_types`` (meter id -> type) their number is split across
      types in proportion to the candidates of each type (largest remainders), the lowest ranks
      of each type taken;
    - their usable rows in the ``D`` days: at most ``D * (max_rows // D) <= max_rows``.

    A meter's rank depends on its id and ``seed`` only, so a newer day adds that day's rows of the
    same meters and drops the oldest day's rows (as long as the set of reporting meters and ``M``
    stay the same), which keeps an incremental DTW cache cheap to update.
    """
    ok = np.ones(len(dates), dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    ok = ok & dates.notna().to_numpy()
    if max_rows <= 0:
        return np.zeros(len(dates), dtype=bool)
    if ok.sum() <= max_rows:
        return ok
    days = np.sort(dates[ok].unique())[::-1]
    n_days = min(len(days), max(min_days, max_rows // meter_ids[ok].nunique()), max_rows)
    in_window = ok & dates.isin(days[:n_days]).to_numpy()
    candidates = pd.Series(meter_ids[in_window].unique())
    types = None if meter_types is None else candidates.map(meter_types).fillna("")
    chosen = _ranked_meters(candidates, max_rows // n_days, types, seed)
    return in_window & meter_ids.isin(chosen).to_numpy()


def _ranked_meters(meters: pd.Series, k: int, types: pd.Series | None, seed: int) -> np.ndarray:
    """The ``k`` meters of lowest seeded hash rank, split across ``types`` in proportion."""
    if k >= len(meters):
        return meters.to_numpy()
    order = np.lexsort((meters.astype(str).to_numpy(), meter_rank(meters, seed)))
    ranked = meters.to_numpy()[order]
    if types is None:
        return ranked[:k]
    ranked_types = types.astype(str).to_numpy()[order]
    quota = _proportional(pd.Series(ranked_types).value_counts().sort_index(), k)
    seen = pd.Series(ranked_types).groupby(ranked_types).cumcount().to_numpy()
    return ranked[seen < pd.Series(ranked_types).map(quota).to_numpy()]


def _proportional(counts: pd.Series, k: int) -> pd.Series:
    """``k`` split across the groups of ``counts`` in proportion, by largest remainders (ties in
    group order); no group gets more than its count when ``k <= counts.sum()``."""
    share = counts * k / counts.sum()
    quota = np.floor(share).astype(int)
    left = k - int(quota.sum())
    remainders = (share - quota).sort_values(ascending=False, kind="stable")
    quota.loc[remainders.index[:left]] += 1
    return quota


def meter_rank(meters: pd.Series, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A seeded pseudo-random rank (uint64) of each meter id: BLAKE2b of the id keyed by
    ``seed``, the same in every process, platform and release."""
    key = seed.to_bytes(8, "little", signed=True)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(str(m).encode(), digest_size=8, key=key).digest())
            for m in meters
        ],
        dtype=np.uint64,
    )


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random sample of at most ``max_rows`` of ``n`` rows."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
