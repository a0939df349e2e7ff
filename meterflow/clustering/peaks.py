"""Peak-based validation scores: does a cluster's centre keep the peaks of its members?

The reference pipeline logged these scores without publishing formulas; the definitions below are
ours and are the contract.

Prominent peaks of a profile ``p`` (length L): the slots returned by
``scipy.signal.find_peaks`` on ``p`` padded at both ends with ``min(p)`` (so a maximum in the
first or last slot can be a peak, and the day's edges count as the lowest level), keeping peaks
whose prominence is at least ``prominence * (max(p) - min(p))``. A flat profile has none.
Prominence is invariant to shifting and positive scaling, so members and centres may be in
different (affinely related) spaces, e.g. raw members and z-normalised k-Shape centres.

Every score compares each member profile ``m`` with the centre ``c`` of its own cluster, and is
the mean over all profiles (each profile weighs the same, so big clusters weigh more):

- ``peak_match``: 1 if the slot of m's daily maximum equals the slot of c's (first one on ties).
- ``prominent_peak_detection`` (recall): share of m's prominent peaks that are also prominent
  peaks of c; 1 when m has none.
- ``prominent_peak_overdetection``: share of c's prominent peaks that are not prominent peaks of
  m; 0 when c has none.
- ``peak_performance``: F1 = 2RP/(R+P) of recall R (detection) and precision P = 1 - overdetection
  (0 when R + P = 0; 1 when neither has a peak).
- ``*_relaxed``: the same with a tolerance of ``tolerance`` slots (default 1): the maxima match
  when their slots differ by at most the tolerance, and a peak is found in the other profile when
  that one has a prominent peak within the tolerance. Slots are not wrapped around midnight.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from meterflow.errors import SchemaError

PEAK_SCORE_NAMES = (
    "peak_match",
    "peak_match_relaxed",
    "prominent_peak_detection",
    "prominent_peak_detection_relaxed",
    "prominent_peak_overdetection",
    "prominent_peak_overdetection_relaxed",
    "peak_performance",
    "peak_performance_relaxed",
)


def prominent_peaks(profile: np.ndarray, *, prominence: float = 0.2) -> np.ndarray:
    """Slots (sorted, int64) of the prominent peaks of one profile (see the module docstring)."""
    p = np.asarray(profile, dtype=np.float64)
    lo, hi = float(p.min()), float(p.max())
    if hi - lo <= 0:
        return np.empty(0, dtype=np.int64)
    padded = np.concatenate([[lo], p, [lo]])
    idx, _ = find_peaks(padded, prominence=prominence * (hi - lo))
    return (idx - 1).astype(np.int64)


def peak_agreement(
    member: np.ndarray, centre: np.ndarray, *, tolerance: int = 0
) -> tuple[float, float]:
    """(recall, overdetection) of the prominent peaks ``member`` vs ``centre`` (slot arrays)."""
    if len(member):
        if len(centre):
            gap = np.abs(member[:, None] - centre[None, :]).min(axis=1)
            recall = float(np.mean(gap <= tolerance))
        else:
            recall = 0.0
    else:
        recall = 1.0
    if len(centre):
        if len(member):
            gap = np.abs(centre[:, None] - member[None, :]).min(axis=1)
            over = float(np.mean(gap > tolerance))
        else:
            over = 1.0
    else:
        over = 0.0
    return recall, over


def f1(recall: float, overdetection: float) -> float:
    """Harmonic mean of recall and precision = 1 - overdetection (0 when both are 0)."""
    precision = 1.0 - overdetection
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)


def peak_scores(
    X: np.ndarray,
    labels: np.ndarray,
    centers: np.ndarray,
    *,
    prominence: float = 0.2,
    tolerance: int = 1,
) -> dict[str, float]:
    """The eight peak scores (names in ``PEAK_SCORE_NAMES``) of profiles ``X`` (n, L) with
    cluster ``labels`` (n,) against ``centers`` (k, L); each is a mean over the n profiles."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels)
    centers = np.asarray(centers, dtype=np.float64)
    if X.ndim != 2 or len(labels) != len(X) or centers.ndim != 2 or centers.shape[1] != X.shape[1]:
        raise SchemaError(
            f"peak scores need X (n, L), labels (n,), centers (k, L); got {X.shape}, "
            f"{labels.shape}, {centers.shape}"
        )
    if len(X) == 0:
        raise SchemaError("peak scores need at least one profile")
    centre_peaks = [prominent_peaks(c, prominence=prominence) for c in centers]
    centre_max = centers.argmax(axis=1)
    sums = dict.fromkeys(PEAK_SCORE_NAMES, 0.0)
    member_max = X.argmax(axis=1)
    for row, c in enumerate(labels):
        gap = abs(int(member_max[row]) - int(centre_max[c]))
        sums["peak_match"] += gap == 0
        sums["peak_match_relaxed"] += gap <= tolerance
        mp = prominent_peaks(X[row], prominence=prominence)
        for suffix, tol in (("", 0), ("_relaxed", tolerance)):
            recall, over = peak_agreement(mp, centre_peaks[c], tolerance=tol)
            sums["prominent_peak_detection" + suffix] += recall
            sums["prominent_peak_overdetection" + suffix] += over
            sums["peak_performance" + suffix] += f1(recall, over)
    return {name: float(total / len(X)) for name, total in sums.items()}
