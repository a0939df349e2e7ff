"""Benchmark: our DTW engine against dtaidistance's ``distance_matrix_fast`` (same process, cores).

Output contract, one line per case on stdout::

    case=<name> n=<N> l=<L> ours_s=<float> ref_s=<float> ratio=<float>      (ratio = ref / ours)

Cases
    ``matrix``       all-pairs matrix: ours = ``dtw_condensed``, ref = dtaidistance
                     ``distance_matrix_fast(compact=True, parallel=True)``; N=2000, 5000, 20000 at
                     L=24 and N=5000 at L=96.
    ``incremental``  adding 1 % new profiles to a cached matrix: ours = ``DtwCache.update`` with
                     the new profiles (copy + new rows + checksum + atomic write), ref = the same
                     call on an empty cache (full recompute), at N=20000, L=24.
    ``dask``         ours = ``dtw_condensed_dask`` on a fresh 2-process LocalCluster (start-up
                     and shut-down included), ref = single-process ``dtw_condensed``, at
                     N=10000, L=24; ratio < 1 is the Dask overhead.
    ``dask_running_cluster``  the same on an already running (warm) cluster given by address.

Lines starting with ``#`` add context: load average, Mcells/s per core (DP cells in the band per
second per core), the largest difference to the reference. ``--quick`` runs small sizes.
Run: ``python benchmarks/dtw_matrix.py [--quick] [--window W]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np
from distributed import LocalCluster
from dtaidistance import dtw as dtai

from meterflow.profiles.dtw import (
    band_cells,
    dtw_condensed,
    dtw_condensed_dask,
    dtw_rows,
    n_pairs,
)
from meterflow.sources.dtw_cache import DtwCache


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"loadavg_1m={one:.2f} loadavg_5m={five:.2f} loadavg_15m={fifteen:.2f}"


def profiles(n: int, length: int, seed: int) -> np.ndarray:
    """Daily-profile-like data (Wh): a morning and an evening peak, per-day scale and noise.
    DTW cost does not depend on the values (no pruning), only on n, L and the window."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 24.0, length, endpoint=False)
    shape = 0.4 + np.exp(-((t - 8.0) ** 2) / 4.0) + 1.5 * np.exp(-((t - 19.5) ** 2) / 6.0)
    scale = rng.uniform(100.0, 600.0, (n, 1)) * (96 / length)
    return scale * shape * rng.lognormal(0.0, 0.25, (n, length))


def line(case: str, n: int, length: int, ours: float, ref: float) -> None:
    print(
        f"case={case} n={n} l={length} ours_s={ours:.3f} ref_s={ref:.3f} ratio={ref / ours:.2f}",
        flush=True,
    )


def sample_diff(ours: np.ndarray, ref_upper: np.ndarray, n: int, seed: int = 0) -> float:
    """Largest |ours - ref| on 200k random pairs (ref in dtaidistance's upper-triangle order)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, 200_000)
    b = rng.integers(0, n, 200_000)
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    ref_idx = n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)
    return float(np.max(np.abs(ours[hi * (hi - 1) // 2 + lo] - ref_upper[ref_idx])))


def case_matrix(n: int, length: int, window: int | None, cores: int) -> None:
    x = profiles(n, length, seed=n + length)
    ours_s, ours = timed(lambda: dtw_condensed(x, window, progress=False))
    ref_s, ref = timed(
        lambda: dtai.distance_matrix_fast(x, compact=True, parallel=True, window=window)
    )
    diff = sample_diff(ours, np.frombuffer(ref, dtype=np.float64), n)
    del ours, ref
    gc.collect()
    line("matrix", n, length, ours_s, ref_s)
    cells = n_pairs(n) * band_cells(length, window)
    print(
        f"# case=matrix n={n} l={length} ours_mcells_per_core={cells / ours_s / 1e6 / cores:.0f} "
        f"ref_mcells_per_core={cells / ref_s / 1e6 / cores:.0f} max_abs_diff={diff:.1e} {load()}",
        flush=True,
    )


def case_incremental(n: int, length: int, window: int | None) -> None:
    x = profiles(n, length, seed=7)
    seed_rows = n - n // 100
    with tempfile.TemporaryDirectory(prefix="dtw-bench-") as tmp:
        inc_cache = DtwCache(Path(tmp) / "incremental")
        inc_cache.update(x[:seed_rows], window=window, normalization="none", progress=False)
        ours_s, inc = timed(
            lambda: inc_cache.update(x, window=window, normalization="none", progress=False)
        )
        full_cache = DtwCache(Path(tmp) / "full")
        ref_s, full = timed(
            lambda: full_cache.update(x, window=window, normalization="none", progress=False)
        )
        same = inc.key == full.key and np.array_equal(
            np.asarray(inc.condensed()), np.asarray(full.condensed())
        )
        line("incremental", n, length, ours_s, ref_s)
        print(
            f"# case=incremental n={n} added={n - seed_rows} pairs_computed={inc.pairs_computed} "
            f"pairs_reused={inc.pairs_reused} file_mb={inc.nbytes / 1e6:.0f} "
            f"identical_to_full={same} {load()}",
            flush=True,
        )


def case_dask(n: int, length: int, window: int | None, workers: int) -> None:
    x = profiles(n, length, seed=11)
    ref_s, single = timed(lambda: dtw_condensed(x, window, progress=False))
    ours_s, dist = timed(
        lambda: dtw_condensed_dask(x, window, n_workers=workers, processes=True, progress=False)
    )
    same = np.array_equal(single, dist)
    line("dask", n, length, ours_s, ref_s)
    print(
        f"# case=dask n={n} workers={workers} overhead_s={ours_s - ref_s:.2f} (includes cluster "
        f"start and stop) identical_to_single={same} {load()}",
        flush=True,
    )
    del dist
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        dtw_condensed_dask(x[:200], window, scheduler_address=address, progress=False)  # warm
        ours_s, dist = timed(
            lambda: dtw_condensed_dask(x, window, scheduler_address=address, progress=False)
        )
    same = np.array_equal(single, dist)
    line("dask_running_cluster", n, length, ours_s, ref_s)
    print(
        f"# case=dask_running_cluster n={n} workers={workers} overhead_s={ours_s - ref_s:.2f} "
        f"identical_to_single={same} {load()}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--window", type=int, default=None, help="DTW window (default: none)")
    parser.add_argument("--verbose", action="store_true", help="log progress")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cores = numba.get_num_threads()
    if args.quick:
        matrix_sizes = [(300, 24), (600, 24), (1500, 24), (300, 96)]
        inc_n, dask_n = 1500, 1000
    else:
        matrix_sizes = [(2000, 24), (5000, 24), (20000, 24), (5000, 96)]
        inc_n, dask_n = 20000, 10000
    for length in (24, 96):  # compile (or load the numba cache) before timing anything
        dtw_condensed(profiles(70, length, 0), args.window, progress=False)
        dtw_rows(profiles(70, length, 0), 0, 70, args.window, parallel=False)  # Dask workers
    print(
        f"# cores={cores} os_cpus={os.cpu_count()} numba_layer={numba.threading_layer()} "
        f"window={args.window} {load()}",
        flush=True,
    )
    for n, length in matrix_sizes:
        case_matrix(n, length, args.window, cores)
    case_incremental(inc_n, 24, args.window)
    case_dask(dask_n, 24, args.window, workers=min(2, cores))


if __name__ == "__main__":
    main()
