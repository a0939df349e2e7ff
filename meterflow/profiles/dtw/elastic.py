"""The elastic distances beside DTW, run over the condensed lower-triangle layout and the cross
layout of ``kernel.py``: ERP (``erp.py``), MSM (``msm.py``), TWE (``twe.py``) and shape-DTW
(``shape_dtw.py``).

Each module holds its numba kernel for one row profile against ``LANES`` column profiles at
once (``lane_blocks``) and the loops ``pairs_parallel`` (rows spread over cores with
``numba.prange``, as the DTW kernels) and ``pairs_serial``, which fill any list of rows: a block
of the condensed triangle (row ``i`` against profiles ``0..i-1``) or a cross matrix (every row
against all of ``B``). The loops live beside their kernel because numba's on-disk cache checks
only the file of the function it compiles. Adding a distance: its module and one line in
``KERNELS``; ``variants.py`` names it and its parameters (``params``: ERP ``[g]``, MSM ``[c]``,
TWE ``[nu, lambda]``, shape-DTW ``[reach]``). ``window``: as in ``kernel.py`` (``|a - b| <
window``, None/0 = unconstrained).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from meterflow.errors import SchemaError

from . import erp, msm, shape_dtw, twe
from .kernel import as_profile_array, band_cells, band_width, fill_rows, n_pairs
from .lanes import lane_blocks

Loop = Callable[..., None]
# name -> (pairs_parallel, pairs_serial)
KERNELS: dict[str, tuple[Loop, Loop]] = {
    "erp": (erp.pairs_parallel, erp.pairs_serial),
    "msm": (msm.pairs_parallel, msm.pairs_serial),
    "twe": (twe.pairs_parallel, twe.pairs_serial),
    "shape_dtw": (shape_dtw.pairs_parallel, shape_dtw.pairs_serial),
}
ELASTIC = tuple(KERNELS)


def _kernel_input(name: str, x: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The profiles as the kernel reads them: edge-padded by the reach for shape-DTW."""
    return shape_dtw.edge_padded(x, int(params[0])) if name == "shape_dtw" else x


def elastic_rows(
    name: str,
    params: np.ndarray,
    X: np.ndarray,
    start: int,
    stop: int,
    window: int | None = None,
    *,
    out: np.ndarray | None = None,
    parallel: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Rows ``start .. stop-1`` of the condensed matrix of the elastic distance ``name`` (of
    ``ELASTIC``, parameters ``params``) over ``X[:stop]``; the contract of ``kernel.dtw_rows``."""
    x = as_profile_array(X)
    m = x.shape[1]
    band = band_width(window, m)
    p = np.asarray(params, dtype=np.float64)
    xk = _kernel_input(name, x, p)
    columns = lane_blocks(xk[: max(stop - 1, 1)])
    loop = KERNELS[name][0 if parallel else 1]

    def compute(r0: int, r1: int, target: np.ndarray) -> None:
        rows = np.arange(r1 - 1, r0 - 1, -1, dtype=np.int64)  # longest rows first
        offsets = rows * (rows - 1) // 2 - n_pairs(r0)
        loop(xk, columns, rows, rows, offsets, band, p, target)

    return fill_rows(
        x,
        start,
        stop,
        compute,
        band_cells(m, band),
        out=out,
        parallel=parallel,
        progress=progress,
        caller=f"{name}_rows",
    )


def elastic_cross(
    name: str, params: np.ndarray, A: np.ndarray, B: np.ndarray, window: int | None = None
) -> np.ndarray:
    """The elastic distance ``name`` between every row of ``A`` and of ``B``: (len(A), len(B))."""
    a = as_profile_array(A, name="A")
    b = as_profile_array(B, name="B")
    if a.shape[1] != b.shape[1]:
        raise SchemaError(f"{name}: A has {a.shape[1]} slots but B has {b.shape[1]}")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float64)
    if out.size:
        p = np.asarray(params, dtype=np.float64)
        rows = np.arange(a.shape[0], dtype=np.int64)
        ncols = np.full_like(rows, b.shape[0])
        band = band_width(window, a.shape[1])
        ak, columns = _kernel_input(name, a, p), lane_blocks(_kernel_input(name, b, p))
        with numba.parallel_chunksize(1):
            KERNELS[name][0](ak, columns, rows, ncols, rows * b.shape[0], band, p, out.reshape(-1))
    return out
