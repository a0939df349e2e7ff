"""Per-meter work in meter blocks, in this process or on a Dask cluster, with the same results.

A step that does per-meter work (forecast scoring, anomaly scoring, cluster assignment) cuts its
meters into blocks (``meter_blocks``) and maps one pure function over them with
``map_blocks``. Without a scheduler address the blocks run here, one after the other; with one
(``tcp://host:8786``) each block is a task on that Dask cluster, the shared arguments (fitted
models, settings) are scattered once, and at most a few blocks per worker thread are in flight so
that the caller's memory stays bounded. Results come back in block order either way, so what the
caller accumulates from them is identical to the local run.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from meterflow.errors import InputError
from meterflow.profiles.dtw.distributed import dask_client

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
IN_FLIGHT_PER_THREAD = 2  # blocks submitted ahead per Dask worker thread (bounds the driver)


def meter_blocks(n_meters: int, block_meters: int) -> list[np.ndarray]:
    """Positions ``0..n_meters-1`` cut into consecutive blocks of at most ``block_meters``."""
    if block_meters < 1:
        raise InputError(f"block_meters must be >= 1, got {block_meters}")
    return [
        np.arange(lo, min(lo + block_meters, n_meters)) for lo in range(0, n_meters, block_meters)
    ]


def map_blocks(
    func: Callable[..., R],
    blocks: Sequence[T],
    shared: tuple[Any, ...] = (),
    *,
    scheduler: str = "",
    label: str = "blocks",
) -> Iterator[R]:
    """``func(block, *shared)`` for every block, yielded in block order: here when
    ``scheduler`` is empty, else as tasks on the Dask cluster at that address."""
    started = time.perf_counter()
    results = (
        _local(func, blocks, shared) if not scheduler else _dask(func, blocks, shared, scheduler)
    )
    for i, result in enumerate(results, start=1):
        log.info("%s: %d of %d done, %.0f s", label, i, len(blocks), time.perf_counter() - started)
        yield result


def _local(func: Callable[..., R], blocks: Sequence[T], shared: tuple[Any, ...]) -> Iterator[R]:
    for block in blocks:
        yield func(block, *shared)


def _dask(
    func: Callable[..., R], blocks: Sequence[T], shared: tuple[Any, ...], scheduler: str
) -> Iterator[R]:
    with dask_client(scheduler) as client:
        threads = max(1, sum(client.nthreads().values()))
        log.info("per-meter work on the Dask cluster at %s (%d threads)", scheduler, threads)
        scattered = [client.scatter([s], broadcast=True)[0] for s in shared]  # each as one object
        pending: deque = deque()
        todo = iter(blocks)
        for block in todo:
            pending.append(client.submit(func, block, *scattered, pure=False))
            if len(pending) >= IN_FLIGHT_PER_THREAD * threads:
                break
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            for block in todo:
                pending.append(client.submit(func, block, *scattered, pure=False))
                break
            yield result
