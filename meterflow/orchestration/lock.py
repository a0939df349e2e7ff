"""One meterflow run at a time: an exclusive lock file in the data folder with a holder record.

The lock is ``fcntl.flock`` on a descriptor held for the lock's lifetime, so the kernel releases
it when the holder exits or is killed: a dead holder never blocks the next run. The file also
holds a JSON record of the holder (pid, host, start time, what, free-form info such as the MLflow
run id). A clean release empties the record; a record found under a free lock therefore belongs
to a run that died, and the new holder gets it as ``previous`` to clean up after it (e.g. mark
its MLflow runs KILLED).

It guards the data folder, not a database: it works whatever MongoDB is used (the local
nx-27017 server or a remote ``MONGODB_URI``), for runs on one host, or on several hosts sharing
the data folder over a filesystem whose ``flock`` works across hosts (e.g. NFSv4). Children
forked without ``exec`` inherit the descriptor and keep the lock until they exit.

>>> with RunLock(Path("data/meterflow.lock"), what="main") as lock:
...     lock.update(mlflow_run_id="abc")
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from meterflow.errors import MeterflowError

log = logging.getLogger(__name__)


class LockHeld(MeterflowError):
    """Another live process holds the run lock; the message names it on one line."""

    def __init__(self, path: Path, holder: dict[str, Any] | None) -> None:
        super().__init__(f"another meterflow run holds {path}: {describe_holder(holder)}")
        self.path, self.holder = path, holder


def describe_holder(record: dict[str, Any] | None) -> str:
    """``pid 12 on host 'h', 'main', started 2024-01-10T02:00:00+00:00`` — always one line."""
    if not record:
        return "holder unknown (no readable record)"
    text = (
        f"pid {record.get('pid')} on host {record.get('host')!r}, {record.get('what')!r}, "
        f"started {record.get('started')}"
    )
    info = record.get("info") or {}
    if info:
        text += " (" + ", ".join(f"{k}={v}" for k, v in info.items()) + ")"
    return " ".join(text.split())


def read_holder(path: Path) -> dict[str, Any] | None:
    """The holder record in the lock file at ``path``, or None if absent, empty or unreadable."""
    for attempt in range(3):  # a holder may be writing its record right now
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            return None
        if not text.strip():
            return None
        try:
            record = json.loads(text)
            return record if isinstance(record, dict) else None
        except json.JSONDecodeError:
            if attempt < 2:
                time.sleep(0.05)
    return None


class RunLock:
    """Exclusive, non-blocking run lock on ``path`` for a run doing ``what``.

    ``acquire()`` raises :class:`LockHeld` while a live process holds it. After taking over
    from a holder that died, ``previous`` is that holder's record (else None).
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.previous: dict[str, Any] | None = None
        self.record: dict[str, Any] = {}
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> dict[str, Any] | None:
        """Take the lock or raise :class:`LockHeld`; return the record of a dead holder, if any."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this RunLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(self.path, read_holder(self.path)) from None
        self._fd = fd
        self.previous = read_holder(self.path)
        if self.previous:
            log.warning(
                "taking over %s from a run that ended without releasing it: %s",
                self.path,
                describe_holder(self.previous),
            )
        self.record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
            "what": self.what,
            "info": {},
        }
        self._write()
        return self.previous

    def update(self, **info: Any) -> None:
        """Add free-form info (e.g. ``mlflow_run_id=...``) to the holder record."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        self.record["info"].update(info)
        self._write()

    def release(self) -> None:
        """Empty the record (a clean end) and release the lock; a no-op if not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _write(self) -> None:
        assert self._fd is not None
        data = json.dumps(self.record, default=str).encode() + b"\n"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)
        os.fsync(self._fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
