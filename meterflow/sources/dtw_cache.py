"""A content-addressed, incremental on-disk cache of the all-pairs DTW matrix.

Layout of ``DtwCache(directory)``: one sub-folder per (profile length, window, normalisation,
storage dtype), e.g. ``l24-w0-l2-float64/``, holding

- ``matrix-<random 16 hex>.bin``: the condensed lower-triangle matrix (see
  ``meterflow.profiles.dtw.kernel``) as raw little-endian values, no header. Row ``i`` holds the
  pairs ``(i, 0) .. (i, i-1)`` at ``n_pairs(i) .. n_pairs(i) + i``, so the matrix of the first
  ``n`` rows is the file's first ``n_pairs(n)`` values: a ``DtwMatrix`` maps exactly the prefix
  its own ``n`` describes, and the file may be longer;
- ``manifest.json``: format version, length, window, normalisation, dtype, ``n``, the ordered
  profile hashes (matrix row ``r`` belongs to ``hashes[r]``), the matrix file name, ``nbytes``
  (the prefix that holds the matrix), ``block_bytes`` and one xxh3-128 digest per block of that
  prefix (``BLOCK_BYTES``, the last block may be partial), the matrix ``key``, and a SHA-256
  ``digest`` of all those fields.

A profile is identified by the SHA-256 (first 128 bits) of its float64 bytes (``-0.0`` folded
into ``0.0``): equal bytes, equal profile, whatever meter or day it belongs to; duplicates share a
matrix row. ``update`` keeps the cached rows whose profile is still present, adds rows for new
profiles and computes only the pairs that involve them (``rows=`` chooses who computes them).

- Pure append (every cached row kept, in order, plus new profiles): the file is extended in place
  (new blocks allocated, ``posix_fallocate``), the new rows are computed straight into its tail,
  the file is fsynced and the manifest atomically replaced. Bytes before the old ``nbytes`` are
  never written, so readers of an older, smaller matrix keep reading consistent values. Only the
  blocks that changed (the old partial last block and the new ones) are hashed; the other digests
  are copied.
- Any other change (rows removed or changed, first build): a new file is written under a temporary
  name (kept distances copied or compacted, new rows computed), fsynced and renamed to a fresh
  ``matrix-<random>.bin``; the manifest is replaced, then the unreferenced files are removed (an
  already opened ``condensed()`` memmap stays readable: Linux keeps unlinked files mapped).

The manifest is replaced last (temporary file, fsync, rename, fsync of the folder): a crash leaves
the previous cache in use. A file longer than its manifest's ``nbytes`` is a torn append (a crash
after the extension): it is truncated back, with a warning; an append that raises (also
``KeyboardInterrupt``) truncates the file back before re-raising. Before use, the manifest digest,
the parameters, the hash list, the key, the file's presence and size, and (``verify=True``) every
block digest are checked: any mismatch logs a warning and the cache is discarded and recomputed,
never used. Format-1 caches (``.npy`` files) are discarded that way. Concurrent updates of one
sub-folder are serialised with an advisory file lock.

A file is only mapped for writing once its blocks are allocated (``diskspace.preallocate``), after
a free-space check: a full disk raises ``DiskFullError`` naming the file and the bytes it needs,
instead of a SIGBUS when a write through the map meets an unallocatable block of a sparse file.

``dtype="float32"`` halves the file; each stored distance is then the float64 value rounded to
nearest float32: relative error <= 2**-24 (about 6e-8) of the distance.
"""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from numba import njit

from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import (
    RowComputer,
    as_profile_array,
    band_cells,
    canonical_window,
    dtw_rows,
    n_pairs,
    square_from_condensed,
)
from meterflow.sources.diskspace import preallocate, require_free_space

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
DTYPES = ("float64", "float32")
MANIFEST = "manifest.json"
BLOCK_BYTES = 1 << 26  # checksum block of new matrix files (64 MiB)
_HASH_THREADS = 8  # threads hashing blocks (verification is memory-bound beyond that)
_COPY_PAIRS = 8_000_000  # pairs per copy chunk (64 MB of float64)
_FILE_NAME = re.compile(r"matrix-[0-9a-f]{16}\.bin")
_WHAT = "the DTW matrix"  # how disk-space errors name what did not fit


def profile_hashes(X: np.ndarray) -> list[str]:
    """Content hash of each row: SHA-256 of its float64 bytes, first 32 hex digits."""
    x = np.ascontiguousarray(X, dtype="<f8") + 0.0  # + 0.0 folds -0.0 into 0.0
    return [hashlib.sha256(row.tobytes()).hexdigest()[:32] for row in x]


def matrix_key(
    hashes: Sequence[str], *, length: int, window: int, normalization: str, dtype: str
) -> str:
    """Key of a matrix's content: its ordered profile hashes and parameters (32 hex digits)."""
    h = hashlib.sha256()
    h.update(f"v{FORMAT_VERSION}|l{length}|w{window}|{normalization}|{dtype}|".encode())
    for s in hashes:
        h.update(s.encode())
    return h.hexdigest()[:32]


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


def _storage_dtype(dtype: str) -> np.dtype:
    """The on-disk (little-endian) dtype of a storage dtype name."""
    return np.dtype(dtype).newbyteorder("<")


def _local_rows(progress: bool) -> RowComputer:
    """The default ``RowComputer``: ``dtw_rows`` in this process (looked up at call time)."""

    def compute(x: np.ndarray, start: int, stop: int, window: int | None, out: np.ndarray) -> None:
        dtw_rows(x, start, stop, window, out=out, progress=progress)

    return compute


@njit(cache=True, nogil=True, boundscheck=False)
def _compact(old, kept, dest):
    """Copy the sub-matrix of rows ``kept`` (ascending) of condensed ``old`` into ``dest``."""
    pos = 0
    for a in range(1, kept.shape[0]):
        oa = kept[a]
        base = oa * (oa - 1) // 2
        for b in range(a):
            dest[pos] = old[base + kept[b]]
            pos += 1


@dataclass(frozen=True, eq=False)
class DtwMatrix:
    """A DTW matrix in the cache, seen in the caller's row order.

    ``n`` is the number of matrix rows (distinct profiles); ``order[r]`` is the matrix row of the
    caller's row ``r`` (``len(order)`` = rows passed to ``update``; equal profiles share a row).
    ``path`` is the raw matrix file, ``nbytes`` the size of the prefix holding this matrix (the
    file may grow later). ``pairs_computed``/``pairs_reused``: DTW pairs computed by this update
    vs taken from the previous cache. ``window`` is canonical (0 = unconstrained). Values are read
    through a read-only memmap of that prefix: a later append leaves it unchanged, a later rewrite
    replaces the file (an already opened ``condensed()`` stays readable).
    """

    key: str
    n: int
    path: Path
    nbytes: int
    pairs_computed: int
    pairs_reused: int
    order: np.ndarray
    window: int
    normalization: str
    dtype: str
    length: int

    @property
    def n_profiles(self) -> int:
        """Rows of the caller's table."""
        return len(self.order)

    def condensed(self) -> np.ndarray:
        """The condensed lower-triangle matrix in matrix row order (read-only memmap)."""
        if self.n < 2:
            return np.zeros(0, dtype=self.dtype)
        dtype = _storage_dtype(self.dtype)
        return np.memmap(self.path, dtype=dtype, mode="r", shape=(n_pairs(self.n),))

    def row(self, i: int) -> np.ndarray:
        """Distances (float64) from the caller's row ``i`` to all caller rows, in caller order.

        Reads one triangle row plus one value per later matrix row, not the whole file.
        """
        if not 0 <= i < len(self.order):
            raise IndexError(f"row {i} out of range for {len(self.order)} profiles")
        m = int(self.order[i])
        full = np.zeros(self.n, dtype=np.float64)
        if self.n > 1:
            c = self.condensed()
            full[:m] = c[n_pairs(m) : n_pairs(m) + m]
            later = np.arange(m + 1, self.n, dtype=np.int64)
            full[m + 1 :] = c[later * (later - 1) // 2 + m]
        return full[self.order]

    def square(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Square float64 matrix over the caller's rows (all, or the given caller rows)."""
        sel = self.order if rows is None else self.order[np.asarray(rows, dtype=np.int64)]
        if self.n < 2:
            return np.zeros((len(sel), len(sel)))
        return square_from_condensed(self.condensed(), sel)


@dataclass(frozen=True, eq=False)
class _UpdatePlan:
    """What an update makes of the cached matrix: rows kept, profiles added, the new key."""

    kept: np.ndarray  # cached matrix rows still present (ascending)
    new: list[str]  # hashes of the profiles to add, in order of first appearance
    hashes: list[str]  # profile hashes of the new matrix's rows: kept rows, then new ones
    removed: int  # cached profiles no longer present
    key: str

    @property
    def n_kept(self) -> int:
        """Cached rows kept."""
        return len(self.kept)

    def appends_to(self, old: dict[str, Any]) -> bool:
        """Whether the update only adds rows after every row of ``old`` (an in-place append)."""
        return len(self.new) > 0 and np.array_equal(self.kept, np.arange(old["n"]))


@dataclass(frozen=True)
class _Written:
    """A matrix file as the manifest describes it."""

    path: Path
    nbytes: int
    block_bytes: int
    blocks: list[str]


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
        """Bytes of the matrix of ``n`` distinct profiles: ``n (n - 1) / 2`` distances."""
        return n_pairs(n) * self.itemsize

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
        length = x.shape[1]
        folder.mkdir(parents=True, exist_ok=True)
        hashes = profile_hashes(x)
        first = _first_rows(hashes)
        with _locked(folder):
            old = self._load(folder, length=length, window=w, normalization=normalization)
            _tidy(folder, keep=old["file"] if old else None)
            plan = self._plan(old, first, length=length, window=w, normalization=normalization)
            if old is not None and old["key"] == plan.key:
                path, computed = folder / old["file"], 0
                log.info("DTW cache hit %s: %d profiles, nothing to compute", plan.key, plan.n_kept)
            else:
                xm = x[[first[h] for h in plan.hashes]]
                compute = _local_rows(progress) if rows is None else rows
                written = self._rebuild(folder, old, plan, xm, w, normalization, compute, progress)
                path, computed = written.path, n_pairs(len(plan.hashes)) - n_pairs(plan.n_kept)
            row_of = {h: r for r, h in enumerate(plan.hashes)}
            return self._matrix(
                path,
                plan.key,
                plan.hashes,
                [row_of[h] for h in hashes],
                computed=computed,
                reused=n_pairs(plan.n_kept),
                length=length,
                window=w,
                normalization=normalization,
            )

    def lookup(self, X: np.ndarray, *, window: int | None, normalization: str) -> DtwMatrix | None:
        """The cached matrix if it already holds every profile of ``X``, seen in ``X``'s row
        order (e.g. a subset at clustering time); None otherwise. Read-only: computes nothing and
        drops nothing (``update`` would compact away the cached profiles absent from ``X``)."""
        x, w, folder = self._profiles_and_folder(X, window, normalization)
        length = x.shape[1]
        if not folder.is_dir():
            return None
        hashes = profile_hashes(x)
        with _locked(folder):
            old = self._load(folder, length=length, window=w, normalization=normalization)
            if old is None:
                return None
            pos = {h: k for k, h in enumerate(old["hashes"])}
            if any(h not in pos for h in hashes):
                return None
            return self._matrix(
                folder / old["file"],
                old["key"],
                old["hashes"],
                [pos[h] for h in hashes],
                computed=0,
                reused=n_pairs(len(set(hashes))),
                length=length,
                window=w,
                normalization=normalization,
            )

    def _profiles_and_folder(
        self, X: np.ndarray, window: int | None, normalization: str
    ) -> tuple[np.ndarray, int, Path]:
        """The profiles as an array, the canonical window and the cache folder they belong to."""
        x = as_profile_array(X)
        length = x.shape[1]
        w = canonical_window(window, length)
        return x, w, self.folder(length=length, window=w, normalization=normalization)

    def _plan(
        self,
        old: dict[str, Any] | None,
        first: dict[str, int],
        *,
        length: int,
        window: int,
        normalization: str,
    ) -> _UpdatePlan:
        """Which cached rows the profiles ``first`` keep, which profiles are new, the new key."""
        old_hashes: list[str] = old["hashes"] if old else []
        old_pos = {h: k for k, h in enumerate(old_hashes)}
        kept = np.array(sorted(old_pos[h] for h in first if h in old_pos), dtype=np.int64)
        new = [h for h in first if h not in old_pos]
        matrix_hashes = [old_hashes[k] for k in kept] + new
        key = matrix_key(
            matrix_hashes,
            length=length,
            window=window,
            normalization=normalization,
            dtype=self.dtype,
        )
        return _UpdatePlan(kept, new, matrix_hashes, len(old_hashes) - len(kept), key)

    def _rebuild(
        self,
        folder: Path,
        old: dict[str, Any] | None,
        plan: _UpdatePlan,
        xm: np.ndarray,
        window: int,
        normalization: str,
        compute: RowComputer,
        progress: bool,
    ) -> _Written:
        """Append to the cached matrix or write a new one for the profiles ``xm`` (matrix row
        order), then the manifest that describes it (a crash in between leaves the previous
        cache in use)."""
        append = old is not None and plan.appends_to(old)
        if old is not None and append:
            written = self._append(folder / old["file"], old, xm, window, compute, progress)
        else:
            written = self._write(folder, old, plan.kept, xm, window, compute, progress)
        self._write_manifest(
            folder, written, plan.hashes, plan.key, xm.shape[1], window, normalization
        )
        reused = n_pairs(plan.n_kept)
        log.info(
            "DTW cache %s %s: %d profiles (%d kept, %d removed, %d new), "
            "%d pairs computed, %d reused",
            plan.key,
            "appended in place" if append else "rewritten",
            len(plan.hashes),
            plan.n_kept,
            plan.removed,
            len(plan.new),
            n_pairs(len(plan.hashes)) - reused,
            reused,
        )
        return written

    def _matrix(
        self,
        path: Path,
        key: str,
        matrix_hashes: list[str],
        order: list[int],
        *,
        computed: int,
        reused: int,
        length: int,
        window: int,
        normalization: str,
    ) -> DtwMatrix:
        """The DtwMatrix of ``path`` with the caller's row ``order``."""
        n = len(matrix_hashes)
        return DtwMatrix(
            key=key,
            n=n,
            path=path,
            nbytes=self.matrix_bytes(n),
            pairs_computed=computed,
            pairs_reused=reused,
            order=np.array(order, dtype=np.int64),
            window=window,
            normalization=normalization,
            dtype=self.dtype,
            length=length,
        )

    # ------------------------------------------------------------------ reading and checking

    def _load(
        self, folder: Path, *, length: int, window: int, normalization: str
    ) -> dict[str, Any] | None:
        """The verified manifest of ``folder``, or None (after discarding a bad cache). A torn
        append (matrix file longer than the manifest says) is truncated back."""
        mpath = folder / MANIFEST
        if not mpath.exists():
            return None
        try:
            manifest = json.loads(mpath.read_text())
            expected = {
                "format": FORMAT_VERSION,
                "length": length,
                "window": window,
                "normalization": normalization,
                "dtype": self.dtype,
            }
            problem = self._problem(folder, manifest, expected)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            problem = f"unreadable ({exc.__class__.__name__}: {exc})"
        if problem is None:
            _roll_back_torn_append(folder / manifest["file"], manifest["nbytes"])
            return manifest
        log.warning(
            "DTW cache %s is stale or corrupt: %s; discarding it and recomputing", folder, problem
        )
        _discard(folder)
        return None

    def _problem(self, folder: Path, manifest: dict, expected: dict) -> str | None:
        """What is wrong with a manifest and its matrix file, or None."""
        if not isinstance(manifest, dict):
            return "manifest is not an object"
        body = {k: v for k, v in manifest.items() if k != "digest"}
        if manifest.get("digest") != _digest(body):
            return "manifest digest mismatch (manifest edited or damaged)"
        for field, value in expected.items():
            if manifest[field] != value:
                return f"manifest {field}={manifest[field]!r}, expected {value!r}"
        hashes = manifest["hashes"]
        if manifest["n"] != len(hashes) or len(set(hashes)) != len(hashes):
            return "manifest hash list does not match n or repeats a profile"
        key = matrix_key(
            hashes,
            length=manifest["length"],
            window=manifest["window"],
            normalization=manifest["normalization"],
            dtype=manifest["dtype"],
        )
        if key != manifest["key"]:
            return "manifest key does not match its profile hashes"
        return self._file_problem(folder, manifest)

    def _file_problem(self, folder: Path, manifest: dict) -> str | None:
        """What is wrong with the matrix file of a consistent manifest, or None."""
        nbytes, block, blocks = manifest["nbytes"], manifest["block_bytes"], manifest["blocks"]
        if nbytes != self.matrix_bytes(manifest["n"]):
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
        if self.verify:
            digests = block_digests(path, nbytes, block)
            for i, (got, want) in enumerate(zip(digests, blocks, strict=True)):
                if got != want:
                    return f"matrix block {i} checksum mismatch (file changed or damaged)"
        return None

    # ------------------------------------------------------------------ writing

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
        require_free_space(path, end - start, _WHAT)
        with open(path, "r+b") as f:
            try:
                preallocate(f.fileno(), start, end - start, path=path, what=_WHAT)
                if end > start:
                    out = np.memmap(
                        path,
                        dtype=_storage_dtype(self.dtype),
                        mode="r+",
                        offset=start,
                        shape=(n_pairs(m) - n_pairs(k),),
                    )
                    _compute_rows(compute, xm, k, m, window, out, progress)
                    out.flush()
                    del out
                os.fsync(f.fileno())
                first = start // block  # the old partial last block changes, full ones do not
                blocks = old["blocks"][:first] + block_digests(path, end, block, first)
            except BaseException:
                os.ftruncate(f.fileno(), start)
                os.fsync(f.fileno())
                raise
        return _Written(path, end, block, blocks)

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
                dtype = _storage_dtype(self.dtype)
                out = np.memmap(tmp, dtype=dtype, mode="r+", shape=(n_pairs(m),))
                if k > 1 and old is not None:
                    src = np.memmap(
                        folder / old["file"], dtype=dtype, mode="r", shape=(n_pairs(old["n"]),)
                    )
                    _copy_kept(src, kept, out[: n_pairs(k)])
                    del src
                if m > k:
                    _compute_rows(compute, xm, k, m, window, out[n_pairs(k) :], progress)
                out.flush()
                del out
            _fsync(tmp)
            blocks = block_digests(tmp, nbytes, block)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return _Written(final, nbytes, block, blocks)

    def _write_manifest(
        self,
        folder: Path,
        written: _Written,
        hashes: list[str],
        key: str,
        length: int,
        window: int,
        normalization: str,
    ) -> None:
        """Atomically replace the manifest, then drop matrix files it no longer names."""
        body = {
            "format": FORMAT_VERSION,
            "key": key,
            "length": length,
            "window": window,
            "normalization": normalization,
            "dtype": self.dtype,
            "n": len(hashes),
            "file": written.path.name,
            "nbytes": written.nbytes,
            "block_bytes": written.block_bytes,
            "blocks": written.blocks,
            "hashes": hashes,
        }
        body["digest"] = _digest(body)
        tmp = folder / f".tmp-{uuid.uuid4().hex}.json"
        try:
            tmp.write_text(json.dumps(body))
            _fsync(tmp)
            os.replace(tmp, folder / MANIFEST)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync(folder)
        _tidy(folder, keep=written.path.name)


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


def _copy_kept(src: np.ndarray, kept: np.ndarray, dest: np.ndarray) -> None:
    """Copy the sub-matrix of the rows ``kept`` of condensed ``src`` into ``dest``."""
    if np.array_equal(kept, np.arange(len(kept))):  # trailing rows removed: plain prefix copy
        for lo in range(0, len(dest), _COPY_PAIRS):
            hi = min(len(dest), lo + _COPY_PAIRS)
            dest[lo:hi] = src[lo:hi]
    else:
        _compact(np.asarray(src), kept, np.asarray(dest))


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _roll_back_torn_append(path: Path, nbytes: int) -> None:
    """Truncate a matrix file longer than its manifest's ``nbytes`` back to it (the caller holds
    the lock): the tail is an append whose manifest was never written."""
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


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(folder: Path) -> None:
    """Remove a folder's manifest, matrix and temporary files (caller holds the lock)."""
    for pattern in (MANIFEST, "matrix-*", ".tmp-*"):
        for p in folder.glob(pattern):
            p.unlink(missing_ok=True)


def _tidy(folder: Path, keep: str | None) -> None:
    """Remove leftovers of interrupted updates: temporary files and unreferenced matrices
    (format-1 ``.npy`` files included)."""
    for p in [*folder.glob(".tmp-*"), *folder.glob("matrix-*")]:
        if p.name != keep:
            p.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Exclusive advisory lock on ``folder/.lock`` for the duration of an update."""
    with open(folder / ".lock", "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
