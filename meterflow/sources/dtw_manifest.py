"""The manifest of a DTW cache folder (``meterflow.sources.dtw_cache``): its fields and their
checks, the block checksums of the matrix file, its atomic replacement, and the folder's lock and
housekeeping (torn appends, leftovers of interrupted updates)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import mmap
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xxhash

from meterflow.profiles.dtw.kernel import n_pairs

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
MANIFEST = "manifest.json"
READY, UPDATING = "ready", "updating"  # manifest states: in use / slots being rewritten in place
_HASH_THREADS = 8  # threads hashing blocks (verification is memory-bound beyond that)
_FILE_NAME = re.compile(r"matrix-[0-9a-f]{16}\.bin")
_FREE = "-"  # how a free slot enters the matrix key (profile hashes are 32 hex digits)


def matrix_key(
    slots: Sequence[str | None], *, length: int, window: int, normalization: str, dtype: str
) -> str:
    """Key of a matrix's content: the profile hash of each slot (None = free) and the
    parameters (32 hex digits)."""
    h = hashlib.sha256()
    h.update(f"v{FORMAT_VERSION}|l{length}|w{window}|{normalization}|{dtype}|".encode())
    for s in slots:
        h.update((s or _FREE).encode())
    return h.hexdigest()[:32]


def new_epoch() -> str:
    """A fresh epoch: changes whenever bytes that a reader may hold are rewritten in place."""
    return uuid.uuid4().hex[:16]


def block_digests(path: Path, nbytes: int, block_bytes: int, first: int = 0) -> list[str]:
    """xxh3-128 digests of blocks ``first, first + 1, ..`` of the first ``nbytes`` bytes of
    ``path`` (blocks of ``block_bytes``, the last one may be partial). Hashes a read-only map
    of the file (no copy), blocks in parallel threads (xxhash releases the GIL); the caller has
    checked the file's size."""
    starts = range(first * block_bytes, nbytes, block_bytes)
    if not starts:
        return []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), nbytes, access=mmap.ACCESS_READ) as m:
        view = memoryview(m)

        def digest(lo: int) -> str:
            return xxhash.xxh3_128_hexdigest(view[lo : min(lo + block_bytes, nbytes)])

        try:
            workers = min(len(starts), os.cpu_count() or 1, _HASH_THREADS)
            if workers == 1:
                return [digest(lo) for lo in starts]
            with ThreadPoolExecutor(workers) as pool:
                return list(pool.map(digest, starts))
        finally:
            view.release()


def manifest_digest(body: dict[str, Any]) -> str:
    """SHA-256 of a manifest's fields (the ``digest`` field aside)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_manifest(folder: Path) -> Any:
    """The parsed manifest of ``folder`` (unchecked)."""
    return json.loads((folder / MANIFEST).read_text())


def manifest_problem(
    folder: Path, manifest: Any, expected: dict[str, Any], *, itemsize: int, verify: bool
) -> str | None:
    """What is wrong with a manifest and its matrix file, or None. ``expected``: the fields the
    caller's parameters fix; ``itemsize``: bytes per stored distance; ``verify``: also check
    every block digest."""
    if not isinstance(manifest, dict):
        return "manifest is not an object"
    body = {k: v for k, v in manifest.items() if k != "digest"}
    if manifest.get("digest") != manifest_digest(body):
        return "manifest digest mismatch (manifest edited or damaged)"
    for field, value in expected.items():
        if manifest[field] != value:
            return f"manifest {field}={manifest[field]!r}, expected {value!r}"
    if manifest["state"] != READY:
        return f"an in-place update was interrupted (manifest state {manifest['state']!r})"
    slots = manifest["hashes"]
    taken = [h for h in slots if h is not None]
    if manifest["n"] != len(slots) or len(set(taken)) != len(taken):
        return "manifest hash list does not match n or repeats a profile"
    key = matrix_key(
        slots,
        length=manifest["length"],
        window=manifest["window"],
        normalization=manifest["normalization"],
        dtype=manifest["dtype"],
    )
    if key != manifest["key"]:
        return "manifest key does not match its profile hashes"
    return _file_problem(folder, manifest, itemsize, verify)


def _file_problem(folder: Path, manifest: dict, itemsize: int, verify: bool) -> str | None:
    """What is wrong with the matrix file of a consistent manifest, or None."""
    nbytes, block, blocks = manifest["nbytes"], manifest["block_bytes"], manifest["blocks"]
    if nbytes != n_pairs(manifest["n"]) * itemsize:
        return f"manifest nbytes={nbytes} does not match n={manifest['n']}"
    if not isinstance(block, int) or block < 1 or len(blocks) != -(-nbytes // block):
        return "manifest block list does not match nbytes"
    if not _FILE_NAME.fullmatch(manifest["file"]):
        return f"manifest names an unexpected matrix file {manifest['file']!r}"
    path = folder / manifest["file"]
    if not path.is_file():
        return f"matrix file {path.name} is missing"
    if path.stat().st_size < nbytes:
        return f"matrix file size {path.stat().st_size} < {nbytes} (truncated?)"
    if verify:
        digests = block_digests(path, nbytes, block)
        for i, (got, want) in enumerate(zip(digests, blocks, strict=True)):
            if got != want:
                return f"matrix block {i} checksum mismatch (file changed or damaged)"
    return None


def write_manifest(folder: Path, body: dict[str, Any]) -> dict[str, Any]:
    """Atomically replace the manifest of ``folder`` with ``body`` plus its digest (temporary
    file, fsync, rename, fsync of the folder); returns what was written."""
    manifest = {k: v for k, v in body.items() if k != "digest"}
    manifest["digest"] = manifest_digest(manifest)
    tmp = folder / f".tmp-{uuid.uuid4().hex}.json"
    try:
        tmp.write_text(json.dumps(manifest))
        fsync_path(tmp)
        os.replace(tmp, folder / MANIFEST)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(folder)
    return manifest


def roll_back_torn_append(path: Path, nbytes: int) -> None:
    """Truncate a matrix file longer than its manifest's ``nbytes`` back to it (the caller holds
    the lock): the tail is an extension whose manifest was never written."""
    size = path.stat().st_size
    if size > nbytes:
        log.warning(
            "DTW cache %s: rolled back a torn append (%d bytes past the %d of its manifest)",
            path,
            size - nbytes,
            nbytes,
        )
        with open(path, "r+b") as f:
            os.ftruncate(f.fileno(), nbytes)
            os.fsync(f.fileno())


def fsync_path(path: Path) -> None:
    """fsync a file or folder by path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(folder: Path) -> None:
    """Remove a folder's manifest, matrix and temporary files (caller holds the lock)."""
    for pattern in (MANIFEST, "matrix-*", ".tmp-*"):
        for p in folder.glob(pattern):
            p.unlink(missing_ok=True)


def tidy(folder: Path, keep: str | None) -> None:
    """Remove leftovers of interrupted updates: temporary files and unreferenced matrices
    (format-1 ``.npy`` files included)."""
    for p in [*folder.glob(".tmp-*"), *folder.glob("matrix-*")]:
        if p.name != keep:
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``folder/.lock`` for the duration of an update."""
    with open(folder / ".lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
