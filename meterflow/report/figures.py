"""The report's figures, drawn from the tables the steps logged (so a renamed figure of a step
never leaves a hole in the report): step durations, quarantine reasons, cluster centroids,
forecast errors against the baselines and over the horizon.

Each returns a matplotlib ``Figure`` (not attached to pyplot: no global state); ``png`` turns
one into bytes in memory.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.orchestration.story import FAILED, REUSED, StepOutcome

STATUS_COLOURS = {"run": "#0969da", REUSED: "#8c959f", FAILED: "#cf222e"}
DPI = 100


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def durations_figure(outcomes: Sequence[StepOutcome]) -> Figure:
    """This night's seconds per step, coloured by run / reused / failed."""
    fig = Figure(figsize=(7, 0.45 * len(outcomes) + 1.2))
    ax = fig.subplots()
    names = [o.step for o in outcomes][::-1]
    took = [o.duration_s for o in outcomes][::-1]
    colours = [STATUS_COLOURS.get(o.status, "#0969da") for o in outcomes][::-1]
    ax.barh(names, took, color=colours)
    for y, o in enumerate(list(outcomes)[::-1]):
        ax.text(o.duration_s, y, f" {o.status}", va="center", fontsize=8)
    ax.set_xlabel("seconds this night")
    ax.set_title("Step durations (grey: reused, red: failed)")
    ax.margins(x=0.15)
    return fig


def reasons_figure(reasons: pd.DataFrame) -> Figure:
    """Readings quarantined per reason (``reason``, ``count``), largest first."""
    top = reasons.sort_values("count")
    fig = Figure(figsize=(7, 0.35 * len(top) + 1.2))
    ax = fig.subplots()
    ax.barh(top["reason"].astype(str), top["count"], color="#9a6700")
    ax.set_xlabel("readings")
    ax.set_title("Top reasons readings were quarantined (all sources)")
    return fig


def centroids_figure(centers: pd.DataFrame, names: Mapping[int, str]) -> Figure:
    """Each cluster's centroid over the day (``cluster``, ``slot_*``)."""
    slots = sorted((c for c in centers.columns if str(c).startswith("slot_")), key=_slot)
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    hours = np.arange(len(slots)) * 24 / max(1, len(slots))
    for _, row in centers.iterrows():
        cluster = int(row["cluster"])
        label = names.get(cluster, f"cluster {cluster}")
        ax.plot(hours, row[slots].to_numpy(dtype=float), label=label)
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("normalised energy")
    ax.set_title("Cluster centroids")
    ax.legend(fontsize=8)
    return fig


def _slot(column: str) -> int:
    return int(str(column).removeprefix("slot_"))


def forecast_figure(errors: pd.DataFrame) -> Figure:
    """Test MAE per candidate (``candidate``, ``role``, ``test_mae``, ``kept``), the kept model
    in blue, the baselines in grey."""
    rows = errors.sort_values("test_mae", ascending=False)
    fig = Figure(figsize=(7, 0.4 * len(rows) + 1.2))
    ax = fig.subplots()
    colours = [
        "#0969da" if kept else ("#8c959f" if role == "baseline" else "#54aeff")
        for kept, role in zip(rows["kept"], rows["role"], strict=True)
    ]
    ax.barh(rows["candidate"].astype(str), rows["test_mae"], color=colours)
    ax.set_xlabel("test MAE (Wh)")
    ax.set_title("Forecast error: the kept model (blue) against the baselines (grey)")
    return fig


def horizon_figure(by_step: pd.DataFrame) -> Figure:
    """MAE over the forecast horizon per model (``model``, ``step``, ``mae``)."""
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    for model, part in by_step.groupby("model", sort=True):
        part = part.sort_values("step")
        ax.plot(part["step"], part["mae"], label=str(model))
    ax.set_xlabel("steps ahead")
    ax.set_ylabel("MAE (Wh)")
    ax.set_title("Forecast error over the horizon")
    ax.legend(fontsize=7, ncol=2)
    return fig
