"""A local MongoDB wire-protocol server (nx-27017 over SQLite) for the default run and tests.

Code talks to it only through pymongo and a URI, so the same code runs against a real MongoDB.
Known gaps of nx-27017 that the adapters respect: ``$match`` on datetimes inside ``aggregate`` is
wrong (use ``find`` with explicit filters) and upserts of new documents are slow (use
``insert_many``).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import pymongo

from meterflow.errors import SourceError

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        log_file = self.db_path.with_suffix(".log")
        options = {
            "--db": self.db_path,
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
                    source="newmongo",
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
            source="newmongo",
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
