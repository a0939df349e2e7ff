"""The temporal LSTM forecaster (seed 002): stacked LSTM layers with dropout after each and a
linear output, ``(batch, seq_length, n_features) -> (batch, 1)``; with a decoder (multi-step,
quantiles, seasonal inputs) ``(window, future (batch, steps, n_future)) -> (batch, steps,
quantiles)``: the encoder's state is joined to each step's decoder input and read by a small
dense network shared by all steps, with a linear skip from the decoder input.

``units`` sets the layers, e.g. ``(5, 3)`` as the reference notebook's first model or
``(50, 25, 10)`` as its augmented one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras

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
