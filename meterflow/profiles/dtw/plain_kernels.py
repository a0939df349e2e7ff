"""The fallback of the vector kernels (``vector_kernels.py``): the same recurrence in plain numba,
used when the LLVM-IR kernel cannot be compiled (``compiled.run_kernel``). Same loops, same
arguments, same floating-point operations in the same order (``(x - y)**2 * wv[|a - b|]`` plus
the minimum of diagonal, up and left), so the distances are identical; only slower. ``wv`` is
always an array here: plain DTW passes ones (``c * 1.0 == c`` exactly).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lanes import LANES


@njit(cache=True, nogil=True, boundscheck=False)
def _squared(x, yt, band, pad, wv, prev, cur, out):
    """Weighted squared DTW of ``x`` against the ``LANES`` columns of ``yt`` (padded by ``pad``
    slots) into ``out``; ``prev``/``cur`` are (slots + 1, LANES) scratch rows, index ``b + 1``
    holding column ``b``."""
    length = x.shape[0]
    for b in range(length + 1):
        for k in range(LANES):
            prev[b, k] = np.inf
    for k in range(LANES):
        prev[0, k] = 0.0
    for a in range(length):
        xa = x[a]
        lo = max(0, a - band + 1)
        hi = min(length, a + band)
        for k in range(LANES):
            cur[lo, k] = np.inf
        for b in range(lo, hi):
            w = wv[abs(a - b)]
            for k in range(LANES):
                d = xa - yt[b + pad, k]
                m = min(prev[b, k], prev[b + 1, k])
                m = min(m, cur[b, k])
                cur[b + 1, k] = d * d * w + m
        if hi < length:
            for k in range(LANES):
                cur[hi + 1, k] = np.inf
        prev, cur = cur, prev
    for k in range(LANES):
        out[k] = prev[length, k]


@njit(cache=True, nogil=True, boundscheck=False)
def _row_pairs(x, yb, i, band, pad, wv, out, base):
    """Row ``i`` (pairs ``(i, 0..i-1)``) into ``out[base : base + i]``."""
    length = x.shape[1]
    prev, cur = np.empty((length + 1, LANES)), np.empty((length + 1, LANES))
    sq = np.empty(LANES)
    for cb in range((i + LANES - 1) // LANES):
        _squared(x[i], yb[cb], band, pad, wv, prev, cur, sq)
        j0 = cb * LANES
        for k in range(min(LANES, i - j0)):
            out[base + j0 + k] = np.sqrt(sq[k])


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def rows_parallel(x, yb, start, stop, band, pad, wv, out):
    """Rows ``start..stop-1`` of the lower triangle into ``out`` (offset ``n_pairs(start)``)."""
    base0 = start * (start - 1) // 2
    for p in prange(stop - start):
        i = stop - 1 - p  # longest rows first: better dynamic balance
        _row_pairs(x, yb, i, band, pad, wv, out, i * (i - 1) // 2 - base0)


@njit(cache=True, nogil=True, boundscheck=False)
def rows_serial(x, yb, start, stop, band, pad, wv, out):
    """Single-threaded ``rows_parallel`` (for Dask workers, which parallelise across tasks)."""
    base0 = start * (start - 1) // 2
    for i in range(start, stop):
        _row_pairs(x, yb, i, band, pad, wv, out, i * (i - 1) // 2 - base0)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def cross_parallel(a, bb, nb, band, pad, wv, out):
    """``out[i, j] = dtw(a[i], b[j])`` for ``j < nb`` with ``bb = lane_blocks(b, pad)``."""
    length = a.shape[1]
    for i in prange(a.shape[0]):
        prev, cur = np.empty((length + 1, LANES)), np.empty((length + 1, LANES))
        sq = np.empty(LANES)
        for cb in range(bb.shape[0]):
            _squared(a[i], bb[cb], band, pad, wv, prev, cur, sq)
            j0 = cb * LANES
            for k in range(min(LANES, nb - j0)):
                out[i, j0 + k] = np.sqrt(sq[k])
