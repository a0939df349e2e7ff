"""The DTW cache: incremental == full recompute, corruption never used, atomic writes, appends
in place with per-block checksums, readers unaffected by appends. Recycled slots (the nightly
slide) are tested in ``test_dtw_cache_slots.py``; the ``DtwStore`` contract in
``test_dtw_store.py``."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest
import xxhash

from meterflow.errors import ConfigError
from meterflow.profiles.dtw import condensed_to_square, dtw_condensed, dtw_rows, n_pairs
from meterflow.sources import dtw_cache as cache_mod
from meterflow.sources.dtw_cache import DtwCache
from meterflow.sources.dtw_manifest import FORMAT_VERSION, manifest_digest
from tests.sources.dtw_reference import WINDOW, assert_matches_full, random_profiles


@pytest.fixture
def profiles() -> np.ndarray:
    return random_profiles()


def folder_of(cache: DtwCache, mat) -> Path:
    return mat.path.parent


def test_incremental_add_remove_change_equals_full(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    first = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    assert (first.n, first.pairs_computed, first.pairs_reused) == (40, n_pairs(40), 0)
    assert_matches_full(first, profiles[:40])

    added = cache.update(profiles[:50], window=WINDOW, normalization="l2")  # 10 new
    assert added.path == first.path  # appended in place
    assert added.pairs_reused == n_pairs(40)
    assert added.pairs_computed == n_pairs(50) - n_pairs(40)
    assert_matches_full(added, profiles[:50])

    changed = profiles[:50].copy()
    changed[7] *= 1.5  # a corrected meter-day: new content, new hash
    x3 = np.concatenate([np.delete(changed, [2, 30], axis=0), profiles[50:55]])  # 2 removed, 5 new
    third = cache.update(x3, window=WINDOW, normalization="l2")
    kept = 50 - 3  # rows 2, 30 removed; row 7 replaced
    assert third.n == len(x3) == 53
    assert third.pairs_reused == n_pairs(kept)
    assert third.pairs_computed == n_pairs(53) - n_pairs(kept)
    assert_matches_full(third, x3)
    assert third.path == added.path  # freed slots 2, 7, 30 recycled in place, 3 appended
    assert third.order[[6, 48, 49, 50, 51, 52]].tolist() == [2, 7, 30, 50, 51, 52]  # new ones

    again = cache.update(x3, window=WINDOW, normalization="l2")  # nothing new: pure reuse
    assert (again.pairs_computed, again.pairs_reused, again.key) == (0, n_pairs(53), third.key)
    assert again.path == third.path

    x4 = profiles[45:60]  # 5 of 15 profiles new, 38 of 53 slots would be free: rewritten
    fourth = cache.update(x4, window=WINDOW, normalization="l2")
    assert (fourth.n, fourth.pairs_reused) == (15, n_pairs(10))
    assert fourth.pairs_computed == n_pairs(15) - n_pairs(10)
    assert_matches_full(fourth, x4)
    assert fourth.path != third.path and not third.path.exists()  # rewritten, old file dropped
    # only the current matrix file is left in the folder
    assert sorted(p.name for p in folder_of(cache, fourth).iterdir()) == sorted(
        [".lock", "manifest.json", fourth.path.name]
    )


def test_order_duplicates_and_shuffled_rows(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    base = cache.update(profiles[:30], window=None, normalization="none")
    perm = np.random.default_rng(1).permutation(30)
    x = np.concatenate([profiles[:30][perm], profiles[[4, 4]], np.zeros((2, 24))])
    mat = cache.update(x, window=None, normalization="none")
    assert mat.n == 31  # 30 known + one all-zero profile; duplicates share a row
    assert mat.pairs_reused == n_pairs(30) and mat.pairs_computed == 30
    assert np.array_equal(mat.order[:30], base.order[perm])
    where4 = int(np.flatnonzero(perm == 4)[0])
    assert mat.order[30] == mat.order[31] == mat.order[where4] == base.order[4]
    assert mat.order[32] == mat.order[33] == 30
    assert_matches_full(mat, x, None)
    assert mat.square()[30, 31] == 0.0


def test_row_and_square_subsets_are_consistent(tmp_path: Path, profiles: np.ndarray) -> None:
    mat = DtwCache(tmp_path).update(profiles, window=WINDOW, normalization="zscore")
    sq = mat.square()
    for i in (0, 17, 59):
        assert np.array_equal(mat.row(i), sq[i])
    rows = [5, 50, 2, 33]
    assert np.array_equal(mat.square(rows), sq[np.ix_(rows, rows)])
    c = mat.condensed()
    assert isinstance(c, np.memmap) and not c.flags.writeable
    assert c.shape == (n_pairs(60),)
    assert mat.nbytes == mat.path.stat().st_size >= c.nbytes
    with pytest.raises(IndexError):
        mat.row(60)


def test_lookup_reads_a_subset_without_dropping_rows(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    assert cache.lookup(profiles, window=WINDOW, normalization="l2") is None  # nothing cached
    full = cache.update(profiles, window=WINDOW, normalization="l2")
    subset = profiles[[40, 3, 3, 17]]
    view = cache.lookup(subset, window=WINDOW, normalization="l2")
    assert view is not None and view.key == full.key and view.n == 60
    assert view.pairs_computed == 0
    assert np.array_equal(view.square(), full.square()[np.ix_([40, 3, 3, 17], [40, 3, 3, 17])])
    assert np.array_equal(view.row(0), full.row(40)[[40, 3, 3, 17]])
    unknown = np.vstack([profiles[:2], profiles[:1] + 1.0])
    assert cache.lookup(unknown, window=WINDOW, normalization="l2") is None
    assert cache.update(profiles, window=WINDOW, normalization="l2").pairs_computed == 0


def test_float32_storage_error_bound(tmp_path: Path, profiles: np.ndarray) -> None:
    mat = DtwCache(tmp_path, dtype="float32").update(profiles, window=None, normalization="none")
    assert mat.condensed().dtype == np.float32
    exact = dtw_condensed(profiles, None)
    rel = np.abs(np.asarray(mat.condensed(), dtype=np.float64) - exact) / exact
    assert rel.max() <= 2.0**-24
    assert mat.nbytes < n_pairs(60) * 8


def test_parameters_key_separate_matrices(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    a = cache.update(profiles, window=WINDOW, normalization="l2")
    b = cache.update(profiles, window=None, normalization="l2")
    c = cache.update(profiles, window=WINDOW, normalization="max")
    d = cache.update(profiles, window=99, normalization="l2")  # wider than 24 = unconstrained
    assert len({a.key, b.key, c.key}) == 3 and len({a.path, b.path, c.path}) == 3
    assert (d.key, d.pairs_computed, d.window) == (b.key, 0, 0)
    assert cache.update(profiles, window=WINDOW, normalization="l2").pairs_computed == 0
    with pytest.raises(ConfigError):
        cache.update(profiles, window=WINDOW, normalization="../evil")
    with pytest.raises(ConfigError):
        DtwCache(tmp_path, dtype="float16")


def _corrupt_matrix_byte(mat) -> None:
    raw = bytearray(mat.path.read_bytes())
    raw[-17] ^= 0x01
    mat.path.write_bytes(bytes(raw))


def _truncate_matrix(mat) -> None:
    with open(mat.path, "r+b") as f:
        f.truncate(mat.nbytes - 8)


def _edit_manifest_hash(mat) -> None:
    path = mat.path.parent / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["hashes"][3] = "0" * 32
    path.write_text(json.dumps(manifest))


def _edit_manifest_window(mat) -> None:
    path = mat.path.parent / "manifest.json"
    path.write_text(path.read_text().replace('"window": 3', '"window": 4'))


def _delete_matrix(mat) -> None:
    mat.path.unlink()


def _garbage_manifest(mat) -> None:
    (mat.path.parent / "manifest.json").write_text("{not json")


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt_matrix_byte,
        _truncate_matrix,
        _edit_manifest_hash,
        _edit_manifest_window,
        _delete_matrix,
        _garbage_manifest,
    ],
)
def test_corrupt_cache_is_detected_and_recomputed(
    tmp_path: Path, profiles: np.ndarray, damage, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DtwCache(tmp_path)
    mat = cache.update(profiles, window=WINDOW, normalization="l2")
    damage(mat)
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        again = cache.update(profiles, window=WINDOW, normalization="l2")
    assert any("stale or corrupt" in r.message for r in caplog.records)
    assert (again.pairs_computed, again.pairs_reused) == (n_pairs(60), 0)
    assert_matches_full(again, profiles)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert cache.update(profiles, window=WINDOW, normalization="l2").pairs_computed == 0
    assert not caplog.records  # the rebuilt cache is clean


def test_leftovers_of_a_killed_update_are_removed(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    mat = cache.update(profiles[:20], window=WINDOW, normalization="l2")
    folder = mat.path.parent
    (folder / ".tmp-deadbeef.bin").write_bytes(b"partial")
    (folder / "matrix-0123456789abcdef.bin").write_bytes(b"renamed but never referenced")
    (folder / "matrix-orphan.npy").write_bytes(b"a format-1 matrix")
    again = cache.update(profiles[:20], window=WINDOW, normalization="l2")
    assert again.pairs_computed == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".lock", "manifest.json", mat.path.name]
    )


def test_tiny_inputs(tmp_path: Path) -> None:
    cache = DtwCache(tmp_path)
    one = cache.update(np.ones((1, 24)), window=None, normalization="none")
    assert (one.n, one.pairs_computed) == (1, 0)
    assert one.square().tolist() == [[0.0]]
    assert one.row(0).tolist() == [0.0]
    two = cache.update(np.stack([np.ones(24), np.zeros(24)]), window=None, normalization="none")
    assert two.square()[0, 1] == pytest.approx(np.sqrt(24.0))
    assert two.pairs_computed == 1


# ---------------------------------------------------------------------- format 2: appends, blocks


def _manifest(mat) -> dict:
    return json.loads((mat.path.parent / "manifest.json").read_text())


def test_format_1_cache_is_discarded(
    tmp_path: Path, profiles: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    cache = DtwCache(tmp_path)
    mat = cache.update(profiles, window=WINDOW, normalization="l2")
    folder = mat.path.parent
    v1 = {k: v for k, v in _manifest(mat).items() if k not in ("digest", "blocks", "block_bytes")}
    v1 |= {"format": 1, "file": "matrix-old.npy", "checksum": "sha256:0"}
    v1["digest"] = manifest_digest(v1)
    (folder / "manifest.json").write_text(json.dumps(v1))
    mat.path.rename(folder / "matrix-old.npy")
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        again = cache.update(profiles, window=WINDOW, normalization="l2")
    assert any(f"format=1, expected {FORMAT_VERSION}" in r.message for r in caplog.records)
    assert again.pairs_computed == n_pairs(60)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [".lock", "manifest.json", again.path.name]
    )


def test_append_in_place_hashes_only_the_touched_blocks(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = 1024  # 40 profiles: 6240 bytes = 6 full blocks + 96; 50 profiles: 9800 bytes
    monkeypatch.setattr(cache_mod, "BLOCK_BYTES", block)
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    old_bytes, inode = before.path.read_bytes(), before.path.stat().st_ino
    old_digests = _manifest(before)["blocks"]
    assert len(old_bytes) == before.nbytes == n_pairs(40) * 8

    real = xxhash.xxh3_128_hexdigest
    hashed: list[bytes] = []

    def spy(data) -> str:
        hashed.append(bytes(data))
        return real(data)

    monkeypatch.setattr(xxhash, "xxh3_128_hexdigest", spy)
    after = cache.update(profiles[:50], window=WINDOW, normalization="l2")
    monkeypatch.setattr(xxhash, "xxh3_128_hexdigest", real)
    new_bytes = after.path.read_bytes()

    assert after.path == before.path and after.path.stat().st_ino == inode
    assert (after.pairs_computed, after.pairs_reused) == (n_pairs(50) - n_pairs(40), n_pairs(40))
    assert new_bytes[: len(old_bytes)] == old_bytes  # the old prefix was never rewritten
    full = DtwCache(tmp_path / "full").update(profiles[:50], window=WINDOW, normalization="l2")
    assert np.array_equal(after.condensed(), full.condensed())

    def blocks(raw: bytes, first: int = 0) -> list[bytes]:
        return [raw[lo : lo + block] for lo in range(first * block, len(raw), block)]

    # verification read every old block (7), then the write hashed the old partial block (6) and
    # the new ones (7..9) only, not the 6 unchanged full blocks (blocks are hashed in threads)
    assert len(blocks(old_bytes)) == 7 and len(blocks(new_bytes, first=6)) == 4
    assert sorted(hashed[:7]) == sorted(blocks(old_bytes))
    assert sorted(hashed[7:]) == sorted(blocks(new_bytes, first=6))
    # the digests copied from the old manifest and the new ones equal a from-scratch hashing
    manifest = _manifest(after)
    assert manifest["blocks"] == [real(b) for b in blocks(new_bytes)]
    assert manifest["blocks"][:6] == old_digests[:6] and manifest["blocks"][6] != old_digests[6]
    assert manifest["nbytes"] == after.nbytes == len(new_bytes)
    again = cache.update(profiles[:50], window=WINDOW, normalization="l2")  # verifies clean
    assert (again.key, again.pairs_computed) == (after.key, 0)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_crash_during_an_append_truncates_the_file_back(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch, error: type
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    manifest = (before.path.parent / "manifest.json").read_bytes()
    matrix = before.path.read_bytes()
    sizes = []

    def crash(x, start, stop, window, *, out, progress):
        sizes.append(before.path.stat().st_size)  # the file was extended in place
        out[: len(out) // 2] = 123.0
        out.flush()
        raise error("worker lost while computing new rows")

    monkeypatch.setattr(cache_mod, "dtw_rows", crash)
    with pytest.raises(error, match="worker lost"):
        cache.update(profiles[:50], window=WINDOW, normalization="l2")
    monkeypatch.undo()

    assert sizes == [n_pairs(50) * 8]
    assert before.path.read_bytes() == matrix  # old size, old bytes
    assert (before.path.parent / "manifest.json").read_bytes() == manifest
    assert not list(before.path.parent.glob(".tmp-*"))
    grown = cache.update(profiles[:50], window=WINDOW, normalization="l2")
    assert (grown.path, grown.pairs_reused) == (before.path, n_pairs(40))
    assert np.array_equal(grown.condensed(), dtw_condensed(profiles[:50], WINDOW))


@pytest.mark.parametrize("added", [0, 10])
def test_bytes_past_the_manifest_are_a_torn_append_rolled_back(
    tmp_path: Path, profiles: np.ndarray, caplog: pytest.LogCaptureFixture, added: int
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    matrix = before.path.read_bytes()
    with open(before.path, "ab") as f:  # a crash after the extension, before the manifest
        f.write(np.full(500, np.nan).tobytes())
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        after = cache.update(profiles[: 40 + added], window=WINDOW, normalization="l2")
    messages = [r.message for r in caplog.records]
    assert any("rolled back a torn append" in m for m in messages), messages
    assert not any("stale or corrupt" in m for m in messages)
    assert (after.path, after.pairs_reused) == (before.path, n_pairs(40))  # nothing recomputed
    assert after.pairs_computed == n_pairs(40 + added) - n_pairs(40)
    assert after.path.stat().st_size == after.nbytes
    assert after.path.read_bytes()[: len(matrix)] == matrix
    assert np.array_equal(after.condensed(), dtw_condensed(profiles[: 40 + added], WINDOW))


def test_flipped_byte_in_an_early_block_is_detected(
    tmp_path: Path,
    profiles: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(cache_mod, "BLOCK_BYTES", 1024)
    cache = DtwCache(tmp_path)
    cache.update(profiles[:40], window=WINDOW, normalization="l2")
    mat = cache.update(profiles, window=WINDOW, normalization="l2")  # appended: 14 blocks
    assert len(_manifest(mat)["blocks"]) == -(-n_pairs(60) * 8 // 1024) == 14
    raw = bytearray(mat.path.read_bytes())
    raw[1500] ^= 0x01  # block 1: a full block written by the first build, never rehashed since
    mat.path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        again = cache.update(profiles, window=WINDOW, normalization="l2")
    assert any("block 1 checksum mismatch" in r.message for r in caplog.records)
    assert (again.pairs_computed, again.pairs_reused) == (n_pairs(60), 0)
    assert np.array_equal(again.condensed(), dtw_condensed(profiles, WINDOW))


def test_a_matrix_opened_before_an_append_or_rewrite_keeps_its_values(
    tmp_path: Path, profiles: np.ndarray
) -> None:
    cache = DtwCache(tmp_path)
    mat = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    opened = mat.condensed()
    values, square = np.array(opened), mat.square()
    cache.update(profiles[:50], window=WINDOW, normalization="l2")  # append in place
    assert np.array_equal(mat.condensed(), values) and np.array_equal(mat.square(), square)
    assert np.array_equal(opened, values) and mat.row(3).tolist() == square[3].tolist()
    cache.update(profiles[45:55], window=WINDOW, normalization="l2")  # rewrite: file unlinked
    assert not mat.path.exists()
    assert np.array_equal(opened, values)  # the open memmap still reads the old file


def test_rows_hook_computes_the_new_rows_only(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    cache.update(profiles[:40], window=WINDOW, normalization="l2")
    calls = []

    def rows(x, start, stop, window, out) -> None:
        calls.append((x.copy(), start, stop, window, out.shape, out.dtype))
        out[:] = dtw_rows(x, start, stop, window) + 1000.0  # marked: it must land in the cache

    mat = cache.update(profiles[:50], window=WINDOW, normalization="l2", rows=rows)
    [(x, start, stop, window, shape, dtype)] = calls
    assert np.array_equal(x, profiles[:50]) and (start, stop, window) == (40, 50, WINDOW)
    assert (shape, dtype) == ((n_pairs(50) - n_pairs(40),), np.float64)
    expected = dtw_condensed(profiles[:50], WINDOW)
    expected[n_pairs(40) :] += 1000.0
    assert np.array_equal(mat.condensed(), expected)
    assert mat.pairs_computed == n_pairs(50) - n_pairs(40)

    calls.clear()  # a slide (row 0 removed, 3 new: slot 0 recycled) computes the new rows only
    slid = cache.update(profiles[1:53], window=WINDOW, normalization="l2", rows=rows)
    [(x, start, stop, _, shape, _)] = calls
    assert (start, stop, shape) == (49, 52, (n_pairs(52) - n_pairs(49),))
    assert np.array_equal(x, profiles[1:53])  # kept profiles by slot, then the new ones
    assert slid.path == mat.path and slid.order.tolist() == [*range(1, 50), 0, 50, 51]
    kept = condensed_to_square(expected, 50)[1:, 1:]  # old rows 1..49, marks included
    assert np.array_equal(slid.square(range(49)), kept)
    new = condensed_to_square(dtw_rows(profiles[1:53], 0, 52, WINDOW), 52)[49:] + 1000.0
    assert np.array_equal(slid.square()[49:, :49], new[:, :49])
    assert np.array_equal(slid.square()[49:, 49:], new[:, 49:] - 1000.0 * np.eye(3))


def _reader(
    directory: str, x: np.ndarray, sizes: list[int], expected: np.ndarray, seen, stop, results
) -> None:
    """Runs in a spawned process: loop over ``lookup``/``square`` while the parent appends."""
    cache = DtwCache(directory)
    reads, sizes_seen, errors = 0, set(), []
    try:
        while True:
            last = stop.is_set()
            for s in reversed(sizes):
                mat = cache.lookup(x[:s], window=WINDOW, normalization="l2")
                if mat is not None:
                    break
            else:
                raise AssertionError("no cached matrix")
            for _ in range(3):  # reads outside the lock, racing with the next append
                c = np.array(mat.condensed())
                if not np.array_equal(c, expected[: n_pairs(mat.n)]):
                    errors.append(f"condensed of {mat.n} profiles differs")
                if not np.array_equal(mat.square(), condensed_to_square(c[: n_pairs(s)], s)):
                    errors.append(f"square of {s} profiles differs")
                reads += 1
            sizes_seen.add(mat.n)
            seen.value = max(seen.value, mat.n)
            if last:
                break
    except Exception as exc:  # reported to the parent, which fails the test
        errors.append(repr(exc))
    results.put({"reads": reads, "sizes": sorted(sizes_seen), "errors": errors})


def _wait_for(seen, n: int, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while seen.value < n:
        assert proc.is_alive() and time.monotonic() < deadline, f"reader never saw {n} profiles"
        time.sleep(0.005)


def test_reader_process_sees_consistent_matrices_during_appends(tmp_path: Path) -> None:
    x = np.random.default_rng(7).gamma(2.0, 50.0, size=(160, 24))
    sizes = [40, 60, 80, 100, 120, 140, 160]
    expected = dtw_condensed(x, WINDOW)
    cache = DtwCache(tmp_path)
    first = cache.update(x[: sizes[0]], window=WINDOW, normalization="l2")
    ctx = mp.get_context("spawn")
    seen, stop, results = ctx.Value("i", 0), ctx.Event(), ctx.Queue()
    proc = ctx.Process(
        target=_reader, args=(str(tmp_path), x, sizes, expected, seen, stop, results)
    )
    proc.start()
    try:
        _wait_for(seen, sizes[0], proc)
        for s in sizes[1:]:
            mat = cache.update(x[:s], window=WINDOW, normalization="l2")
            assert mat.path == first.path  # every batch appended in place
            _wait_for(seen, s, proc)
        stop.set()
        report = results.get(timeout=60)
    finally:
        proc.join(timeout=60)
        if proc.is_alive():
            proc.kill()
    assert report["errors"] == []
    assert report["sizes"] == sizes and report["reads"] >= 3 * len(sizes)
    assert os.path.getsize(first.path) == n_pairs(sizes[-1]) * 8
