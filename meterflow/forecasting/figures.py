"""Figures of the forecasting step (matplotlib ``Figure`` objects, no pyplot global state)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from meterflow.nets.training import TrainingHistory


def training_curves(histories: dict[str, TrainingHistory]) -> Figure:
    """Training and validation loss (scaled units) per epoch of each network, one panel each,
    the kept epoch marked."""
    fig = Figure(figsize=(7, 3.2 * max(1, len(histories))), layout="constrained")
    axes = fig.subplots(max(1, len(histories)), 1, squeeze=False)[:, 0]
    for ax, (name, history) in zip(axes, histories.items(), strict=False):
        epochs = range(1, len(history.train_loss) + 1)
        ax.plot(epochs, history.train_loss, marker="o", label="train")
        ax.plot(epochs, history.val_loss, marker="o", label="validation")
        if history.best_epoch:
            ax.axvline(history.best_epoch, color="grey", ls="--", label="kept epoch")
        ax.set(title=f"{name}: loss per epoch", xlabel="epoch", ylabel="loss (scaled)")
        ax.legend()
    return fig


def prediction_plot(
    predictions: pd.DataFrame, model: str, n_meters: int = 3, n_points: int = 7 * 24
) -> Figure:
    """Actual vs the model (with its interval) vs the seasonal baselines over the first test
    days of a few series (day-ahead forecasts made at the end of each day); a gap in the
    actuals is a gap in the lines."""
    meters = list(pd.unique(predictions["meter_id"]))[:n_meters]
    fig = Figure(figsize=(11, 2.8 * max(1, len(meters))), layout="constrained")
    axes = fig.subplots(max(1, len(meters)), 1, squeeze=False)[:, 0]
    for ax, meter in zip(axes, meters, strict=False):
        part = predictions.loc[predictions["meter_id"] == meter].head(n_points)
        part = _with_gaps(part)
        ax.plot(part["timestamp"], part["actual"], color="black", lw=1.5, label="actual")
        ax.plot(part["timestamp"], part["prediction"], lw=1.2, label=model)
        if {"q10", "q90"} <= set(part.columns):
            ax.fill_between(
                part["timestamp"], part["q10"], part["q90"], alpha=0.25, label=f"{model} 10-90 %"
            )
        for name in ("seasonal_naive_week", "dshw"):
            if name in part and name != model:
                ax.plot(part["timestamp"], part[name], lw=0.8, alpha=0.6, label=name)
        ax.set(title=f"series {meter}", ylabel="per slot")
        ax.legend(loc="upper right", fontsize="small")
    return fig


def _with_gaps(part: pd.DataFrame) -> pd.DataFrame:
    """``part`` with a NaN row inserted where consecutive timestamps are more than one usual
    step apart, so that lines break there instead of joining across the gap."""
    stamps = pd.to_datetime(part["timestamp"]).reset_index(drop=True)
    if len(stamps) < 3:
        return part
    step = stamps.diff().median()
    jumps = np.flatnonzero((stamps.diff() > step).to_numpy())
    if len(jumps) == 0:
        return part
    gaps = pd.DataFrame({"timestamp": (stamps.iloc[jumps] - step / 2).to_numpy()})
    return pd.concat([part, gaps]).sort_values("timestamp", kind="stable")


def error_by_step(by_step: pd.DataFrame, model: str, metric: str = "mae") -> Figure:
    """Test error per target step (slots ahead) of the model and each candidate."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for name, part in by_step.groupby("model", sort=False):
        style = {"lw": 2.2, "color": "black"} if name == model else {"lw": 1.0, "alpha": 0.8}
        marker = "." if len(part) < 60 else None
        ax.plot(part["step"], part[metric], marker=marker, label=name, **style)
    ax.set(
        title=f"test {metric.upper()} by steps ahead ({model} in black)",
        xlabel="steps ahead (slots)",
        ylabel=metric.upper() + (" (%)" if "ape" in metric else " (per slot)"),
    )
    ax.legend(fontsize="small")
    return fig


def candidate_scores(scores: pd.DataFrame) -> Figure:
    """Validation and test MAE of every candidate side by side, the kept model marked."""
    fig = Figure(figsize=(9, 0.45 * len(scores) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    order = scores.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(order))
    ax.barh(y + 0.2, order["val_mae"], height=0.4, label="validation MAE (chooses)")
    ax.barh(y - 0.2, order["test_mae"], height=0.4, label="test MAE (reports)")
    labels = [
        f"{c}  (kept)" if k else c for c, k in zip(order["candidate"], order["kept"], strict=True)
    ]
    ax.set_yticks(y, labels)
    ax.set(title="candidates: chosen on validation, scored on test", xlabel="MAE (per slot)")
    ax.legend(fontsize="small", loc="lower right")
    return fig


def group_scores(groups: pd.DataFrame) -> Figure:
    """Test MAE of each group's (cluster's) model beside its best baseline's."""
    fig = Figure(figsize=(9, 0.45 * len(groups) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    order = groups.iloc[::-1].reset_index(drop=True)
    y = np.arange(len(order))
    ax.barh(y + 0.2, order["test_mae"], height=0.4, label="model test MAE")
    ax.barh(y - 0.2, order["best_baseline_test_mae"], height=0.4, label="best baseline test MAE")
    labels = [f"{g}  ({m})" for g, m in zip(order["group"], order["model"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set(title="each cluster's model against its best baseline", xlabel="MAE (per slot)")
    ax.legend(fontsize="small", loc="lower right")
    return fig
