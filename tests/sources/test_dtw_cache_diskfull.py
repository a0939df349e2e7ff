"""The DTW cache on a full disk: every path that creates or grows a matrix file (new matrix,
append, a slide that recycles slots and grows, a rewrite) allocates its blocks before mapping
it, so a full disk is a ``DiskFullError`` naming the file and the bytes, never a SIGBUS; the
previous cache stays usable. A slide that only recycles slots needs no new block. No real full
disk: ``os.posix_fallocate`` and ``shutil.disk_usage`` are stood in for."""

from __future__ import annotations

import errno
import os
import re
import shutil
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from meterflow.errors import DiskFullError, format_bytes
from meterflow.profiles.dtw import condensed_to_square, dtw_condensed, dtw_rows, n_pairs
from meterflow.sources import diskspace
from meterflow.sources.dtw_cache import DtwCache

WINDOW = 3
NORM = "l2"
ITEM = 8  # float64
Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def profiles() -> np.ndarray:
    return np.random.default_rng(7).gamma(2.0, 50.0, size=(300, 24))


def no_space(fd: int, offset: int, length: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def never(*args) -> None:
    raise AssertionError("rows computed although the disk is full")


def state(folder: Path) -> dict[str, bytes]:
    """Every file of a cache folder with its bytes (the lock file aside)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.name != ".lock"}


class Spy:
    """A RowComputer that notes, when asked to compute, the size and allocated bytes of the
    matrix file being written (the temporary file of a rewrite, else the matrix)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.seen = folder, []

    def __call__(self, x, start, stop, window, out) -> None:
        written = [*self.folder.glob(".tmp-*.bin")] or [*self.folder.glob("matrix-*.bin")]
        (path,) = written
        stat = path.stat()
        self.seen.append((stat.st_size, stat.st_blocks * 512))
        dtw_rows(x, start, stop, window, out=out, progress=False)


def record_fallocate(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    real = os.posix_fallocate

    def spy(fd: int, offset: int, length: int) -> None:
        calls.append((offset, length))
        real(fd, offset, length)

    monkeypatch.setattr(os, "posix_fallocate", spy)
    return calls


def test_new_matrix_on_a_full_disk_names_the_file_and_computes_nothing(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DtwCache(tmp_path)
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(DiskFullError) as caught:
        cache.update(profiles[:60], window=WINDOW, normalization=NORM, rows=never)
    folder = cache.folder(length=24, window=WINDOW, normalization=NORM)
    needed = format_bytes(n_pairs(60) * ITEM)
    pattern = rf"for the DTW matrix at {re.escape(str(folder))}/matrix-[0-9a-f]{{16}}\.bin: "
    assert re.match(
        rf"not enough disk space {pattern}needs {re.escape(needed)}, .* free$", str(caught.value)
    )
    assert state(folder) == {}  # no temporary file, no manifest


def test_append_on_a_full_disk_truncates_back_and_keeps_the_cache(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization=NORM)
    kept = state(before.path.parent)
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    with pytest.raises(DiskFullError) as caught:
        cache.update(profiles[:50], window=WINDOW, normalization=NORM, rows=never)
    needed = format_bytes((n_pairs(50) - n_pairs(40)) * ITEM)
    assert str(caught.value).startswith(
        f"not enough disk space for the DTW matrix at {before.path}: needs {needed}, "
    )
    assert state(before.path.parent) == kept  # old size, old bytes, old manifest
    monkeypatch.undo()
    grown = cache.update(profiles[:50], window=WINDOW, normalization=NORM)
    assert (grown.path, grown.pairs_reused) == (before.path, n_pairs(40))
    assert np.array_equal(grown.condensed(), dtw_condensed(profiles[:50], WINDOW))


def full_square(x: np.ndarray) -> np.ndarray:
    return condensed_to_square(dtw_condensed(x, WINDOW), len(x))


def test_slide_on_a_full_disk_grows_nothing_or_keeps_the_previous_matrix(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization=NORM)
    kept = state(before.path.parent)
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    grow = format_bytes((n_pairs(45) - n_pairs(40)) * ITEM)  # 10 slots freed, 15 profiles new
    with pytest.raises(DiskFullError, match=re.escape(f"at {before.path}: needs {grow}")):
        cache.update(profiles[10:55], window=WINDOW, normalization=NORM, rows=never)
    assert state(before.path.parent) == kept  # old size, old bytes, old manifest
    found = cache.lookup(profiles[:40], window=WINDOW, normalization=NORM)
    assert found is not None and found.path == before.path
    slid = cache.update(profiles[10:50], window=WINDOW, normalization=NORM)  # 10 out, 10 in
    assert (slid.path, slid.pairs_computed) == (before.path, n_pairs(40) - n_pairs(30))
    assert np.array_equal(slid.square(), full_square(profiles[10:50]))


@pytest.mark.parametrize(
    ("first", "then", "allocated"),
    [
        (None, slice(0, 300), (0, n_pairs(300) * ITEM)),  # new matrix
        (slice(0, 40), slice(0, 300), (n_pairs(40) * ITEM, (n_pairs(300) - n_pairs(40)) * ITEM)),
        (slice(0, 40), slice(20, 300), (0, n_pairs(280) * ITEM)),  # rewrite: 20 kept, 260 new
        (slice(0, 40), slice(10, 55), (n_pairs(40) * ITEM, (n_pairs(45) - n_pairs(40)) * ITEM)),
    ],
    ids=["new", "append", "rewrite", "recycle"],
)
def test_the_file_is_allocated_before_rows_are_written_into_it(
    tmp_path: Path,
    profiles: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    first: slice | None,
    then: slice,
    allocated: tuple[int, int],
) -> None:
    cache = DtwCache(tmp_path)
    if first is not None:
        cache.update(profiles[first], window=WINDOW, normalization=NORM)
    calls = record_fallocate(monkeypatch)
    spy = Spy(cache.folder(length=24, window=WINDOW, normalization=NORM))
    mat = cache.update(profiles[then], window=WINDOW, normalization=NORM, rows=spy)
    assert calls == [allocated]
    ((size, blocks),) = spy.seen
    assert size == mat.nbytes and blocks >= size  # full size, every block allocated, not sparse
    assert np.array_equal(mat.square(), full_square(profiles[then]))


@pytest.mark.parametrize(
    "then", [slice(0, 300), slice(20, 300), slice(10, 55)], ids=["append", "rewrite", "recycle"]
)
def test_zeros_are_written_where_fallocate_is_unsupported(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch, then: slice
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    cache = DtwCache(tmp_path)
    cache.update(profiles[:40], window=WINDOW, normalization=NORM)
    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    spy = Spy(cache.folder(length=24, window=WINDOW, normalization=NORM))
    mat = cache.update(profiles[then], window=WINDOW, normalization=NORM, rows=spy)
    ((size, blocks),) = spy.seen
    assert size == mat.nbytes and blocks >= size
    assert np.array_equal(mat.square(), full_square(profiles[then]))


@pytest.mark.parametrize("then", [slice(0, 60), slice(0, 300), slice(20, 300), slice(10, 55)])
def test_short_free_space_refuses_before_allocating(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch, then: slice
) -> None:
    cache = DtwCache(tmp_path)
    if then != slice(0, 60):  # an append, a rewrite, a recycle that grows the file
        cache.update(profiles[:40], window=WINDOW, normalization=NORM)
    folder = cache.folder(length=24, window=WINDOW, normalization=NORM)
    kept = state(folder) if folder.exists() else {}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    monkeypatch.setattr(os, "posix_fallocate", never)
    with pytest.raises(DiskFullError, match=r"for the DTW matrix at .*: needs .*, 1\.0 kB free$"):
        cache.update(profiles[then], window=WINDOW, normalization=NORM, rows=never)
    assert state(folder) == kept
    assert diskspace.SAFETY_MARGIN_BYTES > 1000
