"""Anomaly detection on harmonized profiles: LSTM forecast residuals, thresholds, events.

Pure layer: takes DataFrames and settings, returns results; never calls MLflow. Names are
imported lazily, so unpickling a predictor does not load training-only modules.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meterflow.anomaly.detector import AnomalyResult, AnomalySettings, detect_anomalies
    from meterflow.anomaly.predictor import AnomalyPredictor

_WHERE = {
    "AnomalyPredictor": "predictor",
    "AnomalyResult": "detector",
    "AnomalySettings": "detector",
    "detect_anomalies": "detector",
}
__all__ = ["AnomalyPredictor", "AnomalyResult", "AnomalySettings", "detect_anomalies"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
