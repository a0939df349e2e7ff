"""DTW engine: exact numba kernel and Dask row blocks, DTW variants and the elastic distances
ERP, MSM, TWE and shape-DTW (``variants.py``, ``elastic.py``); the on-disk cache is a store:
``meterflow.sources.dtw_cache``.

``window`` everywhere has dtaidistance's meaning (``|i - j| < window``; None/0 = unconstrained;
tslearn ``sakoe_chiba_radius = window - 1``). Matrices are condensed lower triangles: pair
``(i, j)``, ``i > j``, at ``i * (i - 1) // 2 + j``.
"""

from .distributed import dask_client, dask_rows, dtw_condensed_dask, dtw_rows_dask
from .elastic import ELASTIC, elastic_cross, elastic_rows
from .erp import ERP_G
from .kernel import (
    RowComputer,
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
from .msm import MSM_C
from .shape_dtw import SHAPE_REACH, shape_descriptors
from .twe import TWE_LMBDA, TWE_NU
from .variants import (
    DISTANCES,
    W_MAX,
    WDTW_G,
    Distance,
    cache_tag,
    derivative,
    distance_condensed,
    distance_cross,
    distance_rows,
    distance_spec,
    row_computer,
    wdtw_cross,
    wdtw_rows,
    wdtw_weights,
)
from .window import window_slots

__all__ = [
    "DISTANCES",
    "ELASTIC",
    "ERP_G",
    "MSM_C",
    "SHAPE_REACH",
    "TWE_LMBDA",
    "TWE_NU",
    "WDTW_G",
    "W_MAX",
    "Distance",
    "RowComputer",
    "band_cells",
    "cache_tag",
    "canonical_window",
    "condensed_index",
    "condensed_to_square",
    "dask_client",
    "dask_rows",
    "derivative",
    "distance_condensed",
    "distance_cross",
    "distance_rows",
    "distance_spec",
    "dtw_condensed",
    "dtw_condensed_dask",
    "dtw_cross",
    "dtw_distance",
    "dtw_rows",
    "dtw_rows_dask",
    "elastic_cross",
    "elastic_rows",
    "n_pairs",
    "row_computer",
    "shape_descriptors",
    "square_from_condensed",
    "wdtw_cross",
    "wdtw_rows",
    "wdtw_weights",
    "window_slots",
]
