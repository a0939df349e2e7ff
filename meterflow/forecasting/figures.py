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
    """Actual vs model vs best-known baselines over the first test days of a few meters."""
    meters = list(pd.unique(predictions["meter_id"]))[:n_meters]
    fig = Figure(figsize=(11, 2.8 * max(1, len(meters))), layout="constrained")
    axes = fig.subplots(max(1, len(meters)), 1, squeeze=False)[:, 0]
    for ax, meter in zip(axes, meters, strict=False):
        part = predictions.loc[predictions["meter_id"] == meter].head(n_points)
        ax.plot(part["timestamp"], part["actual"], color="black", lw=1.5, label="actual")
        ax.plot(part["timestamp"], part["prediction"], lw=1.2, label="model")
        for name in ("persistence", "seasonal_naive"):
            if name in part:
                ax.plot(part["timestamp"], part[name], lw=0.8, alpha=0.6, label=name)
        ax.set(title=f"meter {meter}", ylabel="Wh per slot")
        ax.legend(loc="upper right", fontsize="small")
    return fig
