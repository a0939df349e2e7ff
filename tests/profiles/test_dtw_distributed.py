"""Dask row blocks assemble exactly the single-process DTW matrix."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from meterflow.errors import ConfigError
from meterflow.profiles.dtw import dtw_condensed, dtw_condensed_dask, n_pairs
from meterflow.profiles.dtw.distributed import row_blocks


def test_row_blocks_cover_rows_once_with_balanced_pairs() -> None:
    blocks = row_blocks(1000, 8)
    assert blocks[0][0] == 1 and blocks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    pairs = [n_pairs(hi) - n_pairs(lo) for lo, hi in blocks]
    assert sum(pairs) == n_pairs(1000)
    assert len(blocks) == 8 and max(pairs) < 1.05 * min(pairs)
    assert row_blocks(3, 16) == [(1, 2), (2, 3)]
    assert row_blocks(1, 4) == []


def test_dask_local_cluster_equals_single_process() -> None:
    x = np.random.default_rng(9).normal(100.0, 30.0, size=(150, 24))
    single = dtw_condensed(x, 4)
    auto = dtw_condensed_dask(x, 4, n_workers=2, processes=False, progress=False)
    assert np.array_equal(auto, single)
    fixed = dtw_condensed_dask(x, 4, n_workers=2, block_rows=37, processes=False)
    assert np.array_equal(fixed, single)


def test_dask_edge_cases() -> None:
    assert dtw_condensed_dask(np.zeros((1, 24)), processes=False).shape == (0,)
    with pytest.raises(ConfigError):
        dtw_condensed_dask(np.zeros((5, 24)), -2, processes=False)
    with pytest.raises(ConfigError):
        dtw_condensed_dask(np.zeros((5, 24)), n_workers=0, processes=False)
