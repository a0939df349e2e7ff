"""Keras training and prediction shared by the deep models (forecasters, anomaly detectors).

As the IoT LSTM prediction notebook (seed 002): Adam on the MSE, early stopping on the
validation loss with the best weights restored. Gradients are clipped to a global norm of 1
(stacked LSTMs on scaled load are prone to bursts). Each epoch is one progress line in the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from meterflow.nets import keras_setup

log = logging.getLogger(__name__)

PREDICT_BATCH = 8192
MIN_BATCH = 64
SMALLEST_TRAIN_BATCH = 32


def train_batch_size(n_windows: int, largest: int, min_updates: int) -> int:
    """The batch size of a training set: ``largest``, or smaller (down to 32) so that an epoch
    still makes ``min_updates`` updates (0: always ``largest``)."""
    if min_updates <= 0:
        return largest
    return int(np.clip(n_windows // min_updates, SMALLEST_TRAIN_BATCH, largest))


@dataclass
class TrainingHistory:
    """Per-epoch mean training and validation MSE (scaled units) and the epoch kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0

    @property
    def best_val_loss(self) -> float:
        return self.val_loss[self.best_epoch - 1] if self.val_loss else float("nan")


class _EpochLog(keras.callbacks.Callback):
    """One log line per epoch: losses and the time since training started."""

    def __init__(self, epochs: int):
        super().__init__()
        self.epochs = epochs
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        seconds = time.perf_counter() - self.started
        log.info(
            "epoch %d/%d: train loss %.4f, validation loss %.4f (%.1f s)",
            *(epoch + 1, self.epochs, logs.get("loss", np.nan), logs.get("val_loss", np.nan)),
            seconds,
        )


def fit_network(
    model: keras.Model,
    train: Sequence[np.ndarray],
    y_train: np.ndarray,
    val: Sequence[np.ndarray],
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    quantiles: Sequence[float] = (),
    min_updates: int = 0,
    min_delta: float = 1e-6,
    lr_patience: int = 0,
) -> TrainingHistory:
    """Adam on the MSE (or on the pinball loss of ``quantiles``) with early stopping on the
    validation loss (an epoch counts as better when it beats the best by more than
    ``min_delta``); the best weights are restored. With ``lr_patience`` the learning rate is
    halved after that many epochs without such an improvement. ``batch_size`` is the largest
    batch, smaller ones keep ``min_updates`` updates per epoch on small training sets
    (``train_batch_size``). Seed the run (``prepare_keras``) before building ``model``;
    ``callbacks`` run too."""
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, global_clipnorm=1.0)
    model.compile(optimizer=optimizer, loss=pinball_loss(quantiles) if quantiles else "mse")
    stop = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, min_delta=min_delta, restore_best_weights=True
    )
    if lr_patience > 0:
        callbacks = [*callbacks, _halving(lr_patience, min_delta)]
    started = time.perf_counter()
    batch_size = train_batch_size(len(y_train), batch_size, min_updates)
    fitted = model.fit(
        _structured(train),
        np.asarray(y_train, dtype=np.float32),
        validation_data=(_structured(val), np.asarray(y_val, dtype=np.float32)),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        callbacks=[stop, _EpochLog(epochs), *callbacks],
        verbose=0,
    )
    history = TrainingHistory(
        train_loss=[float(v) for v in fitted.history["loss"]],
        val_loss=[float(v) for v in fitted.history["val_loss"]],
        seconds=time.perf_counter() - started,
    )
    history.best_epoch = int(np.argmin(history.val_loss)) + 1
    if len(history.val_loss) < epochs:
        log.info("early stop after epoch %d (best %d)", len(history.val_loss), history.best_epoch)
    return history


def _halving(patience: int, min_delta: float) -> keras.callbacks.Callback:
    """Halve the learning rate after ``patience`` epochs without a better validation loss."""
    return keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=patience, min_delta=min_delta, verbose=0
    )


def pinball_loss(quantiles: Sequence[float]):
    """Mean pinball (quantile) loss of outputs ``(..., len(quantiles))`` against targets
    ``(..., 1)``."""
    q = keras.ops.convert_to_tensor(np.asarray(quantiles, dtype=np.float32))

    def pinball(y_true, y_pred):
        error = y_true - y_pred
        return keras.ops.mean(keras.ops.maximum(q * error, (q - 1.0) * error), axis=-1)

    return pinball


def predict_batches(model: keras.Model, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Model outputs (float32) for ``inputs`` (arrays with a common first axis): ``(n,)`` for a
    single-output network, else ``(n, *output shape)``.

    Batches are zero-padded to a power of two, so a process traces the network's predict function
    for a handful of batch shapes only, whatever the number of rows asked for."""
    n = len(inputs[0])
    shape = tuple(model.output_shape[1:])
    out = np.empty((n, *shape), dtype=np.float32)
    for lo in range(0, n, PREDICT_BATCH):
        rows = min(PREDICT_BATCH, n - lo)
        size = max(MIN_BATCH, 1 << (rows - 1).bit_length())
        batch = [_padded(a[lo : lo + rows], size) for a in inputs]
        out[lo : lo + rows] = np.asarray(model.predict_on_batch(_structured(batch)))[:rows]
    return out[:, 0] if shape == (1,) else out


def _padded(a: np.ndarray, size: int) -> np.ndarray:
    """``a`` (float32) with zero rows appended up to ``size`` rows."""
    out = np.zeros((size, *a.shape[1:]), dtype=np.float32)
    out[: len(a)] = a
    return out


def _structured(inputs: Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Inputs as a Keras model with one or several inputs takes them."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


def prepare_keras(threads: int, seed: int) -> None:
    """Threads and deterministic kernels for this process, then the seed of this network."""
    keras_setup.configure_keras(threads)
    keras_setup.seed(seed)
