"""DTW engine: exact numba kernel, incremental content-addressed cache, Dask row blocks.

``window`` everywhere has dtaidistance's meaning (``|i - j| < window``; None/0 = unconstrained;
tslearn ``sakoe_chiba_radius = window - 1``). Matrices are condensed lower triangles: pair
``(i, j)``, ``i > j``, at ``i * (i - 1) // 2 + j``.
"""

from .cache import DtwCache, DtwMatrix, profile_hashes
from .distributed import dtw_condensed_dask
from .kernel import (
    band_cells,
    canonical_window,
    condensed_index,
    condensed_to_square,
    dtw_condensed,
    dtw_cross,
    dtw_distance,
    dtw_rows,
    n_pairs,
    square_from_condensed,
)

__all__ = [
    "DtwCache",
    "DtwMatrix",
    "band_cells",
    "canonical_window",
    "condensed_index",
    "condensed_to_square",
    "dtw_condensed",
    "dtw_condensed_dask",
    "dtw_cross",
    "dtw_distance",
    "dtw_rows",
    "n_pairs",
    "profile_hashes",
    "square_from_condensed",
]
