"""Choosing which meter-days enter quadratic computations (DTW matrix, O(n^2) clustering)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def recent_days_mask(dates: pd.Series, max_rows: int) -> np.ndarray:
    """Rows of the most recent whole days whose total row count is at most ``max_rows``.

    Whole days only (every meter of a chosen day is in), newest first, so the chosen set slides
    forward with new data: appending a day adds its rows and drops the oldest day's rows, which
    keeps an incremental DTW cache cheap to update. At least the newest day is chosen even when
    it alone exceeds ``max_rows``.
    """
    counts = dates.value_counts().sort_index(ascending=False)
    if counts.empty:
        return np.zeros(len(dates), dtype=bool)
    cumulative = counts.cumsum()
    chosen = cumulative.index[cumulative.to_numpy() <= max_rows]
    if len(chosen) == 0:
        chosen = cumulative.index[:1]
    return dates.isin(chosen).to_numpy()


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random sample of at most ``max_rows`` of ``n`` rows."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
