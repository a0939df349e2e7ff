"""Run the pipeline on a cron schedule, one run at a time.

    python -m meterflow.orchestration.scheduler --cron "0 2 * * *" \\
        [--command "make retrain"] [--timezone Europe/Rome] [--attempts 3] [--retry-delay 900]

APScheduler fires the command (split like a shell would, run without a shell); a run still going
at the next fire time makes that fire time skip (``max_instances=1``), fire times missed while
the machine was down collapse into one run (``coalesce=True``) if less than
``MISFIRE_GRACE_S`` late. A failed run is retried with back-off; each start, exit code, duration
and the reason of a failure (the command's last ``error:`` line) is logged. This keeps scheduled
runs apart; keeping them apart from runs started by hand is the job of
``meterflow.orchestration.lock.RunLock``, taken by the entry point.
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
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger

from meterflow.errors import ConfigError, MeterflowError

log = logging.getLogger("meterflow.orchestration.scheduler")  # also under `python -m`

# `make retrain`: preflight checks, the project's experiment, bounded tracking calls (Makefile)
DEFAULT_COMMAND = "make retrain"
ATTEMPTS = 3  # a failed night is tried this often in all
RETRY_DELAY_S = 900.0  # before the 2nd attempt; doubled before each further one
JOB_ID = "meterflow"
MISFIRE_GRACE_S = 3600

Runner = Callable[[list[str]], tuple[int, str]]


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


def run_streaming(command: Sequence[str]) -> tuple[int, str]:
    """Run ``command``, passing its stderr through line by line; return its exit code and the
    reason it gives: its last ``error:`` line (the project's one-line errors), else its last
    line on stderr."""
    process = subprocess.Popen(list(command), stderr=subprocess.PIPE, text=True, bufsize=1)
    last_error = last = ""
    assert process.stderr is not None
    for line in process.stderr:
        sys.stderr.write(line)
        text = line.strip()
        if text:
            last = text
            if text.startswith("error:"):
                last_error = text
    return process.wait(), last_error or last


def run_command(
    command: Sequence[str],
    runner: Runner = run_streaming,
    *,
    attempts: int = ATTEMPTS,
    retry_delay_s: float = RETRY_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run ``command`` until it succeeds, at most ``attempts`` times, waiting ``retry_delay_s``
    (doubled each time) between attempts; log each start, exit code, duration and the reason of
    a failure; return the last exit code."""
    shown = shlex.join(command)
    returncode = 0
    for attempt in range(1, attempts + 1):
        log.info("scheduled run started (attempt %d of %d): %s", attempt, attempts, shown)
        start = time.monotonic()
        try:
            returncode, reason = runner(list(command))
        except OSError as e:
            log.error("scheduled run could not start: %s: %s", shown, e)
            return 127
        took = time.monotonic() - start
        if returncode == 0:
            log.info("scheduled run finished: exit code 0 after %.1f s: %s", took, shown)
            return 0
        log.error(
            "scheduled run failed: exit code %d after %.1f s: %s", returncode, took, reason or "?"
        )
        if attempt < attempts:
            wait = retry_delay_s * 2 ** (attempt - 1)
            log.warning("retrying in %.0f s (attempt %d of %d)", wait, attempt + 1, attempts)
            sleep(wait)
    return returncode


def build_scheduler(
    cron: str,
    command: str | Sequence[str] = DEFAULT_COMMAND,
    runner: Runner = run_streaming,
    timezone: str | None = None,
    *,
    attempts: int = ATTEMPTS,
    retry_delay_s: float = RETRY_DELAY_S,
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
        kwargs={"runner": runner, "attempts": attempts, "retry_delay_s": retry_delay_s},
        id=JOB_ID,
        name=shlex.join(argv),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=MISFIRE_GRACE_S,
    )
    return scheduler, job


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m meterflow.orchestration.scheduler", description=__doc__
    )
    parser.add_argument("--cron", required=True, help='crontab expression, e.g. "0 2 * * *"')
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="command to run")
    parser.add_argument("--timezone", default=None, help="time zone of --cron (default: local)")
    parser.add_argument(
        "--attempts", type=int, default=ATTEMPTS, help="tries of a failing night, in all"
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        default=RETRY_DELAY_S,
        help="seconds before the 2nd try, doubled before each further one",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Schedule and block until interrupted; exit code 2 with one line on a bad option."""
    from meterflow.cli import setup_logging

    args = _parser().parse_args(argv)
    setup_logging()
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # keeps skipped-run warnings
    try:
        scheduler, job = build_scheduler(
            args.cron,
            args.command,
            timezone=args.timezone,
            attempts=max(1, args.attempts),
            retry_delay_s=args.retry_delay,
        )
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
