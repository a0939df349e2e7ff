"""The ``DtwStore`` contract (``meterflow.sources.dtw_store``), checked on every registered store
and on a toy in-memory store added in this module by one registry line: exact matrices, only new
pairs computed, read-only lookups, reopened from its kind and location, bad input refused."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from meterflow.errors import ConfigError, MeterflowError
from meterflow.profiles.dtw import (
    canonical_window,
    condensed_to_square,
    dtw_rows,
    n_pairs,
)
from meterflow.profiles.dtw.kernel import as_profile_array
from meterflow.sources.dtw_cache import profile_hashes
from meterflow.sources.dtw_store import DTW_STORES, DtwStore, open_dtw_store
from tests.sources.dtw_reference import WINDOW, assert_matches_full, full_square, random_profiles


@pytest.fixture
def profiles() -> np.ndarray:
    return random_profiles()


# --- the DtwStore contract, on every registered store ------------------------------------------


def check_store_contract(store: DtwStore, profiles: np.ndarray) -> None:
    """Exact matrices, only new pairs computed, read-only lookups, reopened from ``kind`` and
    ``location()``, bad profiles refused with a MeterflowError."""
    first, more = profiles[:20], profiles[:30]
    assert store.lookup(first, window=WINDOW, normalization="l2") is None
    mat = store.update(first, window=WINDOW, normalization="l2", progress=False)
    assert_matches_full(mat, first)
    assert (mat.pairs_computed, mat.pairs_reused, mat.window) == (n_pairs(20), 0, WINDOW)
    again = store.update(first, window=WINDOW, normalization="l2", progress=False)
    assert (again.pairs_computed, again.key) == (0, mat.key)
    grown = store.update(more, window=WINDOW, normalization="l2", progress=False)
    assert grown.pairs_computed == n_pairs(30) - n_pairs(20)
    assert_matches_full(grown, more)
    subset = more[[25, 3, 17]]
    reopened = DTW_STORES[store.kind](store.location())
    found = reopened.lookup(subset, window=WINDOW, normalization="l2")
    assert found is not None and found.pairs_computed == 0
    assert np.array_equal(found.square(), full_square(subset))
    assert np.array_equal(grown.square([25, 3, 17]), full_square(subset))
    assert store.lookup(profiles[30:32], window=WINDOW, normalization="l2") is None
    assert store.lookup(first, window=WINDOW + 1, normalization="l2") is None
    assert store.lookup(first, window=WINDOW, normalization="zscore") is None
    bad = first.copy()
    bad[4, 7] = np.nan
    for X, norm in ((bad, "l2"), (first[0], "l2"), (first, "no/slash")):
        with pytest.raises(MeterflowError):
            store.update(X, window=WINDOW, normalization=norm, progress=False)
    assert all(isinstance(p, Path) and b >= 0 for p, b in store.disk_needs(30))


@pytest.mark.parametrize("kind", sorted(DTW_STORES))
def test_every_registered_store_meets_the_contract(kind: str, tmp_path: Path, profiles):
    check_store_contract(open_dtw_store(kind, tmp_path / "store"), profiles)


def test_an_unknown_store_kind_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown DTW store 'nosuch'"):
        open_dtw_store("nosuch", tmp_path)


# A worked example: a new store is one class and one registry line.


@dataclass(frozen=True, eq=False)
class MemoryMatrix:
    """A matrix of ``MemoryDtwStore``, in the caller's row order."""

    key: str
    n: int
    nbytes: int
    pairs_computed: int
    pairs_reused: int
    window: int
    full: np.ndarray  # square, by slot
    order: np.ndarray

    def square(self, rows=None) -> np.ndarray:
        sel = self.order if rows is None else self.order[np.asarray(rows, dtype=np.int64)]
        return self.full[np.ix_(sel, sel)]


_SPACES: dict[str, dict[tuple, tuple[list[str], np.ndarray]]] = {}  # the toy's "locations"


class MemoryDtwStore:
    """A toy store: square matrices in this process, by location name; ``update`` keeps the
    profiles still present and computes the rows of the new ones only."""

    kind = "memory"

    def __init__(self, location: str) -> None:
        self.name = location
        self.space = _SPACES.setdefault(location, {})

    def location(self) -> str:
        return self.name

    def disk_needs(self, n: int) -> list[tuple[Path, int]]:
        return []

    def _params(self, X, window, normalization) -> tuple[np.ndarray, int, tuple]:
        x = as_profile_array(X)
        if not normalization.replace("_", "").isalnum():
            raise ConfigError(f"normalization tag {normalization!r}: use letters, digits, _")
        w = canonical_window(window, x.shape[1])
        return x, w, (x.shape[1], w, normalization)

    def _view(self, where, hashes, window, computed, reused) -> MemoryMatrix:
        slots, full = self.space[where]
        slot = {h: s for s, h in enumerate(slots)}
        order = np.array([slot[h] for h in hashes], dtype=np.int64)
        key = "".join(slots)[-32:]
        return MemoryMatrix(key, len(slots), full.nbytes, computed, reused, window, full, order)

    def update(self, X, *, window, normalization, progress=True, rows=None) -> MemoryMatrix:
        x, w, where = self._params(X, window, normalization)
        hashes = profile_hashes(x)
        first: dict[str, int] = {}
        for r, h in enumerate(hashes):
            first.setdefault(h, r)
        old, old_full = self.space.get(where, ([], np.zeros((0, 0))))
        kept = [s for s, h in enumerate(old) if h in first]
        slots = [old[s] for s in kept] + [h for h in first if h not in old]
        k, m = len(kept), len(slots)
        condensed = np.zeros(n_pairs(m))
        if m > k:
            y = x[[first[h] for h in slots]]
            dtw_rows(y, k, m, w, out=condensed[n_pairs(k) :], progress=False)
        full = condensed_to_square(condensed, m)
        full[:k, :k] = old_full[np.ix_(kept, kept)]
        self.space[where] = (slots, full)
        return self._view(where, hashes, w, n_pairs(m) - n_pairs(k), n_pairs(k))

    def lookup(self, X, *, window, normalization) -> MemoryMatrix | None:
        x, w, where = self._params(X, window, normalization)
        hashes = profile_hashes(x)
        if where not in self.space or not set(hashes) <= set(self.space[where][0]):
            return None
        return self._view(where, hashes, w, 0, n_pairs(len(set(hashes))))


def test_a_toy_memory_store_registered_by_one_line_meets_the_contract(
    monkeypatch: pytest.MonkeyPatch, profiles
):
    monkeypatch.setitem(DTW_STORES, "memory", MemoryDtwStore)
    check_store_contract(open_dtw_store("memory", "toy"), profiles)
