"""The contract of a store of all-pairs DTW matrices (``DtwStore``) and the registry of stores.

A store keeps, per (profile length, canonical window, normalisation tag), the condensed matrix
of the profiles it was last updated with, identified by content (equal profiles share a row):
``update`` brings it up to date with a table of profiles, computing only the pairs it lacks;
``lookup`` returns it, read-only, when it already holds every profile asked for. A store is
reopened from its registry name (``kind``) and ``location()``: the harmonization step records
both on its run (tags ``dtw.store``, ``dtw.store_location``) and clustering reopens the store
through that run (``meterflow.tasks.clustering_input``). Invalid profiles (not 2-D, NaN) and
invalid normalisation tags raise a ``MeterflowError``.

Adding a store is one module implementing ``DtwStore`` and one line in ``DTW_STORES``;
``tests/sources/test_dtw_store.py`` checks every registered store against this contract.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from meterflow.errors import ConfigError
from meterflow.profiles.dtw.kernel import RowComputer
from meterflow.sources.dtw_cache import DtwCache

DEFAULT_DTW_STORE = "disk"
TAG_STORE = "dtw.store"
TAG_LOCATION = "dtw.store_location"


class DtwMatrixView(Protocol):
    """A stored matrix seen in the caller's row order."""

    key: str  # identity of the stored matrix (its profiles and parameters)
    n: int  # rows of the stored matrix (distinct profiles, plus free slots)
    nbytes: int  # bytes the stored matrix takes
    pairs_computed: int  # DTW pairs computed by the call that returned it
    pairs_reused: int  # pairs taken from the store
    window: int  # canonical window (0 = unconstrained)

    def square(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Square float64 matrix over the caller's rows (all, or the given ones)."""
        ...


class DtwStore(Protocol):
    """Incremental all-pairs DTW matrices (see the module doc)."""

    kind: str  # its name in ``DTW_STORES``

    def location(self) -> str:
        """Where it keeps its matrices: ``DTW_STORES[kind](location())`` reopens it."""
        ...

    def disk_needs(self, n: int) -> list[tuple[Path, int]]:
        """(folder, bytes) the matrix of ``n`` profiles needs on local disks at most."""
        ...

    def update(
        self,
        X: np.ndarray,
        *,
        window: int | None,
        normalization: str,
        progress: bool = True,
        rows: RowComputer | None = None,
    ) -> DtwMatrixView:
        """The matrix of the profiles ``X``, computing only the pairs the store lacks
        (``rows``: who computes them; None = this process)."""
        ...

    def lookup(
        self, X: np.ndarray, *, window: int | None, normalization: str
    ) -> DtwMatrixView | None:
        """The stored matrix if it holds every profile of ``X``, else None; computes nothing."""
        ...


DTW_STORES: dict[str, Callable[[str], DtwStore]] = {
    "disk": DtwCache,
}


def open_dtw_store(kind: str, location: str | Path) -> DtwStore:
    """The registered store ``kind`` at ``location`` (ConfigError for an unknown kind)."""
    if kind not in DTW_STORES:
        raise ConfigError(f"unknown DTW store {kind!r}; registered: {', '.join(DTW_STORES)}")
    return DTW_STORES[kind](str(location))


def store_tags(store: DtwStore) -> dict[str, str]:
    """The run tags that let a later step reopen ``store``."""
    return {TAG_STORE: store.kind, TAG_LOCATION: store.location()}
