"""``AnomalyPredictor``: a picklable scorer built on the trained ``ForecastPredictor``.

Input: the forecast predictor's table (``meter_id``, ``window_end``, ``lag_00`` ...; see
``meterflow.forecasting.predictor``) plus ``value``: the actual reading (Wh per slot) at the
forecast's target time (``window_end + horizon`` slots). Output on the input's index:
``predicted`` (Wh), ``residual`` (value - predicted, Wh), ``score`` (normalised absolute
residual, see ``thresholds``) and ``flagged`` (``score >= threshold``). With
``smooth_window > 1`` the score also looks at the trailing rows of the same meter whose target
times are consecutive slots (``combine_scores``), as in training: score a meter's consecutive
windows together.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from meterflow.anomaly.thresholds import ResidualScale, combine_scores
from meterflow.errors import SchemaError
from meterflow.forecasting.predictor import ForecastPredictor


class AnomalyPredictor:
    """Forecast, residual, score and flag for windows with their actual value."""

    def __init__(
        self,
        forecast: ForecastPredictor,
        scale: ResidualScale,
        threshold: float,
        smooth_window: int,
        run_weight: float,
        example: pd.DataFrame | None = None,
    ):
        self.forecast = forecast
        self.scale = scale
        self.threshold = float(threshold)
        self.smooth_window = smooth_window
        self.run_weight = float(run_weight)
        self.example = example

    @property
    def network(self) -> Any:
        """The forecaster's Keras network."""
        return self.forecast.network

    def network_example(self) -> list[np.ndarray]:
        """The Keras network's inputs for the input example."""
        return self.forecast.network_inputs(self.input_example())[0]

    def input_example(self) -> pd.DataFrame:
        """A few real input rows (windows and their actual value) from the training run."""
        if self.example is None:
            raise ValueError("this predictor was built without an input example")
        return self.example.copy()

    def predict(self, df: pd.DataFrame) -> pd.DataFrame:
        """Scores and flags of the rows of ``df`` (see the module docstring)."""
        for col in ("value", "window_end"):
            if col not in df.columns:
                raise SchemaError(f"anomaly input lacks column {col!r}")
        value = pd.to_numeric(df["value"], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(value).all():
            i = int(np.flatnonzero(~np.isfinite(value))[0])
            raise SchemaError(
                f"anomaly input row {df.index[i]!r} (meter={df['meter_id'].iloc[i]}): "
                f"value is missing or not a number"
            )
        forecast = self.forecast.predict(df)
        predicted = forecast["prediction"].to_numpy(dtype=np.float64)
        _, scale = self.forecast.row_scaling(df)
        residual = value - predicted
        idx = self.forecast.scaler.index_of(df["meter_id"].astype(str))
        target = forecast["target_time"].to_numpy(dtype="datetime64[ns]")
        minutes = (target - target.astype("datetime64[D]")) // np.timedelta64(1, "m")
        step = self.forecast.resolution_min
        slot = (minutes // step).astype(np.int64)
        z = self.scale.z(idx, slot, residual / scale)
        codes = pd.factorize(df["meter_id"].astype(str))[0]
        time_idx = (target - target.min()) // np.timedelta64(step, "m")
        order = np.lexsort((time_idx, codes))
        score = np.empty_like(z)
        score[order] = combine_scores(
            codes[order], time_idx[order], z[order], self.smooth_window, self.run_weight
        )
        return pd.DataFrame(
            {
                "predicted": predicted,
                "residual": residual,
                "score": score,
                "flagged": score >= self.threshold,
            },
            index=df.index,
        )
