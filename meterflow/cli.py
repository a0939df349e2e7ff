"""Typed command-line options for the entry-point scripts, built from the ``*Options`` models.

Every entry point goes through ``run_entry``: options are parsed and validated once, store
locations come from the environment, and any ``MeterflowError`` ends the process with one clear
line on stderr (exit code 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meterflow.config import Environment
from meterflow.errors import ConfigError, MeterflowError

T = TypeVar("T", bound=BaseModel)


def _validation_message(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "options"
        got = err.get("input")
        shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
        parts.append(f"{loc}: {err['msg']}{shown}")
    return "; ".join(parts)


def parse_options(model: type[T], argv: Sequence[str] | None = None, prog: str = "") -> T:
    """Parse ``--name value`` options into ``model``; raise ConfigError with one line if invalid."""
    parser = argparse.ArgumentParser(prog=prog or None, description=model.__doc__)
    for name, field in model.model_fields.items():
        parser.add_argument(
            f"--{name}",
            dest=name,
            default=None,
            metavar="VALUE",
            help=f"{field.description or ''} (default: {field.default!r})",
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
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("alembic", "urllib3", "distributed", "numba", "matplotlib", "pymongo"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_entry(
    entry_point: str,
    model: type[T],
    task: Callable[[T, Environment], object],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse options, read the environment, run ``task``; return the process exit code."""
    setup_logging()
    try:
        options = parse_options(model, argv, prog=entry_point)
        try:
            env = Environment.from_env()
        except ValidationError as e:
            raise ConfigError(f"environment: {_validation_message(e)}") from None
        task(options, env)
    except MeterflowError as e:
        print(f"error: {entry_point}: {e}", file=sys.stderr)
        return 2
    return 0
