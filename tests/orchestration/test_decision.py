"""The champion/challenger decision and the held-out scores it compares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SchemaError
from meterflow.orchestration.decision import CRITERIA, agreement, decide, holdout_score
from meterflow.orchestration.steps import PROMOTED
from meterflow.schemas import HOLDOUT_COLUMNS, slot_columns, validate_table
from meterflow.tracking import StepRun

# held-out forecasts: one forecast's history as raw readings
FORECAST_HOLDOUT = pd.DataFrame(
    {
        "meter_id": ["m1", "m1"],
        "forecast_id": ["a", "a"],
        "timestamp": pd.to_datetime(["2025-01-01 22:00", "2025-01-01 23:00"]),
        "value": [1.0, 2.0],
    }
)


def test_first_version_is_champion_whatever_its_score() -> None:
    assert decide("forecasting", 500.0, None, 0.01).promote
    assert decide("anomaly", math.nan, None, 0.01).reason == "first version"


@pytest.mark.parametrize(
    ("step", "challenger", "champion", "margin", "promote"),
    [
        ("forecasting", 98.0, 100.0, 0.01, True),  # MAE: lower is better, 2 % > 1 %
        ("forecasting", 99.5, 100.0, 0.01, False),  # better, but not by the margin
        ("forecasting", 101.0, 100.0, 0.0, False),
        ("anomaly", 0.40, 0.30, 0.05, True),  # F1: higher is better
        ("anomaly", 0.30, 0.30, 0.0, True),  # a tie with no margin asked promotes
        ("clustering", 0.20, 0.30, 0.0, False),
    ],
)
def test_challenger_must_beat_the_champion_by_the_margin(
    step: str, challenger: float, champion: float, margin: float, promote: bool
) -> None:
    decision = decide(step, challenger, champion, margin)
    assert decision.promote is promote
    assert ("beats" if promote else "does not beat") in decision.reason


def test_an_unscorable_model_is_never_promoted() -> None:
    assert not decide("anomaly", math.nan, 0.3, 0.0).promote
    kept = decide("forecasting", 90.0, math.nan, 0.0)
    assert not kept.promote and "champion cannot be scored" in kept.reason


def test_a_model_that_loses_to_its_baselines_never_replaces_one_that_does_not() -> None:
    kept = decide("forecasting", 50.0, 100.0, 0.01, beats_baselines=(False, True))
    assert not kept.promote and "baselines" in kept.reason
    assert decide("forecasting", 50.0, 100.0, 0.01, beats_baselines=(False, False)).promote
    assert decide("forecasting", 50.0, 100.0, 0.01, beats_baselines=(True, False)).promote


def test_forecasts_are_scored_on_every_held_out_target() -> None:
    stamps = pd.to_datetime(["2025-01-02 00:00", "2025-01-02 01:00"])
    truth = pd.DataFrame({"forecast_id": ["a", "a"], "target_time": stamps, "actual": [1.0, 4.0]})
    forecast = pd.DataFrame(
        {"forecast_id": ["a", "a"], "target_time": stamps[::-1], "prediction": [2.0, 2.0]}
    )
    assert holdout_score("forecasting", FORECAST_HOLDOUT, forecast, truth) == pytest.approx(1.5)
    missing = forecast.iloc[:1]
    assert math.isnan(holdout_score("forecasting", FORECAST_HOLDOUT, missing, truth))
    no_ids = forecast.drop(columns="forecast_id")
    assert math.isnan(holdout_score("forecasting", FORECAST_HOLDOUT, no_ids, truth))


def test_holdout_scores() -> None:
    holdout = pd.DataFrame(
        {
            "meter_id": ["m1"] * 3,
            "timestamp": pd.date_range("2025-01-01", periods=3, freq="h", tz="UTC"),
            "value": [1.0, 2.0, 4.0],
            "history": [False] * 3,
            "label": pd.array([True, False, None]),
        }
    )
    flagged = pd.DataFrame({"flagged": [True, True, False]})
    assert holdout_score("anomaly", holdout, flagged) == pytest.approx(2 / 3)  # p=1/2, r=1
    unlabelled = holdout.assign(label=pd.array([None, None, None], dtype="boolean"))
    assert math.isnan(holdout_score("anomaly", unlabelled, flagged))
    profiles = pd.DataFrame(
        np.vstack([np.zeros((5, 4)), np.ones((5, 4))]) + np.arange(10)[:, None] * 1e-3,
        columns=slot_columns(4),
    )
    labels = np.repeat([0, 1], 5)
    assert holdout_score("clustering", profiles, labels) > 0.9
    assert math.isnan(holdout_score("clustering", profiles, np.zeros(10, dtype=int)))
    assert agreement(labels, 1 - labels) == pytest.approx(1.0)


def test_every_promoted_step_has_a_criterion_and_a_holdout_contract() -> None:
    assert set(PROMOTED) == set(CRITERIA) == set(HOLDOUT_COLUMNS)


@pytest.mark.parametrize(
    ("step", "column"),
    [("anomaly", "label"), ("anomaly", "history"), ("forecasting", "forecast_id")],
)
def test_a_holdout_without_a_required_column_is_refused_naming_it(step: str, column: str) -> None:
    holdout = pd.DataFrame({c: [1.0] for c in HOLDOUT_COLUMNS[step]}).drop(columns=column)
    with pytest.raises(SchemaError, match=rf"{step} holdout table .*'{column}'"):
        holdout_score(step, holdout, pd.DataFrame({"flagged": [True]}))
    with pytest.raises(SchemaError, match=f"'{column}'"):
        validate_table("holdout", holdout, where="run r", step=step)


def test_a_clustering_holdout_needs_slot_columns() -> None:
    with pytest.raises(SchemaError, match=r"clustering holdout table .*'slot_\*'"):
        holdout_score("clustering", pd.DataFrame({"meter_id": ["m1", "m2"]}), np.array([0, 1]))


def test_a_model_step_cannot_log_a_holdout_that_breaks_its_contract() -> None:
    """Checked when logged, before anything reaches the tracking store."""
    rows = pd.DataFrame({"meter_id": ["m1"], "timestamp": [0], "value": [1.0], "history": [False]})
    with pytest.raises(SchemaError, match=r"anomaly holdout table in run r1 lacks .*'label'"):
        StepRun("r1", entry_point="anomaly").log_table(rows, "holdout")
    assert validate_table("holdout", rows) is rows  # a step without a contract: any columns


@pytest.mark.parametrize(
    "error", [ModuleNotFoundError("meterflow.forecasting.series"), AttributeError("SeasonalNaiveZ")]
)
def test_a_champion_whose_pickled_classes_moved_is_kept_not_a_crash(monkeypatch, error) -> None:
    """A champion logged by an older code version whose modules or classes were renamed cannot
    be loaded: the night goes on and the champion is kept (promote by hand)."""
    from meterflow import tracking
    from meterflow.orchestration import registry

    def unloadable(uri: str, rows: pd.DataFrame) -> None:
        raise error

    monkeypatch.setattr(tracking, "champion_uri", lambda step: f"models:/meterflow-{step}@champion")
    monkeypatch.setattr(tracking, "predict_with", unloadable)
    assert registry._champion_output("forecasting", pd.DataFrame({"meter_id": ["M1"]})) is None
