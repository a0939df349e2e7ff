"""The clustering run's description (Markdown for the MLflow UI), built from plain numbers.

Verdict first: how many clusters, their names and shares of the days, and the silhouette
against the reference of shapeless data (k-means with the same k on the profiles with every slot
shuffled across days, ``silhouette_null``); then the data, the result, what was chosen and why,
and the artifacts to open.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from meterflow.prose import description, num, percent

MAX_LISTED = 6  # clusters named in the verdict; the others are counted


@dataclass(frozen=True)
class Summary:
    """What the description tells (``metrics``: the run's metric keys, any may be missing)."""

    model: str
    distance_metric: str
    k: int
    names: Sequence[str]
    shares: Sequence[float]  # of all assigned profiles, per cluster
    metrics: Mapping[str, float]
    source: str  # e.g. "harmonization run `c8367f`"
    fitted_on: str  # which profiles the model was fitted on, e.g. "the DTW matrix's rows"
    k_choice: str = ""  # the criterion k was chosen by; "" = given
    k_range: tuple[int, int] | None = None
    runner_up: tuple[int, float] | None = None  # next best k and its score
    auto_choice: str = ""  # the configuration model=auto kept
    meters: int | None = None
    period: tuple[str, str] | None = None  # first and last day
    truth: str = ""  # what ARI/NMI compare with ("" = no known classes)
    meter_level: str = ""  # what the meter-level clustering found, or why it was skipped
    look_next: Sequence[str] = field(default_factory=tuple)


def clusters_line(names: Sequence[str], shares: Sequence[float]) -> str:
    """``midday export (PV) 16.9 % of days; daytime plateau 83.1 %``, largest first."""
    order = sorted(range(len(names)), key=lambda c: (-shares[c], c))
    parts = [f"{names[c]} {percent(shares[c])}" for c in order[:MAX_LISTED]]
    if parts:
        parts[0] += " of days"
    more = len(order) - MAX_LISTED
    return "; ".join(parts) + (f"; {more} more in `previews/cluster_sizes.csv`" if more > 0 else "")


def verdict(s: Summary) -> str:
    sil, null = s.metrics.get("silhouette"), s.metrics.get("silhouette_null")
    clusters = clusters_line(s.names, s.shares)
    reference = "k-means with the same k on shapeless (slot-shuffled) days"
    if sil is None or null is None or not (math.isfinite(sil) and math.isfinite(null)):
        return f"{s.k} clusters: {clusters}; silhouette {num(sil)}."
    if sil <= null:
        return (
            f"The {s.k} clusters are no better separated than shapeless data (silhouette "
            f"{num(sil)} vs {num(null)} for {reference}): read them as rough groups. "
            f"{clusters}."
        )
    return f"{s.k} clusters: {clusters}; silhouette {num(sil)} vs {num(null)} for {reference}."


def _data(s: Summary) -> str:
    profiles, fitted = s.metrics.get("profiles"), s.metrics.get("profiles_fitted")
    meters = f" of {s.meters} meters" if s.meters else ""
    days = f", {s.period[0]} .. {s.period[1]}" if s.period else ""
    count = "n/a" if profiles is None else f"{int(profiles):,}"
    fit = "n/a" if fitted is None else f"{int(fitted):,}"
    return (
        f"{count} daily profiles (meter-days){meters}{days}, from {s.source}; the model was "
        f"fitted on {fit} of them ({s.fitted_on}) and assigned all"
    )


def _result(s: Summary) -> str:
    m = s.metrics
    parts = [f"silhouette {num(m.get('silhouette'))} (Euclidean, fitted days)"]
    matrix = [
        f"{key.removeprefix('silhouette_').upper()} {num(value)}"
        for key, value in sorted(m.items())
        if key.startswith("silhouette_") and key != "silhouette_null"
    ]
    if matrix:
        parts.append(f"silhouette on the distance matrix: {', '.join(matrix)}")
    parts.append(f"Davies-Bouldin {num(m.get('davies_bouldin'))} (lower is better)")
    parts.append(f"{percent(m.get('peak_match'))} of days peak in their centre's peak slot")
    if s.truth:
        parts.append(
            f"agreement with {s.truth}: ARI {num(m.get('ari'))}, NMI {num(m.get('nmi'))} "
            "(0 = chance)"
        )
    return "; ".join(parts)


def _chosen(s: Summary) -> str:
    what = f"{s.model} with {s.distance_metric} distance, k={s.k}"
    if s.auto_choice:
        what += f"; model=auto kept {s.auto_choice} (beyond shapeless data, stable, and the one"
        what += " the other distance families agree with most)"
    if not s.k_choice:
        return what + " (given)"
    span = f" among k={s.k_range[0]}..{s.k_range[1]}" if s.k_range else ""
    why = f"{what}, chosen by {s.k_choice}{span}"
    if s.runner_up is not None:
        why += f" (next best k={s.runner_up[0]}: {num(s.runner_up[1])})"
    return why


def describe(s: Summary) -> str:
    """The run's Markdown description (module doc)."""
    look = ", ".join(f"`{path}`" for path in s.look_next) or "n/a"
    bullets = [
        ("Data", f"{_data(s)}."),
        ("Result", f"{_result(s)}."),
        ("Chosen", f"{_chosen(s)}."),
        *([("Meters", s.meter_level)] if s.meter_level else []),
        ("Look next", f"{look}."),
    ]
    return description(verdict(s), bullets)
