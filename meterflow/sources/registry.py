"""The data sources' adapters, resolved from their one line each in ``domain.SOURCE_ADAPTERS``
(names in priority order: newest store first).

A new source is one adapter module (a class following ``sources.contract.Source``) and one line
there; its ETL runs through ``sources.contract.etl_source`` (entry point ``etl_<name>``, script
``etl_source.py``, unless it has a dedicated one), and the pipeline runs its chain
(``orchestration.steps.source_steps``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from meterflow import domain
from meterflow.errors import ConfigError

if TYPE_CHECKING:
    from meterflow.sources.contract import Source


def source_names() -> tuple[str, ...]:
    """The registered source names in priority order."""
    return tuple(domain.SOURCE_ADAPTERS)


def source_class(name: str) -> type[Source]:
    """The adapter class of source ``name`` (ConfigError naming the known ones otherwise)."""
    where = domain.SOURCE_ADAPTERS.get(name)
    if where is None:
        raise ConfigError(f"unknown source {name!r}; known: {', '.join(source_names())}")
    module, cls = where.split(":")
    return getattr(import_module(module), cls)


def etl_step(name: str) -> str:
    """The ETL entry point of source ``name``."""
    return f"etl_{name}"
