"""Benchmark: what ``model=auto`` costs as the profiles grow, with its screening budget
(``meterflow.clustering.auto_budget``), against the reference run of this process.

Synthetic daily profiles (four shapes with random level, time shift and noise; no data to fetch)
of ``rows x slots`` for each ``--cases`` entry, the DTW window at the default fraction (0.05);
``model=auto`` (k = 2..8 chosen too) screens them and refits its choice on every row. The first
case is the reference (default ``1000x96``: a day of 15-minute slots, screened in full). One line
per case::

    case=<rows>x<slots> seconds=<wall> ratio=<seconds / the reference's> screened=<rows>
        candidates=<screened of all> estimate=<the plan's estimated cost / the budget>
        estimate_full=<screening every candidate on every row / the budget> chosen=<config> k=<k>

``ratio`` near 1 for every case is the budget at work (the reference's own estimate is below 1:
the budget is the 96-slot day at window 0.1). 2026-12-07, 2 shared cores (load 5-11): 200x24
54 s, 200x96 78 s (1.44), 300x720 273 s (5.06: 257 profiles, 16 candidates; estimate 3.4x the
budget without it). Not a timed test: ``python benchmarks/auto_cost.py [--quick]``.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from meterflow.clustering.auto import AUTO_CANDIDATES, SCREEN_ROWS, choose_configuration
from meterflow.clustering.auto_budget import plan_screening, screening_cost
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.profiles.dtw.window import window_slots

FULL = ("1000x96", "1000x301", "500x720")
QUICK = ("200x24", "200x96")
WINDOW = 0.05  # the default DTW window fraction


def profiles(rows: int, slots: int, seed: int = 0) -> np.ndarray:
    """Four daily shapes (two peaks, a plateau, a night peak, a wave) with random level, shift
    of up to an hour and noise, ``rows`` in all, each ``slots`` long."""
    rng = np.random.default_rng(seed)
    t = np.arange(slots) * 24 / slots + rng.uniform(-1, 1, (rows, 1))
    shapes = np.stack(
        [
            np.exp(-(((t - 8) / 1.5) ** 2)) + 1.2 * np.exp(-(((t - 20) / 1.5) ** 2)),
            1 / (1 + np.exp(-(t - 8) * 2)) / (1 + np.exp((t - 18) * 2)),
            np.exp(-(((t - 3) / 2) ** 2)),
            0.5 + 0.3 * np.sin(2 * np.pi * t / 24),
        ]
    )
    group = np.arange(rows) % 4
    level = rng.uniform(0.5, 2.0, (rows, 1))
    return level * shapes[group, np.arange(rows)] + rng.normal(0, 0.08, (rows, slots))


def run_case(rows: int, slots: int) -> tuple[float, str]:
    """``model=auto`` on synthetic profiles: its wall seconds and the rest of its line (the
    plan and the choice)."""
    X = profiles(rows, slots)
    band = window_slots(WINDOW, slots)

    def matrix(metric: str) -> np.ndarray:
        return condensed_to_square(distance_condensed(metric, X, band, progress=False), rows)

    plan = plan_screening(rows, slots, band, AUTO_CANDIDATES, SCREEN_ROWS)
    full = screening_cost(AUTO_CANDIDATES, min(rows, SCREEN_ROWS), slots, band)
    started = time.perf_counter()
    choice = choose_configuration(X, matrix, window=band, seed=0)
    seconds = time.perf_counter() - started
    return seconds, (
        f"screened={len(choice.rows)} candidates={len(plan.kept)}/{len(AUTO_CANDIDATES)} "
        f"estimate={plan.cost / plan.budget:.2f} estimate_full={full / plan.budget:.2f} "
        f"chosen={choice.chosen.candidate.name} k={choice.result.k}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", help="<rows>x<slots>, the reference first")
    parser.add_argument("--quick", action="store_true", help=f"cases {' '.join(QUICK)}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("meterflow.clustering.auto_budget").setLevel(logging.INFO)
    reference = 0.0
    for case in args.cases or (QUICK if args.quick else FULL):
        rows, slots = (int(v) for v in case.split("x"))
        seconds, rest = run_case(rows, slots)
        reference = reference or seconds
        print(f"case={case} seconds={seconds:.1f} ratio={seconds / reference:.2f} {rest}")


if __name__ == "__main__":
    main()
