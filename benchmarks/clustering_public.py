"""Benchmark: clustering configurations on labelled public daily-profile sets, and what a
label-free choice among them (``model=auto``) achieves.

For each set (``public_profiles.py``) at its true number of classes, every candidate
configuration (algorithm x distance x representation x per-profile normalisation) is fitted on
at most ``--max-profiles`` rows (a seeded sample), then assigns every row. One line per
configuration::

    set=<name> config=<model/distance[/representation]> normalize=<n> ari=<all rows> nmi=<..>
        ari_fitted=<sample> gap=<..> silhouette=<own space> null_silhouette=<..>
        stability=<..> consensus=<mean NMI with the other candidates of that normalisation>
        seconds=<..>

then one line per set with the label-free choice (``meterflow.clustering.auto``: the largest
silhouette gap over a shuffled null reference; labels never used), its ARI, the candidate of
highest consensus and its ARI (reported, not used by ``model=auto``), the best ARI of any
configuration (an oracle, for reference only) and the best published ARI we know of. The DTW
window is 10 % of the slots (a fixed rule, not tuned); WDTW weights use g = 0.05.
Run: ``python benchmarks/clustering_public.py [--sets ...] [--wheels DIR] [--max-profiles N]``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
from public_profiles import SETS, load

from meterflow.clustering.auto import AUTO_CANDIDATES, choose_configuration
from meterflow.clustering.metrics import ari, nmi
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.profiles.normalize import normalize_values

PUBLISHED_ARI = {"ItalyPowerDemand": 0.74, "PowerCons": 0.79, "ElectricDevices": 0.38}
NORMALIZATIONS = ("none", "zscore")


def evaluate(name: str, X: np.ndarray, y: np.ndarray, max_profiles: int, seed: int) -> None:
    """Print one line per configuration and normalisation, then the label-free choice."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(X), min(max_profiles, len(X)), replace=False))
    k, window = len(np.unique(y)), max(2, round(0.1 * X.shape[1]))
    chosen_all = []
    for normalize in NORMALIZATIONS:
        Xf = X[rows]
        matrices = _matrices(normalize_values(Xf, normalize), window)
        t0 = time.perf_counter()
        _, scored = choose_configuration(
            Xf,
            matrices,
            candidates=AUTO_CANDIDATES,
            k=k,
            window=window,
            seed=seed,
            options={"normalize": normalize},
        )
        seconds = time.perf_counter() - t0
        for s in scored:
            labels = s.result.assigner.predict(X)
            print(
                f"set={name} config={s.candidate.name} normalize={normalize} "
                f"ari={ari(y, labels):.3f} nmi={nmi(y, labels):.3f} "
                f"ari_fitted={ari(y[rows], s.result.labels):.3f} gap={s.gap:.3f} "
                f"silhouette={s.silhouette:.3f} null_silhouette={s.null_silhouette:.3f} "
                f"stability={s.stability:.3f} consensus={s.consensus:.3f} "
                f"seconds={seconds / len(scored):.1f}",
                flush=True,
            )
            chosen_all.append((s, normalize, ari(y, labels)))
    _summary(name, chosen_all)


def _matrices(Xn: np.ndarray, window: int):
    """``matrix(metric)``: square matrices of the normalised profiles, computed once each."""
    found: dict[str, np.ndarray] = {}

    def matrix(metric: str) -> np.ndarray:
        if metric not in found:
            condensed = distance_condensed(metric, Xn, window, progress=False)
            found[metric] = condensed_to_square(condensed, len(Xn))
        return found[metric]

    return matrix


def _summary(name: str, scored: list) -> None:
    """The label-free choice over every configuration and normalisation (largest silhouette
    gap, as ``model=auto``), the candidate of highest consensus (reported, not used) and the
    oracle (best ARI, for reference only)."""
    pick = max(scored, key=lambda t: t[0].gap if np.isfinite(t[0].gap) else -np.inf)
    agreed = max(scored, key=lambda t: t[0].consensus)
    oracle = max(scored, key=lambda t: t[2])
    print(
        f"set={name} auto_choice={pick[0].candidate.name} normalize={pick[1]} "
        f"auto_ari={pick[2]:.3f} consensus_choice={agreed[0].candidate.name} "
        f"consensus_normalize={agreed[1]} consensus_ari={agreed[2]:.3f} "
        f"best_config={oracle[0].candidate.name} "
        f"best_normalize={oracle[1]} best_ari={oracle[2]:.3f} "
        f"published_ari={PUBLISHED_ARI[name]:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--wheels", type=Path, default=Path("data/public"))
    parser.add_argument("--max-profiles", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.sets.split(","):
        X, y = load(name, args.wheels)
        evaluate(name, X, y, args.max_profiles, args.seed)


if __name__ == "__main__":
    main()
