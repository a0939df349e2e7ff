"""``ForecastPredictor``: a picklable forecaster that carries its settings, per-meter scalers,
spatial layout (hybrid) and weights, and predicts from a table of windows.

Input table (one row per forecast):

- ``meter_id`` (str);
- ``lag_00`` ... ``lag_{seq_length-1}``: readings in Wh per slot, OLDEST FIRST: ``lag_j`` is the
  reading ``seq_length - 1 - j`` slots before the window end, the last column is the reading at
  the window end. Leading NaN mark missing history (pre-padding); at least ``min_history``
  trailing readings are needed, and no NaN may follow a reading;
- ``window_end`` (naive local timestamp, start of the slot of the last reading): needed when the
  model uses time features (default) or is the hybrid. The forecast is for
  ``window_end + horizon`` slots.
- hybrid only: the neighbours' recent load is read from the OTHER rows of the same table that
  have the same ``window_end`` (score the fleet's windows of one instant together); a meter
  whose neighbours are absent gets an empty grid.

Output: a DataFrame on the input's index with ``prediction`` (Wh per slot) and, when
``window_end`` is given, ``target_time``. Meters unknown to the scaler are scaled by their own
window's mean and spread (logged).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.hybrid import (
    SpatialLayout,
    build_hybrid,
    grids_from_recent,
    recent_from_batch,
)
from meterflow.forecasting.lstm import build_lstm
from meterflow.forecasting.series import SCALE_FLOOR_WH, MeterScaler, calendar_index
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.training import predict_batches, prepare_keras
from meterflow.forecasting.windows import model_inputs
from meterflow.schemas import MINUTES_PER_DAY

log = logging.getLogger(__name__)


def lag_columns(seq_length: int) -> list[str]:
    """``lag_00`` ... oldest first."""
    width = max(2, len(str(seq_length - 1)))
    return [f"lag_{j:0{width}d}" for j in range(seq_length)]


def build_network(settings: ForecastSettings) -> Any:
    """A fresh (untrained) Keras network for ``settings``."""
    shape = (settings.seq_length, settings.n_features, settings.units, settings.dropout)
    if settings.model == "hybrid":
        return build_hybrid(
            *shape, grid_size=settings.grid_size, grid_channels=settings.spatial_lags + 1
        )
    return build_lstm(*shape)


class ForecastPredictor:
    """Trained forecaster; ``predict(df)`` returns Wh. Pickles without Keras objects (weights
    are stored as numpy arrays and the network is rebuilt on first use)."""

    def __init__(
        self,
        settings: ForecastSettings,
        scaler: MeterScaler,
        weights: list[np.ndarray],
        resolution_min: int,
        layout: SpatialLayout | None = None,
        example: pd.DataFrame | None = None,
    ):
        if settings.model == "hybrid" and layout is None:
            raise ValueError("the hybrid predictor needs a spatial layout")
        self.settings = settings
        self.scaler = scaler
        self.weights = [np.asarray(w) for w in weights]
        self.resolution_min = resolution_min
        self.layout = layout
        self.example = example
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    @property
    def lag_columns(self) -> list[str]:
        return lag_columns(self.settings.seq_length)

    @property
    def slots_per_day(self) -> int:
        return MINUTES_PER_DAY // self.resolution_min

    @property
    def needs_window_end(self) -> bool:
        return self.settings.time_features or self.settings.model == "hybrid"

    @property
    def network(self) -> Any:
        """The Keras network with the trained weights (built once per process)."""
        if self._net is None:
            prepare_keras(self.settings.threads, self.settings.seed)
            net = build_network(self.settings)
            net.set_weights(self.weights)
            self._net = net
        return self._net

    def input_example(self) -> pd.DataFrame:
        """A few real input rows from the training run (for signatures and smoke tests)."""
        if self.example is None:
            raise ValueError("this predictor was built without an input example")
        return self.example.copy()

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Forecasts in Wh per slot for the windows in ``df`` (see the module docstring)."""
        inputs, mean, scale, ends = self.network_inputs(df)
        pred = predict_batches(self.network, inputs).astype(np.float64)
        out = pd.DataFrame({"prediction": pred * scale + mean}, index=df.index)
        if ends is not None:
            step = np.timedelta64(self.resolution_min * self.settings.horizon, "m")
            out["target_time"] = ends + step
        return out

    def network_example(self) -> list[np.ndarray]:
        """The Keras network's inputs for the input example (for its logged signature)."""
        return self.network_inputs(self.input_example())[0]

    def network_inputs(
        self, df: pd.DataFrame
    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray | None]:
        """Network inputs of the rows of ``df``, their scaling (mean, scale) and window ends."""
        windows_wh = self._read_windows(df)
        meter_ids = df["meter_id"].astype(str).to_numpy(dtype=object)
        mean, scale = self._scaling(meter_ids, windows_wh)
        scaled = (windows_wh - mean[:, None]) / scale[:, None]
        last_index, ends = None, None
        if self.needs_window_end:
            ends = self._window_ends(df)
            last_index = calendar_index(ends, self.resolution_min)
        cfg = self.settings
        x = np.nan_to_num(scaled, nan=0.0)
        inputs = [model_inputs(x, last_index, cfg.horizon, self.slots_per_day, cfg.time_features)]
        if cfg.model == "hybrid":
            assert self.layout is not None and ends is not None
            targets = self.layout.index_of(meter_ids)
            groups = pd.factorize(ends)[0].astype(np.int64)
            recent = recent_from_batch(self.layout, targets, groups, scaled, cfg.spatial_lags)
            inputs.append(grids_from_recent(self.layout, targets, recent))
        return inputs, mean, scale, ends

    def row_scaling(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale (Wh per slot) used for each row of ``df``."""
        meter_ids = df["meter_id"].astype(str).to_numpy(dtype=object)
        return self._scaling(meter_ids, self._read_windows(df))

    def _read_windows(self, df: pd.DataFrame) -> np.ndarray:
        cols = self.lag_columns
        missing = [c for c in ["meter_id", *cols] if c not in df.columns]
        if self.needs_window_end and "window_end" not in df.columns:
            missing.append("window_end")
        if missing:
            raise SchemaError(f"forecast input lacks column(s) {missing[:5]}")
        try:
            windows = df[cols].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"forecast input: lag columns must be numeric ({exc})") from exc
        finite = np.isfinite(windows)
        n_real = finite.sum(axis=1)
        # real readings must be a trailing block: no NaN after the first reading
        bad = (np.cumsum(finite, axis=1) > 0) & ~finite
        short = n_real < self.settings.min_history
        for mask, what in (
            (bad.any(axis=1), "has a missing reading after the first one (only leading NaN)"),
            (short, f"has fewer than min_history={self.settings.min_history} readings"),
        ):
            if mask.any():
                i = int(np.flatnonzero(mask)[0])
                raise SchemaError(
                    f"forecast input row {df.index[i]!r} (meter={df['meter_id'].iloc[i]}) {what}"
                )
        return windows

    def _window_ends(self, df: pd.DataFrame) -> np.ndarray:
        ends = pd.to_datetime(df["window_end"])
        if isinstance(ends.dtype, pd.DatetimeTZDtype):
            raise SchemaError("forecast input: window_end must be naive local time, not tz-aware")
        if ends.isna().any():
            i = int(np.flatnonzero(ends.isna().to_numpy())[0])
            raise SchemaError(f"forecast input row {df.index[i]!r}: window_end is missing")
        return ends.to_numpy(dtype="datetime64[ns]")

    def _scaling(self, meter_ids: np.ndarray, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = self.scaler.index_of(meter_ids)
        mean = np.where(idx >= 0, self.scaler.mean[np.maximum(idx, 0)], np.nan)
        scale = np.where(idx >= 0, self.scaler.scale[np.maximum(idx, 0)], np.nan)
        unknown = ~np.isfinite(mean) | ~np.isfinite(scale)
        if unknown.any():
            log.warning(
                "forecast: %d row(s) of meters without a training scaler (e.g. %s) are scaled "
                "by their own window",
                int(unknown.sum()),
                meter_ids[unknown][:3].tolist(),
            )
            own = windows[unknown]
            mean[unknown] = np.nanmean(own, axis=1)
            scale[unknown] = np.maximum(np.nanstd(own, axis=1), SCALE_FLOOR_WH)
        return mean, scale
