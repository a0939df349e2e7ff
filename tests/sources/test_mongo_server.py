"""The local MongoDB server starts again after a run that was killed while it ran."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest

from meterflow.processes import process_alive
from meterflow.sources.mongo_server import LocalMongoServer
from tests.conftest import REPO

# Starts a server on the db (argv[1]), writes a document, says "ready" and waits to be killed.
RUN = """
import sys, time
from pathlib import Path
import pymongo
from meterflow.sources.mongo_server import LocalMongoServer
server = LocalMongoServer(Path(sys.argv[1]))
with server as uri, pymongo.MongoClient(uri) as client:
    client.meterflow.t.insert_one({"x": 1})
    print("ready", flush=True)
    time.sleep(600)
"""


def _killed_run(db: Path) -> int:
    """Run RUN in a process, SIGKILL it once its server is up; return the orphaned server's pid."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, str(db)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    return int(db.with_suffix(".pid").read_text())


def _ping_and_count(uri: str) -> int:
    with pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000) as client:
        client.admin.command("ping")
        return client.meterflow.t.count_documents({})


def test_server_left_running_by_a_killed_run_is_stopped_before_the_next_start(tmp_path: Path):
    db = tmp_path / "mongo" / "nx.db"
    orphan = _killed_run(db)
    try:
        assert process_alive(orphan), "the server child should outlive its killed parent"
        with LocalMongoServer(db) as uri:
            assert not process_alive(orphan)
            assert _ping_and_count(uri) == 1  # same data, now served by the new server
            assert int(db.with_suffix(".pid").read_text()) != orphan
        assert not db.with_suffix(".pid").exists()
    finally:
        if process_alive(orphan):
            os.kill(orphan, signal.SIGKILL)


@pytest.mark.parametrize("stale_pid", ["dead", "unrelated", "garbage"])
def test_stale_pid_file_is_removed_and_its_process_left_alone(tmp_path: Path, stale_pid: str):
    db = tmp_path / "nx.db"
    if stale_pid == "dead":
        code = "import os; print(os.getpid())"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        content = done.stdout.strip()
    else:
        content = str(os.getpid()) if stale_pid == "unrelated" else "not a pid"
    db.with_suffix(".pid").write_text(content)
    with LocalMongoServer(db) as uri:
        assert _ping_and_count(uri) == 0
    assert process_alive(os.getpid())
