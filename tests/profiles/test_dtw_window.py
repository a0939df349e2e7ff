"""The DTW window as a fraction of the day becomes aeon's Sakoe-Chiba radius in slots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.errors import ConfigError
from meterflow.profiles.dtw import dtw_distance, window_slots


def _textbook_dtw(x: np.ndarray, y: np.ndarray, max_shift: int) -> float:
    """DTW (square root of the summed squared differences) over the cells ``|i - j| <=
    max_shift``, by the plain recurrence."""
    m = len(x)
    cost = np.full((m + 1, m + 1), np.inf)
    cost[0, 0] = 0.0
    for i in range(1, m + 1):
        for j in range(max(1, i - max_shift), min(m, i + max_shift) + 1):
            best = min(cost[i - 1, j], cost[i, j - 1], cost[i - 1, j - 1])
            cost[i, j] = (x[i - 1] - y[j - 1]) ** 2 + best
    return math.sqrt(cost[m, m])


@pytest.mark.parametrize(
    ("slots", "fraction", "band"),
    [
        (24, 0.1, 3),  # max shift int(2.4) = 2 slots
        (96, 0.1, 10),  # 9 slots
        (144, 0.1, 15),  # 14 slots
        (720, 0.1, 73),  # 72 slots
        (144, 0.05, 8),  # 7 slots
        (24, 0.125, 4),  # 3 slots: the old default band of 4 on hourly days
        (24, 0.01, 2),  # at least 1 slot of shift
        (96, 0.001, 2),
    ],
)
def test_window_slots_is_aeons_radius_plus_one(slots: int, fraction: float, band: int) -> None:
    assert window_slots(fraction, slots) == band


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, 0.99])
def test_window_slots_unconstrained(fraction: float) -> None:
    assert window_slots(fraction, 24) == 0


@pytest.mark.parametrize("fraction", [-0.1, float("nan"), True])
def test_window_slots_rejects_bad_fractions(fraction: float) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        window_slots(fraction, 24)


def test_window_slots_needs_a_slot() -> None:
    with pytest.raises(ConfigError, match="slot"):
        window_slots(0.1, 0)


@pytest.mark.parametrize(("slots", "fraction"), [(24, 0.1), (48, 0.05), (30, 0.25), (20, 0.5)])
def test_dtw_with_the_window_allows_exactly_aeons_shift(slots: int, fraction: float) -> None:
    rng = np.random.default_rng(slots)
    x, y = rng.normal(size=(2, slots))
    shift = int(fraction * slots)
    expected = _textbook_dtw(x, y, shift)
    assert dtw_distance(x, y, window_slots(fraction, slots)) == pytest.approx(expected, rel=1e-12)
    peak, moved = np.zeros(slots), np.zeros(slots)
    peak[1], moved[1 + shift] = 1.0, 1.0  # a peak moved by exactly the largest shift allowed
    assert dtw_distance(peak, moved, window_slots(fraction, slots)) == 0.0
    assert dtw_distance(peak, moved, shift) > 0.0  # band = shift: one slot less


def test_full_window_equals_unconstrained_dtw() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(2, 48))
    full = dtw_distance(x, y, window_slots(1.0, 48))
    assert full == dtw_distance(x, y, 0)
    assert full == pytest.approx(_textbook_dtw(x, y, 47), rel=1e-12)
