"""``lstm``: the temporal LSTM forecaster of seed 002 (the IoT LSTM prediction notebook),
made day-ahead (``networks`` module).

One global network over every series: each window scaled by its recent level and spread
(``deep`` module), the meter table's PV flag, contractual power and type as inputs, quantiles
trained on the pinball loss and calibrated on validation. It pickles as NumPy weights and
rebuilds its network on first use, so a loaded model needs Keras only when it predicts.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from meterflow.forecasting.base import Capabilities, Forecaster
from meterflow.forecasting.deep import (
    BoundNetwork,
    bind,
    fit_network,
    predict_inputs,
    window_inputs,
)
from meterflow.forecasting.inputs import ForecastInputs, history_bounds, last_readings
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.static import StaticFeatures
from meterflow.series.fleet import FleetSeries, MeterScaler


class LstmForecaster(Forecaster):
    name = "lstm"
    capabilities = Capabilities(
        global_model=True,
        baseline=False,
        quantiles=True,
        exogenous=True,
        deep=True,
        history_days=7,
    )
    spatial = False  # the hybrid reads its neighbours too

    scaler: MeterScaler
    static: StaticFeatures
    weights: list[np.ndarray]
    interval_scale: np.ndarray | None
    history: Any  # TrainingHistory
    locations: pd.DataFrame | None = None  # the hybrid's meter coordinates

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        bound, self.history = fit_network(
            fleet, meters, self.settings, build=self.build_network, spatial=self.spatial
        )
        self.settings, self.scaler, self.static = bound.settings, bound.scaler, bound.static
        self.weights = [w.copy() for w in bound.network.get_weights()]
        self.interval_scale = bound.interval_scale
        if self.spatial:
            self.locations = meters[["meter_id", "latitude", "longitude"]].copy()
        self._net, self._bound = None, bound  # the logged network is rebuilt uncompiled
        return self

    def bind(self, fleet: FleetSeries, fresh: bool = False) -> BoundNetwork:
        """The trained network on ``fleet``'s series (the last binding is kept and reused for
        the same fleet unless ``fresh``: a new one has its own copy of the readings)."""
        bound = getattr(self, "_bound", None)
        if fresh or bound is None or bound.fleet is not fleet:
            bound = bind(
                fleet, self.settings, self.scaler, self.static, self.network, self.locations
            )
            bound.interval_scale = self.interval_scale
            self._bound = bound
        return bound

    def predict(self, inputs: ForecastInputs) -> np.ndarray:
        return predict_inputs(self.bind(inputs.fleet), inputs)

    @property
    def network(self) -> Any:
        """The Keras network with the trained weights (built once per process)."""
        if getattr(self, "_net", None) is None:
            from meterflow.nets.training import prepare_keras

            prepare_keras(self.settings.threads, self.settings.seed)
            net = self.build_network(self.settings)
            net.set_weights(self.weights)
            self._net = net
        return self._net

    @classmethod
    def build_network(cls, settings: ForecastSettings) -> Any:
        """A fresh, untrained network for ``settings`` (``networks`` module). A new Keras
        forecaster derives from this class and overrides this method (and ``spatial`` when it
        reads the neighbour grid): the binding, training and serving stay shared."""
        from meterflow.forecasting.networks import build_network

        return build_network(settings, spatial=cls.spatial)

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        origin = last_readings(fleet)
        return window_inputs(self.bind(fleet), origin, *history_bounds(fleet, origin))[0]

    def training_histories(self) -> dict[str, Any]:
        return {self.name: self.history}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_net", None)
        state.pop("_bound", None)
        return state
