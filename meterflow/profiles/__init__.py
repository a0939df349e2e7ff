"""Harmonised daily profiles and the DTW engine (pure layer: arrays and tables in, out).

- ``harmonize``: one profile per meter-day from all sources, with provenance and the losers.
- ``normalize``: none | l2 | zscore | max | minmax, per profile.
- ``resample``: energy-conserving change of resolution.
- ``dtw``: exact DTW matrices and Dask scale-out (the stores are ``meterflow.sources.dtw_store``).
- ``params``: the step's user-facing parameters.

Import from the modules: the package imports nothing, so reading the parameters (``--help``,
option checks) does not load the numerical libraries.
"""
