"""Anomaly detection on any fleet of series: detectors, windowed evidence, thresholds, events.

Pure layer: takes DataFrames and settings, returns results; never calls MLflow. Names are
imported lazily, so unpickling a predictor does not load training-only modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.anomaly.detection import AnomalyResult, AnomalySettings, detect_anomalies
    from meterflow.anomaly.predictor import AnomalyPredictor

_WHERE = {
    "AnomalyPredictor": "predictor",
    "AnomalyResult": "detection",
    "AnomalySettings": "detection",
    "detect_anomalies": "detection",
}
__all__ = ["AnomalyPredictor", "AnomalyResult", "AnomalySettings", "detect_anomalies"]

__getattr__ = lazy_attributes(__name__, _WHERE)
