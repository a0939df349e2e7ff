"""The DTW cache's nightly slide: the slots of profiles that left are recycled in place for the
new ones, computing exactly the new pairs; the result equals a fresh full computation; readers of
the previous matrix and crashes in the middle of the in-place writes are detected."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
from pathlib import Path

import numpy as np
import pytest

from meterflow.profiles.dtw import condensed_to_square, dtw_condensed, dtw_rows, n_pairs
from meterflow.sources import dtw_cache as cache_mod
from meterflow.sources import dtw_slots
from meterflow.sources.dtw_cache import DtwCache
from meterflow.sources.dtw_matrix import StaleDtwMatrixError
from meterflow.sources.dtw_slots import APPEND, FREE, HIT, RECYCLE, REWRITE, plan_update

WINDOW = 3
NORM = "l2"
METERS, DAYS = 20, 7


@pytest.fixture
def days() -> np.ndarray:
    """Profiles of ``METERS`` meters on ``DAYS + 4`` days: ``days[d]`` is day ``d``'s rows."""
    rng = np.random.default_rng(5)
    return rng.gamma(2.0, 50.0, size=(DAYS + 4, METERS, 24))


def window_of(days: np.ndarray, first: int) -> np.ndarray:
    """The sample of ``DAYS`` days from day ``first`` on (meter-major, as a profiles table)."""
    return np.ascontiguousarray(days[first : first + DAYS].transpose(1, 0, 2).reshape(-1, 24))


def full_square(x: np.ndarray, window: int = WINDOW) -> np.ndarray:
    return condensed_to_square(dtw_condensed(x, window, progress=False), len(x))


def manifest(mat) -> dict:
    return json.loads((mat.path.parent / "manifest.json").read_text())


class Counting:
    """A RowComputer that counts the pairs it computes."""

    def __init__(self) -> None:
        self.pairs = 0

    def __call__(self, x, start, stop, window, out) -> None:
        self.pairs += len(out)
        dtw_rows(x, start, stop, window, out=out)


def test_nightly_slides_compute_exactly_the_new_pairs_in_place(
    tmp_path: Path, days: np.ndarray
) -> None:
    cache = DtwCache(tmp_path)
    first = cache.update(window_of(days, 0), window=WINDOW, normalization=NORM)
    inode, size = first.path.stat().st_ino, first.path.stat().st_size
    n, kept = METERS * DAYS, METERS * (DAYS - 1)
    for night in range(1, 5):
        x = window_of(days, night)
        rows = Counting()
        mat = cache.update(x, window=WINDOW, normalization=NORM, rows=rows)
        assert (mat.pairs_computed, mat.pairs_reused) == (n_pairs(n) - n_pairs(kept), n_pairs(kept))
        assert rows.pairs == mat.pairs_computed == METERS * kept + n_pairs(METERS)
        assert (mat.path, mat.path.stat().st_ino, mat.path.stat().st_size) == (
            first.path,
            inode,
            size,
        )
        assert mat.n == n and None not in manifest(mat)["hashes"]  # every freed slot reused
        assert np.array_equal(mat.square(), full_square(x))
        assert mat.is_current()


def test_new_profiles_fill_the_freed_slots(tmp_path: Path, days: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    x0 = window_of(days, 0)
    cache.update(x0, window=WINDOW, normalization=NORM)
    x1 = window_of(days, 1)
    mat = cache.update(x1, window=WINDOW, normalization=NORM)
    old_day0 = np.arange(0, len(x0), DAYS)  # day 0 of each meter: the freed slots
    new_day = np.arange(DAYS - 1, len(x1), DAYS)  # the newest day of each meter
    assert mat.order[new_day].tolist() == old_day0.tolist()
    others = np.setdiff1d(np.arange(len(x1)), new_day)
    assert mat.order[others].tolist() == np.setdiff1d(np.arange(len(x0)), old_day0).tolist()


def test_fewer_or_more_new_profiles_than_freed_slots(tmp_path: Path, days: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    x0 = window_of(days, 0)
    cache.update(x0, window=WINDOW, normalization=NORM)
    x1 = np.concatenate([x0[30:], days[DAYS, :10]])  # 30 out, 10 in: 20 slots left free
    mat = cache.update(x1, window=WINDOW, normalization=NORM)
    assert mat.n == len(x0) and manifest(mat)["hashes"].count(None) == 20
    assert np.array_equal(mat.square(), full_square(x1))
    x2 = np.concatenate([x1[5:], days[DAYS + 1]])  # 5 out, 20 in: 25 free slots, 20 taken
    mat = cache.update(x2, window=WINDOW, normalization=NORM)
    assert mat.n == len(x0) and manifest(mat)["hashes"].count(None) == 5
    assert mat.pairs_computed == n_pairs(len(x2)) - n_pairs(len(x2) - 20)
    assert np.array_equal(mat.square(), full_square(x2))
    x3 = np.concatenate([x2[10:], days[DAYS + 2], days[DAYS + 3, :5]])  # 10 out, 25 in: grows
    mat = cache.update(x3, window=WINDOW, normalization=NORM)
    assert mat.n == len(x0) + 10 == len(x3) and None not in manifest(mat)["hashes"]
    assert mat.nbytes == mat.path.stat().st_size == n_pairs(len(x3)) * 8
    assert np.array_equal(mat.square(), full_square(x3))


@pytest.mark.parametrize("chunk_pairs", [50, 16_000_000], ids=["many_chunks", "one_chunk"])
def test_random_updates_equal_a_fresh_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_pairs: int
) -> None:
    monkeypatch.setattr(dtw_slots, "SCATTER_PAIRS", chunk_pairs)
    modes: list[str] = []

    def plan(old, present):
        modes.append(plan_update(old, present).mode)
        return plan_update(old, present)

    monkeypatch.setattr(cache_mod, "plan_update", plan)
    pool = np.random.default_rng(11).gamma(2.0, 50.0, size=(150, 24))
    rng = np.random.default_rng(3)
    cache = DtwCache(tmp_path)
    present: set[int] = set()
    for _ in range(14):
        out = set(rng.choice(sorted(present), size=len(present) // 5)) if present else set()
        absent = np.setdiff1d(np.arange(150), sorted(present))
        came = set(rng.choice(absent, size=rng.integers(1, 25), replace=False))
        kept = len(present - out)
        present = (present - out) | came
        rows = rng.permutation(sorted(present))
        mat = cache.update(pool[rows], window=WINDOW, normalization=NORM)
        assert mat.pairs_computed == n_pairs(len(present)) - n_pairs(kept)
        assert np.array_equal(mat.square(), full_square(pool[rows]))
    assert modes.count(RECYCLE) >= 8, modes


def test_profiles_leaving_only_mark_slots_free(tmp_path: Path, days: np.ndarray) -> None:
    cache = DtwCache(tmp_path)
    x0 = window_of(days, 0)
    before = cache.update(x0, window=WINDOW, normalization=NORM)
    raw = before.path.read_bytes()
    after = cache.update(x0[:100], window=WINDOW, normalization=NORM)
    assert after.pairs_computed == 0 and after.path.read_bytes() == raw  # no byte written
    assert manifest(after)["hashes"][100:] == [None] * 40
    assert before.is_current() and after.epoch == before.epoch  # readers keep their values
    assert np.array_equal(before.square(), full_square(x0))
    assert np.array_equal(after.square(), full_square(x0[:100]))


def test_float32_slide_equals_a_fresh_float32_build(tmp_path: Path, days: np.ndarray) -> None:
    cache = DtwCache(tmp_path / "slid", dtype="float32")
    cache.update(window_of(days, 0), window=WINDOW, normalization=NORM)
    x = window_of(days, 1)
    slid = cache.update(x, window=WINDOW, normalization=NORM)
    fresh = DtwCache(tmp_path / "fresh", dtype="float32").update(
        x, window=WINDOW, normalization=NORM
    )
    assert slid.pairs_computed < fresh.pairs_computed
    assert np.array_equal(slid.square(), fresh.square())


def test_block_digests_after_a_slide_verify_clean(
    tmp_path: Path, days: np.ndarray, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(cache_mod, "BLOCK_BYTES", 1024)  # 140 profiles: 76 KB, 75 blocks
    cache = DtwCache(tmp_path)
    cache.update(window_of(days, 0), window=WINDOW, normalization=NORM)
    x = window_of(days, 1)
    slid = cache.update(x, window=WINDOW, normalization=NORM)
    with caplog.at_level(logging.WARNING):
        again = cache.update(x, window=WINDOW, normalization=NORM)  # verifies every block
    assert not caplog.records
    assert (again.key, again.pairs_computed, again.path) == (slid.key, 0, slid.path)


def test_a_reader_of_the_previous_matrix_sees_the_recycling(
    tmp_path: Path, days: np.ndarray
) -> None:
    cache = DtwCache(tmp_path)
    x0 = window_of(days, 0)
    old = cache.update(x0, window=WINDOW, normalization=NORM)
    cache.update(np.concatenate([x0, days[DAYS + 3]]), window=WINDOW, normalization=NORM)
    assert old.is_current()  # an append writes no byte an older reader maps
    assert np.array_equal(old.square(), full_square(x0))
    cache.update(window_of(days, 1), window=WINDOW, normalization=NORM)
    assert not old.is_current()
    with pytest.raises(StaleDtwMatrixError, match="updated in place"):
        old.square()
    with pytest.raises(StaleDtwMatrixError):
        old.row(0)
    found = cache.lookup(x0[1:], window=WINDOW, normalization=NORM)
    assert found is None  # day 0's profiles are gone from the cache


# --------------------------------------------------------------------- crashes in the middle


def test_plan_modes() -> None:
    old = [f"{i:032x}" for i in range(10)]
    assert plan_update(None, old).mode == REWRITE
    assert plan_update(old, old).mode == HIT
    assert plan_update(old, [*old, "a" * 32]).mode == APPEND
    assert plan_update(old, old[:8]).mode == FREE
    slide = plan_update(old, [*old[2:], "a" * 32, "b" * 32, "c" * 32])
    assert slide.mode == RECYCLE and slide.new_slots.tolist() == [0, 1, 10]
    assert slide.slots[:2] == ["a" * 32, "b" * 32] and len(slide.slots) == 11
    assert plan_update(old, [*old[7:], "a" * 32]).mode == REWRITE  # 6 of 10 slots left free
    assert plan_update(old, [*old[6:], "a" * 32]).mode == RECYCLE  # 5 of 10: not more than half
    new = [f"{i:032x}" for i in range(20, 27)]
    assert plan_update(old, [*old[4:], *new]).mode == REWRITE  # 7 of 13 slots new
    assert plan_update(old, [*old[4:], *new[:6]]).mode == RECYCLE  # 6 of 12
    free = plan_update(old, old[:8])
    assert plan_update(free.slots, [*old[:8], "a" * 32]).new_slots.tolist() == [8]


def _crash_on_second_chunk(error: type) -> object:
    calls = []

    def rows(x, start, stop, window, out) -> None:
        calls.append(start)
        if len(calls) == 2:
            if error is SystemExit:
                os._exit(9)  # a killed process: no cleanup, no exception handler runs
            raise error("worker lost while computing new rows")
        dtw_rows(x, start, stop, window, out=out)

    return rows


def _slide_and_die(directory: str, x: np.ndarray) -> None:
    """Runs in a spawned process: a slide whose second chunk of new pairs kills the process."""
    dtw_slots.SCATTER_PAIRS = 100  # a chunk of one row: the first row is written in place
    DtwCache(directory).update(
        x, window=WINDOW, normalization=NORM, rows=_crash_on_second_chunk(SystemExit)
    )


@pytest.mark.parametrize(
    "error", [RuntimeError, KeyboardInterrupt, SystemExit], ids=["error", "interrupt", "killed"]
)
def test_a_crash_in_the_middle_of_a_slide_is_detected_and_recomputed(
    tmp_path: Path,
    days: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: type,
) -> None:
    cache = DtwCache(tmp_path)
    before = cache.update(window_of(days, 0), window=WINDOW, normalization=NORM)
    raw = before.path.read_bytes()
    x = window_of(days, 1)
    if error is SystemExit:  # a real crash: the process is killed mid-way
        proc = mp.get_context("spawn").Process(target=_slide_and_die, args=(str(tmp_path), x))
        proc.start()
        proc.join(timeout=120)
        assert proc.exitcode == 9
    else:
        monkeypatch.setattr(dtw_slots, "SCATTER_PAIRS", 100)
        with pytest.raises(error, match="worker lost"):
            cache.update(x, window=WINDOW, normalization=NORM, rows=_crash_on_second_chunk(error))
    assert manifest(before)["state"] == "updating"
    assert before.path.read_bytes() != raw  # some recycled pairs were written in place
    assert not before.is_current()
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        again = cache.update(x, window=WINDOW, normalization=NORM)
    assert any("an in-place update was interrupted" in r.message for r in caplog.records)
    assert (again.pairs_computed, again.pairs_reused) == (n_pairs(len(x)), 0)
    assert np.array_equal(again.square(), full_square(x))
