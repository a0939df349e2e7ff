"""The temporal LSTM forecaster (seed 002): stacked LSTM layers with dropout after each and a
linear output, ``(batch, seq_length, n_features) -> (batch, 1)``.

``units`` sets the layers, e.g. ``(5, 3)`` as the reference notebook's first model or
``(50, 25, 10)`` as its augmented one.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

WINDOW_INPUT = "window"


def lstm_stack(x: keras.KerasTensor, units: Sequence[int], dropout: float) -> keras.KerasTensor:
    """Stacked LSTM layers (all but the last return sequences), dropout after each."""
    for i, n in enumerate(units):
        x = keras.layers.LSTM(n, return_sequences=i < len(units) - 1)(x)
        x = keras.layers.Dropout(dropout)(x)
    return x


def build_lstm(
    seq_length: int, n_features: int, units: Sequence[int], dropout: float
) -> keras.Model:
    """A fresh LSTM forecaster."""
    window = keras.Input(shape=(seq_length, n_features), name=WINDOW_INPUT)
    out = keras.layers.Dense(1)(lstm_stack(window, units, dropout))
    return keras.Model(window, out, name="lstm_forecaster")
