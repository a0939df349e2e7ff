"""Load forecasting on harmonized daily profiles: windows, LSTM / hybrid models, baselines.

Pure layer: takes DataFrames and settings, returns results; never calls MLflow. Names are
imported lazily, so unpickling a predictor does not load training-only modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.forecasting.evaluate import (
        ForecastResult,
        evaluate_forecaster,
        train_forecaster,
    )
    from meterflow.forecasting.predictor import ForecastPredictor
    from meterflow.forecasting.series import profiles_to_series
    from meterflow.forecasting.settings import ForecastSettings

_WHERE = {
    "ForecastPredictor": "predictor",
    "ForecastResult": "evaluate",
    "evaluate_forecaster": "evaluate",
    "ForecastSettings": "settings",
    "profiles_to_series": "series",
    "train_forecaster": "evaluate",
}
__all__ = [
    "ForecastPredictor",
    "ForecastResult",
    "ForecastSettings",
    "evaluate_forecaster",
    "profiles_to_series",
    "train_forecaster",
]

__getattr__ = lazy_attributes(__name__, _WHERE)
