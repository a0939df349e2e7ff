"""The forecasting step's tables, from the evaluation's results."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from meterflow.forecasting.combine import COMBINATION, Choice
from meterflow.forecasting.inputs import ForecastInputs
from meterflow.forecasting.metrics import StepErrors, skill
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import FleetSeries

if TYPE_CHECKING:
    from meterflow.nets.training import TrainingHistory

# each candidate's test errors in the candidates table (``test_<name>``; see the metrics module)
TEST_COLUMNS = ("mae", "mape", "rmse", "smape", "wape", "pinball", "coverage", "coverage_nominal")


def quantile_columns(quantiles: tuple[float, ...]) -> list[str]:
    """``q10``, ``q50``, ``q90``... one output column per quantile."""
    return [f"q{round(100 * q):02d}" for q in quantiles]


def prediction_sample(
    fleet: FleetSeries, test: ForecastInputs, cfg: ForecastSettings
) -> np.ndarray:
    """(n,) the test origins of the predictions table: with ``origin_hour`` every one, else the
    forecasts made at the end of each day (the day-ahead of the next day)."""
    if cfg.origin_hour >= 0 or len(cfg.steps) == 1:
        return np.ones(len(test), dtype=bool)
    slot = fleet.time_idx[test.origin] % fleet.slots_per_day
    keep = slot == fleet.slots_per_day - 1
    return keep if keep.any() else slot == slot[0]


def prediction_rows(
    batch: ForecastInputs,
    forecasts: dict[str, np.ndarray],
    model: str,
    keep: np.ndarray,
    cfg: ForecastSettings,
) -> pd.DataFrame:
    """Long rows of the kept origins of a batch: actual, the model's quantiles and each
    candidate's point forecast."""
    fleet, n_steps = batch.fleet, len(cfg.steps)
    sub = batch.subset(np.flatnonzero(keep))
    sel = np.flatnonzero(keep)
    table = pd.DataFrame(
        {
            "meter_id": np.repeat(fleet.series_meters[sub.series].astype(str), n_steps),
            "window_end": np.repeat(fleet.timestamps(sub.origin), n_steps),
            "timestamp": fleet.timestamps(sub.target_pos.ravel()),
            "step": np.tile(cfg.steps, len(sub)),
            "actual": sub.actual.ravel(),
        }
    )
    point = cfg.point_quantile if cfg.quantiles else 0
    table["prediction"] = forecasts[model][sel][..., point].ravel()
    for j, name in enumerate(quantile_columns(cfg.quantiles)):
        table[name] = forecasts[model][sel][..., j].ravel()
    for name, values in forecasts.items():
        if name != COMBINATION:
            table[name] = values[sel][..., point].ravel()
    return table


def candidates_table(
    errors: dict[str, StepErrors],
    choice: Choice,
    baselines: set[str],
    fit_seconds: dict[str, float],
) -> pd.DataFrame:
    """One row per candidate (and the combination): role, weight in the kept model, fit time,
    validation and test errors, and ``model_skill``, the kept model's skill against it
    (``1 - model MAE / its MAE``)."""
    model_mae = errors[choice.name].overall().get("mae", np.nan)
    rows = []
    for name, err in errors.items():
        test = err.overall()
        weight = choice.weights.get(name)
        rows.append(
            {
                "candidate": name,
                "role": "combination"
                if name == COMBINATION
                else ("baseline" if name in baselines else "model"),
                "kept": name == choice.name,
                "weight": float(np.mean(weight)) if weight is not None else 0.0,
                "fit_seconds": fit_seconds.get(name, np.nan),
                "val_mae": choice.val_mae.get(name, np.nan),
                **{f"test_{k}": test.get(k, np.nan) for k in TEST_COLUMNS},
                "model_skill": skill(model_mae, test["mae"]) if "mae" in test else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["kept", "val_mae"], ascending=[False, True], ignore_index=True)


def training_table(histories: dict[str, TrainingHistory]) -> pd.DataFrame:
    """One row per network and epoch: training and validation loss (scaled units), whether it
    is the epoch kept, and the network's training seconds."""
    parts = [
        pd.DataFrame(
            {
                "network": name,
                "epoch": np.arange(1, len(h.train_loss) + 1),
                "train_loss": h.train_loss,
                "val_loss": h.val_loss[: len(h.train_loss)],
                "kept_epoch": np.arange(1, len(h.train_loss) + 1) == h.best_epoch,
                "train_seconds": h.seconds,
            }
        )
        for name, h in histories.items()
    ]
    columns = ["network", "epoch", "train_loss", "val_loss", "kept_epoch", "train_seconds"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
