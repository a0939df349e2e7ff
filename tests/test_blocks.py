"""Per-meter work in blocks: here or on a Dask cluster, results in block order either way."""

from __future__ import annotations

import numpy as np
import pytest

from meterflow import blocks
from meterflow.blocks import map_blocks, meter_blocks


def _weighted_sum(block: np.ndarray, weights: dict[str, float]) -> float:
    return float(block.sum() * weights["w"])


def _fail_on_block_two(block: np.ndarray) -> int:
    if block[0] == 2:
        raise ValueError("block 2 is broken")
    return int(block[0])


def test_meter_blocks_cover_every_meter_once_in_order():
    cut = meter_blocks(11, 4)
    assert [b.tolist() for b in cut] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert meter_blocks(0, 4) == []
    with pytest.raises(ValueError, match="block_meters"):
        meter_blocks(3, 0)


def test_dask_gives_the_local_results_in_block_order(monkeypatch):
    from distributed import LocalCluster

    monkeypatch.setattr(blocks, "IN_FLIGHT_PER_THREAD", 1)  # refills while results come back
    cut = meter_blocks(57, 5)
    local = list(map_blocks(_weighted_sum, cut, ({"w": 0.5},)))
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = list(
            map_blocks(_weighted_sum, cut, ({"w": 0.5},), scheduler=cluster.scheduler_address)
        )
    assert remote == local == [0.5 * b.sum() for b in cut]


def test_a_failing_block_raises_its_error():
    with pytest.raises(ValueError, match="block 2 is broken"):
        list(map_blocks(_fail_on_block_two, meter_blocks(4, 1)))
