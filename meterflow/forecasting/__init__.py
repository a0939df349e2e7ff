"""Load forecasting on harmonized daily profiles: windows, LSTM / hybrid models, baselines.

Pure layer: takes DataFrames and settings, returns results; never calls MLflow. Names are
imported lazily, so unpickling a predictor does not load training-only modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.forecasting.predictor import ForecastPredictor
    from meterflow.forecasting.series import profiles_to_series
    from meterflow.forecasting.settings import ForecastSettings
    from meterflow.forecasting.train import ForecastResult, train_forecaster

_WHERE = {
    "ForecastPredictor": "predictor",
    "ForecastResult": "train",
    "ForecastSettings": "settings",
    "profiles_to_series": "series",
    "train_forecaster": "train",
}
__all__ = [
    "ForecastPredictor",
    "ForecastResult",
    "ForecastSettings",
    "profiles_to_series",
    "train_forecaster",
]

__getattr__ = lazy_attributes(__name__, _WHERE)
