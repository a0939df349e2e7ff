"""How numbers read in every run description and report (``meterflow.prose``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.prose import count, description, num, percent, seconds


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (None, "Wh", "n/a"),
        (math.nan, "Wh", "n/a"),
        (math.inf, "", "n/a"),
        (-math.inf, "", "n/a"),
        (0.0, "", "0"),
        (-0.0, "Wh", "0 Wh"),
        (382.02, "Wh", "382 Wh"),
        (0.68546, "", "0.685"),
        (0.0093, "", "0.0093"),
        (0.014974, "", "0.015"),
        (1e-7, "", "0.0000001"),
        (8.104, "", "8.1"),
        (12.547, "", "12.5"),
        (999.6, "", "1,000"),
        (1080.64, "", "1,080"),
        (1234.5, "Wh", "1,230 Wh"),
        (1625.3, "", "1,630"),
        (36216, "", "36,200"),
        (14_433_181, "", "14,400,000"),
        (-0.0321, "", "-0.0321"),
        (-98765.0, "", "-98,800"),
        (1.497, "%", "1.5 %"),
        (np.float64(2.5), "Wh", "2.5 Wh"),
        (np.int64(3), "", "3"),
    ],
)
def test_a_measure_has_three_significant_digits_and_its_unit(value, unit, text) -> None:
    assert num(value, unit) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (math.nan, "n/a"),
        (0, "0"),
        (999, "999"),
        (52_100, "52,100"),
        (6_960_568.0, "6,960,568"),
        (2.5e9, "2,500,000,000"),
        (-1234, "-1,234"),
        (np.int64(7918), "7,918"),
    ],
)
def test_a_count_is_whole_and_exact(value, text) -> None:
    assert count(value) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (None, "n/a"),
        (math.nan, "n/a"),
        (math.inf, "n/a"),
        (0.0, "0 %"),
        (1e-6, "< 0.01 %"),
        (0.0001, "0.01 %"),
        (0.0093, "0.93 %"),
        (0.0131, "1.31 %"),
        (0.992, "99.2 %"),
        (0.9996, "99.96 %"),
        (0.99991, "99.99 %"),
        (0.9999999, "99.99999 %"),
        (1.0, "100 %"),
        (2.5, "250 %"),
        (12.5, "1,250 %"),
        (-0.0822, "-8.22 %"),
        (-1e-6, "-0.0001 %"),
    ],
)
def test_a_share_reads_in_percent_and_never_rounds_a_loss_away(share, text) -> None:
    assert percent(share) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (math.nan, "n/a"),
        (0.0, "0 s"),
        (1.0, "1 s"),
        (18.23, "18.2 s"),
        (599.0, "599 s"),
        (600.0, "10 min"),
        (3725.0, "62.1 min"),
        (90_000.0, "1,500 min"),
    ],
)
def test_a_duration_reads_in_seconds_then_minutes(value, text) -> None:
    assert seconds(value) == text


def test_description_bolds_the_verdict_and_lists_the_bullets_in_order() -> None:
    text = description("Loaded 3 meters.", [("Data", "a store"), ("Look next", "`x.csv`.")])
    assert text == "**Loaded 3 meters.**\n\n- **Data:** a store\n- **Look next:** `x.csv`."
    assert description("Nothing.", []) == "**Nothing.**\n"
