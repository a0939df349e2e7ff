"""The anomaly detectors by name: one line each.

A detector is one module with one class behind the ``DetectorProtocol`` contract (``base``
module); adding one is that module plus one line here, and ``tests/anomaly/test_conformance.py``
runs it through the same checks as every other.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meterflow.errors import ConfigError

if TYPE_CHECKING:
    from meterflow.anomaly.base import DetectorProtocol, DetectorSettings
# name -> "module:class" (imported on use: a baseline does not load TensorFlow)
DETECTORS: dict[str, str] = {
    "lstm_residual": "meterflow.anomaly.lstm_residual:LstmResidual",
    "lstm_autoencoder": "meterflow.anomaly.lstm_autoencoder:LstmAutoencoder",
    "robust_z": "meterflow.anomaly.robust_z:RobustZ",
    "isolation_forest": "meterflow.anomaly.isolation_forest:IsolationForest",
}


def check_detector(name: str) -> str:
    """``name`` if it is a detector's, else ConfigError naming the known ones."""
    if name not in DETECTORS:
        raise ConfigError(f"unknown anomaly detector {name!r}; known: {', '.join(DETECTORS)}")
    return name


def detector_class(name: str) -> type[DetectorProtocol]:
    """The class registered as ``name`` (ConfigError naming the known ones otherwise)."""
    module, cls = DETECTORS[check_detector(name)].split(":")
    return getattr(import_module(module), cls)


def make_detector(name: str, settings: DetectorSettings) -> DetectorProtocol:
    """A new, unfitted detector ``name``."""
    return detector_class(name)(settings)
