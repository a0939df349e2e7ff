"""The DTW cache: incremental == full recompute, corruption never used, atomic writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from meterflow.errors import ConfigError
from meterflow.profiles.dtw import condensed_to_square, dtw_condensed, n_pairs
from meterflow.sources import dtw_cache as cache_mod
from meterflow.sources.dtw_cache import DtwCache

WINDOW = 3


@pytest.fixture
def profiles() -> np.ndarray:
    return np.random.default_rng(42).gamma(2.0, 50.0, size=(60, 24))


def full_square(x: np.ndarray, window: int | None = WINDOW) -> np.ndarray:
    return condensed_to_square(dtw_condensed(x, window), len(x))


def assert_matches_full(mat, x: np.ndarray, window: int | None = WINDOW) -> None:
    got = mat.square()
    assert got.shape == (len(x), len(x))
    assert np.max(np.abs(got - full_square(x, window))) <= 1e-12


def folder_of(cache: DtwCache, mat) -> Path:
    return mat.path.parent


def test_incremental_add_remove_change_equals_full(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    first = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    assert (first.n, first.pairs_computed, first.pairs_reused) == (40, n_pairs(40), 0)
    assert_matches_full(first, profiles[:40])

    added = cache.update(profiles[:50], window=WINDOW, normalization="l2")  # 10 new
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

    again = cache.update(x3, window=WINDOW, normalization="l2")  # nothing new: pure reuse
    assert (again.pairs_computed, again.pairs_reused, again.key) == (0, n_pairs(53), third.key)
    assert again.path == third.path
    # only the current matrix file is left in the folder
    assert sorted(p.name for p in folder_of(cache, third).iterdir()) == sorted(
        [".lock", "manifest.json", third.path.name]
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


def test_failed_update_leaves_previous_cache_intact(
    tmp_path: Path, profiles: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    manifest = (before.path.parent / "manifest.json").read_bytes()
    matrix = before.path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while computing new rows")

    monkeypatch.setattr(cache_mod, "dtw_rows", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.update(profiles, window=WINDOW, normalization="l2")  # 20 new rows
    monkeypatch.undo()

    folder = before.path.parent
    assert (folder / "manifest.json").read_bytes() == manifest
    assert before.path.read_bytes() == matrix
    assert not list(folder.glob(".tmp-*"))
    same = cache.update(profiles[:40], window=WINDOW, normalization="l2")
    assert (same.pairs_computed, same.key) == (0, before.key)
    grown = cache.update(profiles, window=WINDOW, normalization="l2")
    assert grown.pairs_reused == n_pairs(40)
    assert_matches_full(grown, profiles)


def test_leftovers_of_a_killed_update_are_removed(tmp_path: Path, profiles: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    mat = cache.update(profiles[:20], window=WINDOW, normalization="l2")
    folder = mat.path.parent
    (folder / ".tmp-deadbeef.npy").write_bytes(b"partial")
    (folder / "matrix-orphan.npy").write_bytes(b"renamed but never referenced")
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
