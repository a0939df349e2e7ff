"""Distances between daily profiles and cluster centres.

DTW follows dtaidistance semantics everywhere: the distance is the square root of the summed
squared differences along the warping path, and ``window`` is dtaidistance's band (slots ``i`` and
``j`` may be matched when ``|i - j| < window``; ``None`` or 0 = unconstrained). tslearn's
``sakoe_chiba_radius`` for the same band is ``window - 1`` (see :func:`sakoe_chiba_radius`).
DTW itself is the project's numba kernel (``meterflow.profiles.dtw.dtw_cross``); per-profile
normalisation is ``meterflow.profiles.normalize.normalize_values``.
"""

from __future__ import annotations

import numpy as np

from meterflow.errors import ConfigError

_CHUNK = 4096


def sakoe_chiba_radius(window: int | None) -> int | None:
    """tslearn ``sakoe_chiba_radius`` equal to dtaidistance band ``window`` (None: no band)."""
    if window is None or window == 0:
        return None
    if window < 0:
        raise ConfigError(f"DTW window must be >= 0, got {window}")
    return window - 1


def euclidean_cross(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, k) between the rows of ``X`` (n, L) and ``C`` (k, L)."""
    out = np.empty((X.shape[0], C.shape[0]), dtype=np.float64)
    c2 = np.einsum("ij,ij->i", C, C)
    for start in range(0, X.shape[0], _CHUNK):
        xb = X[start : start + _CHUNK]
        d2 = np.einsum("ij,ij->i", xb, xb)[:, None] - 2.0 * xb @ C.T + c2[None, :]
        out[start : start + len(xb)] = np.sqrt(np.maximum(d2, 0.0))
    return out


def sbd_cross(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Shape-based distances (n, k): ``1 - max_shift NCC(x, c)`` as in k-Shape (Paparrizos &
    Gravano 2015). Rows of zero norm have no correlation (distance 1)."""
    length = X.shape[1]
    size = 1 << int(np.ceil(np.log2(2 * length - 1)))
    fc = np.conj(np.fft.rfft(C, size, axis=1))
    nc = np.linalg.norm(C, axis=1)
    out = np.empty((X.shape[0], C.shape[0]), dtype=np.float64)
    for start in range(0, X.shape[0], _CHUNK):
        xb = X[start : start + _CHUNK]
        fx = np.fft.rfft(xb, size, axis=1)
        cc = np.fft.irfft(fx[:, None, :] * fc[None, :, :], size, axis=2)
        # lags 0..L-1 sit at the start, lags -(L-1)..-1 at the end; the middle is padding
        best = np.maximum(cc[:, :, :length].max(axis=2), cc[:, :, size - length + 1 :].max(axis=2))
        denom = np.linalg.norm(xb, axis=1)[:, None] * nc[None, :]
        ncc = np.where(denom > 0, best / np.where(denom > 0, denom, 1.0), 0.0)
        out[start : start + len(xb)] = 1.0 - ncc
    return out


def square_dtw(matrix: np.ndarray) -> np.ndarray:
    """A DTW matrix given by its upper triangle (the lower one may be inf, NaN or a copy, as
    dtaidistance's outputs are) as a full symmetric square matrix with a zero diagonal."""
    m = np.array(matrix, dtype=np.float64)
    upper = np.triu(m, 1)
    upper[~np.isfinite(upper)] = 0.0
    full = upper + upper.T
    np.fill_diagonal(full, 0.0)
    return full
