"""Distances between daily profiles and cluster centres, and per-profile normalisation.

DTW follows dtaidistance semantics everywhere: the distance is the square root of the summed
squared differences along the warping path, and ``window`` is dtaidistance's band (slots ``i`` and
``j`` may be matched when ``|i - j| < window``; ``None`` or 0 = unconstrained). tslearn's
``sakoe_chiba_radius`` for the same band is ``window - 1`` (see :func:`sakoe_chiba_radius`).
"""

from __future__ import annotations

import numpy as np
from dtaidistance import dtw as dtai_dtw

from meterflow.errors import ConfigError

NORMALIZATIONS = ("none", "znorm", "minmax")
_CHUNK = 4096


def sakoe_chiba_radius(window: int | None) -> int | None:
    """tslearn ``sakoe_chiba_radius`` equal to dtaidistance band ``window`` (None: no band)."""
    if window is None or window == 0:
        return None
    if window < 0:
        raise ConfigError(f"DTW window must be >= 0, got {window}")
    return window - 1


def dtai_window(window: int | None) -> int | None:
    """``window`` as dtaidistance expects it (None = unconstrained)."""
    if window is None or window == 0:
        return None
    if window < 0:
        raise ConfigError(f"DTW window must be >= 0, got {window}")
    return int(window)


def normalize_profiles(X: np.ndarray, how: str) -> np.ndarray:
    """Per-profile normalisation: ``none``; ``znorm`` (zero mean, unit std); ``minmax`` (to [0, 1]).

    Constant profiles become all zeros under ``znorm`` and ``minmax``. The result is a new
    C-contiguous float64 array (``none`` returns ``X`` itself when it already is one).
    """
    if how == "none":
        return np.ascontiguousarray(X, dtype=np.float64)
    if how == "znorm":
        centred = X - X.mean(axis=1, keepdims=True)
        scale = X.std(axis=1, keepdims=True)
    elif how == "minmax":
        lo = X.min(axis=1, keepdims=True)
        centred = X - lo
        scale = X.max(axis=1, keepdims=True) - lo
    else:
        raise ConfigError(f"unknown normalisation {how!r}; choose one of {NORMALIZATIONS}")
    safe = np.where(scale > 0, scale, 1.0)
    return np.ascontiguousarray(np.where(scale > 0, centred / safe, 0.0), dtype=np.float64)


def euclidean_cross(X: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, k) between the rows of ``X`` (n, L) and ``C`` (k, L)."""
    out = np.empty((X.shape[0], C.shape[0]), dtype=np.float64)
    c2 = np.einsum("ij,ij->i", C, C)
    for start in range(0, X.shape[0], _CHUNK):
        xb = X[start : start + _CHUNK]
        d2 = np.einsum("ij,ij->i", xb, xb)[:, None] - 2.0 * xb @ C.T + c2[None, :]
        out[start : start + len(xb)] = np.sqrt(np.maximum(d2, 0.0))
    return out


def dtw_cross(X: np.ndarray, C: np.ndarray, window: int | None) -> np.ndarray:
    """DTW distances (n, k) between the rows of ``X`` and ``C`` (dtaidistance C kernel)."""
    n, k = X.shape[0], C.shape[0]
    out = np.empty((n, k), dtype=np.float64)
    w = dtai_window(window)
    for start in range(0, n, _CHUNK):
        xb = X[start : start + _CHUNK]
        both = np.ascontiguousarray(np.vstack([C, xb]), dtype=np.float64)
        block = dtai_dtw.distance_matrix_fast(
            both, window=w, block=((0, k), (k, k + len(xb))), compact=True, use_pruning=False
        )
        out[start : start + len(xb)] = np.asarray(block, dtype=np.float64).reshape(k, -1).T
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


def dtw_matrix(X: np.ndarray, window: int | None) -> np.ndarray:
    """Square symmetric DTW matrix (n, n) of the rows of ``X`` with a zero diagonal."""
    tri = dtai_dtw.distance_matrix_fast(
        np.ascontiguousarray(X, dtype=np.float64), window=dtai_window(window), use_pruning=False
    )
    return square_dtw(tri)


def square_dtw(matrix: np.ndarray) -> np.ndarray:
    """A DTW matrix given by its upper triangle (the lower one may be inf, NaN or a copy, as
    dtaidistance's outputs are) as a full symmetric square matrix with a zero diagonal."""
    m = np.array(matrix, dtype=np.float64)
    upper = np.triu(m, 1)
    upper[~np.isfinite(upper)] = 0.0
    full = upper + upper.T
    np.fill_diagonal(full, 0.0)
    return full
