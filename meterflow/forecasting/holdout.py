"""Held-out forecasts for the Model Registry, in the served model's own input format.

Promotion scores the registry's champion and a new model on exactly the same rows: raw readings
(``meter_id, forecast_id, timestamp, value``; the extra inputs where the model has some) of a
sample of test origins stratified across series and test days, each with ``CONTEXT_DAYS`` of
history, and the actual values after each origin in a second table (``forecast_id,
target_time, actual``) the models never see.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.forecasting.inputs import ForecastInputs
from meterflow.forecasting.settings import ForecastSettings
from meterflow.series.fleet import FleetSeries

HOLDOUT_ORIGINS = 400  # forecasts held out, at most
CONTEXT_DAYS = 28  # days of history given with each (a served model needs at least 8)


def stratified_origins(fleet: FleetSeries, test: ForecastInputs, cap: int) -> np.ndarray:
    """At most ``cap`` test origins spread over the series and, within each series, evenly over
    its test days (forecasts made at the end of a day where there are such), with each series'
    days offset so that together they cover the test period."""
    origin = test.origin
    end_of_day = fleet.time_idx[origin] % fleet.slots_per_day == fleet.slots_per_day - 1
    if end_of_day.any():
        origin = origin[end_of_day]
    series = fleet.meter_idx[origin]
    chosen_series = np.unique(series)
    if len(chosen_series) > cap:
        chosen_series = chosen_series[np.linspace(0, len(chosen_series) - 1, cap).astype(int)]
    picked = []
    for rank, s in enumerate(chosen_series):
        mine = origin[series == s]
        share = cap // len(chosen_series) + (rank < cap % len(chosen_series))
        if len(mine) <= share:
            picked.append(mine)
            continue
        stride = len(mine) / share
        offset = (rank * 0.618 % 1.0) * stride  # golden-ratio offsets spread the series' days
        picked.append(mine[(offset + stride * np.arange(share)).astype(int)])
    return np.sort(np.concatenate(picked))[:cap] if picked else origin[:0]


def history_rows(
    fleet: FleetSeries, origin: np.ndarray, cfg: ForecastSettings, context_slots: int
) -> pd.DataFrame:
    """Raw input rows of forecasts made at ``origin``: the readings of the ``context_slots``
    slots up to each origin (and, for a model with extra inputs, rows at the target times with
    those inputs and no value), with a ``forecast_id`` per origin."""
    parts = []
    for o in origin:
        lo, _ = fleet.series_span(int(fleet.meter_idx[o]))
        t = fleet.time_idx[o]
        start = lo + int(np.searchsorted(fleet.time_idx[lo : o + 1], t - context_slots + 1))
        end = o + 1 + (len(cfg.steps) if cfg.exog else 0)
        pos = np.arange(start, end)
        meter = str(fleet.series_meters[fleet.meter_idx[o]])
        stamp = pd.Timestamp(fleet.timestamps(np.array([o]))[0])
        part = pd.DataFrame(
            {
                "meter_id": meter,
                "forecast_id": f"{meter}@{stamp:%Y-%m-%dT%H:%M}",
                "timestamp": fleet.timestamps(pos),
                "value": np.where(pos <= o, fleet.values[pos], np.nan),
            }
        )
        for j, name in enumerate(cfg.exog):
            part[name] = fleet.exog[pos, j]
        parts.append(part)
    columns = ["meter_id", "forecast_id", "timestamp", "value", *cfg.exog]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def holdout_tables(
    fleet: FleetSeries, test: ForecastInputs, cfg: ForecastSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(holdout, truth)``: the held-out forecasts' input rows and their actual targets."""
    origin = stratified_origins(fleet, test, HOLDOUT_ORIGINS)
    rows = history_rows(fleet, origin, cfg, CONTEXT_DAYS * fleet.slots_per_day)
    target = origin[:, None] + cfg.steps[None, :]
    ids = rows.drop_duplicates("forecast_id")["forecast_id"].to_numpy()
    truth = pd.DataFrame(
        {
            "forecast_id": np.repeat(ids, len(cfg.steps)),
            "meter_id": np.repeat(
                fleet.series_meters[fleet.meter_idx[origin]].astype(str), len(cfg.steps)
            ),
            "target_time": fleet.timestamps(target.ravel()),
            "actual": fleet.values[target.ravel()],
        }
    )
    return rows, truth


def example_rows(
    fleet: FleetSeries, test: ForecastInputs, cfg: ForecastSettings, days: int
) -> pd.DataFrame:
    """A served model's input example: ``days`` of history of the last test origin of up to two
    series (without ``forecast_id``)."""
    last = np.full(len(fleet.meter_ids), -1, dtype=np.int64)
    np.maximum.at(last, test.series, test.origin)
    origin = last[last >= 0][:2]
    rows = history_rows(fleet, origin, cfg, days * fleet.slots_per_day)
    return rows.drop(columns="forecast_id")


def holdout_mae(output: pd.DataFrame, truth: pd.DataFrame | None) -> float:
    """MAE of the held-out forecasts (``output``: the model's ``predict`` of the holdout rows,
    ``forecast_id, target_time, prediction``) against ``truth`` (``forecast_id, target_time,
    actual``); NaN unless every held-out target has a finite forecast."""
    keys = ["forecast_id", "target_time"]
    if truth is None or not set(keys) <= set(getattr(output, "columns", ())):
        return float("nan")
    forecasts = output[[*keys, "prediction"]].assign(
        target_time=pd.to_datetime(output["target_time"]).astype("datetime64[ns]")
    )
    wanted = truth.assign(target_time=pd.to_datetime(truth["target_time"]).astype("datetime64[ns]"))
    joined = wanted.merge(forecasts, on=keys, how="left")
    error = (joined["prediction"] - joined["actual"]).to_numpy(dtype=float)
    return float(np.mean(np.abs(error))) if np.isfinite(error).all() and len(error) else np.nan
