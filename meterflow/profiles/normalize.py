"""Per-profile normalisation of daily load profiles (shape comparison for clustering and DTW).

Methods (each row is one meter-day, scaled on its own):

- ``none``: values unchanged (Wh).
- ``l2``: divide by the profile's Euclidean norm, as the reference pipeline did
  (``sklearn.preprocessing.normalize(X, norm="l2")``).
- ``zscore``: subtract the daily mean, divide by the daily standard deviation (ddof=0). On
  complete profiles this is the clustering step's former ``znorm``, value for value.
- ``max``: divide by the daily maximum of ``|x|``; for consumption-only profiles that is the
  daily peak (values in [0, 1]); for net-export slots (negative Wh) the sign is kept.
- ``minmax``: subtract the daily minimum, divide by the daily range (values in [0, 1]).

Degenerate profiles are explicit, never NaN: an all-zero profile stays all zeros under every
method, and a constant profile becomes all zeros under ``zscore`` and ``minmax`` (its spread is
0; for ``zscore`` a standard deviation within rounding noise of the peak counts as 0). NaN slots
stay NaN; the statistics ignore them (an all-NaN profile stays all NaN).

The harmonization step and clustering's ``normalize`` option offer the same ``NORMALIZATIONS``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from meterflow.errors import ConfigError
from meterflow.schemas import profile_matrix, profile_slot_columns

NORMALIZATIONS = ("none", "l2", "zscore", "max", "minmax")


def normalize_values(values: np.ndarray, method: str) -> np.ndarray:
    """The rows of a (profiles x slots) array normalised by ``method`` (one of
    ``NORMALIZATIONS``; see the module doc), as a new C-contiguous float64 array."""
    if method not in NORMALIZATIONS:
        raise ConfigError(f"unknown normalization {method!r}; choose one of {NORMALIZATIONS}")
    x = np.array(values, dtype=np.float64, order="C")  # always a copy
    if method == "none" or x.size == 0:
        return x
    with warnings.catch_warnings():  # all-NaN rows: "mean of empty slice" is expected
        warnings.simplefilter("ignore", RuntimeWarning)
        x, scale = _centre_and_scale(x, method)
    # zero scale (all-zero, or flat under zscore/minmax): the result is all zeros, not 0/0
    out = np.divide(x, scale, out=np.zeros_like(x), where=scale > 0)
    out[np.isnan(x)] = np.nan
    return out


def _centre_and_scale(x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The rows shifted as ``method`` wants them and the (n, 1) divisor of each row."""
    if method == "zscore":
        peak = np.nanmax(np.abs(x), axis=1, keepdims=True, initial=0.0)
        x = x - np.nanmean(x, axis=1, keepdims=True)
        scale = np.sqrt(np.nanmean(x**2, axis=1, keepdims=True))
        # a constant profile leaves only rounding noise around its mean: treat it as flat
        scale[scale <= 1e-12 * peak] = 0.0
    elif method == "minmax":
        low = np.nanmin(x, axis=1, keepdims=True)
        scale = np.nanmax(x, axis=1, keepdims=True) - low
        x = x - low
    elif method == "l2":
        scale = np.sqrt(np.nansum(x**2, axis=1, keepdims=True))
    else:  # "max"
        scale = np.nanmax(np.abs(x), axis=1, keepdims=True, initial=0.0)
    return x, scale


def normalize(profiles: pd.DataFrame, method: str) -> pd.DataFrame:
    """A copy of a profiles table with its slot columns normalised by ``method``
    (one of ``NORMALIZATIONS``); key and other columns are unchanged."""
    cols = profile_slot_columns(profiles)
    out = profiles.copy()
    out[cols] = normalize_values(profile_matrix(profiles, cols), method)
    return out
