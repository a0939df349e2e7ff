"""``ForecastPredictor``: a picklable forecaster that carries its settings, per-meter scalers,
spatial layout (hybrid) and weights, and predicts from a table of windows.

Input table (one row per forecast):

- ``meter_id`` (str);
- ``lag_00`` ... ``lag_{seq_length-1}``: readings in Wh per slot, OLDEST FIRST: ``lag_j`` is the
  reading ``seq_length - 1 - j`` slots before the window end, the last column is the reading at
  the window end. Leading NaN mark missing history (pre-padding); at least ``min_history``
  trailing readings are needed, and no NaN may follow a reading;
- ``window_end`` (naive local timestamp, start of the slot of the last reading): needed when the
  model uses time features (default) or is the hybrid. The targets are ``window_end + k``
  slots for each step ``k`` (1..horizon, or only horizon with ``output=last``);
- ``day_h01``..., ``week_h01``... and ``mean7_h01``... per step: the reading (Wh) at the same
  slot one day / one week before the target, the latest known at the window end (a day back
  for steps within the day, two for the next day...), and that slot's mean over the last seven
  known days; where unknown, the week's falls back to the day's and the day's to the window's
  last reading;
- per exogenous input ``x``: ``x_lag_00``... (aligned with the lags) and ``x_h01``... (its
  value at each target, e.g. a temperature forecast); NaN = unknown.
- hybrid only: the neighbours' recent load is read from the OTHER rows of the same table that
  have the same ``window_end`` (score the fleet's windows of one instant together); a meter
  whose neighbours are absent gets an empty grid.

Output: a DataFrame on the input's index (repeated once per step when there are several, with
``meter_id`` and ``step``) with ``prediction`` (Wh per slot, the median when quantiles are
predicted), one column per quantile (``q10``, ``q50``, ``q90``, increasing) and, when
``window_end`` is given, ``target_time``. Meters unknown to the scaler are scaled by their own
window's mean and spread (logged).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError
from meterflow.forecasting.calibration import apply_scales
from meterflow.forecasting.features import decoder_inputs
from meterflow.forecasting.hybrid import (
    SpatialLayout,
    build_hybrid,
    grids_from_recent,
    recent_from_batch,
)
from meterflow.forecasting.lstm import Decoder, build_lstm
from meterflow.forecasting.series import SCALE_FLOOR_WH, MeterScaler, calendar_index
from meterflow.forecasting.settings import SEASONAL, ForecastSettings
from meterflow.forecasting.static import NONE as NO_STATIC
from meterflow.forecasting.static import StaticFeatures
from meterflow.forecasting.training import predict_batches, prepare_keras
from meterflow.forecasting.windows import model_inputs
from meterflow.schemas import MINUTES_PER_DAY

log = logging.getLogger(__name__)


def lag_columns(seq_length: int, prefix: str = "") -> list[str]:
    """``lag_00`` ... oldest first (``<prefix>lag_00`` for an exogenous input's lags)."""
    width = max(2, len(str(seq_length - 1)))
    return [f"{prefix}lag_{j:0{width}d}" for j in range(seq_length)]


# What a predictor pickled before these settings existed was trained to do: one point forecast
# ``horizon`` slots ahead from the window alone.
LEGACY_SETTINGS: dict[str, object] = {
    "output": "last",
    "quantiles": (),
    "seasonal_inputs": False,
    "exog": (),
    "meter_features": False,
    "static": (),
    "origin_hour": -1,
}


def step_columns(prefix: str, steps: np.ndarray) -> list[str]:
    """``<prefix>h01`` ... one column per target step."""
    width = max(2, len(str(int(max(steps)))))
    return [f"{prefix}h{int(k):0{width}d}" for k in steps]


def quantile_columns(quantiles: tuple[float, ...]) -> list[str]:
    """``q10``, ``q50``, ``q90``... one output column per quantile."""
    return [f"q{round(100 * q):02d}" for q in quantiles]


def build_network(settings: ForecastSettings) -> Any:
    """A fresh (untrained) Keras network for ``settings``."""
    shape = (settings.seq_length, settings.n_features, settings.units, settings.dropout)
    decoder = None
    if settings.uses_decoder:
        decoder = Decoder(len(settings.steps), settings.n_future, settings.n_quantiles)
    if settings.model == "hybrid":
        return build_hybrid(
            *shape,
            grid_size=settings.grid_size,
            grid_channels=settings.spatial_lags + 1,
            decoder=decoder,
        )
    return build_lstm(*shape, decoder=decoder)


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
        static: StaticFeatures = NO_STATIC,
        interval_scale: np.ndarray | None = None,
    ):
        if settings.model == "hybrid" and layout is None:
            raise ValueError("the hybrid predictor needs a spatial layout")
        self.settings = settings
        self.scaler = scaler
        self.weights = [np.asarray(w) for w in weights]
        self.resolution_min = resolution_min
        self.layout = layout
        self.example = example
        self.static = static
        self.interval_scale = interval_scale  # per step, from validation (calibration module)
        self._net: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_net"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle, giving a predictor pickled before a setting existed the behaviour it was
        trained with (``LEGACY_SETTINGS``), never a newer default."""
        settings, scaler = state["settings"], state["scaler"]
        for name, value in LEGACY_SETTINGS.items():
            if name not in settings.__dict__:
                object.__setattr__(settings, name, value)
        for name, value in (("exog_mean", np.zeros(0)), ("exog_scale", np.ones(0))):
            if name not in scaler.__dict__:
                object.__setattr__(scaler, name, value)
        state.setdefault("static", NO_STATIC)
        state.setdefault("interval_scale", None)
        self.__dict__.update(state)

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
        cfg = self.settings
        inputs, mean, scale, ends = self.network_inputs(df)
        raw = predict_batches(self.network, inputs).astype(np.float64)
        raw = raw.reshape(len(df), len(cfg.steps), cfg.n_quantiles)
        wh = np.sort(raw * scale[:, None, None] + mean[:, None, None], axis=-1)
        if self.interval_scale is not None:
            wh = apply_scales(wh, self.interval_scale, cfg.point_quantile)
        n_steps = len(cfg.steps)
        out = pd.DataFrame(index=df.index.repeat(n_steps))
        if n_steps > 1:
            out["meter_id"] = df["meter_id"].astype(str).to_numpy().repeat(n_steps)
            out["step"] = np.tile(cfg.steps, len(df))
        out["prediction"] = wh[..., cfg.point_quantile].ravel()
        for j, name in enumerate(quantile_columns(cfg.quantiles)):
            out[name] = wh[..., j].ravel()
        if ends is not None:
            step = np.timedelta64(self.resolution_min, "m")
            out["target_time"] = (ends[:, None] + cfg.steps[None, :] * step).ravel()
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
        x = model_inputs(x, last_index, cfg.horizon, self.slots_per_day, cfg.time_features)
        exog_lags = [
            self._exog(df, j, lag_columns(cfg.seq_length, f"{e}_")) for j, e in enumerate(cfg.exog)
        ]
        inputs = [np.concatenate([x, *(e[..., None] for e in exog_lags)], axis=-1)]
        if cfg.model == "hybrid":
            assert self.layout is not None and ends is not None
            targets = self.layout.index_of(meter_ids)
            groups = pd.factorize(ends)[0].astype(np.int64)
            recent = recent_from_batch(self.layout, targets, groups, scaled, cfg.spatial_lags)
            inputs.append(grids_from_recent(self.layout, targets, recent))
        if cfg.uses_decoder:
            inputs.append(self._decoder(df, mean, scale, last_index))
        return inputs, mean, scale, ends

    def _decoder(
        self, df: pd.DataFrame, mean: np.ndarray, scale: np.ndarray, origin: np.ndarray | None
    ) -> np.ndarray:
        """The decoder input of the rows of ``df`` (seasonal lags, calendar, exogenous)."""
        cfg = self.settings
        n, steps = len(df), cfg.steps
        seasonal = None
        if cfg.seasonal_inputs:
            wh = np.stack(
                [self._numeric(df, step_columns(f"{p}_", steps), allow_nan=False) for p in SEASONAL]
            )
            seasonal = (wh - mean[:, None]) / scale[:, None]
        exog = [self._exog(df, j, step_columns(f"{e}_", steps)) for j, e in enumerate(cfg.exog)]
        exog_at = np.stack(exog, axis=-1) if exog else np.zeros((n, len(steps), 0))
        static = self.static.lookup(df["meter_id"].astype(str).to_numpy(dtype=object))
        return decoder_inputs(
            *(seasonal, np.zeros(n) if origin is None else origin, exog_at),
            static,
            *(steps, cfg.horizon, self.slots_per_day),
            calendar=cfg.time_features,
        )

    def _exog(self, df: pd.DataFrame, j: int, columns: list[str]) -> np.ndarray:
        """Standardised values of exogenous input ``j`` in ``columns`` (its lags or steps)."""
        raw = self._numeric(df, columns, allow_nan=True)
        return np.nan_to_num((raw - self.scaler.exog_mean[j]) / self.scaler.exog_scale[j])

    @staticmethod
    def _numeric(df: pd.DataFrame, columns: list[str], allow_nan: bool) -> np.ndarray:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise SchemaError(f"forecast input lacks column(s) {missing[:5]}")
        try:
            values = df[columns].to_numpy(dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"forecast input: columns {columns[0]}... must be numeric") from exc
        if not allow_nan and not np.isfinite(values).all():
            i, j = np.argwhere(~np.isfinite(values))[0]
            raise SchemaError(
                f"forecast input row {df.index[i]!r} (meter={df['meter_id'].iloc[i]}): "
                f"{columns[j]} is missing"
            )
        return values

    def row_scaling(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Mean and scale (Wh per slot) used for each row of ``df``."""
        meter_ids = df["meter_id"].astype(str).to_numpy(dtype=object)
        return self._scaling(meter_ids, self._read_windows(df))

    def _read_windows(self, df: pd.DataFrame) -> np.ndarray:
        keys = ["meter_id", "window_end"] if self.needs_window_end else ["meter_id"]
        missing = [c for c in keys if c not in df.columns]
        if missing:
            raise SchemaError(f"forecast input lacks column(s) {missing}")
        windows = self._numeric(df, self.lag_columns, allow_nan=True)
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
