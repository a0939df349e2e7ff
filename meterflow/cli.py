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
import re
import sqlite3
import sys
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from meterflow.errors import ConfigError, MeterflowError
from meterflow.orchestration.lock import LockHeld
from meterflow.redact import redact_uri
from meterflow.settings import Environment, choices

T = TypeVar("T", bound=BaseModel)

# Libraries whose INFO lines are not progress of this project.
QUIET_LOGGERS = (
    "absl",
    "alembic",
    "huey",
    "urllib3",
    "distributed",
    "numba",
    "matplotlib",
    "pymongo",
    "mlflow",
)
# The loggers MLflow gives a handler of its own (another date format) when it is imported
# without MLFLOW_CONFIGURE_LOGGING=false: their lines go through the root handler instead.
MLFLOW_LOGGERS = ("mlflow", "alembic", "huey", "sqlalchemy.engine")
LOG_DATE_FORMAT = "%H:%M:%S"


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
        refuse_renamed = getattr(model, "refuse_renamed", None)
        if refuse_renamed is not None:
            refuse_renamed(a[2:].partition("=")[0] for a in unknown if a.startswith("--"))
        raise ConfigError(f"unknown option(s) {unknown}; see --help")
    values = {k: v for k, v in vars(ns).items() if v is not None}
    try:
        return model.model_validate(values)
    except ValidationError as e:
        raise ConfigError(_validation_message(e)) from None


def log_format(step: str) -> str:
    """``HH:MM:SS LEVEL [step] logger: message``."""
    return f"%(asctime)s %(levelname)s [{step.replace('%', '%%')}] %(name)s: %(message)s"


def setup_logging(step: str | None = None) -> None:
    """Progress lines of this project at INFO, other libraries' (MLflow's included) from
    WARNING, Python warnings as log lines: all in one format, tagged with ``step`` (the entry
    point; default: the script's name), as a pipeline's steps run at once and interleave."""
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")  # read when MLflow is imported
    step = step or Path(sys.argv[0]).stem or "meterflow"
    logging.basicConfig(level=logging.INFO, format=log_format(step), datefmt=LOG_DATE_FORMAT)
    logging.captureWarnings(True)
    for name in MLFLOW_LOGGERS:  # already configured by an earlier import of MLflow
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_entry(entry_point: str, argv: Sequence[str] | None = None) -> int:
    """Parse the options of ``entry_point``, read the environment, import and run its task;
    return the process exit code. A failure the user can act on (see :func:`failure_reason`)
    ends in one line on stderr, also as the run's name and description; a bug keeps its
    traceback."""
    from meterflow.entrypoints import entry_point as find_entry_point

    spec = find_entry_point(entry_point)
    setup_logging(entry_point)
    run_id = os.environ.get("MLFLOW_RUN_ID")  # MLflow unsets it when the run ends
    env: Environment | None = None
    label = "rejected options"
    try:
        env = read_environment()
        options = parse_options(spec.options, argv, prog=entry_point)
        label = "failed"
        module, _, function = spec.task.partition(":")
        getattr(import_module(module), function)(options, env)
    except Exception as e:
        reason = report_failure(e, entry_point)
        if isinstance(e, LockHeld):
            label = "refused: another run holds the lock"
        if env is not None and not _tracking_failure(e):
            _describe_failed_run(env, run_id, entry_point, reason, label)
        return 2
    return 0


def report_failure(e: Exception, who: str) -> str:
    """Print ``error: <who>: <reason>`` for a failure the user can act on and return the
    reason; re-raise anything else (a bug keeps its traceback)."""
    reason = failure_reason(e)
    if reason is None:
        raise e
    print(f"error: {who}: {reason}", file=sys.stderr)
    return reason


def failure_reason(e: BaseException) -> str | None:
    """One line for a failure the user can act on: a MeterflowError, a full disk, an
    unreachable or damaged tracking store; None for anything else (a bug)."""
    from meterflow.sources.diskspace import disk_full_message, is_disk_full

    if isinstance(e, MeterflowError):
        return str(e)
    if is_disk_full(e):
        return disk_full_message(e)  # type: ignore[arg-type]
    if _tracking_failure(e):
        uri = redact_uri(os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
        return f"tracking store {uri} failed: {type(e).__name__}: {_first_line(str(e))}"
    return None


def _tracking_failure(e: BaseException) -> bool:
    """Whether ``e`` comes from the tracking store (MLflow, its HTTP client or its database)."""
    mlflow_exceptions = sys.modules.get("mlflow.exceptions")
    kinds: list[type] = [sqlite3.DatabaseError]
    if mlflow_exceptions is not None:
        kinds.append(mlflow_exceptions.MlflowException)
    requests_exceptions = sys.modules.get("requests.exceptions")
    if requests_exceptions is not None:
        kinds.append(requests_exceptions.RequestException)
    sqlalchemy_exc = sys.modules.get("sqlalchemy.exc")
    if sqlalchemy_exc is not None:
        kinds.append(sqlalchemy_exc.DatabaseError)
    return isinstance(e, tuple(kinds))


_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/]*@")


def _first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of ``text``, credentials in URLs hidden, at most ``limit``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = _CREDENTIALS.sub(r"\1***:***@", lines[0] if lines else "")
    return line[:limit]


def _describe_failed_run(
    env: Environment, run_id: str | None, entry_point: str, reason: str, label: str
) -> None:
    """Under ``mlflow run`` (which creates the run before the command starts) or a pipeline
    child (``run_id``): name and describe the run as failed, with its reason, so the runs list
    says why. Best effort: a tracking store that fails here only costs a warning."""
    if not run_id:
        return
    try:
        from meterflow import tracking

        tracking.describe_failure(run_id, env.tracking_uri, entry_point, reason, label=label)
    except Exception as e:  # the failure itself is already reported
        logging.getLogger(__name__).warning(
            "run %s: reason not recorded (%s)", run_id, type(e).__name__
        )


def read_environment() -> Environment:
    try:
        return Environment.from_env()
    except ValidationError as e:
        raise ConfigError(f"environment: {_validation_message(e)}") from None
