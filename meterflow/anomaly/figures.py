"""Figures of the anomaly step (matplotlib ``Figure`` objects, no pyplot global state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score, precision_recall_curve


def _example_meters(scores: pd.DataFrame, n: int) -> list[str]:
    """Meters with labelled anomalies first, then those with the most flagged points."""
    by_meter = scores.groupby("meter_id").agg(
        labelled=("label", lambda s: bool(s.fillna(False).any())), flagged=("flagged", "sum")
    )
    ranked = by_meter.sort_values(["labelled", "flagged"], ascending=False)
    return list(ranked.index[:n])


def scores_over_time(
    scores: pd.DataFrame,
    threshold: float,
    labels: pd.DataFrame | None,
    n_meters: int = 4,
    max_points: int = 24 * 28,
) -> Figure:
    """Per meter: the readings with flagged ones marked and labelled spans shaded, and below
    them the score against the threshold."""
    meters = _example_meters(scores, n_meters) if len(scores) else []
    fig = Figure(figsize=(11, 3.6 * max(1, len(meters))), layout="constrained")
    grid = fig.add_gridspec(2 * max(1, len(meters)), 1, height_ratios=[2, 1] * max(1, len(meters)))
    for i, meter in enumerate(meters):
        part = _around_first_flag(scores.loc[scores["meter_id"] == meter], max_points)
        top = fig.add_subplot(grid[2 * i])
        bottom = fig.add_subplot(grid[2 * i + 1], sharex=top)
        top.plot(part["timestamp"], part["value"], color="black", lw=0.9, label="reading")
        hit = part.loc[part["flagged"]]
        top.scatter(hit["timestamp"], hit["value"], color="red", s=10, zorder=3, label="flagged")
        _shade_labels(top, labels, meter, part)
        top.set(title=f"meter {meter}", ylabel="Wh per slot")
        top.legend(loc="upper right", fontsize="small")
        bottom.plot(part["timestamp"], part["score"], lw=0.8, label="score")
        bottom.axhline(threshold, color="red", ls="--", lw=0.8, label="threshold")
        bottom.set(ylabel="score")
        bottom.legend(loc="upper right", fontsize="small")
    return fig


def _around_first_flag(part: pd.DataFrame, max_points: int) -> pd.DataFrame:
    flagged_at = np.flatnonzero(part["flagged"].to_numpy())
    lo = max(0, int(flagged_at[0]) - max_points // 3) if len(flagged_at) else 0
    return part.iloc[lo : lo + max_points]


def _shade_labels(ax, labels: pd.DataFrame | None, meter: str, part: pd.DataFrame) -> None:
    if labels is None or part.empty:
        return
    lo, hi = part["timestamp"].min(), part["timestamp"].max()
    own = labels.loc[(labels["meter_id"] == meter) & (labels["end"] > lo) & (labels["start"] < hi)]
    for i, row in enumerate(own.itertuples()):
        ax.axvspan(row.start, row.end, color="orange", alpha=0.25, label=None if i else row.kind)


def pr_curves(scores_by_detector: dict[str, pd.DataFrame]) -> Figure:
    """Precision-recall curve of each detector's test scores (area in the legend)."""
    fig = Figure(figsize=(6.5, 5), layout="constrained")
    ax = fig.add_subplot()
    for name, scores in scores_by_detector.items():
        truth = scores["label"].fillna(False).to_numpy(bool)
        score = np.nan_to_num(scores["score"].to_numpy(dtype=np.float64), nan=0.0)
        precision, recall, _ = precision_recall_curve(truth, score)
        area = average_precision_score(truth, score)
        ax.plot(recall, precision, lw=1.2, label=f"{name} (AP {area:.2f})")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
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
    ax.set(yscale="log", xlabel="score (largest normal deviate)", ylabel="points")
    ax.legend()
    return fig


def _grouped_bars(ax, frame: pd.DataFrame) -> None:
    """One group of bars per row of ``frame`` (its index on the x axis), one bar per column,
    each labelled with its value (NaN bars left out)."""
    width = 0.8 / max(1, len(frame.columns))
    x = np.arange(len(frame))
    for i, column in enumerate(frame.columns):
        values = frame[column].to_numpy(dtype=np.float64)
        bars = ax.bar(x + (i - (len(frame.columns) - 1) / 2) * width, values, width, label=column)
        ax.bar_label(bars, labels=[f"{v:.2f}" if np.isfinite(v) else "" for v in values], size=7)
    ax.set_xticks(x, [str(i) for i in frame.index], rotation=20, ha="right")
    ax.set_ylim(0, 1.2)  # shares and scores, room for the legend above the bars
    if len(frame.columns):
        ax.legend(loc="upper left", ncols=len(frame.columns), fontsize="small")


def detector_bars(comparison: pd.DataFrame, chosen: str) -> Figure:
    """Each detector's F1 on the labels and on the planted test copy, and its validation
    objective (what ``auto`` chooses on); the chosen detector is marked."""
    columns = {
        "f1": "F1, labels",
        "planted_f1": "F1, planted test copy",
        "val_planted_objective": "objective, validation",
    }
    table = comparison.set_index("detector")
    frame = table[[c for c in columns if c in table.columns]].rename(columns=columns)
    frame.index = [f"{d} (chosen)" if d == chosen else d for d in frame.index]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, frame)
    ax.set(ylabel="score (higher is better)", title="detectors compared")
    return fig


def kind_bars(kinds: pd.DataFrame) -> Figure:
    """The share of each kind of anomaly the chosen detector found, per split."""
    frame = kinds.pivot_table(index="kind", columns="split", values="event_recall", sort=False)
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, frame[[c for c in kinds["split"].unique() if c in frame.columns]])
    ax.set(ylabel="anomalies found (event recall)", title="found, per kind")
    return fig


def split_bars(evaluation: pd.DataFrame) -> Figure:
    """The chosen detector's precision, recall, F1 and event recall on each split."""
    columns = ["precision", "recall", "f1", "event_recall"]
    frame = evaluation.set_index("split").reindex(columns=columns)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    _grouped_bars(ax, frame)
    ax.set(ylabel="share", title="the chosen detector, per split")
    return fig


def threshold_bars(thresholds: pd.DataFrame) -> Figure:
    """The threshold (z) of each evidence component, learned on validation."""
    fig = Figure(figsize=(6.5, 0.6 * max(3, len(thresholds)) + 1), layout="constrained")
    ax = fig.add_subplot()
    bars = ax.barh(thresholds["component"], thresholds["threshold_z"], color="tab:red")
    ax.bar_label(bars, fmt="%.2f", size=8)
    ax.invert_yaxis()
    ax.margins(x=0.12)  # room for the value labels
    ax.set(xlabel="threshold (z)", title="thresholds per evidence component")
    return fig
