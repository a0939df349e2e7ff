"""Load forecasting on harmonized daily profiles or any series: a registry of forecasters
behind one contract (``base``), the model earned on validation (``combine``), evaluation on the
test split (``evaluate``) and the served model (``serving``).

Pure layer: takes DataFrames and settings, returns results; never calls MLflow. Names are
imported lazily, so unpickling a model does not load training-only modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.forecasting.deep import BoundNetwork
    from meterflow.forecasting.evaluate import (
        ForecastResult,
        evaluate_forecaster,
        train_forecaster,
    )
    from meterflow.forecasting.lstm import LstmForecaster
    from meterflow.forecasting.registry import DEEP, make_forecaster
    from meterflow.forecasting.serving import ForecastService
    from meterflow.forecasting.settings import ForecastSettings

_WHERE = {
    "BoundNetwork": "deep",
    "DEEP": "registry",
    "LstmForecaster": "lstm",
    "make_forecaster": "registry",
    "ForecastResult": "evaluate",
    "ForecastService": "serving",
    "evaluate_forecaster": "evaluate",
    "ForecastSettings": "settings",
    "train_forecaster": "evaluate",
}
__all__ = [
    "DEEP",
    "BoundNetwork",
    "ForecastResult",
    "ForecastService",
    "ForecastSettings",
    "LstmForecaster",
    "evaluate_forecaster",
    "make_forecaster",
    "train_forecaster",
]

__getattr__ = lazy_attributes(__name__, _WHERE)
