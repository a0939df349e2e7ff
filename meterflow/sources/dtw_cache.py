"""A content-addressed, incremental on-disk cache of the all-pairs DTW matrix.

Layout of ``DtwCache(directory)``: one sub-folder per (profile length, window, normalisation,
storage dtype), e.g. ``l24-w0-l2-float64/``, holding

- ``matrix-<random 16 hex>.bin``: the condensed lower-triangle matrix (see
  ``meterflow.profiles.dtw.kernel``) over *slots*, as raw little-endian values, no header. Row
  ``i`` holds the pairs ``(i, 0) .. (i, i-1)`` at ``n_pairs(i) .. n_pairs(i) + i``, so the matrix
  of the first ``n`` slots is the file's first ``n_pairs(n)`` values: a ``DtwMatrix`` maps exactly
  the prefix its own ``n`` describes, and the file may be longer;
- ``manifest.json`` (``dtw_manifest``): format version, length, window, normalisation, dtype,
  ``n`` (slots), ``hashes`` (slot ``s`` holds the profile ``hashes[s]``; None: a free slot, whose
  stale distances are never read), the matrix file name, ``nbytes`` (the prefix that holds the
  matrix), ``block_bytes`` and one xxh3-128 digest per block of that prefix (``BLOCK_BYTES``, the
  last block may be partial), the matrix ``key``, ``state`` (``ready``, or ``updating`` while
  slots are rewritten in place), ``epoch`` (changes whenever slots are rewritten in place), and a
  SHA-256 ``digest`` of all those fields.

A profile is identified by the SHA-256 (first 128 bits) of its float64 bytes (``-0.0`` folded
into ``0.0``): equal bytes, equal profile, whatever meter or day it belongs to; duplicates share a
slot. ``update`` keeps the slots whose profile is still present, frees the others, places the new
profiles (``dtw_slots``) and computes only the pairs that involve them (``rows=`` chooses who
computes them):

- Pure append (no slot free, new profiles only): the file is extended in place (new blocks
  allocated, ``posix_fallocate``), the new rows are computed straight into its tail, the file is
  fsynced and the manifest atomically replaced. Bytes before the old ``nbytes`` are never
  written, so readers of an older, smaller matrix keep reading consistent values. Only the blocks
  that changed (the old partial last block and the new ones) are hashed; the other digests are
  copied.
- Recycling (the nightly slide: some profiles left, some came): the new profiles fill the free
  slots (the file grows only for those left over, allocated first); their pairs with every other
  profile are computed in chunks and written in place (a slot's row prefix and its column in
  every later row): the work is the new pairs, no copy of the kept ones. Order: grow the file if
  needed (a failure truncates it back, the cache untouched), replace the manifest by one marked
  ``updating`` with a new ``epoch``, write the pairs, fsync, hash the blocks from the first
  rewritten one, write the ``ready`` manifest. A crash or error after the mark leaves a cache that
  the next use finds ``updating``: discarded and recomputed, never used. Readers of the previous
  matrix (a ``DtwMatrix`` of ``dtw_matrix`` returned earlier) may see new values in recycled
  slots: ``row`` and ``square`` re-read the manifest after reading and raise
  ``StaleDtwMatrixError`` when its file or epoch changed (the mark comes before the first write,
  so a read that passes saw no new value); who reads ``condensed()`` directly checks
  ``is_current()`` afterwards. The CPU is the new pairs plus passes over the file at memory
  speed (verification before reuse, the column writes, rehashing): with the profiles passed day
  by day, a recycled day is one contiguous run of each later row.
- Profiles left and none came: their slots are marked free in the manifest, no byte is written.
- First build, or more than half the slots new or left free (``dtw_slots.RECYCLE_MAX_SHARE``): a
  new file is written under a temporary name (kept distances copied or compacted, new rows
  computed), fsynced and renamed to a fresh ``matrix-<random>.bin``; the manifest is replaced,
  then the unreferenced files are removed (an already opened ``condensed()`` memmap stays
  readable: Linux keeps unlinked files mapped).

Apart from the ``updating`` mark, the manifest is replaced last (temporary file, fsync, rename,
fsync of the folder): a crash leaves the previous cache in use. A file longer than its manifest's
``nbytes`` is a torn extension (a crash after it): it is truncated back, with a warning; an append
that raises (also ``KeyboardInterrupt``) truncates the file back before re-raising. Before use,
the manifest digest, the parameters, the state, the hash list, the key, the file's presence and
size, and (``verify=True``) every block digest are checked: any mismatch logs a warning and the
cache is discarded and recomputed, never used. Caches of earlier formats are discarded that way.
Concurrent updates of one sub-folder are serialised with an advisory file lock.

A file is only mapped for writing once its blocks are allocated (``diskspace.preallocate``), after
a free-space check: a full disk raises ``DiskFullError`` naming the file and the bytes it needs,
instead of a SIGBUS when a write through the map meets an unallocatable block of a sparse file.
Recycling writes into blocks allocated before and needs no new space unless the file grows.

``dtype="float32"`` halves the file; each stored distance is then the float64 value rounded to
nearest float32: relative error <= 2**-24 (about 6e-8) of the distance.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import (
    RowComputer,
    as_profile_array,
    band_cells,
    canonical_window,
    dtw_rows,
    n_pairs,
)
from meterflow.sources.diskspace import preallocate, require_free_space
from meterflow.sources.dtw_manifest import (
    FORMAT_VERSION,
    MANIFEST,
    READY,
    UPDATING,
    block_digests,
    discard,
    fsync_path,
    locked,
    manifest_problem,
    matrix_key,
    new_epoch,
    read_manifest,
    roll_back_torn_append,
    tidy,
    write_manifest,
)
from meterflow.sources.dtw_matrix import DtwMatrix, storage_dtype
from meterflow.sources.dtw_slots import (
    APPEND,
    HIT,
    RECYCLE,
    REWRITE,
    SlotPlan,
    copy_kept,
    plan_update,
    recycle_pairs,
)

log = logging.getLogger(__name__)

DTYPES = ("float64", "float32")
BLOCK_BYTES = 1 << 26  # checksum block of new matrix files (64 MiB)
_WHAT = "the DTW matrix"  # how disk-space errors name what did not fit


def profile_hashes(X: np.ndarray) -> list[str]:
    """Content hash of each row: SHA-256 of its float64 bytes, first 32 hex digits."""
    x = np.ascontiguousarray(X, dtype="<f8") + 0.0  # + 0.0 folds -0.0 into 0.0
    return [hashlib.sha256(row.tobytes()).hexdigest()[:32] for row in x]


def _local_rows(progress: bool) -> RowComputer:
    """The default ``RowComputer``: ``dtw_rows`` in this process (looked up at call time)."""

    def compute(x: np.ndarray, start: int, stop: int, window: int | None, out: np.ndarray) -> None:
        dtw_rows(x, start, stop, window, out=out, progress=progress)

    return compute


@dataclass(frozen=True)
class _Written:
    """A matrix file as the manifest describes it."""

    path: Path
    nbytes: int
    block_bytes: int
    blocks: list[str]
    epoch: str


def _first_rows(hashes: list[str]) -> dict[str, int]:
    """Each distinct profile hash with its first row, in order of first appearance."""
    first: dict[str, int] = {}
    for r, h in enumerate(hashes):
        first.setdefault(h, r)
    return first


class DtwCache:
    """Incremental DTW matrices under ``directory`` (see the module doc).

    ``dtype``: storage precision, ``"float64"`` (exact) or ``"float32"`` (relative error
    <= 6e-8). ``verify``: check every block digest of the cached file before reuse (reads it
    once, at xxh3 speed; keep True unless the caller verifies otherwise).
    """

    kind = "disk"  # its name in ``meterflow.sources.dtw_store.DTW_STORES``

    def __init__(self, directory: Path | str, *, dtype: str = "float64", verify: bool = True):
        if dtype not in DTYPES:
            raise ConfigError(f"DTW cache dtype must be one of {DTYPES}, got {dtype!r}")
        self.directory = Path(directory)
        self.dtype = dtype
        self.verify = verify

    @property
    def itemsize(self) -> int:
        """Bytes per stored distance."""
        return np.dtype(self.dtype).itemsize

    def matrix_bytes(self, n: int) -> int:
        """Bytes of the matrix of ``n`` slots: ``n (n - 1) / 2`` distances."""
        return n_pairs(n) * self.itemsize

    def location(self) -> str:
        """The cache folder, absolute: ``DtwCache(location())`` reopens this cache."""
        return str(self.directory.resolve())

    def disk_needs(self, n: int) -> list[tuple[Path, int]]:
        """The whole matrix of ``n`` slots in the cache folder (a rewrite writes it beside the
        old one; a slide recycles slots in place and needs less)."""
        return [(self.directory, self.matrix_bytes(n))]

    def folder(self, *, length: int, window: int, normalization: str) -> Path:
        """Sub-folder for one profile length, canonical window and normalisation."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", normalization):
            raise ConfigError(f"normalization tag {normalization!r}: use letters, digits, _.-")
        return self.directory / f"l{length}-w{window}-{normalization}-{self.dtype}"

    def update(
        self,
        X: np.ndarray,
        *,
        window: int | None,
        normalization: str,
        progress: bool = True,
        rows: RowComputer | None = None,
    ) -> DtwMatrix:
        """Bring the cached matrix up to date with the profiles ``X`` (rows x slots) and return it.

        ``window``: as in ``kernel.py`` (dtaidistance meaning, None/0 = unconstrained).
        ``normalization``: tag of how ``X`` was normalised (part of the cache identity).
        ``rows``: who computes the new rows (see ``RowComputer``); None = ``dtw_rows`` here.
        """
        x, w, folder = self._profiles_and_folder(X, window, normalization)
        folder.mkdir(parents=True, exist_ok=True)
        hashes = profile_hashes(x)
        first = _first_rows(hashes)
        with locked(folder):
            old = self._load(folder, length=x.shape[1], window=w, normalization=normalization)
            tidy(folder, keep=old["file"] if old else None)
            cached = old["hashes"] if old else None
            plan = plan_update(cached, list(first))
            compute = _local_rows(progress) if rows is None else rows
            y = x[[first[h] for h in plan.compute_order(cached)]]
            manifest = self._apply(folder, old, plan, y, w, normalization, compute, progress)
            slot = {h: s for s, h in enumerate(plan.slots) if h is not None}
            return self._matrix(
                folder,
                manifest,
                [slot[h] for h in hashes],
                computed=plan.pairs_new,
                reused=n_pairs(plan.n_kept),
            )

    def lookup(self, X: np.ndarray, *, window: int | None, normalization: str) -> DtwMatrix | None:
        """The cached matrix if it already holds every profile of ``X``, seen in ``X``'s row
        order (e.g. a subset at clustering time); None otherwise. Read-only: computes nothing and
        drops nothing (``update`` would free the slots of the cached profiles absent from ``X``)."""
        x, w, folder = self._profiles_and_folder(X, window, normalization)
        if not folder.is_dir():
            return None
        hashes = profile_hashes(x)
        with locked(folder):
            old = self._load(folder, length=x.shape[1], window=w, normalization=normalization)
            if old is None:
                return None
            slot = {h: s for s, h in enumerate(old["hashes"]) if h is not None}
            if any(h not in slot for h in hashes):
                return None
            return self._matrix(
                folder,
                old,
                [slot[h] for h in hashes],
                computed=0,
                reused=n_pairs(len(set(hashes))),
            )

    def _profiles_and_folder(
        self, X: np.ndarray, window: int | None, normalization: str
    ) -> tuple[np.ndarray, int, Path]:
        """The profiles as an array, the canonical window and the cache folder they belong to."""
        x = as_profile_array(X)
        length = x.shape[1]
        w = canonical_window(window, length)
        return x, w, self.folder(length=length, window=w, normalization=normalization)

    def _apply(
        self,
        folder: Path,
        old: dict[str, Any] | None,
        plan: SlotPlan,
        y: np.ndarray,
        window: int,
        normalization: str,
        compute: RowComputer,
        progress: bool,
    ) -> dict[str, Any]:
        """Carry out ``plan`` (``y``: the profiles in ``plan.compute_order``), then write the
        manifest that describes the result; returns the manifest in use."""
        if old is not None and plan.mode == HIT:
            log.info("DTW cache hit %s: %d profiles, nothing to compute", old["key"], plan.n_kept)
            return old
        if old is None or plan.mode == REWRITE:
            written = self._write(folder, old, plan.kept, y, window, compute, progress)
        elif plan.mode == APPEND:
            written = self._append(folder / old["file"], old, y, window, compute, progress)
        elif plan.mode == RECYCLE:
            written = self._recycle(folder, old, plan, y, window, compute, progress)
        else:  # FREE: slots marked free, no byte written
            written = _Written(
                folder / old["file"], old["nbytes"], old["block_bytes"], old["blocks"], old["epoch"]
            )
        manifest = self._write_manifest(
            folder, written, plan.slots, y.shape[1], window, normalization
        )
        log.info(
            "DTW cache %s (%s): %d slots, %d profiles (%d kept, %d removed, %d new), "
            "%d pairs computed, %d reused",
            manifest["key"],
            plan.mode if old is not None else "built",
            len(plan.slots),
            plan.n_kept + len(plan.new),
            plan.n_kept,
            plan.removed,
            len(plan.new),
            plan.pairs_new,
            n_pairs(plan.n_kept),
        )
        return manifest

    def _matrix(
        self,
        folder: Path,
        manifest: dict[str, Any],
        order: list[int],
        *,
        computed: int,
        reused: int,
    ) -> DtwMatrix:
        """The DtwMatrix a manifest describes, with the caller's row ``order``."""
        return DtwMatrix(
            key=manifest["key"],
            n=manifest["n"],
            path=folder / manifest["file"],
            nbytes=manifest["nbytes"],
            pairs_computed=computed,
            pairs_reused=reused,
            order=np.array(order, dtype=np.int64),
            window=manifest["window"],
            normalization=manifest["normalization"],
            dtype=self.dtype,
            length=manifest["length"],
            epoch=manifest["epoch"],
        )

    def _load(
        self, folder: Path, *, length: int, window: int, normalization: str
    ) -> dict[str, Any] | None:
        """The verified manifest of ``folder``, or None (after discarding a bad cache). A torn
        extension (matrix file longer than the manifest says) is truncated back."""
        if not (folder / MANIFEST).exists():
            return None
        try:
            manifest = read_manifest(folder)
            expected = {
                "format": FORMAT_VERSION,
                "length": length,
                "window": window,
                "normalization": normalization,
                "dtype": self.dtype,
            }
            problem = manifest_problem(
                folder, manifest, expected, itemsize=self.itemsize, verify=self.verify
            )
        except (OSError, ValueError, TypeError, KeyError) as exc:
            problem = f"unreadable ({exc.__class__.__name__}: {exc})"
        if problem is None:
            roll_back_torn_append(folder / manifest["file"], manifest["nbytes"])
            return manifest
        log.warning(
            "DTW cache %s is stale or corrupt: %s; discarding it and recomputing", folder, problem
        )
        discard(folder)
        return None

    # ------------------------------------------------------------------ writing

    def _grow(self, path: Path, start: int, end: int) -> None:
        """Extend ``path`` from ``start`` to ``end`` bytes with allocated blocks (a full disk
        raises ``DiskFullError``; the file is then truncated back to ``start``)."""
        require_free_space(path, end - start, _WHAT)
        with open(path, "r+b") as f:
            try:
                preallocate(f.fileno(), start, end - start, path=path, what=_WHAT)
            except BaseException:
                _truncate(path, start)
                raise

    def _append(
        self,
        path: Path,
        old: dict[str, Any],
        xm: np.ndarray,
        window: int,
        compute: RowComputer,
        progress: bool,
    ) -> _Written:
        """Extend the cached file in place with the rows of the new profiles ``xm[old n:]``.

        Bytes before the old ``nbytes`` are never written; the new ones are allocated before they
        are mapped (a full disk raises ``DiskFullError``, not SIGBUS). If anything fails before the
        file is synced and hashed, it is truncated back to its old size (the manifest is untouched).
        """
        k, m = old["n"], len(xm)
        start, end, block = old["nbytes"], self.matrix_bytes(m), old["block_bytes"]
        self._grow(path, start, end)
        try:
            if end > start:
                out = np.memmap(
                    path,
                    dtype=storage_dtype(self.dtype),
                    mode="r+",
                    offset=start,
                    shape=(n_pairs(m) - n_pairs(k),),
                )
                _compute_rows(compute, xm, k, m, window, out, progress)
                out.flush()
                del out
            fsync_path(path)
            first = start // block  # the old partial last block changes, full ones do not
            blocks = old["blocks"][:first] + block_digests(path, end, block, first)
        except BaseException:
            _truncate(path, start)
            raise
        return _Written(path, end, block, blocks, old["epoch"])

    def _recycle(
        self,
        folder: Path,
        old: dict[str, Any],
        plan: SlotPlan,
        y: np.ndarray,
        window: int,
        compute: RowComputer,
        progress: bool,
    ) -> _Written:
        """Write the pairs of the new profiles ``y[plan.n_kept:]`` into their slots in place
        (see the module doc for the order of the steps and what a crash leaves)."""
        path, block = folder / old["file"], old["block_bytes"]
        n, end = len(plan.slots), self.matrix_bytes(len(plan.slots))
        if end > old["nbytes"]:
            self._grow(path, old["nbytes"], end)
        epoch = new_epoch()
        write_manifest(folder, old | {"state": UPDATING, "epoch": epoch})
        try:
            dest = np.memmap(path, dtype=storage_dtype(self.dtype), mode="r+", shape=(n_pairs(n),))
            recycle_pairs(compute, y, plan.n_kept, plan.slot_of_rows(), dest, window, progress)
            dest.flush()
            del dest
            fsync_path(path)
            first = self.matrix_bytes(int(plan.new_slots.min())) // block
            blocks = old["blocks"][:first] + block_digests(path, end, block, first)
        except BaseException:
            log.warning(
                "DTW cache %s: in-place update interrupted; the cache stays marked %r and is "
                "recomputed on next use",
                folder,
                UPDATING,
            )
            raise
        return _Written(path, end, block, blocks, epoch)

    def _write(
        self,
        folder: Path,
        old: dict[str, Any] | None,
        kept: np.ndarray,
        xm: np.ndarray,
        window: int,
        compute: RowComputer,
        progress: bool,
    ) -> _Written:
        """Write a new matrix file (kept distances copied, new rows computed), fsynced, under a
        fresh name. Its blocks are allocated before it is mapped (a full disk raises
        ``DiskFullError``, not SIGBUS)."""
        m, k = xm.shape[0], len(kept)
        nbytes, block = self.matrix_bytes(m), BLOCK_BYTES
        final = folder / f"matrix-{uuid.uuid4().hex[:16]}.bin"
        tmp = folder / f".tmp-{uuid.uuid4().hex}.bin"
        if nbytes:
            require_free_space(folder, nbytes, _WHAT)
        try:
            with open(tmp, "xb") as f:
                preallocate(f.fileno(), 0, nbytes, path=final, what=_WHAT)
            if m >= 2:
                dtype = storage_dtype(self.dtype)
                out = np.memmap(tmp, dtype=dtype, mode="r+", shape=(n_pairs(m),))
                if k > 1 and old is not None:
                    src = np.memmap(
                        folder / old["file"], dtype=dtype, mode="r", shape=(n_pairs(old["n"]),)
                    )
                    copy_kept(src, kept, out[: n_pairs(k)])
                    del src
                if m > k:
                    _compute_rows(compute, xm, k, m, window, out[n_pairs(k) :], progress)
                out.flush()
                del out
            fsync_path(tmp)
            blocks = block_digests(tmp, nbytes, block)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _Written(final, nbytes, block, blocks, new_epoch())

    def _write_manifest(
        self,
        folder: Path,
        written: _Written,
        slots: list[str | None],
        length: int,
        window: int,
        normalization: str,
    ) -> dict[str, Any]:
        """Atomically replace the manifest (state ``ready``), then drop matrix files it no
        longer names; returns the manifest."""
        key = matrix_key(
            slots, length=length, window=window, normalization=normalization, dtype=self.dtype
        )
        body = {
            "format": FORMAT_VERSION,
            "key": key,
            "length": length,
            "window": window,
            "normalization": normalization,
            "dtype": self.dtype,
            "n": len(slots),
            "file": written.path.name,
            "nbytes": written.nbytes,
            "block_bytes": written.block_bytes,
            "blocks": written.blocks,
            "hashes": slots,
            "state": READY,
            "epoch": written.epoch,
        }
        manifest = write_manifest(folder, body)
        tidy(folder, keep=written.path.name)
        return manifest


def _compute_rows(
    compute: RowComputer,
    xm: np.ndarray,
    start: int,
    stop: int,
    window: int,
    out: np.ndarray,
    progress: bool,
) -> None:
    """Fill ``out`` with rows ``start .. stop-1`` of the matrix of ``xm`` (logged if asked)."""
    if progress:
        log.info(
            "DTW: computing rows %d-%d (%d pairs, %d cells each)",
            start,
            stop - 1,
            n_pairs(stop) - n_pairs(start),
            band_cells(xm.shape[1], window),
        )
    compute(xm, start, stop, window, out)


def _truncate(path: Path, size: int) -> None:
    """Truncate ``path`` back to ``size`` bytes, synced."""
    with open(path, "r+b") as f:
        os.ftruncate(f.fileno(), size)
        os.fsync(f.fileno())
