"""A local MongoDB wire-protocol server (nx-27017 over SQLite) for the default run and tests.

Code talks to it only through pymongo and a URI, so the same code runs against a real MongoDB.
Known gaps of nx-27017 that the adapters respect: ``$match`` on datetimes inside ``aggregate`` is
wrong (use ``find`` with explicit filters) and upserts of new documents are slow (use
``insert_many``).

A run killed before it could stop its server leaves that server running (it is started in its
own session) and its ``<db>.pid`` file behind, which would make the next server on the same data
exit at once. ``start()`` therefore first stops such an orphan (Linux: found through ``/proc``).
It assumes no other live run uses the same data; ``meterflow.orchestration.lock.RunLock``
ensures that.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from types import TracebackType

import pymongo

from meterflow.domain import SOURCE_NEWMONGO
from meterflow.errors import SourceError
from meterflow.processes import process_alive

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_db(pid: int) -> Path | None:
    """The ``--db`` file of process ``pid`` if it is an nx-27017 server, else None."""
    try:
        args = [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except (OSError, UnicodeDecodeError):
        return None
    if not any("nx_27017" in a for a in args):
        return None
    values = [v for a, v in pairwise(args) if a == "--db"]
    values += [a.removeprefix("--db=") for a in args if a.startswith("--db=")]
    if not values:
        return None
    db = Path(values[-1])
    if not db.is_absolute():
        try:
            db = Path(os.readlink(f"/proc/{pid}/cwd")) / db
        except OSError:
            return None
    return db.resolve()


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def stop_orphan(db_path: Path, timeout_s: float = 10) -> None:
    """Stop a server left running on ``db_path`` by a killed run and remove its stale pid file.

    A pid file naming a dead process, or a live one that is not an nx-27017 server for this db
    (the pid was reused), is just removed. The server gets SIGTERM, then SIGKILL after
    ``timeout_s``.
    """
    pid_file = Path(db_path).with_suffix(".pid")
    try:
        pid = int(pid_file.read_text().strip())
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pid = 0
    if pid > 0 and process_alive(pid) and _server_db(pid) == Path(db_path).resolve():
        log.warning("stopping a local MongoDB server left running (pid %d, data %s)", pid, db_path)
        try:
            os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, timeout_s):
                os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 5)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)


class LocalMongoServer:
    """Start ``nx-27017`` on loopback with its data in ``db_path``; stop it on exit.

    >>> with LocalMongoServer(Path("data/mongo/nx.db")) as uri:
    ...     pymongo.MongoClient(uri).admin.command("ping")
    """

    def __init__(self, db_path: Path, port: int | None = None, startup_timeout_s: float = 30):
        self.db_path = Path(db_path)
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> str:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        stop_orphan(self.db_path)
        log_file = self.db_path.with_suffix(".log")
        options = {
            "--db": self.db_path.resolve(),
            "--host": "127.0.0.1",
            "--port": self.port,
            "--log-file": log_file,
            "--pid-file": self.db_path.with_suffix(".pid"),
        }
        cmd = [sys.executable, "-m", "nx_27017.nx_27017"]
        cmd += [str(part) for option in options.items() for part in option]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise SourceError(
                    f"local MongoDB server exited ({self._proc.returncode}); see {log_file}",
                    source=SOURCE_NEWMONGO,
                )
            try:
                with pymongo.MongoClient(self.uri, serverSelectionTimeoutMS=500) as client:
                    client.admin.command("ping")
                log.info("local MongoDB server on %s (data %s)", self.uri, self.db_path)
                return self.uri
            except pymongo.errors.PyMongoError:
                time.sleep(0.2)
        self.stop()
        raise SourceError(
            f"local MongoDB server did not answer within {self.startup_timeout_s:.0f}s; "
            f"see {log_file}",
            source=SOURCE_NEWMONGO,
        )

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
