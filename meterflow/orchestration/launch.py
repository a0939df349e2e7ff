"""``mlflow run .`` with the preflight checks first and one line for every failure: what
``make demo``, ``make retrain`` and the scheduler start.

    python -m meterflow.orchestration.launch [-e retrain] [-P name=value ...]

The checks (``meterflow.orchestration.preflight``) answer in seconds; then the project runs in
this process (``tracking.run_project``: local environment, the project's experiment), so a
tracking server lost while MLflow ends the run gives one line here, not MLflow's traceback; the
next pipeline run ends such a run (``meterflow.orchestration.reconcile``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from meterflow.settings import DEFAULT_EXPERIMENT

log = logging.getLogger("meterflow.orchestration.launch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m meterflow.orchestration.launch", description=__doc__
    )
    parser.add_argument("-e", "--entry-point", default="main", help="entry point (default main)")
    parser.add_argument(
        "-P", dest="params", action="append", default=[], metavar="NAME=VALUE", help="option"
    )
    parser.add_argument("--experiment-name", default=None, help="default: the project's")
    return parser


def parse_params(pairs: Sequence[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``; ConfigError on a pair without ``=``."""
    from meterflow.errors import ConfigError

    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"-P {pair!r}: expected NAME=VALUE")
        params[name.strip()] = value
    return params


def main(argv: Sequence[str] | None = None) -> int:
    import os

    from meterflow.cli import report_failure, setup_logging
    from meterflow.orchestration.preflight import run_checks

    args = _parser().parse_args(argv)
    setup_logging()
    experiment = args.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
    try:
        params = parse_params(args.params)
        run_checks(start_over=params.get("start_over", "").lower() == "true")
        from meterflow import tracking

        ok = tracking.run_project(args.entry_point, params, experiment or DEFAULT_EXPERIMENT)
        return 0 if ok else 1
    except Exception as e:
        report_failure(e, args.entry_point)
        return 2


if __name__ == "__main__":
    sys.exit(main())
