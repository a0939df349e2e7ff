"""Harmonised daily profiles and the DTW engine (pure layer: arrays and tables in, out).

- ``harmonize``: one profile per meter-day from all sources, with provenance and the losers.
- ``normalize``: none | l2 | zscore | max | minmax, per profile.
- ``resample``: energy-conserving change of resolution.
- ``dtw``: exact DTW matrices and Dask scale-out (the cache is ``meterflow.sources.dtw_cache``).
"""

from .harmonize import DEFAULT_PRIORITY, LOSER_COLUMNS, Harmonized, harmonize
from .normalize import NORMALIZATIONS, normalize, normalize_values
from .resample import profile_resolution, resample_profiles, resample_values

__all__ = [
    "DEFAULT_PRIORITY",
    "LOSER_COLUMNS",
    "NORMALIZATIONS",
    "Harmonized",
    "harmonize",
    "normalize",
    "normalize_values",
    "profile_resolution",
    "resample_profiles",
    "resample_values",
]
