"""Figures of the forecasting step (matplotlib ``Figure`` objects, no pyplot global state)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from meterflow.forecasting.training import TrainingHistory


def training_curves(history: TrainingHistory, model: str) -> Figure:
    """Training and validation MSE (scaled units) per epoch, the kept epoch marked."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    epochs = range(1, len(history.train_loss) + 1)
    ax.plot(epochs, history.train_loss, marker="o", label="train")
    ax.plot(epochs, history.val_loss, marker="o", label="validation")
    if history.best_epoch:
        ax.axvline(history.best_epoch, color="grey", ls="--", label="kept epoch")
    ax.set(title=f"{model}: loss per epoch", xlabel="epoch", ylabel="MSE (scaled)")
    ax.legend()
    return fig


def prediction_plot(predictions: pd.DataFrame, n_meters: int = 3, n_points: int = 7 * 24) -> Figure:
    """Actual vs model (with its interval) vs the seasonal baselines over the first test days of
    a few series (day-ahead forecasts made at the end of each day when multi-step)."""
    meters = list(pd.unique(predictions["meter_id"]))[:n_meters]
    fig = Figure(figsize=(11, 2.8 * max(1, len(meters))), layout="constrained")
    axes = fig.subplots(max(1, len(meters)), 1, squeeze=False)[:, 0]
    for ax, meter in zip(axes, meters, strict=False):
        part = predictions.loc[predictions["meter_id"] == meter].head(n_points)
        ax.plot(part["timestamp"], part["actual"], color="black", lw=1.5, label="actual")
        ax.plot(part["timestamp"], part["prediction"], lw=1.2, label="model")
        if {"q10", "q90"} <= set(part.columns):
            ax.fill_between(
                part["timestamp"], part["q10"], part["q90"], alpha=0.25, label="model 10-90 %"
            )
        for name in ("seasonal_naive_week", "dshw"):
            if name in part:
                ax.plot(part["timestamp"], part[name], lw=0.8, alpha=0.6, label=name)
        ax.set(title=f"meter {meter}", ylabel="Wh per slot")
        ax.legend(loc="upper right", fontsize="small")
    return fig


def error_by_step(by_step: pd.DataFrame, metric: str = "mae") -> Figure:
    """Test error per target step (slots ahead) of the model and each baseline."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, (name, part) in enumerate(by_step.groupby("model", sort=False)):
        style = {"lw": 2.2, "color": "black"} if i == 0 else {"lw": 1.0, "alpha": 0.8}
        ax.plot(
            part["step"], part[metric], marker="." if len(part) < 60 else None, label=name, **style
        )
    ax.set(
        title=f"test {metric.upper()} by steps ahead",
        xlabel="steps ahead (slots)",
        ylabel=metric.upper() + (" (%)" if "ape" in metric else " (Wh per slot)"),
    )
    ax.legend(fontsize="small")
    return fig
