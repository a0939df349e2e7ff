"""The forecaster contract every member of the registry follows.

A forecaster is fitted on a ``FleetSeries`` (its TRAIN split; the VAL split may serve early
stopping and interval calibration; the TEST split never) and forecasts quantiles of the targets
1..H after any set of origins (``ForecastInputs``), in the series' units. It declares what it
is (``Capabilities``), pickles without framework objects (``save`` / ``load``), and knows how
much history a served forecast needs. Forecasters of one value per target derive from
``PointForecaster``: their quantiles are the point forecast plus quantiles of their validation
residuals, scaled by each window's recent spread.
"""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from meterflow.forecasting.calibration import residual_offsets
from meterflow.forecasting.inputs import ForecastInputs, validation_inputs
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import FleetSeries


@dataclass(frozen=True)
class Capabilities:
    """What a forecaster is and needs, declared on its class."""

    global_model: bool  # one model over every series (else one per series)
    baseline: bool  # a simple reference every run reports; the model of a run must beat it
    quantiles: bool = False  # predicts its own quantiles (else residual quantiles, see module)
    exogenous: bool = False  # reads the series' extra inputs
    deep: bool = False  # a Keras network (logged beside the pyfunc with MLflow's Keras flavor)
    needs_locations: bool = False  # needs the meter table's coordinates
    history_days: int = 1  # days of history before a served forecast's origin, at least


@runtime_checkable
class ForecasterProtocol(Protocol):
    """What the registry, the evaluation and the served model use of a forecaster (``Forecaster``
    implements it; a class registered without deriving from it must too)."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    settings: ForecastSettings

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self: ...

    def refit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self: ...

    def predict(self, inputs: ForecastInputs) -> np.ndarray: ...

    def min_history(self, slots_per_day: int) -> int: ...

    @property
    def network(self) -> Any: ...

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]: ...

    def training_histories(self) -> dict[str, Any]: ...

    def save(self, path: str | Path) -> None: ...


class Forecaster(ABC):
    """Fit on a fleet's training split, forecast quantiles after any origins (see module)."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, settings: ForecastSettings) -> None:
        self.settings = settings

    @abstractmethod
    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        """Fit on ``fleet``'s TRAIN split (``meters``: the meter table, when there is one)."""

    def refit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        """The final model once validation has served: fitted again on the TRAIN and VAL
        splits, keeping what validation taught (intervals). Deep forecasters keep their fit
        (validation chose their epoch)."""
        return self

    @abstractmethod
    def predict(self, inputs: ForecastInputs) -> np.ndarray:
        """``(n, steps, quantiles)`` forecasts of the targets after ``inputs``' origins, in the
        series' units, quantiles increasing (one "quantile" for a point-only run); NaN where
        this forecaster has nothing to say (e.g. a series it was not fitted on)."""

    def min_history(self, slots_per_day: int) -> int:
        """Readings a served forecast needs before its origin, at least."""
        return max(self.settings.min_history, self.capabilities.history_days * slots_per_day)

    @property
    def network(self) -> Any:
        """The Keras network of a deep forecaster (None for the others)."""
        return None

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        """The network's inputs of forecasts after each series' last reading of ``fleet`` (deep
        forecasters only: the logged signature)."""
        raise TypeError(f"{self.name} has no network")

    def training_histories(self) -> dict[str, Any]:
        """Per-epoch losses of the networks this forecaster trained, by forecaster name."""
        return {}

    def save(self, path: str | Path) -> None:
        """Write the fitted forecaster to ``path`` (a pickle of plain Python and NumPy)."""
        with Path(path).open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def load(path: str | Path) -> Forecaster:
        """A forecaster written by ``save``."""
        with Path(path).open("rb") as f:
            return pickle.load(f)


class PointForecaster(Forecaster):
    """A forecaster of one value per target, with quantiles from its validation residuals."""

    offsets: np.ndarray | None = None  # (steps, quantiles) in units of the recent spread

    @abstractmethod
    def fit_point(self, fleet: FleetSeries, meters: pd.DataFrame | None) -> None:
        """Fit the point forecast on ``fleet``'s TRAIN split."""

    @abstractmethod
    def predict_point(self, inputs: ForecastInputs) -> np.ndarray:
        """``(n, steps)`` point forecasts."""

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        self.fit_point(fleet, meters)
        if self.settings.quantiles:
            val = validation_inputs(fleet, self.settings)
            point = self.predict_point(val) if len(val) else np.zeros((0, len(val.steps)))
            self.offsets = residual_offsets(
                point, val.actual, val.recent_scale, self.settings.quantiles
            )
        return self

    def refit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        self.fit_point(fleet.through_validation(), meters)
        return self

    def predict(self, inputs: ForecastInputs) -> np.ndarray:
        point = self.predict_point(inputs)
        if self.offsets is None:
            return point[..., None]
        return point[..., None] + self.offsets[None] * inputs.recent_scale[:, None, None]
