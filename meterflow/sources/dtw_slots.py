"""Where profiles live in a DTW cache matrix (``meterflow.sources.dtw_cache``): slots.

The matrix is indexed by slot; the manifest maps each slot to a profile hash, or to None for a
free slot (its stored distances belong to a profile that left and are never read). An update
(``plan_update``) keeps the slots of the profiles still present, frees the others and places the
new profiles:

- ``append``: no slot is free, the new profiles take new slots at the end (the file grows);
- ``recycle``: the new profiles fill the free slots (lowest first), any left over take new slots
  at the end; only their pairs are computed and written in place (``recycle_pairs``);
- ``free``: profiles left and none came: their slots are marked free, no byte is written;
- ``rewrite``: first build, or more than ``RECYCLE_MAX_SHARE`` of the slots would be new or
  left free: a compact new file, kept rows first (``copy_kept``), then the new ones;
- ``hit``: nothing changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from meterflow.profiles.dtw.kernel import RowComputer, band_cells, n_pairs

log = logging.getLogger(__name__)

HIT, APPEND, RECYCLE, FREE, REWRITE = "hit", "append", "recycle", "free", "rewrite"
RECYCLE_MAX_SHARE = 0.5  # above this share of the slots new (or left free), rewrite compactly
SCATTER_PAIRS = 16_000_000  # new pairs per computed chunk of a recycling update (128 MB)
_TILE = 64  # later slots per tile of the column writes (a cache-sized block of the transpose)
_COPY_PAIRS = 8_000_000  # pairs per copy chunk of a rewrite (64 MB of float64)


@dataclass(frozen=True, eq=False)
class SlotPlan:
    """What an update does to the slots of a cached matrix."""

    mode: str
    slots: list[str | None]  # profile hash of each slot after the update (None = free)
    kept: np.ndarray  # old slots whose profile is still present (ascending)
    new: list[str]  # hashes of the new profiles, in order of first appearance
    new_slots: np.ndarray  # the slot of each new profile
    removed: int  # cached profiles no longer present

    @property
    def n_kept(self) -> int:
        """Cached profiles kept."""
        return len(self.kept)

    @property
    def pairs_new(self) -> int:
        """Pairs that involve a new profile: what the update computes."""
        return n_pairs(self.n_kept + len(self.new)) - n_pairs(self.n_kept)

    def compute_order(self, old: Sequence[str | None] | None) -> list[str]:
        """The hashes of the kept profiles (ascending old slot), then the new ones: the order in
        which the new rows are computed (new profile ``j`` is row ``n_kept + j``)."""
        cached = [] if old is None else [str(old[s]) for s in self.kept]
        return cached + self.new

    def slot_of_rows(self) -> np.ndarray:
        """The slot of each row of ``compute_order`` when slots are recycled in place."""
        return np.concatenate([self.kept, self.new_slots])


def plan_update(old: Sequence[str | None] | None, present: Sequence[str]) -> SlotPlan:
    """The plan for the distinct profile hashes ``present`` (order of first appearance) given
    the cached slots ``old`` (None: nothing cached)."""
    if old is None:
        build = np.arange(len(present), dtype=np.int64)
        return SlotPlan(REWRITE, list(present), _slots([]), list(present), build, 0)
    where = {h: s for s, h in enumerate(old) if h is not None}
    wanted = set(present)
    kept = _slots(sorted(where[h] for h in present if h in where))
    new = [h for h in present if h not in where]
    free = [s for s, h in enumerate(old) if h is None or h not in wanted]
    mode = _mode(len(old), len(free), len(new), len(where) - len(kept))
    if mode == REWRITE:
        slots: list[str | None] = [old[s] for s in kept] + new
        targets = range(len(kept), len(slots))
    else:
        slots = [h if h in wanted else None for h in old]
        grown = range(len(old), len(old) + max(0, len(new) - len(free)))
        targets = [*free[: len(new)], *grown]
        slots += [None] * len(grown)
        for s, h in zip(targets, new, strict=True):
            slots[s] = h
    return SlotPlan(mode, slots, kept, new, _slots(targets), len(where) - len(kept))


def _mode(n_old: int, n_free: int, n_new: int, removed: int) -> str:
    """How to apply an update: see the module doc."""
    if n_new == 0 and removed == 0:
        return HIT
    if n_free == 0:
        return APPEND
    n_after = n_old + max(0, n_new - n_free)
    if max(n_new, n_free - n_new) > RECYCLE_MAX_SHARE * n_after:
        return REWRITE
    return RECYCLE if n_new else FREE


def _slots(values: Sequence[int] | range) -> np.ndarray:
    """Slot numbers as a 1-D int64 array."""
    return np.asarray(list(values), dtype=np.int64).reshape(-1)


def recycle_pairs(
    compute: RowComputer,
    y: np.ndarray,
    n_kept: int,
    slot_of: np.ndarray,
    dest: np.ndarray,
    window: int,
    progress: bool,
) -> None:
    """Compute the pairs of the new profiles ``y[n_kept:]`` with every earlier row of ``y``
    (rows ``n_kept ..`` of the matrix of ``y``, in chunks of about ``SCATTER_PAIRS``) and write
    each to its place in the condensed ``dest`` (``slot_of``: the slot of each row of ``y``):
    the row prefix of a new slot and its column in every later row, both in file order."""
    m = len(y)
    if progress:
        log.info(
            "DTW: computing %d new profiles into recycled slots (%d pairs, %d cells each)",
            m - n_kept,
            n_pairs(m) - n_pairs(n_kept),
            band_cells(y.shape[1], window),
        )
    row_of = np.full(int(slot_of.max()) + 1, -1, dtype=np.int64)  # -1: a free slot
    row_of[slot_of] = np.arange(m)
    per_chunk = max(1, SCATTER_PAIRS // max(1, m - 1))
    target = np.asarray(dest)
    for lo in range(n_kept, m, per_chunk):
        hi = min(m, lo + per_chunk)
        buf = np.empty(n_pairs(hi) - n_pairs(lo), dtype=np.float64)
        compute(y, lo, hi, window, buf)
        _write_prefixes(buf, lo, hi, slot_of, row_of, target)
        slots = np.sort(slot_of[lo:hi])
        starts = row_of[slots] * (row_of[slots] - 1) // 2 - n_pairs(lo)
        _write_columns(buf, lo, slots, starts, row_of, target)


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _write_prefixes(buf, lo, hi, slot_of, row_of, dest):
    """The row prefix of the slot of each computed row ``r`` (``lo <= r < hi``; ``buf`` holds
    rows ``lo .. hi-1`` of the condensed matrix of the rows): its pairs with every slot below
    it whose row is below ``hi`` (the pairs with later rows belong to later chunks)."""
    base = lo * (lo - 1) // 2
    for q in prange(hi - lo):
        r = lo + q
        t = slot_of[r]
        row = t * (t - 1) // 2
        for b in range(t):
            rb = row_of[b]
            if rb < 0 or rb >= hi:
                continue
            if rb < r:
                dest[row + b] = buf[r * (r - 1) // 2 - base + rb]
            else:
                dest[row + b] = buf[rb * (rb - 1) // 2 - base + r]


@njit(parallel=True, cache=True, nogil=True, boundscheck=False)
def _write_columns(buf, lo, slots, starts, row_of, dest):
    """The column of each computed slot (``slots`` ascending, ``starts``: where its row begins
    in ``buf``) in every later slot whose row is below ``lo``. Tiles of ``_TILE`` later slots:
    each computed row is read in short contiguous runs, each later row written left to right."""
    first, n = slots[0] + 1, row_of.shape[0]
    for tile in prange((n - first + _TILE - 1) // _TILE):
        t0 = first + tile * _TILE
        t1 = min(n, t0 + _TILE)
        for j in range(slots.shape[0]):
            s = slots[j]
            if s >= t1 - 1:
                break
            for t in range(max(t0, s + 1), t1):
                rt = row_of[t]
                if 0 <= rt < lo:
                    dest[t * (t - 1) // 2 + s] = buf[starts[j] + rt]


def copy_kept(src: np.ndarray, kept: np.ndarray, dest: np.ndarray) -> None:
    """Copy the sub-matrix of the rows ``kept`` (ascending) of condensed ``src`` into ``dest``."""
    if np.array_equal(kept, np.arange(len(kept))):  # trailing rows removed: plain prefix copy
        for lo in range(0, len(dest), _COPY_PAIRS):
            hi = min(len(dest), lo + _COPY_PAIRS)
            dest[lo:hi] = src[lo:hi]
    else:
        _compact(np.asarray(src), kept, np.asarray(dest))


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
