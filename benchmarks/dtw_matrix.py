"""Benchmark: our DTW engine against dtaidistance's ``distance_matrix_fast`` (same process, cores).

Output contract, one line per case on stdout::

    case=<name> window=<W> n=<N> l=<L> ours_cpu_s=<float> ref_cpu_s=<float> ratio=<float> ...

``ratio = ref / ours`` in CPU-seconds of the whole process (all threads; steadier than wall time
on a shared machine). ``window`` has dtaidistance's meaning (0 = unconstrained).

Cases
    ``matrix``       all-pairs matrix, ours = ``dtw_condensed``, ref = dtaidistance
                     ``distance_matrix_fast(compact=True, parallel=True)``, at windows 2, 3, 10
                     and unconstrained, L = 24 and 96. Also prints Mcells per CPU-second (DP cells
                     inside the band) and the largest difference to dtaidistance on 200k pairs.
    ``fleet``        the band-of-one (window 2) matrix of 16,637 profiles x 96 slots (the size of
                     the UCR ElectricDevices set), also with the wall time on the idle cores.
    ``incremental``  adding 10 % new profiles to a cached matrix: ours = ``DtwCache.update``
                     (append in place, block checksums, verification), ref = the same call on an
                     empty cache (full build); ``vs_ideal`` = ratio of the two / (new pairs / all
                     pairs), 1.0 being the ideal.
    ``slide``        the nightly slide of the DTW sample: ``n`` = meters x 14 days cached, then the
                     oldest day's rows out and a new day's in; L = 24 with the profiles day by
                     day (``layout=day_major``, as the harmonization step orders them) and meter
                     by meter (``meter_major``: a day's slots spread over the whole file), and
                     L = 96 day by day. ours = ``DtwCache.update``
                     (freed slots recycled in place, verification included), ``ideal`` = computing
                     just the new pairs (``dtw_rows`` of the new rows against the kept ones),
                     ref = the same update as the rewrite the cache did before (compaction, new
                     rows, full hashing; forced with ``RECYCLE_MAX_SHARE = 0``). Prints
                     ``vs_ideal`` (ours / ideal), ``rewrite_vs_ideal`` (ref / ideal),
                     ``verify_cpu_s`` (hashing the file once: the update verifies it before
                     reuse and rehashes its rewritten blocks), ``vs_ideal_unverified`` (ours
                     less one verification / ideal) and, as ``incremental`` does,
                     ``vs_build_share`` (ours / (full build x new pairs / all pairs)).
    ``dask``         ours = ``dtw_condensed_dask`` on a 2-process LocalCluster (start and stop
                     included), ref = single-process ``dtw_condensed``; ratio < 1 is the overhead.
    ``dask_running_cluster``  the same on an already running cluster given by address.

Profiles are public: BDEW standard load profiles (``demandlib``; households, trade, farms) of
2023, each day scaled per meter and with measurement noise. DTW cost does not depend on the
values (no pruning), only on n, L and the window. ``--quick`` runs small sizes.
Run: ``python benchmarks/dtw_matrix.py [--quick] [--cases matrix,fleet,...]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import tempfile
import time
from collections.abc import Callable
from functools import cache
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
from meterflow.sources import dtw_slots
from meterflow.sources.dtw_cache import BLOCK_BYTES, DtwCache
from meterflow.sources.dtw_manifest import block_digests

WINDOWS = (2, 3, 10, 0)
FLEET_N = 16_637
WARM_MEMORY_BYTES = 3 << 30  # both sides' results of the largest case, touched once up front


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """CPU-seconds (all threads), wall seconds and result of ``fn()``."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn()
    return time.process_time() - c0, time.perf_counter() - t0, out


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"loadavg_1m={one:.2f} loadavg_5m={five:.2f}"


@cache
def bdew_days() -> np.ndarray:
    """The 2023 BDEW daily profiles (kW, 96 quarter hours) of every standard load profile."""
    import demandlib.bdew as bdew

    frame = bdew.ElecSlp(2023).get_scaled_power_profiles(
        {name: 1e3 for name in ("h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")}
    )
    return np.concatenate([frame[c].to_numpy().reshape(-1, 96) for c in frame.columns])


def profiles(n: int, length: int, seed: int) -> np.ndarray:
    """``n`` meter-days (Wh per slot): BDEW days, scaled per meter, with noise, at ``length``
    slots (24 = hourly sums of the quarter hours)."""
    rng = np.random.default_rng(seed)
    days = bdew_days()[rng.integers(0, len(bdew_days()), n)] * 250.0
    x = days * rng.uniform(0.3, 3.0, (n, 1)) + rng.normal(0.0, 5.0, days.shape)
    return x if length == 96 else x.reshape(n, length, 96 // length).sum(axis=2)


def sample_diff(ours: np.ndarray, ref_upper: np.ndarray, n: int, seed: int = 0) -> float:
    """Largest |ours - ref| on 200k random pairs (ref in dtaidistance's upper-triangle order)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, n, 200_000)
    b = rng.integers(0, n, 200_000)
    keep = a != b
    lo, hi = np.minimum(a, b)[keep], np.maximum(a, b)[keep]
    ref_idx = n * lo - lo * (lo + 1) // 2 + (hi - lo - 1)
    return float(np.max(np.abs(ours[hi * (hi - 1) // 2 + lo] - ref_upper[ref_idx])))


def case_matrix(case: str, n: int, length: int, window: int) -> None:
    """One all-pairs matrix, ours against dtaidistance, on the same profiles."""
    x = profiles(n, length, seed=n + length)
    w = window or None
    ours_cpu, ours_wall, ours = timed(lambda: dtw_condensed(x, w, progress=False))
    ref_cpu, _, ref = timed(
        lambda: dtai.distance_matrix_fast(x, compact=True, parallel=True, window=w)
    )
    diff = sample_diff(ours, np.frombuffer(ref, dtype=np.float64), n)
    del ours, ref
    gc.collect()
    cells = n_pairs(n) * band_cells(length, w)
    print(
        f"case={case} window={window} n={n} l={length} ours_cpu_s={ours_cpu:.2f} "
        f"ref_cpu_s={ref_cpu:.2f} ratio={ref_cpu / ours_cpu:.2f} "
        f"ours_mcells_per_cpu_s={cells / ours_cpu / 1e6:.0f} "
        f"ref_mcells_per_cpu_s={cells / ref_cpu / 1e6:.0f} max_abs_diff={diff:.1e} "
        f"ours_wall_s={ours_wall:.2f}",
        flush=True,
    )
    print(f"# {load()}", flush=True)


def case_incremental(n: int, length: int, window: int) -> None:
    """Add 10 % new profiles to a cached matrix, against a full build of all of them."""
    x = profiles(n, length, seed=7)
    seed_rows = n - n // 10
    with tempfile.TemporaryDirectory(prefix="dtw-bench-") as tmp:
        inc_cache = DtwCache(Path(tmp) / "incremental")
        inc_cache.update(x[:seed_rows], window=window, normalization="none", progress=False)
        ours_cpu, ours_wall, inc = timed(
            lambda: inc_cache.update(x, window=window, normalization="none", progress=False)
        )
        full_cache = DtwCache(Path(tmp) / "full")
        ref_cpu, ref_wall, full = timed(
            lambda: full_cache.update(x, window=window, normalization="none", progress=False)
        )
        same = inc.key == full.key and np.array_equal(inc.condensed(), full.condensed())
        ideal = (n_pairs(n) - n_pairs(seed_rows)) / n_pairs(n)
        cost = ours_cpu / ref_cpu
        print(
            f"case=incremental window={window} n={n} l={length} ours_cpu_s={ours_cpu:.2f} "
            f"ref_cpu_s={ref_cpu:.2f} ratio={ref_cpu / ours_cpu:.2f} cost_of_full={cost:.3f} "
            f"ideal={ideal:.3f} vs_ideal={cost / ideal:.2f} wall_cost_of_full="
            f"{ours_wall / ref_wall:.3f} identical_to_full={same}",
            flush=True,
        )
        print(
            f"# added={n - seed_rows} pairs_computed={inc.pairs_computed} "
            f"pairs_reused={inc.pairs_reused} file_mb={inc.nbytes / 1e6:.0f} {load()}",
            flush=True,
        )


def slide_days(
    n: int, length: int, days: int, layout: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Profiles of ``n // days`` meters on ``days + 1`` days: the sample before (days 0..D-1)
    and after (days 1..D) a night in ``layout`` order (``day_major``: day by day, as the
    harmonization step passes them; ``meter_major``: meter by meter), and the kept profiles
    followed by the new ones (the rows the slide computes)."""
    meters = n // days
    x = profiles(meters * (days + 1), length, seed=13).reshape(days + 1, meters, length)
    if layout == "meter_major":
        x = x.transpose(1, 0, 2)
    before = np.ascontiguousarray(x[:, :days] if layout == "meter_major" else x[:days])
    after = np.ascontiguousarray(x[:, 1:] if layout == "meter_major" else x[1:])
    new = (x[:, days] if layout == "meter_major" else x[days]).reshape(-1, length)
    kept = (x[:, 1:days] if layout == "meter_major" else x[1:days]).reshape(-1, length)
    return before.reshape(-1, length), after.reshape(-1, length), np.concatenate([kept, new])


def cached(folder: Path, before: np.ndarray, window: int) -> tuple[DtwCache, float, Path]:
    """A cache holding the matrix of ``before``, the CPU-seconds of that full build, its file."""
    cache = DtwCache(folder)
    cpu, _, mat = timed(
        lambda: cache.update(before, window=window, normalization="none", progress=False)
    )
    return cache, cpu, mat.path


def slide(cache: DtwCache, after: np.ndarray, window: int, *, rewrite: bool = False) -> tuple:
    """CPU-seconds, wall seconds and matrix of the update to ``after`` (forced to rewrite the
    file, as the cache did before slots were recycled, when ``rewrite``)."""
    share = dtw_slots.RECYCLE_MAX_SHARE
    dtw_slots.RECYCLE_MAX_SHARE = 0.0 if rewrite else share
    try:
        return timed(
            lambda: cache.update(after, window=window, normalization="none", progress=False)
        )
    finally:
        dtw_slots.RECYCLE_MAX_SHARE = share


def case_slide(n: int, length: int, window: int, layout: str, days: int = 14) -> None:
    """One nightly slide: recycled slots against the new pairs alone and against a rewrite."""
    before, after, y = slide_days(n, length, days, layout)
    meters = n // days
    with tempfile.TemporaryDirectory(prefix="dtw-bench-") as tmp:
        ours_cache, build_cpu, path = cached(Path(tmp) / "slide", before, window)
        ours_cpu, ours_wall, slid = slide(ours_cache, after, window)
        verify_cpu, _, _ = timed(lambda: block_digests(slid.path, slid.nbytes, BLOCK_BYTES))
        ideal_cpu, _, _ = timed(lambda: dtw_rows(y, len(y) - meters, len(y), window))
        ref_cache, _, _ = cached(Path(tmp) / "rewrite", before, window)
        ref_cpu, ref_wall, rewritten = slide(ref_cache, after, window, rewrite=True)
        same = np.array_equal(slid.square(), rewritten.square())
        build_share = build_cpu * slid.pairs_computed / n_pairs(len(after))
        print(
            f"case=slide window={window} n={len(after)} l={length} ours_cpu_s={ours_cpu:.2f} "
            f"ref_cpu_s={ref_cpu:.2f} ratio={ref_cpu / ours_cpu:.2f} layout={layout} "
            f"ideal_cpu_s={ideal_cpu:.2f} vs_ideal={ours_cpu / ideal_cpu:.2f} "
            f"rewrite_vs_ideal={ref_cpu / ideal_cpu:.2f} verify_cpu_s={verify_cpu:.2f} "
            f"vs_ideal_unverified={(ours_cpu - verify_cpu) / ideal_cpu:.2f} "
            f"vs_build_share={ours_cpu / build_share:.2f} "
            f"rewrite_vs_build_share={ref_cpu / build_share:.2f} "
            f"ours_wall_s={ours_wall:.2f} ref_wall_s={ref_wall:.2f} identical_to_rewrite={same}",
            flush=True,
        )
        print(
            f"# meters={meters} days={days} pairs_computed={slid.pairs_computed} "
            f"rewrite_pairs_computed={rewritten.pairs_computed} pairs_reused={slid.pairs_reused} "
            f"in_place={slid.path == path} build_cpu_s={build_cpu:.2f} "
            f"file_mb={slid.nbytes / 1e6:.0f} {load()}",
            flush=True,
        )


def case_dask(n: int, length: int, window: int, workers: int) -> None:
    """Dask LocalCluster (fresh, then running) against the single-process matrix."""
    x = profiles(n, length, seed=11)
    w = window or None
    _, ref_s, single = timed(lambda: dtw_condensed(x, w, progress=False))
    _, ours_s, dist = timed(
        lambda: dtw_condensed_dask(x, w, n_workers=workers, processes=True, progress=False)
    )
    print(
        f"case=dask window={window} n={n} l={length} ours_wall_s={ours_s:.2f} "
        f"ref_wall_s={ref_s:.2f} ratio={ref_s / ours_s:.2f} (cluster start and stop included) "
        f"identical_to_single={np.array_equal(single, dist)}",
        flush=True,
    )
    del dist
    with LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        dtw_condensed_dask(x[:200], w, scheduler_address=address, progress=False)  # warm
        _, ours_s, dist = timed(
            lambda: dtw_condensed_dask(x, w, scheduler_address=address, progress=False)
        )
    print(
        f"case=dask_running_cluster window={window} n={n} l={length} ours_wall_s={ours_s:.2f} "
        f"ref_wall_s={ref_s:.2f} ratio={ref_s / ours_s:.2f} "
        f"identical_to_single={np.array_equal(single, dist)}",
        flush=True,
    )


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel, and touch the memory the largest case
    needs, before timing anything: on a virtual machine the first touch of memory the host has
    not backed yet costs up to 5 ms per MB, which would be charged to whichever side runs first."""
    np.ones(WARM_MEMORY_BYTES // 8).sum()
    for length in (24, 96):
        x = profiles(70, length, 0)
        for window in WINDOWS:
            dtw_condensed(x, window or None, progress=False)
            dtw_rows(x, 0, 70, window or None, parallel=False)  # Dask workers
    with tempfile.TemporaryDirectory(prefix="dtw-bench-") as tmp:  # the cache's numba kernels
        warm_cache_kernels(Path(tmp), profiles(70, 24, 0))


def warm_cache_kernels(folder: Path, x: np.ndarray) -> None:
    """A slide recycling slots, then one rewriting (compiles or loads their kernels)."""
    cache, _, _ = cached(folder, x[:60], 3)
    cache.update(x[5:65], window=3, normalization="none", progress=False)
    cache.update(x[50:70], window=3, normalization="none", progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--cases", default="matrix,fleet,incremental,slide,dask")
    parser.add_argument("--verbose", action="store_true", help="log progress")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    if not args.verbose:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cases = set(args.cases.split(","))
    scale = 0.1 if args.quick else 1.0
    warm_up()
    print(
        f"# cores={numba.get_num_threads()} os_cpus={os.cpu_count()} "
        f"numba_layer={numba.threading_layer()} {load()}",
        flush=True,
    )
    if "matrix" in cases:
        for length, narrow_n, wide_n in ((24, 8000, 5000), (96, 4000, 2000)):
            for window in WINDOWS:
                n = narrow_n if window else wide_n
                case_matrix("matrix", max(200, int(n * scale)), length, window)
    if "fleet" in cases:
        case_matrix("fleet", int(FLEET_N * scale), 96, 2)
    if "incremental" in cases:
        case_incremental(max(1000, int(20_000 * scale)), 24, 3)
    if "slide" in cases:
        for length, layout in ((24, "day_major"), (24, "meter_major"), (96, "day_major")):
            case_slide(max(1400, int(14_000 * scale)), length, 3, layout)
    if "dask" in cases:
        case_dask(max(1000, int(10_000 * scale)), 24, 3, workers=min(2, numba.get_num_threads()))


if __name__ == "__main__":
    main()
