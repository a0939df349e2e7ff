"""``BaselinePredictor``: the forecasting step's baselines as one loadable model.

It takes the same input rows as ``ForecastPredictor`` (``meter_id``, ``window_end``, the lags and
the ``day_h..`` / ``week_h..`` / ``mean7_h..`` seasonal columns) and returns, on the same
(repeated) index, one column per baseline: ``persistence``, ``seasonal_naive_day``,
``seasonal_naive_week``, ``seasonal_mean_7d``, ``linear`` and ``climatology`` (Wh per slot).
The double-seasonal Holt-Winters models, which need a series' history rather than one row,
are kept per series in ``dshw`` (``dshw[meter_id].forecasts(values, origins, horizon)`` on the
series' regular grid, see ``meterflow.forecasting.dshw``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.baselines import LinearSteps, linear_inputs
from meterflow.forecasting.predictor import lag_columns, step_columns
from meterflow.forecasting.series import MeterScaler, calendar_index
from meterflow.forecasting.settings import SEASONAL, ForecastSettings
from meterflow.schemas import MINUTES_PER_DAY

ROW_BASELINES = (
    "persistence",
    "seasonal_naive_day",
    "seasonal_naive_week",
    "seasonal_mean_7d",
    "linear",
    "climatology",
)


@dataclass
class BaselinePredictor:
    """Baselines fitted on a forecasting run's training split (see the module docstring)."""

    settings: ForecastSettings
    scaler: MeterScaler
    linear: LinearSteps
    climatology: np.ndarray  # (n_series, slots_per_day) Wh, in the scaler's series order
    resolution_min: int
    example: pd.DataFrame
    dshw: dict[str, object] = field(default_factory=dict)

    def input_example(self) -> pd.DataFrame:
        return self.example.copy()

    def forecasts(
        self,
        series: np.ndarray,
        windows_wh: np.ndarray,
        seasonal: np.ndarray,
        origin_index: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Each baseline's ``(n, steps)`` forecasts (Wh) from arrays: the series' index in the
        scaler, the windows (NaN = padding), the ``SEASONAL`` inputs ``(3, n, steps)``, the
        ``calendar_index`` of each origin."""
        cfg = self.settings
        mean, scale = self.scaler.mean[series][:, None], self.scaler.scale[series][:, None]
        scaled = np.nan_to_num((windows_wh - mean) / scale)
        seasonal_scaled = (seasonal - mean) / scale if cfg.seasonal_inputs else None
        features = linear_inputs(scaled, seasonal_scaled, len(cfg.steps))
        spd = MINUTES_PER_DAY // self.resolution_min
        slot = (np.asarray(origin_index)[:, None] + cfg.steps[None, :]) % spd
        day, week, recent = seasonal
        return {
            "persistence": np.broadcast_to(windows_wh[:, -1:], day.shape).copy(),
            "seasonal_naive_day": day,
            "seasonal_naive_week": week,
            "seasonal_mean_7d": recent,
            "linear": self.linear.predict(features) * scale + mean,
            "climatology": self.climatology[series[:, None], slot],
        }

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """One column per baseline (long over steps when there are several)."""
        cfg = self.settings
        series = self.scaler.index_of(df["meter_id"].astype(str))
        if (series < 0).any():
            i = int(np.flatnonzero(series < 0)[0])
            raise SchemaError(f"baselines: row {df.index[i]!r} has an unknown meter_id")
        seasonal = [step_columns(f"{name}_", cfg.steps) for name in SEASONAL]
        needed = lag_columns(cfg.seq_length) + [c for cols in seasonal for c in cols]
        missing = [c for c in [*needed, "window_end"] if c not in df.columns]
        if missing:
            raise SchemaError(f"baseline input lacks column(s) {missing[:5]}")
        ends = pd.to_datetime(df["window_end"]).to_numpy(dtype="datetime64[ns]")
        out = self.forecasts(
            series,
            df[lag_columns(cfg.seq_length)].to_numpy(dtype=np.float64),
            np.stack([df[cols].to_numpy(dtype=np.float64) for cols in seasonal]),
            calendar_index(ends, self.resolution_min),
        )
        n_steps = len(cfg.steps)
        table = pd.DataFrame(index=df.index.repeat(n_steps))
        if n_steps > 1:
            table["step"] = np.tile(cfg.steps, len(df))
        for name, values in out.items():
            table[name] = values.ravel()
        return table
