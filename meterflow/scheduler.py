"""Run the pipeline on a cron schedule, one run at a time.

    python -m meterflow.scheduler --cron "0 2 * * *" \\
        [--command "mlflow run . -e retrain --env-manager local"] [--timezone Europe/Rome]

APScheduler fires the command (split like a shell would, run without a shell); a run still going
at the next fire time makes that fire time skip (``max_instances=1``), fire times missed while
the machine was down collapse into one run (``coalesce=True``) if less than
``MISFIRE_GRACE_S`` late. Each start, exit code and duration is logged. This keeps scheduled
runs apart; keeping them apart from runs started by hand is ``meterflow.runlock.RunLock``'s job,
taken by the entry point.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from meterflow.errors import ConfigError, MeterflowError

log = logging.getLogger("meterflow.scheduler")  # also under `python -m`

DEFAULT_COMMAND = "mlflow run . -e retrain --env-manager local"
JOB_ID = "meterflow"
MISFIRE_GRACE_S = 3600

Runner = Callable[..., Any]


def parse_cron(cron: str, timezone: str | None = None) -> CronTrigger:
    """A trigger for a five-field crontab expression (in ``timezone``, default local); ConfigError
    (one line) if either is invalid."""
    try:
        tz = ZoneInfo(timezone) if timezone else None
    except (ValueError, LookupError):  # ZoneInfoNotFoundError is a KeyError
        raise ConfigError(f"invalid --timezone {timezone!r}: no such time zone") from None
    try:
        return CronTrigger.from_crontab(cron, timezone=tz)
    except ValueError as e:
        message = " ".join(str(e).split())
        raise ConfigError(f"invalid --cron {cron!r}: {message}") from None


def run_command(command: Sequence[str], runner: Runner = subprocess.run) -> int:
    """Run ``command`` once, logging its start, exit code and duration; return the exit code."""
    shown = shlex.join(command)
    log.info("scheduled run started: %s", shown)
    start = time.monotonic()
    try:
        returncode = int(runner(list(command), check=False).returncode)
    except OSError as e:
        log.error("scheduled run could not start: %s: %s", shown, e)
        return 127
    level = logging.INFO if returncode == 0 else logging.ERROR
    log.log(
        level,
        "scheduled run finished: exit code %d after %.1f s: %s",
        returncode,
        time.monotonic() - start,
        shown,
    )
    return returncode


def build_scheduler(
    cron: str,
    command: str | Sequence[str] = DEFAULT_COMMAND,
    runner: Runner = subprocess.run,
    timezone: str | None = None,
) -> tuple[BlockingScheduler, Job]:
    """A (not started) scheduler with one job that runs ``command`` on ``cron``."""
    trigger = parse_cron(cron, timezone)
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if not argv:
        raise ConfigError("--command is empty")
    scheduler = BlockingScheduler(timezone=trigger.timezone)
    job = scheduler.add_job(
        run_command,
        trigger,
        args=[argv],
        kwargs={"runner": runner},
        id=JOB_ID,
        name=shlex.join(argv),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
    )
    return scheduler, job


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m meterflow.scheduler", description=__doc__)
    parser.add_argument("--cron", required=True, help='crontab expression, e.g. "0 2 * * *"')
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="command to run")
    parser.add_argument("--timezone", default=None, help="time zone of --cron (default: local)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Schedule and block until interrupted; exit code 2 with one line on a bad option."""
    from meterflow.cli import setup_logging

    args = _parser().parse_args(argv)
    setup_logging()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # keeps skipped-run warnings
    try:
        scheduler, job = build_scheduler(args.cron, args.command, timezone=args.timezone)
    except MeterflowError as e:
        print(f"error: scheduler: {e}", file=sys.stderr)
        return 2
    first = job.trigger.get_next_fire_time(None, datetime.now(job.trigger.timezone))
    log.info("running %r on %r; first run at %s", job.name, args.cron, first)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
