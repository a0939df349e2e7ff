"""The forecasting step's tables and its one-line verdict, from the evaluation's results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.forecasting.combine import COMBINATION, Choice
from meterflow.forecasting.inputs import ForecastInputs
from meterflow.forecasting.metrics import StepErrors
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import FleetSeries


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
    errors: dict[str, StepErrors], choice: Choice, baselines: set[str]
) -> pd.DataFrame:
    """One row per candidate (and the combination): role, weight in the kept model, validation
    and test errors."""
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
                "val_mae": choice.val_mae.get(name, np.nan),
                "test_mae": test.get("mae", np.nan),
                "test_mape": test.get("mape", np.nan),
                "test_rmse": test.get("rmse", np.nan),
                "test_coverage": test.get("coverage", np.nan),
            }
        )
    table = pd.DataFrame(rows)
    return table.sort_values(["kept", "val_mae"], ascending=[False, True], ignore_index=True)


def verdict_of(
    model: str,
    metrics: dict[str, float],
    best: str,
    beaten_by: tuple[str, ...],
    baselines: tuple[str, ...],
) -> str:
    """One line: the kept model's test error against the best baseline, and any baseline that
    beats it."""
    mae, base_mae = metrics["test_mae"], metrics[f"baseline_{best}_mae"]
    mape = metrics.get("test_mape", np.nan)
    head = f"{model}: test MAE {mae:.4g} (MAPE {mape:.3g} %)"
    if model in baselines and not beaten_by:
        others = [b for b in baselines if b != model and f"baseline_{b}_mae" in metrics]
        runner = min(others, key=lambda b: metrics[f"baseline_{b}_mae"])
        return (
            f"{head}: the model is the baseline {model} itself (no candidate beat it on "
            f"validation); the next baseline on test is {runner} (MAE "
            f"{metrics[f'baseline_{runner}_mae']:.4g})"
        )
    if beaten_by:
        names = ", ".join(beaten_by)
        return (
            f"{head} LOSES to the baseline(s) {names} on test (best: {best}, MAE "
            f"{base_mae:.4g}, skill {metrics['skill_vs_best_baseline']:+.3f})"
        )
    return (
        f"{head} beats every baseline on test (best: {best}, MAE {base_mae:.4g}, skill "
        f"{metrics['skill_vs_best_baseline']:+.3f})"
    )
