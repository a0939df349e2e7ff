"""Typed settings, validated once at the edge (entry points) and handed down as plain values.

- ``environment``: where the stores and the tracking server are (environment variables only).
- ``shared``: the base of the entry points' options and the option types only they have.
- ``steps``: one options model per step entry point: the step's parameters, declared once in
  its pure package (``meterflow.<package>.params``), plus its inputs.
- ``pipeline``: the ``main``/``retrain`` options, generated from the steps' parameters with a
  prefix per step, and :func:`step_options`, which builds a child's options from them.

``MLproject`` mirrors the options models (``python -m meterflow.entrypoints > MLproject``).
"""

from meterflow.settings.environment import DEFAULT_EXPERIMENT, Environment
from meterflow.settings.pipeline import PipelineOptions, RetrainOptions, step_options
from meterflow.settings.shared import Options, choices, parse_utc
from meterflow.settings.steps import (
    AnomalyOptions,
    ClusteringOptions,
    EtlNewMongoOptions,
    EtlOldMongoOptions,
    EtlSourceOptions,
    EtlSqlOptions,
    ForecastingOptions,
    HarmonizationOptions,
    LoadNewMongoOptions,
    ScoreOptions,
)

__all__ = [
    "DEFAULT_EXPERIMENT",
    "AnomalyOptions",
    "ClusteringOptions",
    "Environment",
    "EtlNewMongoOptions",
    "EtlOldMongoOptions",
    "EtlSourceOptions",
    "EtlSqlOptions",
    "ForecastingOptions",
    "HarmonizationOptions",
    "LoadNewMongoOptions",
    "Options",
    "PipelineOptions",
    "RetrainOptions",
    "ScoreOptions",
    "choices",
    "parse_utc",
    "step_options",
]
