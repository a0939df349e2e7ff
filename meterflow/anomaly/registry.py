"""The anomaly detectors by name: one line each."""

from __future__ import annotations

from importlib import import_module

from meterflow.anomaly.base import Detector, DetectorSettings
from meterflow.errors import ConfigError

# name -> "module:class" (imported on use: a baseline does not load TensorFlow)
DETECTORS = {
    "lstm_residual": "meterflow.anomaly.residual:LstmResidual",
    "lstm_autoencoder": "meterflow.anomaly.autoencoder:SequenceAutoencoder",
    "robust_z": "meterflow.anomaly.robust_z:SeasonalNaiveZ",
    "isolation_forest": "meterflow.anomaly.iforest:DailyIsolationForest",
}


def check_detector(name: str) -> str:
    """``name`` if it is a detector's, else ConfigError naming the known ones."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown anomaly detector {name!r}; known: {', '.join(DETECTORS)}")
    return name


def make_detector(name: str, settings: DetectorSettings) -> Detector:
    """A new, unfitted detector ``name``."""
    module, cls = DETECTORS[check_detector(name)].split(":")
    return getattr(import_module(module), cls)(settings)
