"""Figures of the anomaly step (matplotlib ``Figure`` objects, no pyplot global state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def _example_meters(scores: pd.DataFrame, n: int) -> list[str]:
    """Meters with labelled anomalies first, then those with the most flagged points."""
    by_meter = scores.groupby("meter_id").agg(
        labelled=("label", lambda s: bool(s.fillna(False).any())), flagged=("flagged", "sum")
    )
    ranked = by_meter.sort_values(["labelled", "flagged"], ascending=False)
    return list(ranked.index[:n])


def flagged_examples(
    scores: pd.DataFrame, labels: pd.DataFrame | None, n_meters: int = 4, max_points: int = 24 * 21
) -> Figure:
    """Readings, forecasts, flagged points and labelled spans of a few meters."""
    meters = _example_meters(scores, n_meters) if len(scores) else []
    fig = Figure(figsize=(11, 2.8 * max(1, len(meters))), layout="constrained")
    axes = fig.subplots(max(1, len(meters)), 1, squeeze=False)[:, 0]
    for ax, meter in zip(axes, meters, strict=False):
        part = scores.loc[scores["meter_id"] == meter]
        flagged_at = np.flatnonzero(part["flagged"].to_numpy())
        if len(flagged_at):  # centre the view on the first flagged point
            centre = int(flagged_at[0])
            lo = max(0, centre - max_points // 2)
            part = part.iloc[lo : lo + max_points]
        else:
            part = part.head(max_points)
        ax.plot(part["timestamp"], part["value"], color="black", lw=1.0, label="reading")
        ax.plot(part["timestamp"], part["predicted"], lw=0.8, alpha=0.8, label="forecast")
        hit = part.loc[part["flagged"]]
        ax.scatter(hit["timestamp"], hit["value"], color="red", s=14, zorder=3, label="flagged")
        if labels is not None and len(part):
            lo_t, hi_t = part["timestamp"].min(), part["timestamp"].max()
            own = labels.loc[
                (labels["meter_id"] == meter) & (labels["end"] > lo_t) & (labels["start"] < hi_t)
            ]
            for i, row in enumerate(own.itertuples()):
                label = "labelled" if i == 0 else None
                ax.axvspan(row.start, row.end, color="orange", alpha=0.25, label=label)
        ax.set(title=f"meter {meter}", ylabel="Wh per slot")
        ax.legend(loc="upper right", fontsize="small")
    return fig


def score_histogram(scores: pd.DataFrame, threshold: float) -> Figure:
    """Distribution of test scores (log counts), split by label when labels exist."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    values = scores["score"].to_numpy(dtype=np.float64)
    hi = max(float(np.quantile(values, 0.999)) if len(values) else 1.0, threshold) * 1.5
    bins = np.linspace(0, hi, 60)
    label = scores["label"]
    if label.notna().all() and label.any():
        ax.hist(values[~label.to_numpy(bool)], bins=bins, alpha=0.7, label="normal")
        ax.hist(values[label.to_numpy(bool)], bins=bins, alpha=0.7, label="labelled anomaly")
    else:
        ax.hist(values, bins=bins, alpha=0.8, label="all points")
    ax.axvline(threshold, color="red", ls="--", label=f"threshold {threshold:.2f}")
    ax.set(yscale="log", xlabel="score (normalised |residual|)", ylabel="points")
    ax.legend()
    return fig
