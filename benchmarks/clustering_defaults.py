"""Benchmark: the clustering step's defaults (per-profile normalisation, DTW window as a fraction
of the day) chosen on the DEVELOPMENT public sets only (``public_profiles.DEVELOPMENT``).

For each development set, at its true number of classes, every configuration of the registry
(k-means Euclidean, k-Shape, k-medoids and agglomerative on each distance of the DTW family,
and the barycentre k-means ``dba`` / ``shape_dba`` when registered) is fitted, seeded, on at most
``--max-profiles`` rows (a seeded sample), then assigns every row; for every normalisation x
window fraction (the band is ``window_slots(fraction, slots)``). One line per fit::

    set=<name> config=<model/distance> normalize=<n> window=<fraction or - when unused>
        ari=<all rows> ari_vs_published=<ari / best published> seconds=<matrix + fit + assign>
        seconds_vs_kmeans=<seconds / kmeans euclidean's, same set and normalisation>

then the summary (also from saved lines: ``--summary FILE ...``): per normalisation x window,
the ARI of the best configuration on each set, its mean and its mean rank among the settings;
the defaults are the setting of lowest mean rank (ties: highest mean ARI), a rule fixed before
the grid ran; then each configuration's mean ARI at those defaults.

Chosen on 2026-12-07, before any held-back set was read (seed 0, 600 profiles per set, every
configuration registered that day: 19 of them): ``normalize=none, window=0.05``. It ties with
``none, 0.1`` on mean rank (3.42 of 9 settings); the tie goes to the higher mean ARI of the best
configuration (0.587 against 0.483, ItalyPowerDemand 0.842 against 0.195 deciding it).
``none`` leads every window: the energy sets differ in level as much as in shape (PowerCons
0.750 unnormalised, 0.32 z-normalised). An earlier run on 1 000 profiles with the DTW family only
ranked ``none, 0.1`` first (3.25) and ``none, 0.05`` second (3.42, mean ARI 0.587 against 0.487).
Run: ``python benchmarks/clustering_defaults.py [--sets ...] [--configs ...] [--wheels DIR]``.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from public_profiles import DEVELOPMENT, load
from published_clustering import published_ari

from meterflow.clustering.fit import fit_clustering, needs_dtw_matrix
from meterflow.clustering.metrics import ari
from meterflow.clustering.registry import ALGORITHMS, DTW_FAMILY, algorithm
from meterflow.profiles.dtw import condensed_to_square, distance_condensed
from meterflow.profiles.dtw.window import window_slots
from meterflow.profiles.normalize import normalize_values

NORMALIZATIONS = ("none", "zscore", "max")
FRACTIONS = (0.05, 0.1, 0.2)
BARYCENTRE_MODELS = ("dba", "shape_dba")  # joined the registry with issue 29, when present
_LINE = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class Fit:
    """One line of the grid."""

    set: str
    config: str
    normalize: str
    window: float | None  # None: the configuration uses no DTW window
    ari: float
    seconds: float


def configurations() -> list[tuple[str, str]]:
    """``(model, distance)`` of every configuration the grid fits, from the registry."""
    found = [("kmeans", "euclidean"), ("kshape", "euclidean")]
    found += [(model, d) for model in ("kmedoids", "agglomerative") for d in DTW_FAMILY]
    for model in BARYCENTRE_MODELS:
        if model in ALGORITHMS:
            found += [(model, d) for d in algorithm(model).distance_metrics if d != "euclidean"]
    return found


def uses_window(model: str, distance: str) -> bool:
    """Whether the configuration's result depends on the DTW window."""
    return distance != "euclidean"


def sample_rows(n: int, max_profiles: int, seed: int) -> np.ndarray:
    """The seeded, sorted sample of at most ``max_profiles`` of ``n`` rows the fits use."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, min(max_profiles, n), replace=False))


def run_set(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    configs: Sequence[tuple[str, str]],
    max_profiles: int,
    seed: int,
) -> Iterator[Fit]:
    """Every configuration x normalisation x window fraction on one set (the fits that ignore
    the window once per normalisation)."""
    data = (X, y, sample_rows(len(X), max_profiles, seed))
    for normalize in NORMALIZATIONS:
        for i, fraction in enumerate(FRACTIONS):
            yield from fit_setting(name, data, configs, (normalize, fraction), seed, i == 0)


def fit_setting(
    name: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    configs: Sequence[tuple[str, str]],
    setting: tuple[str, float],
    seed: int,
    windowless: bool = True,
) -> Iterator[Fit]:
    """The configurations at one (normalisation, window fraction), at the set's true k, fitted
    on ``data``'s sampled rows (``(X, y, rows)``); those that use no window only when
    ``windowless``. Each distance matrix is computed once and its seconds counted in every fit
    that reads it."""
    X, y, rows = data
    normalize, fraction = setting
    k = len(np.unique(y))
    if windowless:
        for config in configs:
            if not uses_window(*config):
                yield _fit(name, data, config, normalize, None, k, seed)
    Xn = normalize_values(X[rows], normalize)
    band = window_slots(fraction, X.shape[1])
    for distance in sorted({d for m, d in configs if uses_window(m, d)}):
        t0 = time.perf_counter()
        D = _matrix(distance, Xn, band) if _needs_matrix(configs, distance) else None
        spent = time.perf_counter() - t0
        print(
            f"# set={name} normalize={normalize} window={fraction:g} {distance} "
            f"matrix_seconds={spent:.1f}",
            flush=True,
        )
        for model, d in configs:
            if d == distance:
                fit = _fit(name, data, (model, d), normalize, fraction, k, seed, D)
                extra = spent if needs_dtw_matrix(model, d) else 0.0
                yield Fit(**{**fit.__dict__, "seconds": fit.seconds + extra})


def _needs_matrix(configs: Sequence[tuple[str, str]], distance: str) -> bool:
    return any(d == distance and needs_dtw_matrix(m, d) for m, d in configs)


def _matrix(distance: str, Xn: np.ndarray, band: int) -> np.ndarray:
    return condensed_to_square(distance_condensed(distance, Xn, band, progress=False), len(Xn))


def _fit(
    name: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: tuple[str, str],
    normalize: str,
    fraction: float | None,
    k: int,
    seed: int,
    D: np.ndarray | None = None,
) -> Fit:
    """Fit one configuration on the sampled rows; its ARI on every row."""
    X, y, rows = data
    model, distance = config
    band = window_slots(fraction, X.shape[1]) if fraction is not None else None
    t0 = time.perf_counter()
    result = fit_clustering(
        model,
        X[rows],
        k=k,
        distance_metric=distance,
        dtw=D if needs_dtw_matrix(model, distance) else None,
        window=band,
        seed=seed,
        options={"normalize": normalize},
    )
    labels = result.assigner.predict(X)
    seconds = time.perf_counter() - t0
    return Fit(name, f"{model}/{distance}", normalize, fraction, ari(y, labels), seconds)


def line(fit: Fit, reference_seconds: float) -> str:
    """The printed line of a fit, with its ratios to the best published ARI and to the
    reference's seconds (k-means Euclidean, same set and normalisation)."""
    published = published_ari(fit.set)
    ratio = f"{fit.ari / published:.2f}" if published else "-"
    window = "-" if fit.window is None else f"{fit.window:g}"
    return (
        f"set={fit.set} config={fit.config} normalize={fit.normalize} window={window} "
        f"ari={fit.ari:.3f} ari_vs_published={ratio} seconds={fit.seconds:.2f} "
        f"seconds_vs_kmeans={_seconds_ratio(fit.seconds, reference_seconds)}"
    )


def _seconds_ratio(seconds: float, reference: float) -> str:
    """``seconds / reference`` to one decimal; '-' without a reference in this run."""
    return f"{seconds / max(reference, 1e-9):.1f}" if np.isfinite(reference) else "-"


def parse(text: str) -> list[Fit]:
    """The fits of printed grid lines (other lines ignored)."""
    fits = []
    for raw in text.splitlines():
        if not raw.startswith("set=") or " config=" not in raw:
            continue
        f = dict(_LINE.findall(raw))
        window = None if f["window"] == "-" else float(f["window"])
        fits.append(
            Fit(f["set"], f["config"], f["normalize"], window, float(f["ari"]), float(f["seconds"]))
        )
    return fits


def best_per_setting(fits: Sequence[Fit]) -> dict[tuple[str, float], dict[str, float]]:
    """``(normalize, fraction) -> {set: ARI of its best configuration}``; a fit that uses no
    window counts at every fraction."""
    fractions = sorted({f.window for f in fits if f.window is not None}) or list(FRACTIONS)
    best: dict[tuple[str, float], dict[str, float]] = {}
    for f in fits:
        for fraction in [f.window] if f.window is not None else fractions:
            per_set = best.setdefault((f.normalize, fraction), {})
            per_set[f.set] = max(per_set.get(f.set, -np.inf), f.ari)
    return best


def mean_ranks(best: dict[tuple[str, float], dict[str, float]]) -> dict[tuple[str, float], float]:
    """Each setting's mean rank over the sets (1 = the best setting on a set; ties share the
    mean of their ranks)."""
    settings = list(best)
    sets = sorted({s for per_set in best.values() for s in per_set})
    ranks = {key: [] for key in settings}
    for name in sets:
        scores = np.array([best[key].get(name, -np.inf) for key in settings])
        for key, score in zip(settings, scores, strict=True):
            ranks[key].append(1 + np.sum(scores > score) + (np.sum(scores == score) - 1) / 2)
    return {key: float(np.mean(r)) for key, r in ranks.items()}


def choose(fits: Sequence[Fit]) -> tuple[str, float]:
    """The defaults: the setting of lowest mean rank, ties broken by the highest mean ARI."""
    best = best_per_setting(fits)
    ranks = mean_ranks(best)
    return min(best, key=lambda key: (ranks[key], -np.mean(list(best[key].values()))))


def summary(fits: Sequence[Fit]) -> str:
    """The settings table, the chosen defaults and each configuration's mean ARI at them."""
    best, chosen = best_per_setting(fits), choose(fits)
    ranks = mean_ranks(best)
    sets = sorted({f.set for f in fits}, key=lambda s: (s not in DEVELOPMENT, s))
    out = ["normalize window mean_rank mean_best_ari mean_ratio_published " + " ".join(sets)]
    for key in sorted(best, key=lambda key: ranks[key]):
        cells = " ".join(f"{best[key].get(s, float('nan')):.3f}" for s in sets)
        mean, ratio = np.mean(list(best[key].values())), _mean_ratio(best[key])
        out.append(f"{key[0]} {key[1]:g} {ranks[key]:.2f} {mean:.3f} {ratio} {cells}")
    out += [f"chosen normalize={chosen[0]} window={chosen[1]:g}", ""]
    out.append("config mean_ari_at_chosen ari_ratio_published " + " ".join(sets))
    at = [f for f in fits if f.normalize == chosen[0] and f.window in (None, chosen[1])]
    by_config: dict[str, dict[str, float]] = {}
    for f in at:
        by_config.setdefault(f.config, {})[f.set] = f.ari
    for config, per_set in sorted(by_config.items(), key=lambda t: -np.mean(list(t[1].values()))):
        cells = " ".join(f"{per_set.get(s, float('nan')):.3f}" for s in sets)
        out.append(f"{config} {np.mean(list(per_set.values())):.3f} {_mean_ratio(per_set)} {cells}")
    return "\n".join(out)


def _mean_ratio(per_set: dict[str, float]) -> str:
    """Mean of ARI / best published over the sets that have a published value."""
    ratios = [ari / published_ari(s) for s, ari in per_set.items() if published_ari(s)]
    return f"{np.mean(ratios):.2f}" if ratios else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(DEVELOPMENT))
    parser.add_argument("--configs", help="model/distance,... (default: every one)")
    parser.add_argument("--wheels", type=Path, default=Path("data/public"))
    parser.add_argument("--max-profiles", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summary", type=Path, nargs="+", help="summarise saved lines only")
    args = parser.parse_args()
    if args.summary:
        print(summary(parse("\n".join(p.read_text() for p in args.summary))))
        return
    configs = configurations()
    if args.configs:
        configs = [c for c in configs if "/".join(c) in args.configs.split(",")]
    fits = []
    for name in args.sets.split(","):
        if name not in DEVELOPMENT:
            parser.error(f"{name} is not a development set: defaults are chosen on those only")
        X, y = load(name, args.wheels)
        reference: dict[str, float] = {}
        for fit in run_set(name, X, y, configs, args.max_profiles, args.seed):
            if fit.config == "kmeans/euclidean":
                reference[fit.normalize] = fit.seconds
            print(line(fit, reference.get(fit.normalize, np.nan)), flush=True)
            fits.append(fit)
    print("\n" + summary(fits), flush=True)


if __name__ == "__main__":
    main()
