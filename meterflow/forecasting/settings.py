"""Typed settings of the forecasting step (one frozen dataclass, validated on creation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from meterflow import defaults
from meterflow.errors import ConfigError

MODELS = ("lstm", "hybrid")
PADDINGS = ("history", "zeros")


@dataclass(frozen=True)
class ForecastSettings:
    """How to split, window, train and evaluate a forecaster.

    Windows follow the reference notebook: ``seq_length`` slots of input and the target
    ``horizon`` slots after the last input (label index ``i + seq_length + horizon - 1``).
    ``test_padding``: ``"history"`` fills test windows with real history where the series is
    contiguous (zero pre-padding only after a gap), ``"zeros"`` restarts the history at the
    start of the test split and pre-pads with zeros, as the notebook's streaming validation.
    Predictions begin once ``min_history`` readings are available.
    """

    model: Literal["lstm", "hybrid"] = defaults.FORECAST_MODEL
    seq_length: int = defaults.SEQ_LENGTH
    horizon: int = defaults.HORIZON
    train_frac: float = 0.7
    val_frac: float = 0.1  # the test split is the rest, the most recent days
    test_padding: Literal["history", "zeros"] = "history"
    min_history: int = 2
    time_features: bool = True  # calendar of the target (day, week, weekend) as input channels
    units: tuple[int, ...] = defaults.LSTM_UNITS  # LSTM units per layer, first layer first
    dropout: float = 0.1
    learning_rate: float = 3e-3
    batch_size: int = 256
    epochs: int = defaults.EPOCHS
    patience: int = 3
    max_train_windows: int = defaults.MAX_TRAIN_WINDOWS
    max_val_windows: int = 5_000
    # hybrid: a grid_size x grid_size grid around each meter holding its n_neighbours nearest
    # meters' last spatial_lags scaled readings
    grid_size: int = 5
    n_neighbours: int = 8
    spatial_lags: int = 4
    mape_floor_frac: float = 0.05  # MAPE skips actuals below this share of the meter's mean |y|
    climatology: bool = True  # also evaluate the per-slot climatology baseline
    seed: int = defaults.SEED
    threads: int = defaults.THREADS  # TensorFlow CPU threads (set once per process)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ConfigError(f"model must be one of {MODELS}, got {self.model!r}")
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
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0 <= self.mape_floor_frac < 1:
            raise ConfigError(f"mape_floor_frac must be in [0, 1), got {self.mape_floor_frac}")
        if not self.units or any(int(u) != u or u < 1 for u in self.units):
            raise ConfigError(f"units must be positive integers, got {self.units!r}")

    @property
    def n_features(self) -> int:
        """Input channels per time step of the temporal model."""
        return 6 if self.time_features else 1  # value + windows.N_TIME_CHANNELS
