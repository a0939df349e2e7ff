"""The forecasters by name: one line each (``model`` option, ``auto`` candidates, baselines).

A forecaster is one module with one class behind the ``ForecasterProtocol`` contract (``base``
module); adding one, Keras or not, is that module plus one ``Entry`` line here, and
``tests/forecasting/test_conformance.py`` runs it through the same checks as every other. What a
run does with it (a baseline, a deep network fitted first, a meter map needed) follows from its
line. Classes are imported on use, so listing the names (``--help``, option checks) loads
neither TensorFlow nor the fitting code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from meterflow.errors import ConfigError

if TYPE_CHECKING:
    from meterflow.forecasting.base import ForecasterProtocol
    from meterflow.forecasting.settings import ForecastSettings

AUTO = "auto"  # the best forecaster, or combination, on the validation split


@dataclass(frozen=True)
class Entry:
    """Where a forecaster's class lives and its part in a run (the conformance test checks the
    flags against the class's ``capabilities``)."""

    where: str  # "module:Class", imported on use
    baseline: bool = False  # a simple reference every run evaluates beside its model
    deep: bool = False  # a Keras network (fitted first; a residual forecaster of the anomaly step)
    combined: bool = False  # a baseline fitted per series that ``auto`` may combine
    needs_locations: bool = False  # reads the meter table's coordinates (a meter map)


FORECASTERS: dict[str, Entry] = {
    "lstm": Entry("meterflow.forecasting.lstm:LstmForecaster", deep=True),
    "hybrid": Entry(
        "meterflow.forecasting.hybrid:HybridForecaster", deep=True, needs_locations=True
    ),
    "dshw": Entry("meterflow.forecasting.dshw:DshwForecaster", baseline=True, combined=True),
    "linear": Entry("meterflow.forecasting.linear:LinearForecaster", baseline=True, combined=True),
    "seasonal_naive_day": Entry("meterflow.forecasting.naive:SeasonalNaiveDay", baseline=True),
    "seasonal_naive_week": Entry("meterflow.forecasting.naive:SeasonalNaiveWeek", baseline=True),
    "seasonal_mean_7d": Entry("meterflow.forecasting.naive:SeasonalMean7d", baseline=True),
    "climatology": Entry("meterflow.forecasting.naive:Climatology", baseline=True),
    "persistence": Entry("meterflow.forecasting.naive:Persistence", baseline=True),
}
# The model of a run "loses" when one of the baselines beats it on test. The naive baselines are
# references only: combining them overfits the validation days (see combine module).
BASELINES = tuple(n for n, e in FORECASTERS.items() if e.baseline)
DEEP = tuple(n for n, e in FORECASTERS.items() if e.deep)
COMBINED_BASELINES = tuple(n for n, e in FORECASTERS.items() if e.combined)


def model_names() -> tuple[str, ...]:
    """Every value of the ``model`` option: the forecasters and ``auto``."""
    return (AUTO, *FORECASTERS)


def entry(name: str) -> Entry:
    """The registry line of ``name`` (ConfigError naming the known ones otherwise)."""
    if name not in FORECASTERS:
        raise ConfigError(f"unknown forecaster {name!r}; known: {', '.join(FORECASTERS)}")
    return FORECASTERS[name]


def forecaster_class(name: str) -> type[ForecasterProtocol]:
    """The class registered as ``name`` (ConfigError naming the known ones otherwise)."""
    module, cls = entry(name).where.split(":")
    return getattr(import_module(module), cls)


def needs_locations(model: str, candidates: tuple[str, ...] = ()) -> bool:
    """Whether a run of ``model`` (``auto``: of its ``candidates``) needs a meter map."""
    names = candidates if model == AUTO else (model,)
    return any(entry(n).needs_locations for n in names)


def make_forecaster(name: str, settings: ForecastSettings) -> ForecasterProtocol:
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
    return tuple(sorted(dict.fromkeys(names), key=lambda n: not entry(n).deep))
