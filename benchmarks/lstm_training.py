"""LSTM training: our Keras training path against a bare ``model.fit`` on the same arrays.

The reference notebook's augmented model (LSTM 50 -> 25 -> 10 with dropout, Dense 1; Adam, MSE,
batch 500) on 16 000 windows of 30 steps x 3 features, in one process with the same TensorFlow
set-up (threads, deterministic ops) for both sides:

- ours: ``forecasting.networks.build_lstm`` + ``forecasting.training.fit_network`` (global-norm
  clipping, early stopping with best-weight restore, one log line per epoch);
- bare: the same layers as a ``keras.Sequential`` compiled with Adam/MSE and ``model.fit``.

Prints seconds per epoch (the first epoch, which traces the training step, apart) and the ratio
ours / bare, then the import time of the forecasting step's module and of Keras alone, each in a
fresh process. Not a timed test: run it by hand, ``python benchmarks/lstm_training.py``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import numpy as np

UNITS = (50, 25, 10)
SEQ, FEATURES, WINDOWS, BATCH = 30, 3, 16_000, 500


def windows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a noisy daily-periodic load with two time features, and the next value."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOWS + SEQ + 1)
    load = 1 + 0.5 * np.sin(2 * np.pi * t / 24) + 0.1 * rng.standard_normal(len(t))
    clock = np.stack([np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 24)], axis=1)
    series = np.column_stack([load, clock]).astype(np.float32)
    idx = np.arange(WINDOWS)[:, None] + np.arange(SEQ)[None, :]
    return series[idx], load[SEQ : SEQ + WINDOWS].astype(np.float32)


def bare_model(dropout: float):
    import keras

    layers = [keras.Input((SEQ, FEATURES))]
    for i, n in enumerate(UNITS):
        layers += [keras.layers.LSTM(n, return_sequences=i < len(UNITS) - 1)]
        layers += [keras.layers.Dropout(dropout)]
    model = keras.Sequential([*layers, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model


def timed_epochs(fit, epochs: int) -> tuple[float, float]:
    """(first epoch seconds, mean seconds of the later epochs) of ``fit(epochs)``."""
    import keras

    stamps: list[float] = []

    class Stamp(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    fit(epochs, Stamp())
    first = stamps[0] - start
    return first, (stamps[-1] - stamps[0]) / max(len(stamps) - 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    from meterflow.forecasting.networks import build_lstm
    from meterflow.nets import training

    x, y = windows(0)
    split = int(0.95 * len(x))
    train, val = (x[:split], y[:split]), (x[split:], y[split:])
    training.prepare_keras(args.threads, 42)
    ours_model = build_lstm(SEQ, FEATURES, UNITS, 0.2)

    def ours(epochs, stamp):
        training.fit_network(
            ours_model, [train[0]], train[1], [val[0]], val[1],
            epochs=epochs, batch_size=BATCH, learning_rate=1e-3, patience=epochs,
            callbacks=[stamp],
        )  # fmt: skip

    training.prepare_keras(args.threads, 42)
    bare = bare_model(0.2)

    def bare_fit(epochs, stamp):
        bare.fit(train[0], train[1], validation_data=val, epochs=epochs, batch_size=BATCH,
                 shuffle=True, callbacks=[stamp], verbose=0)  # fmt: skip

    for name, fit in (("ours", ours), ("bare", bare_fit)):
        first, per_epoch = timed_epochs(fit, args.epochs)
        print(f"case={name} first_epoch_s={first:.2f} epoch_s={per_epoch:.3f}")
        if name == "ours":
            ours_epoch = per_epoch
    print(f"case=epoch ratio_ours_over_bare={ours_epoch / per_epoch:.3f}")
    for module in ("meterflow.tasks.forecasting", "keras"):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        print(f"case=import module={module} seconds={time.perf_counter() - started:.2f}")


if __name__ == "__main__":
    main()
