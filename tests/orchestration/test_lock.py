"""The run lock across real processes: a live holder blocks, a killed one is taken over."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.errors import MeterflowError
from meterflow.orchestration.lock import LockHeld, RunLock, read_holder
from tests.conftest import REPO

# Holds the lock, records a run id, says "ready", and releases when its stdin is closed.
HOLDER = """
import sys
from pathlib import Path
from meterflow.orchestration.lock import RunLock
with RunLock(Path(sys.argv[1]), what="retrain") as lock:
    lock.update(mlflow_run_id="run-123")
    print("ready", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A separate process holding the lock at ``tmp_path / 'meterflow.lock'``."""
    path = tmp_path / "meterflow.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_second_acquire_in_another_process_fails_fast_naming_the_holder(holder):
    proc, path = holder
    started = time.monotonic()
    with pytest.raises(LockHeld) as e:
        RunLock(path, what="main").acquire()
    assert time.monotonic() - started < 2
    message = str(e.value)
    assert isinstance(e.value, MeterflowError)
    assert len(message.splitlines()) == 1
    assert f"pid {proc.pid}" in message
    assert socket.gethostname() in message and "retrain" in message and "started 20" in message
    assert "mlflow_run_id=run-123" in message


def test_update_info_is_visible_to_a_reader(holder):
    proc, path = holder
    record = read_holder(path)
    assert record is not None
    assert record["pid"] == proc.pid and record["what"] == "retrain"
    assert record["info"] == {"mlflow_run_id": "run-123"}


def test_lock_of_a_killed_holder_is_taken_over_with_its_record(holder, caplog):
    proc, path = holder
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    lock = RunLock(path, what="main")
    with caplog.at_level(logging.WARNING, logger="meterflow.orchestration.lock"), lock:
        assert lock.previous is not None
        assert lock.previous["pid"] == proc.pid
        assert lock.previous["info"] == {"mlflow_run_id": "run-123"}
        assert read_holder(path)["pid"] == os.getpid()
    takeovers = [r for r in caplog.records if "taking over" in r.getMessage()]
    assert len(takeovers) == 1 and str(proc.pid) in takeovers[0].getMessage()


def test_clean_release_by_another_process_leaves_no_previous_holder(holder):
    proc, path = holder
    proc.communicate("", timeout=30)  # closing stdin ends the holder's with-block
    assert proc.returncode == 0
    assert read_holder(path) is None
    with RunLock(path, what="main") as lock:
        assert lock.previous is None


def test_releasing_lets_the_next_acquire_succeed(tmp_path: Path):
    path = tmp_path / "sub" / "meterflow.lock"
    first = RunLock(path, what="main")
    assert first.acquire() is None
    with pytest.raises(LockHeld, match=f"pid {os.getpid()} "):
        RunLock(path, what="retrain").acquire()  # another open file: blocked in-process too
    first.release()
    first.release()  # a second release is a no-op
    with RunLock(path, what="retrain") as second:
        assert second.held and second.previous is None
    assert not second.held and path.exists()


def test_the_pipeline_refuses_to_start_while_another_run_holds_the_lock(holder, mongo_uri):
    """Also against an external MongoDB server: the lock lives in the data folder."""
    from meterflow.orchestration.pipeline import run_pipeline
    from meterflow.settings import Environment, RetrainOptions

    proc, path = holder
    env = Environment(
        data_dir=path.parent,
        sql_url=f"sqlite:///{path.parent / 'h.db'}",
        mongodb_uri=mongo_uri,
        mongo_database="locked",
        experiment="locked",
        tracking_uri=f"sqlite:///{path.parent / 'mlflow.db'}",
    )
    with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
        run_pipeline(RetrainOptions(), env)
    assert not (path.parent / "h.db").exists()  # nothing was started
