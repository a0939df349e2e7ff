"""Edit distance with Real Penalty, ERP (Chen & Ng 2004), as aeon's ``erp_distance``.

``erp(x, y) = D[m, m]`` over slots ``1..m`` (0-based values ``x[a]``, ``y[b]``) with

    D[i, j] = min(D[i-1, j-1] + |x[i-1] - y[j-1]|,   match
                  D[i-1, j]   + |x[i-1] - g|,        x against a gap
                  D[i, j-1]   + |y[j-1] - g|)        y against a gap

``g = ERP_G = 0`` (aeon's default; the paper picks it from the data). The cost is the L1 one of
the paper and of aeon (aeon's "euclidean" point cost is ``|x - y|`` for one channel), so the
distance is already in the profiles' unit: we return it as is, no square root, equal to aeon's.

Borders as aeon 1.x (the published anchors were computed with it): ``D[0, 0] = 0`` and every
other border cell holds the WHOLE series' gap cost, ``D[i, 0] = sum_a |x[a] - g|``,
``D[0, j] = sum_b |y[b] - g|``. The paper's recursion has the cumulative costs there
(``sum_{a < i}``); its ERP is never larger, and equal wherever the cheapest alignment does not
start by setting leading slots against gaps. Symmetric.

Window: cell ``(i, j)`` only when ``|i - j| < window`` (dtaidistance's meaning, ``kernel.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lanes import LANES

ERP_G = 0.0  # the gap value g: aeon's default


@njit(cache=True, nogil=True, boundscheck=False)
def erp_block(x, yt, band, g, prev, cur, out):
    """ERP of ``x`` (``m`` slots) against the ``LANES`` columns of ``yt`` (``m``, ``LANES``) into
    ``out``; ``prev``/``cur``: (``m + 1``, ``LANES``) scratch rows, index ``b + 1`` = column
    ``b``, index 0 the border; ``prev`` starts as the border row ``D[0, :]``."""
    m = x.shape[0]
    for k in range(LANES):
        prev[0, k] = 0.0
    for b in range(m):
        for k in range(LANES):
            prev[0, k] += abs(yt[b, k] - g)
    for b in range(m):
        for k in range(LANES):
            prev[b + 1, k] = prev[0, k]
    for k in range(LANES):
        prev[0, k] = 0.0
    x_gaps = 0.0
    for a in range(m):
        x_gaps += abs(x[a] - g)
    for a in range(m):
        xa = x[a]
        gap = abs(xa - g)
        lo = max(0, a - band + 1)
        hi = min(m, a + band)
        first = x_gaps if lo == 0 else np.inf
        for k in range(LANES):
            cur[lo, k] = first
        for b in range(lo, hi):
            for k in range(LANES):
                yb = yt[b, k]
                d = min(prev[b, k] + abs(xa - yb), prev[b + 1, k] + gap)
                cur[b + 1, k] = min(d, cur[b, k] + abs(yb - g))
        if hi < m:
            for k in range(LANES):
                cur[hi + 1, k] = np.inf
        prev, cur = cur, prev
    for k in range(LANES):
        out[k] = prev[m, k]


@njit(cache=True, nogil=True, boundscheck=False)
def _row(x, yb, i, ncol, offset, band, params, out):
    """Distances of row profile ``i`` to the first ``ncol`` profiles of the lane blocks ``yb``,
    into ``out[offset : offset + ncol]``."""
    m = x.shape[1]
    s = np.empty((2, m + 1, LANES))
    lanes = np.empty(LANES)
    for cb in range((ncol + LANES - 1) // LANES):
        erp_block(x[i], yb[cb], band, params[0], s[0], s[1], lanes)
        j0 = cb * LANES
        for k in range(min(LANES, ncol - j0)):
            out[offset + j0 + k] = lanes[k]


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def pairs_parallel(x, yb, rows, ncols, offsets, band, params, out):
    """``_row`` for each of ``rows`` (its ``ncols``, ``offsets``), spread over cores."""
    for p in prange(rows.shape[0]):
        _row(x, yb, rows[p], ncols[p], offsets[p], band, params, out)


@njit(cache=True, nogil=True, boundscheck=False)
def pairs_serial(x, yb, rows, ncols, offsets, band, params, out):
    """``pairs_parallel`` on the calling thread only (Dask workers parallelise across tasks)."""
    for p in range(rows.shape[0]):
        _row(x, yb, rows[p], ncols[p], offsets[p], band, params, out)
