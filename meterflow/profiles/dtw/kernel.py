"""Exact DTW distances for equal-length daily profiles: a numba kernel vectorised across pairs.

Distance
    ``dtw(x, y) = sqrt(min over warping paths of sum (x[a] - y[b])**2)``, exactly the value of
    ``dtaidistance.dtw.distance_matrix_fast`` (default settings: squared-Euclidean inner cost, no
    penalty/psi/max_step). The recurrence does the same floating-point operations in the same
    order (``cost + min(three neighbours)``, no FMA, no reassociation), so results agree
    bit for bit in practice; the tests require agreement within 1e-9.

Window (band) — we use **dtaidistance's meaning**
    ``window = w >= 1`` allows cell ``(a, b)`` only when ``|a - b| < w``, i.e. shifts of at most
    ``w - 1`` slots. ``w = 1`` is the Euclidean distance (diagonal only). ``window=None`` or ``0``
    (or any ``w >= L``) means unconstrained. tslearn's ``sakoe_chiba_radius`` equals ``w - 1``:
    dtaidistance ``window=2`` == tslearn ``sakoe_chiba_radius=1``.

Layout
    The all-pairs matrix is stored condensed, LOWER triangle, row-major, float64: the pair
    ``(i, j)`` with ``i > j`` lives at ``i * (i - 1) // 2 + j``. Row ``i`` holds ``i`` values, so
    the rows of profiles appended later go at the end (``dtw_rows``). This differs from scipy's
    and dtaidistance's upper-triangle ``compact`` order; ``condensed_index`` and
    ``condensed_to_square`` translate.

Kernels
    ``vector_kernels.py``: per row profile, ``LANES`` column profiles at once, as vector LLVM IR;
    narrow windows (2 to 8) keep the band's cells in registers, wider ones scan a scratch row in
    L1 cache, visiting only the cells inside the band. Rows are spread over cores with
    ``numba.prange`` and dynamic scheduling. Where they cannot be compiled, the same recurrence in
    plain numba (``plain_kernels.py``) gives the same distances, after one warning
    (``compiled.py``). Weighted DTW (``variants.py``) is the same template with cell weights.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from numbers import Integral

import numba
import numpy as np
from numba import njit, prange

from meterflow.errors import ConfigError, SchemaError

from .compiled import run_kernel
from .lanes import lane_blocks
from .vector_kernels import column_pad

log = logging.getLogger(__name__)

RowComputer = Callable[[np.ndarray, int, int, int | None, np.ndarray], None]
"""``rows(x, start, stop, window, out)``: fill ``out`` (1-D, ``n_pairs(stop) - n_pairs(start)``
values of any float dtype, possibly a memmap slice) with rows ``start .. stop-1`` of the condensed
DTW matrix of ``x``: ``dtw_rows`` here, or row blocks on Dask (``distributed.dask_rows``). It
must not touch ``out`` once it has returned or raised."""
# One progress log line per this many DP cells (about 5-10 s on one modern core pair).
PROGRESS_CELLS = 12_000_000_000


# --------------------------------------------------------------------------- helpers


def n_pairs(n: int) -> int:
    """Number of pairs (length of the condensed matrix) for ``n`` profiles."""
    return n * (n - 1) // 2


def condensed_index(i: int | np.ndarray, j: int | np.ndarray) -> int | np.ndarray:
    """Position of pair ``(i, j)`` (``i != j``, order free) in the lower-triangle layout."""
    hi = np.maximum(i, j)
    lo = np.minimum(i, j)
    return hi * (hi - 1) // 2 + lo


def band_width(window: int | None, length: int) -> int:
    """Canonical band: ``w`` with ``|a - b| < w`` allowed, ``length`` when unconstrained.

    ``None``/``0``/``>= length`` all mean unconstrained; negative or non-integer raises ConfigError.
    """
    if window is None:
        return length
    if isinstance(window, bool) or not isinstance(window, Integral):
        raise ConfigError(f"DTW window must be an integer >= 0 or None, got {window!r}")
    w = int(window)
    if w < 0:
        raise ConfigError(f"DTW window must be >= 0 (0 or None = unconstrained), got {w}")
    return length if w == 0 or w >= length else w


def canonical_window(window: int | None, length: int) -> int:
    """Window as recorded in caches and params: ``0`` for unconstrained, else ``w < length``."""
    w = band_width(window, length)
    return 0 if w >= length else w


def band_cells(length: int, window: int | None) -> int:
    """DP cells one pair costs for profiles of ``length`` slots (for Mcells/s figures)."""
    w = band_width(window, length)
    return sum(min(length, a + w) - max(0, a - w + 1) for a in range(length))


def as_profile_array(x: np.ndarray, *, name: str = "X") -> np.ndarray:
    """Check a (profiles x slots) array: 2-D, >= 1 slot, finite; return C-contiguous float64."""
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if not arr.flags.writeable:  # e.g. received by a Dask worker: copy, keep one compiled type
        arr = arr.copy()
    if arr.ndim != 2:
        raise SchemaError(f"{name}: expected a 2-D (profiles x slots) array, got shape {arr.shape}")
    if arr.shape[1] < 1:
        raise SchemaError(f"{name}: profiles have no slots")
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise SchemaError(
            f"{name}: profile row {row} contains NaN or inf; DTW needs complete profiles"
        )
    return arr


# --------------------------------------------------------------------------- numba helpers


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _square_par(c, rows, cols, out):
    """``out[r, s] = D[rows[r], cols[s]]`` from a condensed lower-triangle ``c``."""
    for r in prange(rows.shape[0]):
        i = rows[r]
        for s in range(cols.shape[0]):
            j = cols[s]
            if i == j:
                out[r, s] = 0.0
            elif i > j:
                out[r, s] = c[i * (i - 1) // 2 + j]
            else:
                out[r, s] = c[j * (j - 1) // 2 + i]


# --------------------------------------------------------------------------- public API


def _row_chunks(start: int, stop: int, cells_per_pair: int) -> list[tuple[int, int]]:
    """Split rows ``[start, stop)`` into consecutive ranges of about ``PROGRESS_CELLS`` cells."""
    per_chunk = max(1, PROGRESS_CELLS // max(1, cells_per_pair))
    chunks, r0 = [], start
    while r0 < stop:
        # rows r0..r1-1 hold n_pairs(r1) - n_pairs(r0) pairs; solve for r1.
        target = n_pairs(r0) + per_chunk
        r1 = int((1 + math.sqrt(1 + 8 * target)) / 2)
        r1 = min(stop, max(r0 + 1, r1))
        chunks.append((r0, r1))
        r0 = r1
    return chunks


def dtw_rows(
    X: np.ndarray,
    start: int,
    stop: int,
    window: int | None = None,
    *,
    out: np.ndarray | None = None,
    parallel: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Rows ``start .. stop-1`` of the condensed lower-triangle DTW matrix of ``X[:stop]``.

    Returns a 1-D array of ``n_pairs(stop) - n_pairs(start)`` distances: row ``i`` (pairs
    ``(i, 0) .. (i, i-1)``) starts at ``n_pairs(i) - n_pairs(start)``. ``out`` may be given (any
    float dtype, e.g. a slice of a memmap) to write in place. ``window``: see the module doc.
    ``parallel=False`` runs on the calling thread only (used by Dask workers).
    """
    x = as_profile_array(X)
    band = band_width(window, x.shape[1])
    pad = column_pad(x.shape[1], band)
    kernel = "rows_parallel" if parallel else "rows_serial"
    columns = lane_blocks(x[: max(stop - 1, 1)], pad)

    def compute(r0: int, r1: int, target: np.ndarray) -> None:
        run_kernel(kernel, x, columns, r0, r1, band, pad, None, target)

    return fill_rows(
        x,
        start,
        stop,
        compute,
        band_cells(x.shape[1], band),
        out=out,
        parallel=parallel,
        progress=progress,
        caller="dtw_rows",
    )


def fill_rows(
    x: np.ndarray,
    start: int,
    stop: int,
    compute: Callable[[int, int, np.ndarray], None],
    cells_per_pair: int,
    *,
    out: np.ndarray | None,
    parallel: bool,
    progress: bool,
    caller: str,
) -> np.ndarray:
    """The row loop shared by the DTW-family ``*_rows`` functions: check the range and ``out``,
    then call ``compute(r0, r1, target)`` per chunk of rows of about
    ``PROGRESS_CELLS`` cells (``target``: their slice of ``out``), logging progress."""
    n = x.shape[0]
    if not 0 <= start <= stop <= n:
        raise ConfigError(f"{caller}: need 0 <= start <= stop <= {n}, got {start}, {stop}")
    size = n_pairs(stop) - n_pairs(start)
    if out is None:
        out = np.empty(size, dtype=np.float64)
    elif out.shape != (size,):
        raise ConfigError(f"{caller}: out has shape {out.shape}, expected ({size},)")
    target = np.asarray(out)  # a memmap slice becomes a plain view of the same memory
    if size == 0:
        return out
    chunks = _row_chunks(start, stop, cells_per_pair)
    t0 = time.perf_counter()
    with numba.parallel_chunksize(1) if parallel else contextlib.nullcontext():
        for r0, r1 in chunks:
            lo, hi = n_pairs(r0) - n_pairs(start), n_pairs(r1) - n_pairs(start)
            compute(r0, r1, target[lo:hi])
            if progress and len(chunks) > 1:
                _log_progress(start, r1, hi, size, time.perf_counter() - t0)
    return out


def _log_progress(start: int, stop: int, done: int, size: int, spent: float) -> None:
    """One INFO line: rows ``start..stop`` done, ``done`` of ``size`` pairs in ``spent`` s."""
    share = done / size
    log.info(
        "DTW rows %d-%d: %.1f%% of %d pairs, %.0f s elapsed, ~%.0f s left",
        start,
        stop,
        100 * share,
        size,
        spent,
        spent * (1 - share) / share,
    )


def dtw_condensed(X: np.ndarray, window: int | None = None, *, progress: bool = True) -> np.ndarray:
    """All-pairs DTW of the rows of ``X`` (profiles x slots), condensed lower triangle, float64.

    Pair ``(i, j)``, ``i > j``, is at ``i * (i - 1) // 2 + j``; length ``n * (n - 1) // 2``.
    ``progress``: log an INFO line every ``PROGRESS_CELLS`` DP cells (only for long runs).
    """
    x = as_profile_array(X)
    return dtw_rows(x, 0, x.shape[0], window, progress=progress)


def dtw_cross(A: np.ndarray, B: np.ndarray, window: int | None = None) -> np.ndarray:
    """DTW between every row of ``A`` and every row of ``B``: a ``(len(A), len(B))`` float64 array
    (e.g. new profiles against cluster medoids). Both must have the same number of slots."""
    a = as_profile_array(A, name="A")
    b = as_profile_array(B, name="B")
    if a.shape[1] != b.shape[1]:
        raise SchemaError(f"dtw_cross: A has {a.shape[1]} slots but B has {b.shape[1]}")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float64)
    band = band_width(window, a.shape[1])
    pad = column_pad(a.shape[1], band)
    if out.size:
        with numba.parallel_chunksize(1):
            run_kernel("cross_parallel", a, lane_blocks(b, pad), b.shape[0], band, pad, None, out)
    return out


def dtw_distance(x: np.ndarray, y: np.ndarray, window: int | None = None) -> float:
    """DTW between two 1-D profiles of equal length."""
    return float(dtw_cross(np.atleast_2d(x), np.atleast_2d(y), window)[0, 0])


def square_from_condensed(
    c: np.ndarray, rows: np.ndarray, cols: np.ndarray | None = None
) -> np.ndarray:
    """Sub-matrix ``D[rows][:, cols]`` (float64) read from condensed ``c`` (array or memmap)."""
    r = np.ascontiguousarray(rows, dtype=np.int64)
    s = r if cols is None else np.ascontiguousarray(cols, dtype=np.int64)
    out = np.empty((r.shape[0], s.shape[0]), dtype=np.float64)
    if out.size:
        _square_par(np.asarray(c), r, s, out)
    return out


def condensed_to_square(c: np.ndarray, n: int) -> np.ndarray:
    """The symmetric ``n x n`` float64 matrix (zero diagonal) of a condensed lower triangle."""
    if len(c) != n_pairs(n):
        raise SchemaError(f"condensed length {len(c)} does not match n={n} ({n_pairs(n)} pairs)")
    idx = np.arange(n, dtype=np.int64)
    return square_from_condensed(c, idx, idx)
