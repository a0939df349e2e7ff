"""Disk space: checked before big writes, allocated before a file is mapped, and an out-of-space
``OSError`` from anywhere told in one line.

A full disk otherwise shows as a raw ``ENOSPC`` traceback (MLflow's artifact logging, a Parquet
write) or, for a file written through a memory map whose blocks were never allocated (a sparse
file), as a SIGBUS that kills the process without a word and leaves its MLflow run RUNNING. So:

- ``require_free_space`` / ``require_space`` / ``require_output_space`` refuse a step before it
  writes (``DiskFullError``), keeping ``SAFETY_MARGIN_BYTES`` free beyond every estimate;
- ``preallocate`` allocates a file's blocks before it is mapped, so a full disk is an error;
- ``is_disk_full`` / ``disk_full_message`` let an entry point print any ENOSPC/EDQUOT failure
  (also one wrapped in another exception, e.g. an ``MlflowException``) as one line.

The estimates are deliberately simple and generous: a table's in-memory size bounds its Parquet
file and CSV preview (``table_bytes``); a model step writes at most ``OUTPUTS_PER_INPUT`` times
its input table plus ``MODEL_BYTES`` per logged model (``model_step_bytes``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd

from meterflow.errors import DiskFullError

StrPath = str | os.PathLike[str]

SAFETY_MARGIN_BYTES = 64 * 2**20  # kept free beyond every estimate (logs, manifests, metadata)
MODEL_BYTES = 50 * 10**6  # per logged model: pyfunc wrapper, code copy, network (2-3 MB seen)
OUTPUTS_PER_INPUT = 2  # a model step's tables (scores, forecasts, assignments) vs its input
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})  # no fallocate here
_ZEROS_CHUNK = 1 << 23  # bytes of zeros per write where fallocate is unsupported (8 MiB)
_REMOTE_NAMES = ("databricks", "databricks-uc")  # MLflow store URIs without a scheme


def free_bytes(path: StrPath) -> int:
    """Bytes free to this user on the file system of ``path`` (of its nearest existing ancestor
    when ``path`` does not exist yet)."""
    return shutil.disk_usage(_existing(Path(path))).free


def require_free_space(path: StrPath, needed_bytes: int, what: str) -> None:
    """Raise ``DiskFullError`` unless the file system of ``path`` has ``needed_bytes`` plus
    ``SAFETY_MARGIN_BYTES`` free (the message counts the margin in what is needed)."""
    needed = needed_bytes + SAFETY_MARGIN_BYTES
    free = free_bytes(path)
    if free < needed:
        raise DiskFullError(path, needed=needed, free=free, what=what)


def require_space(needs: Iterable[tuple[StrPath, int]], what: str) -> None:
    """``require_free_space`` for ``(place, bytes)`` pairs, summed per file system (places on
    one disk share its free space; the message names the one that needs most). A place is a path
    or a store URI (see ``local_path``); remote stores are skipped."""
    per_disk: dict[int, list[tuple[int, Path]]] = {}
    for place, nbytes in needs:
        path = local_path(place)
        if path is not None:
            per_disk.setdefault(_existing(path).stat().st_dev, []).append((nbytes, path))
    for places in per_disk.values():
        biggest = max(places, key=lambda place: place[0])[1]
        require_free_space(biggest, sum(nbytes for nbytes, _ in places), what)


def require_output_space(needed_bytes: int, store: StrPath, what: str) -> None:
    """Raise ``DiskFullError`` unless a step's outputs (``needed_bytes``) fit both the temporary
    folder, where tables and models are written before they are logged, and ``store`` (the local
    artifact or tracking store; a remote one is skipped)."""
    require_space([(tempfile.gettempdir(), needed_bytes), (store, needed_bytes)], what)


def local_path(store: StrPath) -> Path | None:
    """The local path a store writes to: a path or ``file:`` URI as is, a ``sqlite:`` database's
    folder (MLflow's default artifact root ``./mlruns`` sits beside ``sqlite:///mlflow.db``);
    None for a remote store (``http:``, ``s3:``, ``databricks``, ...)."""
    if not isinstance(store, str):
        return Path(store)
    if store in _REMOTE_NAMES:
        return None
    if store.startswith("sqlite:///"):
        database = store.removeprefix("sqlite:///").split("?")[0]
        return Path(database).parent if database not in ("", ":memory:") else None
    parsed = urlparse(store)
    if parsed.scheme == "file":
        return Path(url2pathname(parsed.path))
    return None if parsed.scheme else Path(store)


def table_bytes(*tables: pd.DataFrame) -> int:
    """In-memory size of the tables: a bound on their Parquet files and CSV previews."""
    return sum(int(t.memory_usage(index=True, deep=True).sum()) for t in tables)


def model_step_bytes(inputs: pd.DataFrame, models: int) -> int:
    """What a model step writes, from its input table: ``OUTPUTS_PER_INPUT`` times its size
    plus ``MODEL_BYTES`` per logged model."""
    return OUTPUTS_PER_INPUT * table_bytes(inputs) + models * MODEL_BYTES


def preallocate(fd: int, offset: int, length: int, *, path: StrPath, what: str) -> None:
    """Allocate bytes ``offset .. offset + length`` of the open file ``fd`` (growing it to at
    least their end), so writing them through a memory map cannot meet a full disk (SIGBUS).
    ``os.posix_fallocate``, or zeros written in chunks where the file system lacks it. A full
    disk raises ``DiskFullError`` naming ``path`` and ``length``; the caller truncates back."""
    if length <= 0:
        return
    try:
        try:
            os.posix_fallocate(fd, offset, length)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            _write_zeros(fd, offset, length)
    except OSError as exc:
        if exc.errno not in _FULL_ERRNOS:
            raise
        raise _disk_full_error(exc, path, length, what) from exc


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from or while handling, is an
    ENOSPC/EDQUOT ``OSError`` or a ``DiskFullError``."""
    return _disk_full_cause(exc) is not None


def disk_full_message(exc: OSError, needed_bytes: int | None = None) -> str:
    """One line for an out-of-space failure, naming the file, ``needed_bytes`` when known and
    the space free there: ``not enough disk space at /tmp/x/profiles.parquet: 1.1 GB free``.

    ``exc`` is the ENOSPC/EDQUOT ``OSError`` or, as ``is_disk_full`` accepts, an exception whose
    ``__cause__``/``__context__`` chain holds it (or a ``DiskFullError``, whose message is kept).
    The file is the error's ``filename2`` (the destination of a copy or rename) else its
    ``filename``; EDQUOT says "disk quota exceeded" and no free space (a quota is not shown by
    the file system's free space)."""
    cause = _disk_full_cause(exc) or exc
    if isinstance(cause, DiskFullError):
        return str(cause)
    named = getattr(cause, "filename2", None) or getattr(cause, "filename", None)
    path = os.fsdecode(named) if isinstance(named, str | bytes) else None
    return str(_disk_full_error(cause, path, needed_bytes, what=""))


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (absolute)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _write_zeros(fd: int, offset: int, length: int) -> None:
    """Write ``length`` zero bytes at ``offset`` of ``fd``, in chunks."""
    zeros = memoryview(bytes(min(length, _ZEROS_CHUNK)))
    pos, end = offset, offset + length
    while pos < end:
        pos += os.pwrite(fd, zeros[: min(len(zeros), end - pos)], pos)


def _disk_full_error(
    exc: BaseException, path: StrPath | None, needed: int | None, what: str
) -> DiskFullError:
    """The ``DiskFullError`` of an ENOSPC/EDQUOT ``exc`` at ``path`` (free space where known)."""
    quota = getattr(exc, "errno", None) == errno.EDQUOT
    free = None
    if path is not None and not quota:
        with contextlib.suppress(OSError):  # e.g. no permission to stat the folder
            free = free_bytes(path)
    reason = "disk quota exceeded" if quota else "not enough disk space"
    return DiskFullError(path, needed=needed, free=free, what=what, reason=reason)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and, breadth first, each exception it was raised from or while handling, once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]


def _disk_full_cause(exc: BaseException) -> BaseException | None:
    """The first ``DiskFullError`` or ENOSPC/EDQUOT ``OSError`` in the chain of ``exc``."""
    for e in _chain(exc):
        if isinstance(e, DiskFullError) or (isinstance(e, OSError) and e.errno in _FULL_ERRNOS):
            return e
    return None
