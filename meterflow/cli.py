"""Typed command-line options for the entry-point scripts, built from the ``*Options`` models.

Every entry point goes through ``run_entry``: options are parsed and validated first — before
any numerical library or MLflow is imported, so ``--help`` and a typo answer at once — store
locations come from the environment, and any ``MeterflowError`` ends the process with one clear
line on stderr (exit code 2) instead of a traceback. The step's function is imported only once its
options are valid.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meterflow.config import Environment, choices
from meterflow.errors import ConfigError, MeterflowError

T = TypeVar("T", bound=BaseModel)

# Libraries whose INFO lines are not progress of this project.
QUIET_LOGGERS = (
    "alembic",
    "urllib3",
    "distributed",
    "numba",
    "matplotlib",
    "pymongo",
    "mlflow",
)


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "options"
        got = err.get("input")
        shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
        message = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {message}{shown}")
    return "; ".join(parts)


def _help(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    allowed = choices(model, name)
    listed = f" {{{', '.join(allowed)}}}" if allowed else ""
    text = f"{field.description or ''}{listed} (default: {field.default!r})"
    return text.replace("%", "%%")  # argparse formats help strings with %


def parse_options(model: type[T], argv: Sequence[str] | None = None, prog: str = "") -> T:
    """Parse ``--name value`` options into ``model``; raise ConfigError with one line if invalid."""
    parser = argparse.ArgumentParser(prog=prog or None, description=model.__doc__)
    for name in model.model_fields:
        parser.add_argument(
            f"--{name}", dest=name, default=None, metavar="VALUE", help=_help(model, name)
        )
    ns, unknown = parser.parse_known_args(argv)
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; see --help")
    values = {k: v for k, v in vars(ns).items() if v is not None}
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise ConfigError(_validation_message(e)) from None


def setup_logging() -> None:
    """Progress lines of this project at INFO; other libraries only from WARNING."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def mark_project_run_rejected(env: Environment, entry_point: str, reason: str) -> None:
    """Under ``mlflow run`` (which creates the run before the command starts), name and describe
    the run as rejected so that the runs list says why it failed."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id:
        from meterflow import tracking

        tracking.mark_rejected(run_id, env.tracking_uri, entry_point, reason)


def run_entry(entry_point: str, argv: Sequence[str] | None = None) -> int:
    """Parse the options of ``entry_point``, read the environment, import and run its task;
    return the process exit code."""
    from meterflow.entrypoints import ENTRY_POINTS

    spec = ENTRY_POINTS[entry_point]
    setup_logging()
    try:
        env = _environment()
        try:
            options = parse_options(spec.options, argv, prog=entry_point)
        except ConfigError as e:
            mark_project_run_rejected(env, entry_point, str(e))
            raise
        module, _, function = spec.task.partition(":")
        getattr(import_module(module), function)(options, env)
    except MeterflowError as e:
        print(f"error: {entry_point}: {e}", file=sys.stderr)
        return 2
    return 0


def _environment() -> Environment:
    try:
        return Environment.from_env()
    except ValidationError as e:
        raise ConfigError(f"environment: {_validation_message(e)}") from None
