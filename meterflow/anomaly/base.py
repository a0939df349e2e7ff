"""The interface every anomaly detector implements, and the settings they share.

A detector learns what normal load looks like from the TRAIN split of a ``FleetSeries`` (the
VAL split may only serve early stopping) and then gives every reading of any fleet a piece of
*evidence*: a number that grows with how unusual the reading is (NaN where the detector cannot
say, e.g. without enough history). The scoring layer (``scoring``) turns evidence into
comparable scores (robust z per meter and slot of day, fitted on validation), adds the windowed
evidence every detector shares (``windowed``), and chooses the threshold.

``evidence`` must only use the detector's fitted state and the fleet's readings (never labels,
never refitting), find meters by id (a fleet may hold other meters, in another order) and work
on a fleet that starts anywhere, so that a logged model scores new data exactly as in training.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from meterflow.anomaly.params import AnomalyParams as Declared
from meterflow.params import lstm_units
from meterflow.series.fleet import FleetSeries


@dataclass(frozen=True)
class DetectorSettings:
    """Training settings shared by the learned detectors (those that ignore one keep it)."""

    forecast_model: str = Declared.default(
        "forecast_model"
    )  # of the residual detector: lstm or hybrid
    seq_length: int = Declared.default("seq_length")
    horizon: int = Declared.default("horizon")
    epochs: int = Declared.default("epochs")
    units: tuple[int, ...] = lstm_units(Declared.default("units"))
    max_train_windows: int = Declared.default("max_train_windows")
    threads: int = Declared.default("threads")
    seed: int = Declared.default("seed")


@runtime_checkable
class DetectorProtocol(Protocol):
    """What the registry, the scoring and the logged predictor use of a detector (``Detector``
    implements it; a class registered without deriving from it must too)."""

    name: ClassVar[str]
    signed: ClassVar[bool]
    context_days: int
    reads_other_meters: bool
    settings: DetectorSettings

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self: ...

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray: ...

    @property
    def network(self) -> Any: ...

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]: ...


class Detector(ABC):
    """One anomaly detector (see the module docstring)."""

    name: ClassVar[str]
    # True: evidence is a signed deviation (too high and too low are both anomalous);
    # False: only large values are anomalous.
    signed: ClassVar[bool] = True
    # days of readings before a scored day that ``evidence`` needs (windows, seasonal lags)
    context_days: int = 1
    # True: a meter's evidence reads other meters' readings (scored in one block with them)
    reads_other_meters: bool = False

    def __init__(self, settings: DetectorSettings) -> None:
        self.settings = settings

    @abstractmethod
    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> Self:
        """Learn from the TRAIN split (VAL only for early stopping); return ``self``.
        ``meters``: the meter table (location, type), for detectors that use it."""

    @abstractmethod
    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        """``(len(fleet.values),)`` float evidence of the readings in the boolean mask
        ``where`` (the others may stay NaN; every reading can serve as history)."""

    @property
    def network(self) -> Any:
        """The Keras network inside, if any (logged with MLflow's Keras flavor)."""
        return None

    def network_inputs(self, fleet: FleetSeries) -> list[np.ndarray]:
        """The network's inputs for a few readings of ``fleet`` (for the logged signature)."""
        raise NotImplementedError(f"detector {self.name} has no network")
