"""The Keras networks of the deep forecasters: the LSTM of seed 002 (the IoT LSTM prediction
notebook) and the hybrid of seed 001 (the hybrid spatio-temporal forecasting project).

- LSTM: stacked LSTM layers with dropout after each and a linear output, ``(batch, seq_length,
  n_features) -> (batch, 1)``; with a decoder (multi-step, quantiles, seasonal inputs)
  ``(window, future (batch, steps, n_future)) -> (batch, steps, quantiles)``: the encoder's
  state is joined to each step's decoder input and read by a small dense network shared by all
  steps, with a linear skip from the decoder input. ``units`` sets the layers, e.g. ``(5, 3)``
  as that notebook's first model or ``(50, 25, 10)`` as its augmented one.
- Hybrid: the LSTM branch on the meter's own window beside a small CNN on a spatial grid of its
  neighbours' recent load (``hybrid`` module), concatenated into a dense head.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras

from meterflow.forecasting.settings import ForecastSettings

WINDOW_INPUT = "window"
FUTURE_INPUT = "future"


@dataclass(frozen=True)
class Decoder:
    """Shape of a multi-step decoder: target steps, inputs per step, outputs per step."""

    steps: int
    n_future: int
    n_quantiles: int


def lstm_stack(x: keras.KerasTensor, units: Sequence[int], dropout: float) -> keras.KerasTensor:
    """Stacked LSTM layers (all but the last return sequences), dropout after each."""
    for i, n in enumerate(units):
        x = keras.layers.LSTM(n, return_sequences=i < len(units) - 1)(x)
        x = keras.layers.Dropout(dropout)(x)
    return x


def decoder_head(
    state: keras.KerasTensor, window: keras.KerasTensor, decoder: Decoder, hidden: int
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """``(future input, output (batch, steps, quantiles))`` of a decoder reading ``state``, plus
    a linear "highway" from the window's readings (channel 0) to every output, as LSTNet's
    autoregressive component: the latest readings reach short horizons undiluted."""
    future = keras.Input(shape=(decoder.steps, decoder.n_future), name=FUTURE_INPUT)
    joined = keras.layers.Concatenate()([keras.layers.RepeatVector(decoder.steps)(state), future])
    dense = keras.layers.Dense(hidden, activation="relu")(joined)
    out = keras.layers.Dense(decoder.n_quantiles)(keras.layers.Concatenate()([dense, future]))
    readings = keras.layers.Flatten()(window[:, :, :1])
    highway = keras.layers.Dense(decoder.steps * decoder.n_quantiles)(readings)
    highway = keras.layers.Reshape((decoder.steps, decoder.n_quantiles))(highway)
    return future, keras.layers.Add()([out, highway])


def build_lstm(
    seq_length: int,
    n_features: int,
    units: Sequence[int],
    dropout: float,
    decoder: Decoder | None = None,
) -> keras.Model:
    """A fresh LSTM forecaster (with a multi-step ``decoder`` when given)."""
    window = keras.Input(shape=(seq_length, n_features), name=WINDOW_INPUT)
    state = lstm_stack(window, units, dropout)
    if decoder is None:
        return keras.Model(window, keras.layers.Dense(1)(state), name="lstm_forecaster")
    future, out = decoder_head(state, window, decoder, max(units[-1], 16))
    return keras.Model([window, future], out, name="lstm_forecaster")


GRID_INPUT = "grid"


def build_hybrid(
    seq_length: int,
    n_features: int,
    units: Sequence[int],
    dropout: float,
    *,
    grid_size: int,
    grid_channels: int,
    conv_channels: int = 16,
    spatial_size: int = 32,
    decoder: Decoder | None = None,
) -> keras.Model:
    """A fresh hybrid forecaster: ``(window (B, seq, F), grid (B, G, G, C)) -> (B, 1)``, an LSTM
    branch and a Conv2D branch (channels last) concatenated into a dense head (with a
    multi-step ``decoder``: ``(window, grid, future) -> (B, steps, quantiles)``)."""
    window = keras.Input(shape=(seq_length, n_features), name=WINDOW_INPUT)
    grid = keras.Input(shape=(grid_size, grid_size, grid_channels), name=GRID_INPUT)
    spatial = grid
    for _ in range(2):
        spatial = keras.layers.Conv2D(conv_channels, 3, padding="same", activation="relu")(spatial)
    spatial = keras.layers.Dense(spatial_size, activation="relu")(keras.layers.Flatten()(spatial))
    both = keras.layers.Concatenate()([lstm_stack(window, units, dropout), spatial])
    head = keras.layers.Dense(units[-1], activation="relu")(both)
    if decoder is not None:
        future, out = decoder_head(keras.layers.Dropout(dropout)(head), window, decoder, units[-1])
        return keras.Model([window, grid, future], out, name="hybrid_forecaster")
    out = keras.layers.Dense(1)(keras.layers.Dropout(dropout)(head))
    return keras.Model([window, grid], out, name="hybrid_forecaster")


def build_network(settings: ForecastSettings, *, spatial: bool) -> Any:
    """A fresh (untrained) Keras network for ``settings``: the hybrid when ``spatial``."""
    shape = (settings.seq_length, settings.n_features, settings.units, settings.dropout)
    decoder = None
    if settings.uses_decoder:
        decoder = Decoder(len(settings.steps), settings.n_future, settings.n_quantiles)
    if spatial:
        return build_hybrid(
            *shape,
            grid_size=settings.grid_size,
            grid_channels=settings.spatial_lags + 1,
            decoder=decoder,
        )
    return build_lstm(*shape, decoder=decoder)
