"""Shape-DTW (Zhao & Itti 2018) with the identity descriptor, as aeon's ``shape_dtw_distance``.

Each slot ``t`` of a profile of ``m`` slots is described by the raw subsequence of
``2 * reach + 1`` slots centred on it, the profile edge-padded (first and last values repeated)
by ``reach`` slots on each side (``shape_descriptors``; ``reach = SHAPE_REACH = 15``, aeon's
default). The warping path is the DTW path between the two series of descriptors (cell cost:
squared Euclidean distance between descriptors); the distance is measured along that path on the
raw values, as the paper and aeon do:

    shape_dtw(x, y) = sqrt(sum over (a, b) on the descriptor path of (x[a] - y[b])**2)

aeon returns the unrooted sum, so ours is its square root, in the profiles' unit like our DTW,
and never below our DTW (which minimises the same sum over all paths). The path is traced the
way aeon traces it back from the last cell: to the diagonal neighbour when it is strictly the
cheapest, else left (``b - 1``) when strictly cheaper than up, else up; on the first row and
column only along the border (aeon reads wrapped indices there, which may rarely cut its path
short). Symmetric except where descriptor costs tie exactly (the choice then depends on the
order).

Window: cells ``|a - b| < window`` (dtaidistance's meaning, ``kernel.py``) of the descriptor DTW.
A narrower window can lower the value (it changes the path, not a minimum).

Kernel: a cell's descriptor cost is the previous diagonal cell's plus one squared difference
minus another (a sliding sum along the diagonal, clipped at 0 against rounding), so a cell costs
a few operations instead of ``2 * reach + 1``; it is summed afresh on the first row and column.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from meterflow.errors import ConfigError

from .kernel import as_profile_array
from .lanes import LANES

SHAPE_REACH = 15  # aeon's default reach: subsequences of 2 * 15 + 1 slots


def check_reach(reach: int) -> int:
    """``reach`` as an int, or ConfigError unless an integer >= 0."""
    if isinstance(reach, bool) or not isinstance(reach, int | np.integer) or reach < 0:
        raise ConfigError(f"shape-DTW reach must be an integer >= 0, got {reach!r}")
    return int(reach)


def edge_padded(X: np.ndarray, reach: int = SHAPE_REACH) -> np.ndarray:
    """Profiles (n x ``m``) edge-padded to (n x ``m + 2 * reach``), C-contiguous float64."""
    x = as_profile_array(X)
    r = check_reach(reach)
    return np.ascontiguousarray(np.pad(x, ((0, 0), (r, r)), mode="edge"))


def shape_descriptors(X: np.ndarray, reach: int = SHAPE_REACH) -> np.ndarray:
    """For each profile and slot, the raw subsequence of ``2 * reach + 1`` slots centred on it,
    the profile edge-padded (first/last value repeated) by ``reach`` slots on both sides.

    ``X``: (profiles x ``m`` slots), finite; returns (profiles, ``m``, ``2 * reach + 1``)
    float64, C-contiguous; ``out[p, t, k] = X[p, clip(t + k - reach, 0, m - 1)]``.
    """
    padded = edge_padded(X, reach)
    width = 2 * check_reach(reach) + 1
    m = padded.shape[1] - width + 1
    idx = np.arange(m)[:, None] + np.arange(width)[None, :]
    return np.ascontiguousarray(padded[:, idx])


@njit(cache=True, nogil=True, boundscheck=False)
def _fresh_cost(xp, yt, a, b, width, out):
    """Descriptor cost of cell ``(a, b)`` summed over the ``width`` slots, per lane."""
    for k in range(LANES):
        out[k] = 0.0
    for s in range(width):
        xs = xp[a + s]
        for k in range(LANES):
            d = xs - yt[b + s, k]
            out[k] += d * d


@njit(cache=True, nogil=True, boundscheck=False)
def _slid_cost(x_in, x_out, y_in, y_out, before, out):
    """The diagonal predecessor's descriptor cost ``before`` with the slot pair ``(x_in, y_in)``
    added and ``(x_out, y_out)`` removed, per lane, clipped at 0."""
    for k in range(LANES):
        d_in = x_in - y_in[k]
        d_out = x_out - y_out[k]
        out[k] = max(0.0, before[k] + d_in * d_in - d_out * d_out)


@njit(cache=True, nogil=True, boundscheck=False)
def shape_dtw_block(xp, yt, band, m, s, out):
    """Shape-DTW of the edge-padded ``xp`` (``m + 2 reach``) against the ``LANES`` edge-padded
    columns of ``yt`` (``m + 2 reach``, ``LANES``) into ``out``. ``s``: (6, ``m + 1``,
    ``LANES``) scratch: descriptor DTW, raw cost along its path and descriptor cell cost, each as
    a previous and a current row (index ``b + 1`` = column ``b``)."""
    width = xp.shape[0] - m + 1
    r = (width - 1) // 2
    dp, dc, rp, rc, cp, cc = s[0], s[1], s[2], s[3], s[4], s[5]
    for b in range(m + 1):
        for k in range(LANES):
            dp[b, k] = np.inf
            rp[b, k] = 0.0
            rc[b, k] = 0.0
    for k in range(LANES):
        dp[0, k] = 0.0
    for a in range(m):
        lo = max(0, a - band + 1)
        hi = min(m, a + band)
        for k in range(LANES):
            dc[lo, k] = np.inf
        xa, x_in, x_out = xp[a + r], xp[a + width - 1], xp[a - 1]
        for b in range(lo, hi):
            if a == 0 or b == 0:
                _fresh_cost(xp, yt, a, b, width, cc[b + 1])
            else:
                _slid_cost(x_in, x_out, yt[b + width - 1], yt[b - 1], cp[b], cc[b + 1])
            for k in range(LANES):
                diag, left, up = dp[b, k], dc[b, k], dp[b + 1, k]
                r_diag, r_left, r_up = rp[b, k], rc[b, k], rp[b + 1, k]
                raw = xa - yt[b + r, k]
                take_diag = (diag < left) & (diag < up)
                take_left = left < up
                best = diag if take_diag else (left if take_left else up)
                path = r_diag if take_diag else (r_left if take_left else r_up)
                dc[b + 1, k] = cc[b + 1, k] + best
                rc[b + 1, k] = raw * raw + path
        if hi < m:
            for k in range(LANES):
                dc[hi + 1, k] = np.inf
        dp, dc, rp, rc, cp, cc = dc, dp, rc, rp, cc, cp
    for k in range(LANES):
        out[k] = np.sqrt(rp[m, k])


@njit(cache=True, nogil=True, boundscheck=False)
def _row(x, yb, i, ncol, offset, band, params, out):
    """Distances of row profile ``i`` to the first ``ncol`` profiles of the lane blocks ``yb``,
    into ``out[offset : offset + ncol]``."""
    m = x.shape[1] - 2 * int(params[0])  # x is edge-padded by the reach
    s = np.empty((6, m + 1, LANES))
    lanes = np.empty(LANES)
    for cb in range((ncol + LANES - 1) // LANES):
        shape_dtw_block(x[i], yb[cb], band, m, s, lanes)
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
