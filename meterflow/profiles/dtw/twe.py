"""Time Warp Edit distance, TWE (Marteau 2009), as aeon's ``twe_distance``.

Each profile gets a slot of value 0 in front (aeon's padding, the paper's ``x_0 = 0``); with
``x'``, ``y'`` the padded series (``x'[i] = x[i-1]``, ``i = 1..m``) and unit time steps,
``twe(x, y) = D[m, m]`` where ``D[0, 0] = 0``, ``D[i, 0] = D[0, j] = inf`` and

    D[i, j] = min(D[i-1, j-1] + |x'[i] - y'[j]| + |x'[i-1] - y'[j-1]| + 2 nu |i - j|,   match
                  D[i-1, j]   + |x'[i] - x'[i-1]| + nu + lambda,                      delete x
                  D[i, j-1]   + |y'[j] - y'[j-1]| + nu + lambda)                      delete y

``nu = TWE_NU = 0.001`` (stiffness) and ``lambda = TWE_LMBDA = 1`` (edit penalty): aeon's
defaults. Absolute differences, as aeon (its "euclidean" point cost on one channel): the value
is in the profiles' unit (plus the penalties) and returned as is, no square root; it equals
aeon's. TWE is a metric.

Window: cell ``(i, j)`` only when ``|i - j| < window`` (dtaidistance's meaning, ``kernel.py``;
aeon bounds the same cells).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lanes import LANES

TWE_NU = 0.001  # stiffness: aeon's default
TWE_LMBDA = 1.0  # edit penalty: aeon's default


@njit(cache=True, nogil=True, boundscheck=False)
def twe_block(x, yt, band, nu, lmbda, prev, cur, out):
    """TWE of ``x`` (``m`` slots) against the ``LANES`` columns of ``yt`` (``m``, ``LANES``) into
    ``out``; ``prev``/``cur``: (``m + 1``, ``LANES``) scratch rows, index ``b + 1`` = column
    ``b``, index 0 the padded slot."""
    m = x.shape[0]
    edit = nu + lmbda
    for b in range(m + 1):
        for k in range(LANES):
            prev[b, k] = np.inf
    for k in range(LANES):
        prev[0, k] = 0.0
    xp = 0.0
    for a in range(m):
        xa = x[a]
        step_x = abs(xa - xp)
        lo = max(0, a - band + 1)
        hi = min(m, a + band)
        for k in range(LANES):
            cur[lo, k] = np.inf
        for b in range(lo, hi):
            stiff = 2.0 * nu * abs(a - b)
            for k in range(LANES):
                yb = yt[b, k]
                yp = yt[b - 1, k] if b > 0 else 0.0
                d = prev[b, k] + abs(xa - yb) + abs(xp - yp) + stiff
                d = min(d, prev[b + 1, k] + step_x + edit)
                cur[b + 1, k] = min(d, cur[b, k] + abs(yb - yp) + edit)
        if hi < m:
            for k in range(LANES):
                cur[hi + 1, k] = np.inf
        prev, cur = cur, prev
        xp = xa
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
        twe_block(x[i], yb[cb], band, params[0], params[1], s[0], s[1], lanes)
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
