"""What the Euclidean algorithms compare: the profile itself, its slopes, or its shape features.

Applied after the per-profile normalisation (``normalize``), by the fit and by every assigner, so
a logged model turns new profiles into the same representation.

- ``profile``: the (normalised) profile, unchanged.
- ``diff``: first differences (L - 1 values): daily shapes of one kind often differ more in
  their slopes and timing than in their level.
- ``shape``: eight features of the profile scaled to [0, 1] (min-max): the time of the daily
  maximum as a point on the 24-hour circle (sin, cos), the load factor (mean / max), the mean
  of each quarter of the day (night 0-6 h, morning, afternoon, evening), and the number of
  prominent peaks (``peaks.prominent_peaks``) over 4. A flat profile has zero features.
"""

from __future__ import annotations

import numpy as np

from meterflow.clustering.peaks import prominent_peaks
from meterflow.errors import ConfigError

REPRESENTATIONS = ("profile", "diff", "shape")
SHAPE_FEATURES = (
    "peak_sin",
    "peak_cos",
    "load_factor",
    "night_mean",
    "morning_mean",
    "afternoon_mean",
    "evening_mean",
    "prominent_peaks",
)


def check_representation(name: str) -> str:
    """``name`` if it is a representation; ConfigError listing the choices otherwise."""
    if name not in REPRESENTATIONS:
        raise ConfigError(f"representation must be one of {REPRESENTATIONS}, got {name!r}")
    return name


def represent(X: np.ndarray, name: str) -> np.ndarray:
    """The rows of ``X`` (n, L) in representation ``name``, float64."""
    check_representation(name)
    if name == "shape" and X.shape[1] < 4:
        raise ConfigError(f"representation=shape needs at least 4 slots, got {X.shape[1]}")
    if name == "diff":
        return np.diff(X, axis=1)
    if name == "shape":
        return shape_features(X)
    return X


def shape_features(X: np.ndarray) -> np.ndarray:
    """The ``SHAPE_FEATURES`` of each row of ``X`` (n, L); see the module docstring."""
    length = X.shape[1]
    low = X.min(axis=1, keepdims=True)
    span = X.max(axis=1, keepdims=True) - low
    scaled = np.divide(X - low, span, out=np.zeros_like(X, dtype=np.float64), where=span > 0)
    angle = 2 * np.pi * np.argmax(X, axis=1) / length
    quarters = np.array_split(scaled, 4, axis=1)
    flat = span[:, 0] <= 0
    peaks = np.array([len(prominent_peaks(row)) for row in X], dtype=np.float64) / 4
    features = np.column_stack(
        [
            np.where(flat, 0.0, np.sin(angle)),
            np.where(flat, 0.0, np.cos(angle)),
            scaled.mean(axis=1),
            *[q.mean(axis=1) for q in quarters],
            peaks,
        ]
    )
    return np.ascontiguousarray(features)
