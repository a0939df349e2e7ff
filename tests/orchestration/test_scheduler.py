"""The cron scheduler: fire times from APScheduler, one real command run, one-line errors."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_SCHEDULER_STARTED

from meterflow.errors import ConfigError
from meterflow.orchestration.scheduler import build_scheduler, run_command
from tests.conftest import REPO

ROME = ZoneInfo("Europe/Rome")
PRINT_1 = [sys.executable, "-c", "print(1)"]


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2024, 1, 10, 1, 0, tzinfo=ROME), datetime(2024, 1, 10, 2, 0, tzinfo=ROME)),
        (datetime(2024, 1, 10, 2, 0, 1, tzinfo=ROME), datetime(2024, 1, 11, 2, 0, tzinfo=ROME)),
        (datetime(2024, 1, 10, 23, 0, tzinfo=ROME), datetime(2024, 1, 11, 2, 0, tzinfo=ROME)),
    ],
)
def test_next_fire_time_is_the_next_2am(now: datetime, expected: datetime):
    _, job = build_scheduler("0 2 * * *", PRINT_1, timezone="Europe/Rome")
    assert job.trigger.get_next_fire_time(None, now) == expected


def test_next_fire_time_in_local_time_by_default():
    _, job = build_scheduler("0 2 * * *", "true")
    now = datetime.now(job.trigger.timezone)
    fire = job.trigger.get_next_fire_time(None, now)
    assert (fire.hour, fire.minute, fire.second) == (2, 0, 0)
    assert now < fire <= now + timedelta(days=1, hours=1)  # an hour of slack for DST


def test_one_run_at_a_time():
    _, job = build_scheduler("0 2 * * *", "mlflow run . -e retrain --env-manager local")
    assert job.max_instances == 1 and job.coalesce is True
    assert job.args == (["mlflow", "run", ".", "-e", "retrain", "--env-manager", "local"],)


def test_job_runs_the_command_and_logs_its_exit_code(caplog):
    _, job = build_scheduler("0 2 * * *", PRINT_1)
    with caplog.at_level(logging.INFO, logger="meterflow.orchestration.scheduler"):
        assert job.func(*job.args, **job.kwargs) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("scheduled run started (attempt 1 of 3): ") for m in messages)
    assert any("exit code 0 after" in m for m in messages)


def test_failing_and_missing_commands_are_logged_as_errors(caplog):
    failing = [sys.executable, "-c", "import sys; sys.exit('error: main: no data')"]
    with caplog.at_level(logging.INFO, logger="meterflow.orchestration.scheduler"):
        assert run_command(failing, attempts=1) == 1
        assert run_command(["/nonexistent/meterflow-command"]) == 127
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "exit code 1 after" in errors[0] and errors[0].endswith("error: main: no data")
    assert "could not start" in errors[1]


def test_a_failed_night_is_retried_with_back_off_and_its_reason_logged(caplog):
    results = iter([(1, "error: retrain: tracking server down"), (1, "error: x"), (0, "")])
    waits: list[float] = []
    with caplog.at_level(logging.INFO, logger="meterflow.orchestration.scheduler"):
        code = run_command(
            ["make", "retrain"],
            lambda argv: next(results),
            attempts=3,
            retry_delay_s=60,
            sleep=waits.append,
        )
    assert code == 0 and waits == [60, 120]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].endswith("error: retrain: tracking server down") and len(errors) == 2


def test_a_night_that_keeps_failing_stops_after_its_attempts():
    calls: list[list[str]] = []

    def runner(argv: list[str]) -> tuple[int, str]:
        calls.append(argv)
        return 2, "error: retrain: lock held"

    assert run_command(["x"], runner, attempts=2, retry_delay_s=1, sleep=lambda s: None) == 2
    assert len(calls) == 2


def test_the_default_command_is_the_nightly_make_target():
    _, job = build_scheduler("0 2 * * *")
    assert job.args == (["make", "retrain"],)
    makefile = (REPO / "Makefile").read_text()
    assert "LAUNCH = python -m meterflow.orchestration.launch --experiment-name" in makefile
    assert "@$(LAUNCH) -e retrain" in makefile.split("retrain:")[1]


def test_the_started_scheduler_runs_the_command(tmp_path: Path):
    out = tmp_path / "ran"
    code = f"import pathlib; pathlib.Path({str(out)!r}).write_text('1')"
    scheduler, job = build_scheduler("0 2 * * *", [sys.executable, "-c", code])
    started, done = threading.Event(), threading.Event()
    scheduler.add_listener(lambda event: started.set(), EVENT_SCHEDULER_STARTED)
    scheduler.add_listener(lambda event: done.set(), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    thread = threading.Thread(target=scheduler.start, daemon=True)
    thread.start()
    try:
        assert started.wait(timeout=30)
        job.modify(next_run_time=datetime.now(job.trigger.timezone))
        assert done.wait(timeout=60)
    finally:
        scheduler.shutdown(wait=True)
        thread.join(timeout=10)
    assert out.read_text() == "1"


@pytest.mark.parametrize(
    ("cron", "expected"),
    [("0 2 * *", "Wrong number of fields"), ("61 2 * * *", "'61'"), ("0 2 * * moon", "moon")],
)
def test_bad_cron_expression_is_one_clear_line(cron: str, expected: str):
    with pytest.raises(ConfigError, match="invalid --cron") as e:
        build_scheduler(cron, PRINT_1)
    assert len(str(e.value).splitlines()) == 1 and expected in str(e.value)


def test_bad_cron_on_the_command_line_exits_2_with_one_line():
    out = subprocess.run(
        [sys.executable, "-m", "meterflow.orchestration.scheduler", "--cron", "0 2 * *"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: scheduler: invalid --cron"), out.stderr
    assert "Traceback" not in out.stderr
