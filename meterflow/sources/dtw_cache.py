"""A content-addressed, incremental on-disk cache of the all-pairs DTW matrix.

Layout of ``DtwCache(directory)``: one sub-folder per (profile length, window, normalisation,
storage dtype), e.g. ``l24-w0-l2-float64/``, holding

- ``matrix-<key>.npy``: the condensed lower-triangle matrix (see
  ``meterflow.profiles.dtw.kernel``), one ``.npy`` file that ``numpy.load(mmap_mode="r")``
  maps without reading it;
- ``manifest.json``: format version, length, window, normalisation, dtype, ``n``, the ordered
  profile hashes (matrix row ``r`` belongs to ``hashes[r]``), the matrix file name, its size and
  SHA-256 checksum, the matrix ``key``, and a SHA-256 ``digest`` of all those fields.

A profile is identified by the SHA-256 (first 128 bits) of its float64 bytes (``-0.0`` folded
into ``0.0``): equal bytes, equal profile, whatever meter or day it belongs to; duplicates share a
matrix row. ``update`` keeps the cached rows whose profile is still present (copying their
distances, in the old order: removed or changed profiles are compacted out), appends rows for
new profiles and computes only the pairs that involve them. Files are written to a temporary name,
fsynced and renamed; the manifest is replaced last, so a crash leaves the previous cache intact.
Before use, the manifest digest, the parameters, the file size, the ``.npy`` header and the file
checksum are verified: any mismatch logs a warning and the cache is discarded and recomputed,
never used. Concurrent updates of one sub-folder are serialised with an advisory file lock.

``dtype="float32"`` halves the file; each stored distance is then the float64 value rounded to
nearest float32: relative error <= 2**-24 (about 6e-8) of the distance.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import (
    as_profile_array,
    band_cells,
    canonical_window,
    dtw_rows,
    n_pairs,
    square_from_condensed,
)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DTYPES = ("float64", "float32")
MANIFEST = "manifest.json"
_COPY_PAIRS = 8_000_000  # pairs per copy chunk (64 MB of float64)
_READ_BYTES = 1 << 24


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


def file_checksum(path: Path) -> str:
    """SHA-256 of a file, read in 16 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_READ_BYTES):
            h.update(block)
    return "sha256:" + h.hexdigest()


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
    ``path`` is the ``.npy`` file, ``nbytes`` its size. ``pairs_computed``/``pairs_reused``: DTW
    pairs computed by this update vs copied from the previous cache. ``window`` is canonical
    (0 = unconstrained). Values are read through a read-only memmap; a later ``update`` of the
    same cache folder replaces the file (an already opened ``condensed()`` stays readable).
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
        return np.load(self.path, mmap_mode="r")

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


def _first_rows(hashes: list[str]) -> dict[str, int]:
    """Each distinct profile hash with its first row, in order of first appearance."""
    first: dict[str, int] = {}
    for r, h in enumerate(hashes):
        first.setdefault(h, r)
    return first


class DtwCache:
    """Incremental DTW matrices under ``directory`` (see the module doc).

    ``dtype``: storage precision, ``"float64"`` (exact) or ``"float32"`` (relative error
    <= 6e-8). ``verify``: checksum the cached file before reuse (reads it once; keep True
    unless the caller verifies otherwise).
    """

    def __init__(self, directory: Path | str, *, dtype: str = "float64", verify: bool = True):
        if dtype not in DTYPES:
            raise ConfigError(f"DTW cache dtype must be one of {DTYPES}, got {dtype!r}")
        self.directory = Path(directory)
        self.dtype = dtype
        self.verify = verify

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
    ) -> DtwMatrix:
        """Bring the cached matrix up to date with the profiles ``X`` (rows x slots) and return it.

        ``window``: as in ``kernel.py`` (dtaidistance meaning, None/0 = unconstrained).
        ``normalization``: tag of how ``X`` was normalised (part of the cache identity).
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
                path, computed = self._rebuild(folder, old, plan, xm, w, normalization, progress)
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
        progress: bool,
    ) -> tuple[Path, int]:
        """Write the new matrix of the profiles ``xm`` (matrix row order), then the manifest
        that names it (a crash in between leaves the previous cache in use); return the matrix
        path and the number of pairs computed."""
        path = self._write(folder, old, plan.kept, xm, window, plan.key, progress)
        reused = n_pairs(plan.n_kept)
        computed = n_pairs(len(plan.hashes)) - reused
        self._write_manifest(
            folder, path, plan.hashes, plan.key, xm.shape[1], window, normalization
        )
        log.info(
            "DTW cache %s updated: %d profiles (%d kept, %d removed, %d new), "
            "%d pairs computed, %d reused",
            plan.key,
            len(plan.hashes),
            plan.n_kept,
            plan.removed,
            len(plan.new),
            computed,
            reused,
        )
        return path, computed

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
        return DtwMatrix(
            key=key,
            n=len(matrix_hashes),
            path=path,
            nbytes=path.stat().st_size,
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
        """The verified manifest of ``folder``, or None (after discarding a bad cache)."""
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
        path = folder / manifest["file"]
        if not path.is_file():
            return f"matrix file {path.name} is missing"
        if path.stat().st_size != manifest["nbytes"]:
            return f"matrix file size {path.stat().st_size} != {manifest['nbytes']} (truncated?)"
        shape, dtype = _npy_header(path)
        if shape != (n_pairs(manifest["n"]),) or dtype != np.dtype(self.dtype):
            return f"matrix header shape {shape} dtype {dtype} does not match the manifest"
        if self.verify and file_checksum(path) != manifest["checksum"]:
            return "matrix checksum mismatch (file changed or damaged)"
        return None

    # ------------------------------------------------------------------ writing

    def _write(
        self,
        folder: Path,
        old: dict[str, Any] | None,
        kept: np.ndarray,
        xm: np.ndarray,
        window: int,
        key: str,
        progress: bool,
    ) -> Path:
        """Write the new matrix (kept distances copied, new rows computed); return its path."""
        m, k = xm.shape[0], len(kept)
        final = folder / f"matrix-{key}.npy"
        tmp = folder / f".tmp-{uuid.uuid4().hex}.npy"
        try:
            if m < 2:
                np.save(tmp, np.zeros(0, dtype=self.dtype))
            else:
                out = np.lib.format.open_memmap(
                    tmp, mode="w+", dtype=self.dtype, shape=(n_pairs(m),)
                )
                if k > 1 and old is not None:
                    src = np.load(folder / old["file"], mmap_mode="r")
                    if np.array_equal(kept, np.arange(k)):  # nothing removed: plain prefix copy
                        for lo in range(0, n_pairs(k), _COPY_PAIRS):
                            hi = min(n_pairs(k), lo + _COPY_PAIRS)
                            out[lo:hi] = src[lo:hi]
                    else:
                        _compact(np.asarray(src), kept, np.asarray(out[: n_pairs(k)]))
                    del src
                if m > k:
                    if progress:
                        log.info(
                            "DTW: computing rows %d-%d (%d pairs, %d cells each)",
                            k,
                            m - 1,
                            n_pairs(m) - n_pairs(k),
                            band_cells(xm.shape[1], window),
                        )
                    dtw_rows(xm, k, m, window, out=out[n_pairs(k) :], progress=progress)
                out.flush()
                del out
            _fsync(tmp)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final

    def _write_manifest(
        self,
        folder: Path,
        path: Path,
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
            "file": path.name,
            "nbytes": path.stat().st_size,
            "checksum": file_checksum(path),
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
        _tidy(folder, keep=path.name)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header (ValueError when it is not one)."""
    fmt = np.lib.format
    with open(path, "rb") as f:
        version = fmt.read_magic(f)
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _, dtype = read(f)
    return shape, dtype


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _discard(folder: Path) -> None:
    """Remove a folder's manifest, matrix and temporary files (caller holds the lock)."""
    for pattern in (MANIFEST, "matrix-*.npy", ".tmp-*"):
        for p in folder.glob(pattern):
            p.unlink(missing_ok=True)


def _tidy(folder: Path, keep: str | None) -> None:
    """Remove leftovers of interrupted updates: temporary files and unreferenced matrices."""
    for p in [*folder.glob(".tmp-*"), *folder.glob("matrix-*.npy")]:
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
