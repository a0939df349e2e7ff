"""The forecasting run's description: the verdict against the best baseline comes first and says
plainly when the model loses; numbers have three significant digits and units, never nan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meterflow.forecasting.combine import COMBINATION, Choice
from meterflow.forecasting.story import (
    DataFacts,
    Outcome,
    amount,
    chosen,
    describe,
    outcome_of,
    verdict,
)

DATA = DataFacts(
    subject="200 meters",
    source="harmonization run `c8367fd8`",
    days=(150, 30, 45),
    first_day="2025-01-01",
    val_start="2025-05-31",
    test_start="2025-06-30",
    last_day="2025-08-13",
    unit="Wh",
)
LOOK = ("figures/candidates.png", "previews/candidates.csv")
PRICES = {"baseline_dshw_mae": 353.0, "baseline_dshw_mape": 24.0, "baseline_linear_mae": 578.0}


def lstm_choice() -> Choice:
    return Choice("lstm", {"lstm": np.ones(24)}, {"lstm": 380.0, "dshw": 360.0}, "asked")


def test_a_losing_model_is_named_as_the_loser_in_the_first_line():
    metrics = {"test_mae": 382.0, "test_mape": 25.0, **PRICES}
    outcome = outcome_of(lstm_choice(), metrics, "dshw", ("dshw",))
    text = describe(outcome, DATA, chosen(lstm_choice(), "Wh", True), metrics, LOOK)
    first = text.splitlines()[0]
    assert first == (
        "**The lstm model is 8.22 % worse than dshw on test (MAE 382 vs 353 Wh); dshw is the "
        "better forecaster on this data.**"
    )
    assert "skill vs the best baseline -0.0822" in text
    assert "the model asked for (`model` option): validation MAE 380 Wh" in text
    assert "`figures/candidates.png`" in text and "nan" not in text.lower()
    assert "test 45 d from 2025-06-30" in text and len(text) <= 1500


def test_a_winning_combination_says_by_how_much_it_beats_the_best_baseline():
    weights = {"dshw": np.full(24, 0.72), "lstm": np.full(24, 0.23), "linear": np.full(24, 0.05)}
    val = {COMBINATION: 381.2, "dshw": 388.2, "lstm": 400.0, "linear": 420.0, "climatology": 1.0}
    choice = Choice(COMBINATION, weights, val, "learned")
    metrics = {"test_mae": 347.0, "test_mape": 23.0, "test_coverage": 0.807, **PRICES}
    metrics["test_coverage_nominal"] = 0.8
    outcome = outcome_of(choice, metrics, "dshw", ())
    why = chosen(choice, "Wh", False, ("lstm", "dshw", "linear"))
    text = describe(outcome, DATA, why, metrics, LOOK, ("a note",))
    assert text.startswith(
        "**The combination of dshw, lstm and linear beats every baseline on test: MAE 347 Wh, "
        "1.7 % better than the best baseline dshw (353 Wh).**"
    )
    assert "the 80 % interval holds 80.7 % of the actuals; a note." in text
    assert "vs 388 Wh for the best single candidate dshw" in text  # not the naive climatology
    assert outcome.skill == pytest.approx(1 - 347 / 353)


def test_a_baseline_kept_on_validation_is_compared_with_the_next_baseline():
    choice = Choice("dshw", {"dshw": np.ones(24)}, {"dshw": 360.0}, "all the weight")
    metrics = {"test_mae": 353.0, **PRICES}
    outcome = outcome_of(choice, metrics, "dshw", ())
    assert outcome.runner_up == ("linear", 578.0)
    assert verdict(outcome, "Wh") == (
        "The kept model is the baseline dshw itself (no candidate beat it on validation): test "
        "MAE 353 Wh, 38.9 % better than the next baseline linear (578 Wh)"
    )
    text = describe(outcome, DATA, chosen(choice, "Wh", False), metrics, LOOK)
    assert "MAPE n/a" in text and "nan" not in text.lower()


def test_several_better_baselines_are_all_named():
    outcome = Outcome("lstm", (), 600.0, 30.0, "dshw", 353.0, 24.0, ("dshw", "linear"))
    assert verdict(outcome, "").endswith(
        "dshw is the better forecaster on this data (also better: linear)"
    )
    assert "MAE 600 vs 353 (series units)" in verdict(outcome, "")


def test_a_missing_amount_has_no_unit():
    assert amount(math.inf, "Wh") == "n/a" and amount(2.5, "Wh") == "2.5 Wh"
