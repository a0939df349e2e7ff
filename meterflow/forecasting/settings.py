"""Typed settings of the forecasting step (one frozen dataclass, validated on creation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from meterflow import defaults
from meterflow.errors import ConfigError
from meterflow.forecasting.params import ForecastingParams as Declared
from meterflow.forecasting.params import forecast_quantiles
from meterflow.params import column_names, lstm_units

N_TIME_CHANNELS = 5  # calendar channels: sin/cos slot of day, sin/cos position in week, weekend
# seasonal inputs per target step (column prefixes of the predictor's rows): the same slot a day
# and a week before, and its mean over the last RECENT_DAYS days (features module)
SEASONAL = ("day", "week", "mean7")
RECENT_DAYS = 7  # days of the "mean7" seasonal input and of the recent level of a window
MIN_VAL_DAYS = 14  # validation days the model is chosen on, at least (split_dates)

PADDINGS = ("history", "zeros")
OUTPUTS = ("all", "last")
SCALINGS = ("recent", "meter")


@dataclass(frozen=True)
class ForecastSettings:
    """How to split, window, train and evaluate a forecaster.

    Windows follow seed 002 (the IoT LSTM prediction notebook): ``seq_length`` slots of input
    and targets after the last input. ``output="all"`` predicts every slot 1..``horizon`` ahead
    (day-ahead with ``horizon`` = one day of slots); ``output="last"`` only the slot
    ``horizon`` ahead, as the notebook (label index ``i + seq_length + horizon - 1``).
    ``quantiles``: the network predicts these quantiles (pinball loss, 0.5 is the point
    forecast); empty = one point forecast trained on the MSE.
    ``seasonal_inputs``: each target step also sees the same slot one day and one week before
    (the last known ones) and its mean over the last seven days, as decoder inputs.
    ``exog``: names of extra input series (read at the inputs and at the target times, e.g. a
    temperature forecast).
    ``model``: a registered forecaster (``meterflow.forecasting.registry``) or ``auto``: every
    forecaster of ``candidates`` and every baseline is fitted, and the model is the best of them
    on the validation split, or a combination of them learned there (``combine`` module).
    ``scaling``: ``recent`` scales each window by the level and spread of its series' last
    ``recent_days`` days (a change of level between training and test costs little),
    ``meter`` by the series' training mean and spread.
    ``origin_hour``: evaluate forecasts made at this hour only (the first target slot starts
    then); -1 = at every slot. Training always uses every origin.
    ``test_padding``: ``"history"`` fills test windows with real history where the series is
    contiguous (zero pre-padding only after a gap), ``"zeros"`` restarts the history at the
    start of the test split and pre-pads with zeros, as the notebook's streaming validation.
    Predictions begin once ``min_history`` readings are available.
    """

    model: str = Declared.default("model")
    candidates: tuple[str, ...] = column_names(
        Declared.default("candidates")
    )  # beside the baselines, for auto
    scaling: Literal["recent", "meter"] = "recent"
    recent_days: int = RECENT_DAYS
    seq_length: int = Declared.default("seq_length")
    horizon: int = defaults.HORIZON
    output: Literal["all", "last"] = Declared.default("output")
    quantiles: tuple[float, ...] = forecast_quantiles(Declared.default("quantiles"))
    seasonal_inputs: bool = True
    exog: tuple[str, ...] = ()
    meter_features: bool = True  # with a meter table: PV, contractual power, type as inputs
    static: tuple[str, ...] = ()  # the static features in use (set when fitting)
    origin_hour: int = -1
    train_frac: float = 0.7
    val_frac: float = 0.1  # the test split is the rest, the most recent days
    min_val_days: int = MIN_VAL_DAYS
    test_padding: Literal["history", "zeros"] = "history"
    min_history: int = 2
    time_features: bool = True  # calendar of the target (day, week, weekend) as input channels
    units: tuple[int, ...] = lstm_units(
        Declared.default("units")
    )  # LSTM units per layer, first layer first
    dropout: float = 0.1
    learning_rate: float = 3e-3
    batch_size: int = 256  # the largest; small training sets get smaller ones
    min_updates: int = 100  # updates per epoch kept by shrinking the batch (0 = fixed batch)
    epochs: int = Declared.default("epochs")
    # early stopping after `patience` epochs without a validation loss `min_delta` below the
    # best, the learning rate halved after `lr_patience` (see ForecastingParams.epochs)
    patience: int = 3
    min_delta: float = 1e-4
    lr_patience: int = 2
    max_train_windows: int = Declared.default("max_train_windows")
    max_val_windows: int = 5_000
    # hybrid: a grid_size x grid_size grid around each meter holding its n_neighbours nearest
    # meters' last spatial_lags scaled readings
    grid_size: int = 5
    n_neighbours: int = 8
    spatial_lags: int = 4
    mape_floor_frac: float = 0.05  # MAPE skips actuals below this share of the meter's mean |y|
    seed: int = Declared.default("seed")
    threads: int = Declared.default("threads")  # TensorFlow CPU threads (set once per process)

    def __post_init__(self) -> None:
        from meterflow.forecasting.registry import check_model

        check_model(self.model, self.candidates)
        if self.scaling not in SCALINGS:
            raise ConfigError(f"scaling must be one of {SCALINGS}, got {self.scaling!r}")
        if self.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        self._check_quantiles()
        if not -1 <= self.origin_hour <= 23:
            raise ConfigError(
                f"origin_hour must be -1 (every slot) or 0..23, got {self.origin_hour}"
            )
        if self.test_padding not in PADDINGS:
            raise ConfigError(f"test_padding must be one of {PADDINGS}, got {self.test_padding!r}")
        positive = {
            "seq_length": self.seq_length,
            "horizon": self.horizon,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "patience": self.patience,
            "max_train_windows": self.max_train_windows,
            "max_val_windows": self.max_val_windows,
            "grid_size": self.grid_size,
            "n_neighbours": self.n_neighbours,
            "spatial_lags": self.spatial_lags,
            "recent_days": self.recent_days,
        }
        for name, value in positive.items():
            if int(value) != value or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 1 <= self.min_history <= self.seq_length:
            raise ConfigError(
                f"min_history must be in 1..seq_length={self.seq_length}, got {self.min_history}"
            )
        if self.spatial_lags > self.seq_length:
            raise ConfigError("spatial_lags must not exceed seq_length")
        if not (0 < self.train_frac < 1 and 0 < self.val_frac < 1):
            raise ConfigError("train_frac and val_frac must be in (0, 1)")
        if self.train_frac + self.val_frac >= 1:
            raise ConfigError(
                f"train_frac + val_frac = {self.train_frac + self.val_frac:g} leaves no test split"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.lr_patience < 0 or self.min_delta < 0:
            raise ConfigError("lr_patience and min_delta must be >= 0 (0: constant learning rate)")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.mape_floor_frac < 1:
            raise ConfigError(f"mape_floor_frac must be in [0, 1), got {self.mape_floor_frac}")
        if not self.units or any(int(u) != u or u < 1 for u in self.units):
            raise ConfigError(f"units must be positive integers, got {self.units!r}")

    def _check_quantiles(self) -> None:
        q = self.quantiles
        if q and (0.5 not in q or list(q) != sorted(set(q)) or not all(0 < v < 1 for v in q)):
            raise ConfigError(
                f"quantiles must be increasing, in (0, 1) and include 0.5, got {list(q)}"
            )

    @property
    def steps(self) -> np.ndarray:
        """Slots ahead of the window end that the model predicts (1..horizon or horizon)."""
        if self.output == "last":
            return np.array([self.horizon], dtype=np.int64)
        return np.arange(1, self.horizon + 1, dtype=np.int64)

    @property
    def n_quantiles(self) -> int:
        return max(1, len(self.quantiles))

    @property
    def point_quantile(self) -> int:
        """Index of the point forecast among the network's outputs (the median)."""
        return self.quantiles.index(0.5) if self.quantiles else 0

    @property
    def n_features(self) -> int:
        """Input channels per time step of the temporal model."""
        return 1 + (N_TIME_CHANNELS if self.time_features else 0) + len(self.exog)

    @property
    def uses_decoder(self) -> bool:
        """Whether the network has a per-step decoder input (else the notebook's plain head)."""
        return (
            self.output == "all" or self.seasonal_inputs or bool(self.exog) or bool(self.quantiles)
        )

    @property
    def n_future(self) -> int:
        """Decoder input channels per target step: seasonal lags, target calendar, exogenous
        values at the target, static series features and the step's position."""
        seasonal = len(SEASONAL) if self.seasonal_inputs else 0
        calendar = N_TIME_CHANNELS if self.time_features else 0
        return seasonal + calendar + len(self.exog) + len(self.static) + 1
