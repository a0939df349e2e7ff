"""Energy-conserving change of slot length of (rows x slots) Wh arrays.

A slot holds the energy of its interval, so going coarser sums whole groups of consecutive finer
slots: row totals are unchanged and a missing (NaN) finer slot makes its coarse slot NaN (no
energy is invented). Going finer cannot recover the shape inside a slot: it is refused unless
``split_coarse=True``, which spreads each slot's energy evenly over its finer slots. With
``split_coarse=True`` lengths that are not whole multiples of each other are allowed too: the
cumulative energy is interpolated linearly at the new slot boundaries and differenced (any
output slot that overlaps a NaN input slot is NaN).
"""

from __future__ import annotations

import numpy as np

from meterflow.errors import SchemaError
from meterflow.schemas import slots_per_day


def resample_values(
    values: np.ndarray, from_min: int, to_min: int, *, split_coarse: bool = False
) -> np.ndarray:
    """Resample a (rows x slots) Wh array from ``from_min`` to ``to_min`` minutes per slot."""
    for minutes in (from_min, to_min):
        slots_per_day(minutes)  # raises SchemaError unless it divides a day
    n, width = values.shape
    if to_min == from_min:
        return values.copy()
    coarse, fine = max(from_min, to_min), min(from_min, to_min)
    if coarse % fine:
        if not split_coarse:
            raise SchemaError(
                f"cannot resample {from_min}-min profiles to {to_min} min: "
                f"{coarse} is not a multiple of {fine}"
            )
        return _interpolate_cumulative(values, from_min, to_min)
    factor = coarse // fine
    if to_min > from_min:
        return values.reshape(n, width // factor, factor).sum(axis=2)
    if not split_coarse:
        raise SchemaError(
            f"profiles at {from_min} min are coarser than the target {to_min} min; refusing to "
            "invent intra-slot shape (choose resolution_min >= the coarsest source, or allow "
            "split_coarse to spread each slot's energy evenly)"
        )
    return np.repeat(values / factor, factor, axis=1)


def _interpolate_cumulative(values: np.ndarray, from_min: int, to_min: int) -> np.ndarray:
    """Differences of the cumulative energy, interpolated at the ``to_min`` slot boundaries."""
    rows, n_in = values.shape
    n_out = slots_per_day(to_min)
    missing = np.isnan(values)
    has_missing = bool(missing.any())
    cum = np.zeros((rows, n_in + 1))
    np.cumsum(np.where(missing, 0.0, values) if has_missing else values, axis=1, out=cum[:, 1:])
    x = np.arange(n_out + 1) * (to_min / from_min)
    i = np.minimum(np.floor(x).astype(np.int64), n_in - 1)
    f = x - i
    out = np.diff(cum[:, i] + f * (cum[:, i + 1] - cum[:, i]), axis=1)
    if has_missing:
        # input slots [lo, hi) overlap output slot j (exact integer minutes)
        edge_min = np.arange(n_out + 1) * to_min
        lo, hi = edge_min[:-1] // from_min, -(-edge_min[1:] // from_min)
        n_missing = np.zeros((rows, n_in + 1), dtype=np.int64)
        np.cumsum(missing, axis=1, out=n_missing[:, 1:])
        out[(n_missing[:, hi] - n_missing[:, lo]) > 0] = np.nan
    return out
