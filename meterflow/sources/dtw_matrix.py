"""A DTW matrix of the cache (``meterflow.sources.dtw_cache``) seen in a caller's row order:
condensed values by slot, rows and square sub-matrices by caller row, and the check that no
update rewrote its slots in place while it was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from meterflow.errors import MeterflowError
from meterflow.profiles.dtw.kernel import n_pairs, square_from_condensed
from meterflow.sources.dtw_manifest import read_manifest


class StaleDtwMatrixError(MeterflowError):
    """A ``DtwMatrix`` was read while (or after) an update rewrote its slots in place."""


def storage_dtype(dtype: str) -> np.dtype:
    """The on-disk (little-endian) dtype of a storage dtype name."""
    return np.dtype(dtype).newbyteorder("<")


@dataclass(frozen=True, eq=False)
class DtwMatrix:
    """A DTW matrix in the cache, seen in the caller's row order.

    ``n`` is the number of matrix slots (distinct profiles, plus free slots); ``order[r]`` is the
    slot of the caller's row ``r`` (``len(order)`` = rows passed to ``update``; equal profiles
    share a slot). ``path`` is the raw matrix file, ``nbytes`` the size of the prefix holding
    this matrix (the file may grow later). ``pairs_computed``/``pairs_reused``: DTW pairs
    computed by this update vs taken from the previous cache. ``window`` is canonical (0 =
    unconstrained). ``epoch``: the manifest's when this matrix was returned. Values are read
    through a read-only memmap of that prefix: a later append leaves it unchanged, a later
    rewrite replaces the file (an already opened ``condensed()`` stays readable), a later
    recycling update rewrites slots in place (``row``/``square`` then raise
    ``StaleDtwMatrixError``; see ``is_current``).
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
    epoch: str

    @property
    def n_profiles(self) -> int:
        """Rows of the caller's table."""
        return len(self.order)

    def condensed(self) -> np.ndarray:
        """The condensed lower-triangle matrix in slot order (read-only memmap; free slots hold
        stale values). Check ``is_current()`` after reading it."""
        if self.n < 2:
            return np.zeros(0, dtype=self.dtype)
        dtype = storage_dtype(self.dtype)
        return np.memmap(self.path, dtype=dtype, mode="r", shape=(n_pairs(self.n),))

    def is_current(self) -> bool:
        """Whether values read from this matrix so far are its own: the cache still names its
        file and epoch (no update has rewritten slots in place since it was returned)."""
        try:
            manifest = read_manifest(self.path.parent)
            return manifest["file"] == self.path.name and manifest["epoch"] == self.epoch
        except (OSError, ValueError, TypeError, KeyError):
            return False

    def row(self, i: int) -> np.ndarray:
        """Distances (float64) from the caller's row ``i`` to all caller rows, in caller order.

        Reads one triangle row plus one value per later slot, not the whole file.
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
            self._check_current()
        return full[self.order]

    def square(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Square float64 matrix over the caller's rows (all, or the given caller rows)."""
        sel = self.order if rows is None else self.order[np.asarray(rows, dtype=np.int64)]
        if self.n < 2:
            return np.zeros((len(sel), len(sel)))
        out = square_from_condensed(self.condensed(), sel)
        self._check_current()
        return out

    def _check_current(self) -> None:
        """Raise ``StaleDtwMatrixError`` unless ``is_current()``."""
        if not self.is_current():
            raise StaleDtwMatrixError(
                f"the DTW cache {self.path.parent} was updated in place while this matrix was "
                "read (its slots may hold other profiles now); look the profiles up again"
            )
