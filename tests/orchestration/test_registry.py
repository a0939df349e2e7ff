"""The description of a registered version: its held-out score against the champion it was
compared with, its output and units, what the holdout covers and how to load it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from meterflow.orchestration.decision import decide
from meterflow.orchestration.registry import ABOUT, version_description
from meterflow.orchestration.steps import PROMOTED
from meterflow.schemas import slot_columns

FORECASTS = pd.DataFrame(
    {
        "meter_id": ["m1"] * 4 + ["m2"] * 2,
        "forecast_id": ["a", "a", "b", "b", "c", "c"],
        "timestamp": pd.to_datetime(
            [
                "2025-01-01 22:00",
                "2025-01-01 23:00",
                "2025-01-02 22:00",
                "2025-01-02 23:00",
                "2025-01-02 22:00",
                "2025-01-02 23:00",
            ]
        ),
        "value": [1.0, 2.0, 1.0, 2.0, 3.0, np.nan],
    }
)
READINGS = pd.DataFrame(
    {
        "meter_id": ["m1"] * 4,
        "timestamp": pd.date_range("2025-03-01", periods=4, freq="12h"),
        "value": [1.0, 2.0, 3.0, 4.0],
        "history": [True, False, False, False],
        "label": pd.array([None, True, False, None], dtype="boolean"),
    }
)


def _checked(text: str) -> str:
    assert len(text) <= 1500 and "nan" not in text.lower() and "None" not in text
    return text


def test_a_promoted_forecaster_states_its_score_the_champion_s_and_the_holdout() -> None:
    decision = decide("forecasting", 1234.5, 1300.0, 0.01)
    text = _checked(version_description(FORECASTS, decision, "meterflow-forecasting", "3"))
    first = text.splitlines()[0]
    assert first == (
        "**Champion: held-out MAE 1,230 Wh vs 1,300 Wh for champion version 3 on the same rows.**"
    )
    assert "3 held-out day-ahead forecasts of 2 series over 2 test days" in text
    assert "(2025-01-01 .. 2025-01-02)" in text and "Wh per slot" in text
    assert 'mlflow.pyfunc.load_model("models:/meterflow-forecasting@champion")' in text


def test_a_challenger_says_how_to_load_it_and_the_champion() -> None:
    decision = decide("anomaly", 0.25, 0.5, 0.0)
    text = _checked(version_description(READINGS, decision, "e2e-anomaly", "7"))
    assert text.startswith("**Challenger: held-out F1 0.25 vs 0.5 for champion version 7")
    assert "3 held-out readings of 1 meters over 2 days (2025-03-01 .. 2025-03-02)" in text
    assert "2 of them labelled (1 anomalous)" in text
    assert "`models:/e2e-anomaly@challenger`" in text and "`models:/e2e-anomaly@champion`" in text
    assert "does not beat the champion" in text


def test_a_first_version_has_no_champion_to_compare_with() -> None:
    profiles = pd.DataFrame(np.ones((3, 24)), columns=slot_columns(24))
    profiles.insert(0, "meter_id", ["m1", "m2", "m2"])
    decision = decide("clustering", math.nan, None, 0.01)
    text = _checked(version_description(profiles, decision, "meterflow-clustering", None))
    assert text.startswith("**Champion: held-out silhouette n/a (no champion score to compare")
    assert "3 held-out daily profiles of 2 meters" in text and "first version" in text


def test_every_promoted_step_has_a_registered_model_description() -> None:
    assert set(ABOUT) == set(PROMOTED)
    assert all("Input:" in ABOUT[s] and "Output:" in ABOUT[s] for s in PROMOTED)
