"""The condensed DTW matrix computed in row blocks on a Dask distributed cluster.

Each task computes rows ``start .. stop-1`` of the lower triangle with the same kernel as
``dtw_condensed`` (single-threaded inside the task: Dask parallelises across tasks), so the
assembled result is identical, value for value, to the single-process one. Blocks are cut so that
each holds about the same number of pairs (row ``i`` has ``i`` pairs). The profiles are scattered
once to every worker. Without ``scheduler_address`` a LocalCluster is started for the call and
closed afterwards; with it, the caller's cluster is used and left running.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from meterflow.errors import ConfigError

from .kernel import RowComputer, as_profile_array, band_width, dtw_rows, n_pairs

log = logging.getLogger(__name__)


def row_blocks(n: int, n_blocks: int, start: int = 1) -> list[tuple[int, int]]:
    """Split rows ``start..n-1`` into at most ``n_blocks`` ranges holding about equal pair counts
    (row ``i`` holds ``i`` pairs; row 0 holds none, so ranges start at row 1 or later)."""
    start = max(start, 1)
    if n <= start:
        return []
    first, total = n_pairs(start), n_pairs(n) - n_pairs(start)
    bounds = [start]
    for b in range(1, n_blocks):
        target = first + total * b / n_blocks
        r = int((1 + math.sqrt(1 + 8 * target)) / 2)  # rows 0..r-1 hold n_pairs(r) >= target
        if bounds[-1] < r < n:
            bounds.append(r)
    bounds.append(n)
    return list(itertools.pairwise(bounds))


def _block_task(x: np.ndarray, start: int, stop: int, window: int | None) -> np.ndarray:
    """One Dask task: rows ``start..stop-1`` on the worker's own thread."""
    return dtw_rows(x, start, stop, window, parallel=False)


def dtw_condensed_dask(
    X: np.ndarray,
    window: int | None = None,
    *,
    scheduler_address: str | None = None,
    n_workers: int = 2,
    block_rows: int | None = None,
    processes: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """All-pairs DTW of ``X`` (profiles x slots) as a condensed lower-triangle float64 array,
    computed on Dask; identical to ``dtw_condensed(X, window)``.

    ``n_workers``/``processes``: shape of the LocalCluster started when no
    ``scheduler_address`` is given (one thread per worker). ``block_rows``: rows per task; by
    default the rows are cut into 4 blocks per worker thread with equal pair counts.
    """
    x = as_profile_array(X)
    n = x.shape[0]
    band_width(window, x.shape[1])  # validate before starting a cluster
    if n_workers < 1:
        raise ConfigError(f"n_workers must be >= 1, got {n_workers}")
    if block_rows is not None and block_rows < 1:
        raise ConfigError(f"block_rows must be >= 1, got {block_rows}")
    out = np.empty(n_pairs(n), dtype=np.float64)
    if n < 2:
        return out
    with dask_client(scheduler_address, n_workers, processes) as client:
        dtw_rows_dask(client, x, 0, n, window, out, block_rows=block_rows, progress=progress)
    return out


def dtw_rows_dask(
    client: Any,
    X: np.ndarray,
    start: int,
    stop: int,
    window: int | None,
    out: np.ndarray,
    *,
    block_rows: int | None = None,
    progress: bool = True,
) -> None:
    """Rows ``start..stop-1`` of the condensed DTW matrix of ``X[:stop]`` into ``out`` (as
    ``dtw_rows(..., out=out)``: any float dtype, e.g. a memmap slice of the DTW cache), computed
    as row-block tasks on the Dask ``client``'s cluster; each block is written as it arrives."""
    x = as_profile_array(X)
    size = n_pairs(stop) - n_pairs(start)
    if out.shape != (size,):
        raise ConfigError(f"dtw_rows_dask: out has shape {out.shape}, expected ({size},)")
    if size == 0:
        return
    if block_rows is not None:
        lo0 = max(start, 1)
        blocks = [(lo, min(stop, lo + block_rows)) for lo in range(lo0, stop, block_rows)]
    else:
        blocks = row_blocks(stop, 4 * max(1, sum(client.nthreads().values())), start)
    _compute_blocks(client, x[:stop], window, blocks, start, out, progress=progress)


@contextlib.contextmanager
def dask_rows(scheduler_address: str) -> Iterator[RowComputer | None]:
    """A ``RowComputer`` that runs row blocks on the Dask cluster at ``scheduler_address`` (the
    client is closed on exit, the cluster left running); None (local numba threads) when the
    address is empty."""
    if not scheduler_address:
        yield None
        return
    with dask_client(scheduler_address) as client:
        threads = sum(client.nthreads().values())
        log.info("DTW rows on the Dask cluster at %s (%d threads)", scheduler_address, threads)

        def rows(x: np.ndarray, start: int, stop: int, window: int | None, out: np.ndarray) -> None:
            dtw_rows_dask(client, x, start, stop, window, out)

        yield rows


@contextlib.contextmanager
def dask_client(
    scheduler_address: str | None, n_workers: int = 2, processes: bool = True
) -> Iterator[Any]:
    """A Client of the cluster at ``scheduler_address`` (left running), or of a LocalCluster
    with ``n_workers`` single-threaded workers started here and closed on exit."""
    from distributed import Client, LocalCluster

    cluster = None
    if not scheduler_address:
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
    client = Client(cluster if cluster is not None else scheduler_address)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _compute_blocks(
    client: Any,
    x: np.ndarray,
    window: int | None,
    blocks: list[tuple[int, int]],
    start: int,
    out: np.ndarray,
    *,
    progress: bool,
) -> None:
    """Run one task per row block (profiles scattered once) and write each result into ``out``
    (whose first value is pair ``n_pairs(start)``) as it arrives; log progress when asked."""
    from distributed import as_completed

    t0 = time.perf_counter()
    data = client.scatter(x, broadcast=True)
    futures = {
        client.submit(_block_task, data, lo, hi, window, pure=False): (lo, hi) for lo, hi in blocks
    }
    done, base = 0, n_pairs(start)
    for fut in as_completed(futures):
        lo, hi = futures[fut]
        out[n_pairs(lo) - base : n_pairs(hi) - base] = fut.result()
        done += n_pairs(hi) - n_pairs(lo)
        if progress:
            log.info(
                "DTW on Dask: rows %d-%d done, %.1f%% of %d pairs, %.0f s",
                lo,
                hi - 1,
                100 * done / len(out),
                len(out),
                time.perf_counter() - t0,
            )
        fut.release()
