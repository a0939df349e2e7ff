"""Move-Split-Merge, MSM (Stefan, Athitsos & Das 2013), as aeon's ``msm_distance``.

``msm(x, y) = D[m-1, m-1]`` (0-based slots) with ``D[0, 0] = |x[0] - y[0]|``,
``D[a, 0] = D[a-1, 0] + C(x[a], x[a-1], y[0])``, ``D[0, b] = D[0, b-1] + C(y[b], x[0], y[b-1])``
and

    D[a, b] = min(D[a-1, b-1] + |x[a] - y[b]|,            move
                  D[a-1, b]   + C(x[a], x[a-1], y[b]),     split
                  D[a, b-1]   + C(y[b], x[a], y[b-1]))     merge

where ``C(v, p, q) = c`` when ``v`` lies between ``p`` and ``q`` (either order), else
``c + min(|v - p|, |v - q|)``; ``c = MSM_C = 1`` (aeon's default, the paper's choice for
z-normalised series: on raw kWh the penalty weighs differently). Absolute differences, as the
paper and aeon 1.x's default (``independent=True``) form: the value is in the profiles' unit
and returned as is, no square root; it equals aeon's. MSM is a metric.

Window: cell ``(a, b)`` only when ``|a - b| < window`` (dtaidistance's meaning, ``kernel.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lanes import LANES

MSM_C = 1.0  # split / merge cost c: aeon's default


@njit(cache=True, nogil=True, inline="always")
def _edit(v, p, q, c):
    """``C(v, p, q)``: ``c`` plus the distance from ``v`` to the interval between ``p`` and
    ``q`` (0 inside; outside, exactly the step to the nearer end). Branch-free, so the lane
    loops vectorise."""
    return c + max(0.0, max(min(p, q) - v, v - max(p, q)))


@njit(cache=True, nogil=True, boundscheck=False)
def msm_block(x, yt, band, c, prev, cur, out):
    """MSM of ``x`` (``m`` slots) against the ``LANES`` columns of ``yt`` (``m``, ``LANES``) into
    ``out``; ``prev``/``cur``: (``m + 1``, ``LANES``) scratch rows, index ``b + 1`` = column
    ``b``. A virtual corner ``D[-1, -1] = 0`` with infinite borders gives the first row and
    column their one-way recurrences."""
    m = x.shape[0]
    for b in range(m + 1):
        for k in range(LANES):
            prev[b, k] = np.inf
    for k in range(LANES):
        prev[0, k] = 0.0
    for a in range(m):
        xa = x[a]
        xp = x[a - 1] if a > 0 else xa  # never used at a = 0: its up neighbour is inf
        lo = max(0, a - band + 1)
        hi = min(m, a + band)
        for k in range(LANES):
            cur[lo, k] = np.inf
        for b in range(lo, hi):
            bp = b - 1 if b > 0 else 0  # at b = 0 the left neighbour is inf
            for k in range(LANES):
                yb = yt[b, k]
                d = min(prev[b, k] + abs(xa - yb), prev[b + 1, k] + _edit(xa, xp, yb, c))
                cur[b + 1, k] = min(d, cur[b, k] + _edit(yb, xa, yt[bp, k], c))
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
        msm_block(x[i], yb[cb], band, params[0], s[0], s[1], lanes)
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
