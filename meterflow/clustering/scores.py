"""Which of a clustering's scores are run metrics and which go to its ``validation`` table.

A run keeps at most 20 metric keys, so the run metrics are the headline ones (``RUN_METRICS``,
plus the silhouette on each distance matrix, ``silhouette_<metric>``); the families of variants
(the peak scores with and without tolerance, the agreement with the known classes on the fitted
sample, ``*_fitted``) are rows of one table with every score, what it means and which profiles
it was computed on.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from meterflow.clustering.peaks import PEAK_SCORE_NAMES

RUN_METRICS = (
    "k",
    "silhouette",
    "silhouette_null",
    "davies_bouldin",
    "ari",
    "nmi",
    "rand_index",
    "peak_match",
    "profiles",
    "profiles_fitted",
    "fit_seconds",
)
COUNTS = frozenset({"k", "profiles", "profiles_fitted", "fit_seconds"})  # not scores
ON_ALL_ROWS = frozenset({"ari", "nmi", "rand_index", "profiles"})  # every assigned profile
MEANING = {
    "k": "number of clusters",
    "silhouette": "mean Euclidean silhouette in [-1, 1], higher = better separated",
    "silhouette_null": "silhouette of k-means with the same k on slot-shuffled (shapeless) days",
    "davies_bouldin": "Davies-Bouldin index, lower = better separated",
    "ari": "adjusted Rand index with the known classes (0 = chance, 1 = same)",
    "nmi": "normalised mutual information with the known classes, in [0, 1]",
    "rand_index": "share of day pairs on which clusters and known classes agree",
    "peak_match": "share of days whose daily maximum is in their centre's maximum slot",
    "peak_performance": "F1 of the centre's prominent peaks against the day's",
    "prominent_peak_detection": "share of a day's prominent peaks the centre has",
    "prominent_peak_overdetection": "share of the centre's prominent peaks the day lacks",
    "profiles": "profiles (meter-days) assigned",
    "profiles_fitted": "profiles (meter-days) the model was fitted on",
    "fit_seconds": "seconds to fit (and choose k) and assign",
}


def is_run_metric(name: str) -> bool:
    """Whether score ``name`` is one of the run's metric keys (module doc)."""
    return name in RUN_METRICS or (name.startswith("silhouette_") and name != "silhouette_null")


def _meaning(name: str) -> str:
    if name in MEANING:
        return MEANING[name]
    base = name.removesuffix("_fitted").removesuffix("_relaxed")
    text = MEANING.get(base, "")
    if base.startswith("silhouette_") and not text:
        text = f"silhouette on the {base.removeprefix('silhouette_').upper()} distance matrix"
    if name.endswith("_relaxed"):
        text += " (within one slot)"
    return text


def _rows(name: str, sampled: bool) -> str:
    if is_run_metric(name) and name.startswith("silhouette_"):
        return "matrix"
    if name.endswith("_fitted"):
        return "fitted"
    return "all" if (name in ON_ALL_ROWS and sampled) or name == "profiles" else "fitted"


def validation_table(scores: Mapping[str, float]) -> pd.DataFrame:
    """One row per score: metric, value, rows (``fitted`` profiles, ``all`` assigned ones, or
    the distance ``matrix``'s), run_metric (also a metric key of the run), meaning. The run
    metrics come first, the peak scores last in their order."""
    sampled = any(name.endswith("_fitted") for name in scores)
    order = [n for n in RUN_METRICS if n in scores]
    order += sorted(n for n in scores if is_run_metric(n) and n not in order)
    order += sorted(n for n in scores if n not in order and n not in PEAK_SCORE_NAMES)
    order += [n for n in PEAK_SCORE_NAMES if n in scores and n not in order]
    return pd.DataFrame(
        {
            "metric": order,
            "value": [float(scores[n]) for n in order],
            "rows": [_rows(n, sampled) for n in order],
            "run_metric": [is_run_metric(n) for n in order],
            "meaning": [_meaning(n) for n in order],
        }
    )


def run_metrics(scores: Mapping[str, float]) -> dict[str, float]:
    """The scores that are run metrics."""
    return {name: value for name, value in scores.items() if is_run_metric(name)}
