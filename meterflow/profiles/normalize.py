"""Per-profile normalisation of daily load profiles (shape comparison for clustering and DTW).

Methods (each row is one meter-day, scaled on its own):

- ``none``: values unchanged (Wh).
- ``l2``: divide by the profile's Euclidean norm, as the reference pipeline did
  (``sklearn.preprocessing.normalize(X, norm="l2")``).
- ``zscore``: subtract the daily mean, divide by the daily standard deviation (ddof=0).
- ``max``: divide by the daily maximum of ``|x|``; for consumption-only profiles that is the
  daily peak (values in [0, 1]); for net-export slots (negative Wh) the sign is kept.

Degenerate profiles are explicit, never NaN: an all-zero profile stays all zeros under every
method, and a constant profile becomes all zeros under ``zscore`` (its standard deviation is 0).
NaN slots stay NaN; the statistics ignore them.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from meterflow.errors import ConfigError
from meterflow.schemas import profile_matrix, profile_slot_columns

NORMALIZATIONS = ("none", "l2", "zscore", "max")


def normalize_values(values: np.ndarray, method: str) -> np.ndarray:
    """Normalise the rows of a (profiles x slots) array; see the module doc for ``method``."""
    if method not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {method!r}; choose one of {NORMALIZATIONS}")
    x = np.asarray(values, dtype=np.float64)
    if method == "none" or x.size == 0:
        return x.copy()
    with warnings.catch_warnings():  # all-NaN rows: "mean of empty slice" is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        if method == "zscore":
            peak = np.nanmax(np.abs(x), axis=1, keepdims=True, initial=0.0)
            x = x - np.nanmean(x, axis=1, keepdims=True)
            scale = np.sqrt(np.nanmean(x**2, axis=1, keepdims=True))
            # a constant profile leaves only rounding noise around its mean: treat it as flat
            scale[scale <= 1e-12 * peak] = 0.0
        elif method == "l2":
            scale = np.sqrt(np.nansum(x**2, axis=1, keepdims=True))
        else:  # "max"
            scale = np.nanmax(np.abs(x), axis=1, keepdims=True, initial=0.0)
    # zero scale (all-zero, or flat under zscore): the result is all zeros, not 0/0
    out = np.divide(x, scale, out=np.zeros_like(x), where=scale > 0)
    out[np.isnan(x)] = np.nan
    return out


def normalize(profiles: pd.DataFrame, method: str) -> pd.DataFrame:
    """A copy of a profiles table with its slot columns normalised by ``method``
    (``none`` | ``l2`` | ``zscore`` | ``max``); key and other columns are unchanged."""
    cols = profile_slot_columns(profiles)
    out = profiles.copy()
    out[cols] = normalize_values(profile_matrix(profiles, cols), method)
    return out
