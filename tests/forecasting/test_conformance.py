"""Every registered forecaster through the same checks (as aeon runs its estimators): declared
capabilities, shapes and ordered quantiles, nothing from the test days in its fit, a final refit,
pickling and save/load, the history it needs, the network's inputs of a deep one; and a new
forecaster is one class plus one registry line, passing the same checks."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from meterflow.forecasting import registry
from meterflow.forecasting.base import (
    Capabilities,
    Forecaster,
    ForecasterProtocol,
    PointForecaster,
)
from meterflow.forecasting.evaluate import evaluate_forecaster
from meterflow.forecasting.inputs import ForecastInputs, split_test_inputs, validation_inputs
from meterflow.forecasting.lstm import LstmForecaster
from meterflow.forecasting.networks import WINDOW_INPUT, Decoder, decoder_head
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import TEST, FleetSeries, build_panel, split_dates

SPD = 24
SETTINGS = ForecastSettings(
    horizon=SPD,
    epochs=2,
    patience=2,
    max_train_windows=600,
    max_val_windows=300,
    threads=1,
    n_neighbours=2,
)


def small_fleet(test_shift: float = 0.0) -> tuple[FleetSeries, pd.DataFrame]:
    """Three meters, 40 days at 60 min; ``test_shift`` is added to every test reading."""
    rng = np.random.default_rng(3)
    hours = np.arange(40 * SPD)
    stamps = pd.date_range("2024-03-04", periods=len(hours), freq="h")
    frames, meters = [], []
    for m in range(3):
        daily = 1 + 0.5 * np.sin(2 * np.pi * (hours % SPD) / SPD + m)
        weekly = 1 - 0.2 * ((hours // SPD) % 7 >= 5)
        value = 300 * (m + 1) * daily * weekly * (1 + rng.normal(0, 0.05, len(hours)))
        frames.append(pd.DataFrame({"meter_id": f"M{m}", "timestamp": stamps, "value": value}))
        meters.append((f"M{m}", 10.0, 0.0, "household", 45 + 0.01 * m, 9 + 0.01 * m))
    series = pd.concat(frames, ignore_index=True)
    test_start = pd.Timestamp("2024-04-06")
    series.loc[series["timestamp"] >= test_start, "value"] += test_shift
    fleet = build_panel(series, 60, split_dates(series["timestamp"], 0.7, 0.1, test_start, 7))
    assert (fleet.split == TEST).sum() == 3 * 7 * SPD
    columns = ["meter_id", "contractual_power_kw", "production_kw", "type", "latitude", "longitude"]
    return fleet, pd.DataFrame(meters, columns=columns)


def fit_twice(name: str) -> tuple[Forecaster, np.ndarray, np.ndarray]:
    """``name`` fitted on the fleet, with its validation forecasts, and those of the same
    forecaster fitted where every test reading differs."""
    fleet, meters = small_fleet()
    forecaster = registry.make_forecaster(name, SETTINGS).fit(fleet, meters)
    changed, _ = small_fleet(test_shift=1e4)
    other = registry.make_forecaster(name, SETTINGS).fit(changed, meters)
    return (
        forecaster,
        forecaster.predict(validation_inputs(fleet, SETTINGS)),
        other.predict(validation_inputs(changed, SETTINGS)),
    )


@pytest.fixture(scope="module")
def fitted() -> dict[str, tuple[Forecaster, np.ndarray, np.ndarray]]:
    """Each registered forecaster through ``fit_twice``."""
    return {name: fit_twice(name) for name in registry.FORECASTERS}


def check_declaration(name: str) -> None:
    """The class follows the protocol and declares what its registry line says."""
    entry, cls = registry.entry(name), registry.forecaster_class(name)
    assert cls.name == name and isinstance(cls.capabilities, Capabilities)
    assert cls.capabilities.baseline == entry.baseline == (name in registry.BASELINES), name
    assert cls.capabilities.deep == entry.deep, name
    assert cls.capabilities.needs_locations == entry.needs_locations, name
    assert not entry.combined or entry.baseline, name


def check_forecasts(forecaster: Forecaster, forecasts: np.ndarray) -> None:
    """The protocol (asked of a fitted forecaster: a network exists once fitted), contract
    shape, finite, quantiles increasing, a history need."""
    assert isinstance(forecaster, ForecasterProtocol)
    fleet, _ = small_fleet()
    val = validation_inputs(fleet, SETTINGS)
    assert forecasts.shape == (len(val), SPD, len(SETTINGS.quantiles))
    assert np.isfinite(forecasts).all()
    assert (np.diff(forecasts, axis=-1) >= 0).all()
    assert forecaster.min_history(SPD) >= SETTINGS.min_history


def check_refit_and_save(forecaster: Forecaster, path: Path) -> None:
    """A final refit, pickling and save/load keep the test forecasts; a network's inputs."""
    fleet, meters = small_fleet()
    test = split_test_inputs(fleet, SETTINGS)
    assert forecaster.refit(fleet, meters) is forecaster
    expected = forecaster.predict(test)
    assert np.isfinite(expected).all()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(forecaster)).predict(test), expected)
    forecaster.save(path)
    np.testing.assert_array_equal(Forecaster.load(path).predict(test), expected)
    if forecaster.capabilities.deep:
        inputs = forecaster.network_inputs(fleet)
        assert forecaster.network.predict_on_batch(inputs).shape[0] == len(fleet.meter_ids)


@pytest.mark.parametrize("name", list(registry.FORECASTERS))
def test_the_registry_line_and_the_class_agree(name):
    check_declaration(name)


@pytest.mark.parametrize("name", list(registry.FORECASTERS))
def test_forecasts_have_the_contract_shape_and_ordered_quantiles(fitted, name):
    forecaster, forecasts, _ = fitted[name]
    check_forecasts(forecaster, forecasts)


@pytest.mark.parametrize("name", list(registry.FORECASTERS))
def test_nothing_from_the_test_days_reaches_the_fit(fitted, name):
    _, forecasts, with_other_test = fitted[name]
    np.testing.assert_array_equal(forecasts, with_other_test)


@pytest.mark.parametrize("name", list(registry.FORECASTERS))
def test_refit_pickling_and_save_load_keep_the_forecasts(fitted, name, tmp_path):
    check_refit_and_save(fitted[name][0], tmp_path / "model.pkl")


def test_every_baseline_and_deep_forecaster_is_registered():
    assert registry.AUTO not in registry.FORECASTERS
    assert set(registry.BASELINES) | set(registry.DEEP) <= set(registry.FORECASTERS)
    assert {"seasonal_naive_day", "persistence", "climatology"} <= set(registry.BASELINES)


class WeekAgoPlusOne(PointForecaster):
    """A toy forecaster for the registry test: the same slot a week before, plus one."""

    name = "week_ago_plus_one"
    capabilities = Capabilities(global_model=True, baseline=False, history_days=7)

    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        """Nothing to fit."""

    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        return inputs.seasonal_wh[1] + 1.0


def check_new_forecaster(name: str, path: Path) -> Forecaster:
    """Every check above on the forecaster just registered as ``name``; returns it fitted."""
    check_declaration(name)
    forecaster, forecasts, with_other_test = fit_twice(name)
    check_forecasts(forecaster, forecasts)
    np.testing.assert_array_equal(forecasts, with_other_test)
    check_refit_and_save(forecaster, path)
    return forecaster


def test_a_new_forecaster_is_one_class_and_one_registry_line(monkeypatch, tmp_path):
    where = registry.Entry(f"{__name__}:{WeekAgoPlusOne.__name__}")
    monkeypatch.setitem(registry.FORECASTERS, WeekAgoPlusOne.name, where)
    check_new_forecaster(WeekAgoPlusOne.name, tmp_path / "model.pkl")
    cfg = ForecastSettings(**{**SETTINGS.__dict__, "candidates": (WeekAgoPlusOne.name,)})
    fleet, _ = small_fleet()
    result = evaluate_forecaster(fleet, None, cfg)
    assert WeekAgoPlusOne.name in result.candidates
    assert WeekAgoPlusOne.name in set(result.scores["candidate"])


class DenseDecoder(LstmForecaster):
    """A toy Keras forecaster for the registry test: the LSTM forecaster's inputs, training,
    intervals and serving, with a dense encoder of the window in place of the LSTM stack."""

    name = "dense_decoder"

    @classmethod
    def build_network(cls, settings: ForecastSettings) -> Any:
        import keras

        window = keras.Input(shape=(settings.seq_length, settings.n_features), name=WINDOW_INPUT)
        state = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(window))
        decoder = Decoder(len(settings.steps), settings.n_future, settings.n_quantiles)
        future, out = decoder_head(state, window, decoder, hidden=8)
        return keras.Model([window, future], out, name=cls.name)


def test_a_new_keras_forecaster_is_one_class_and_one_registry_line(monkeypatch, tmp_path):
    where = registry.Entry(f"{__name__}:{DenseDecoder.__name__}", deep=True)
    monkeypatch.setitem(registry.FORECASTERS, DenseDecoder.name, where)
    forecaster = check_new_forecaster(DenseDecoder.name, tmp_path / "model.pkl")
    assert forecaster.network.name == DenseDecoder.name
    assert set(forecaster.training_histories()) == {DenseDecoder.name}
