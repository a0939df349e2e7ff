"""The forecasters by name: one line each (``model`` option, ``auto`` candidates, baselines).

A forecaster is one module with one class behind the ``Forecaster`` contract (``base`` module);
adding one is that module plus one line here, and ``tests/forecasting/test_conformance.py`` runs
it through the same checks as every other. Classes are imported on use, so listing the names
(``--help``, option checks) loads neither TensorFlow nor the fitting code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meterflow.errors import ConfigError

if TYPE_CHECKING:
    from meterflow.forecasting.base import Forecaster
    from meterflow.forecasting.settings import ForecastSettings

AUTO = "auto"  # the best forecaster, or combination, on the validation split

# name -> "module:Class"
FORECASTERS = {
    "lstm": "meterflow.forecasting.lstm:LstmForecaster",
    "hybrid": "meterflow.forecasting.hybrid:HybridForecaster",
    "dshw": "meterflow.forecasting.dshw:DshwForecaster",
    "linear": "meterflow.forecasting.linear:LinearForecaster",
    "seasonal_naive_day": "meterflow.forecasting.naive:SeasonalNaiveDay",
    "seasonal_naive_week": "meterflow.forecasting.naive:SeasonalNaiveWeek",
    "seasonal_mean_7d": "meterflow.forecasting.naive:SeasonalMean7d",
    "climatology": "meterflow.forecasting.naive:Climatology",
    "persistence": "meterflow.forecasting.naive:Persistence",
}
# The simple references every run evaluates beside its model (``capabilities.baseline``); the
# model of a run "loses" when one of them beats it on test. Kept here as names so that option
# checks need no import; the conformance test checks it against the classes.
BASELINES = (
    "dshw",
    "linear",
    "seasonal_naive_day",
    "seasonal_naive_week",
    "seasonal_mean_7d",
    "climatology",
    "persistence",
)
DEEP = ("lstm", "hybrid")  # Keras networks (the anomaly step's residual forecasters)
# The baselines fitted to each series, which ``auto`` may combine with its candidates; the naive
# ones are references only (combining them overfits the validation days: see combine module).
COMBINED_BASELINES = ("dshw", "linear")


def model_names() -> tuple[str, ...]:
    """Every value of the ``model`` option: the forecasters and ``auto``."""
    return (AUTO, *FORECASTERS)


def forecaster_class(name: str) -> type[Forecaster]:
    """The class registered as ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in FORECASTERS:
        raise ConfigError(f"unknown forecaster {name!r}; known: {', '.join(FORECASTERS)}")
    module, cls = FORECASTERS[name].split(":")
    return getattr(import_module(module), cls)


def create(name: str, settings: ForecastSettings) -> Forecaster:
    """A new, unfitted forecaster ``name``."""
    return forecaster_class(name)(settings)


def check_model(model: str, candidates: tuple[str, ...]) -> None:
    """ConfigError unless ``model`` is ``auto`` or a forecaster and every candidate is one."""
    if model not in model_names():
        raise ConfigError(f"model must be one of {', '.join(model_names())}, got {model!r}")
    unknown = [c for c in candidates if c not in FORECASTERS]
    if unknown or not candidates:
        raise ConfigError(
            f"candidates must be forecasters of {', '.join(FORECASTERS)}, got {list(candidates)}"
        )


def combined_names(candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The forecasters ``auto`` combines: its candidates and ``COMBINED_BASELINES``."""
    return tuple(dict.fromkeys([*candidates, *COMBINED_BASELINES]))


def fitted_names(model: str, candidates: tuple[str, ...]) -> tuple[str, ...]:
    """The forecasters a run fits: the model (or, for ``auto``, its candidates) and every
    baseline, each once, the deep ones first."""
    chosen = candidates if model == AUTO else (model,)
    names = [*chosen, *BASELINES]
    return tuple(sorted(dict.fromkeys(names), key=lambda n: n not in DEEP))
