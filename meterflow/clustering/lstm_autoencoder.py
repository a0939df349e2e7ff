"""LSTM autoencoder features + k-means, in Keras 3, as in reference document 000 (the
pretrained-LSTM clustering study).

Encoder: a single-layer LSTM reads each day as a univariate sequence (values scaled by the
training mean and standard deviation of all slots); a dense layer maps [last hidden state, mean
hidden state over the day] to a latent code (the mean keeps early slots of long days, e.g. 96, in
reach of the gradient). Decoder: the code repeated at every slot next to the slot's time of day
(sin, cos), an LSTM, then a dense layer to the slot value. Training: Keras on TensorFlow (CPU,
``keras_setup``: deterministic kernels, seeded), Adam, MSE, 30 epochs of shuffled mini-batches of
32 by default (option ``epochs`` for fewer). The codes are clustered with k-means. Prediction
runs the encoder in numpy (``assign.encode_lstm``, no TensorFlow needed), so k-means is fitted on
exactly the codes the predictor computes; ``info["encoder_check"]`` is the largest difference
between those and Keras's codes. Centres reported in profile space are the members' mean
profiles. The trained network is kept for the next call with the same profiles, options and seed
(only k differs), e.g. from ``select_k``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from sklearn.cluster import KMeans

from meterflow import defaults
from meterflow.clustering.assign import AutoencoderAssigner, encode_lstm
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.clustering.params import ClusteringParams
from meterflow.errors import ConfigError
from meterflow.nets import keras_setup

log = logging.getLogger(__name__)


class TrainedAutoencoder(NamedTuple):
    """A trained autoencoder: the encoder's weights as float64 arrays (layout of
    ``AutoencoderAssigner``), Keras's codes (n, D) float64 of the training profiles, the mean
    training loss per epoch, and the Keras encoder model (input (n, L, 1) -> codes (n, D))."""

    weights: dict[str, np.ndarray]
    codes: np.ndarray
    losses: list[float]
    encoder: Any


class LSTMAutoencoderClustering(ClusteringAlgorithm):
    """Autoencoder (Keras on TensorFlow, CPU) then k-means in the latent space.

    ``FitOutput.network`` is the trained Keras *encoder* (scaled profiles (n, L, 1) float32 ->
    codes (n, D)), ``network_example`` a few such inputs: the encoder is what the clustering uses
    (k-means runs on its codes; the decoder only serves training), and it is made of built-in
    layers only, so MLflow's Keras flavor saves and reloads it without custom objects.
    """

    name = "lstm_autoencoder"

    @dataclass(frozen=True)
    class Options:
        epochs: int = ClusteringParams.default("epochs")
        batch_size: int = 32
        hidden_size: int = defaults.HIDDEN_SIZE
        latent_dim: int = 8
        learning_rate: float = 1e-3
        n_init: int = 10  # k-means restarts on the codes
        threads: int = 1  # TensorFlow CPU threads; the first value in a process holds for it

        def __post_init__(self) -> None:
            for name in ("epochs", "batch_size", "hidden_size", "latent_dim", "n_init", "threads"):
                if getattr(self, name) < 1:
                    raise ConfigError(f"lstm_autoencoder option {name} must be >= 1")
            if self.learning_rate <= 0:
                raise ConfigError("lstm_autoencoder option learning_rate must be > 0")

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        opts = self.options
        mean = float(X.mean())
        std = float(X.std()) or 1.0
        Z = (X - mean) / std
        trained = _train_once(Z, opts, seed=ctx.seed)
        codes = encode_lstm(trained.weights, Z)
        check = float(np.abs(codes - trained.codes).max())
        km = KMeans(n_clusters=ctx.k, n_init=opts.n_init, random_state=ctx.seed).fit(codes)
        latent = np.asarray(km.cluster_centers_, dtype=np.float64)
        native = np.asarray(km.labels_, dtype=np.int64)
        centers = _member_means(X, codes, native, latent)
        assigner = AutoencoderAssigner(
            n_slots=X.shape[1],
            weights=trained.weights,
            scale_mean=mean,
            scale_std=std,
            latent_centers=latent,
            example_rows=centers[: min(3, ctx.k)],
        )
        return FitOutput(
            centers=centers,
            center_kind="member_mean",
            assigner=assigner,
            native_labels=native,
            info={
                "train_loss": trained.losses,
                "final_loss": trained.losses[-1],
                "latent_inertia": float(km.inertia_),
                "encoder_check": check,
            },
            network=trained.encoder,
            network_example=Z[:3, :, None].astype(np.float32),
        )


def _member_means(
    X: np.ndarray, codes: np.ndarray, labels: np.ndarray, latent: np.ndarray
) -> np.ndarray:
    """Mean profile (k, L) of each cluster's members; an empty cluster (which cannot happen after
    k-means' last assignment step, kept for safety) gets the profile whose code is nearest."""
    centers = np.empty((len(latent), X.shape[1]))
    for c in range(len(latent)):
        members = labels == c
        if members.any():
            centers[c] = X[members].mean(axis=0)
        else:
            centers[c] = X[np.argmin(np.linalg.norm(codes - latent[c], axis=1))]
    return centers


# The last trained autoencoder: the network does not depend on k, so choosing k (select_k) or
# refitting with another k on the same profiles, options and seed trains it only once.
_LAST: dict[str, TrainedAutoencoder] = {}


def _train_once(Z: np.ndarray, opts: Any, *, seed: int) -> TrainedAutoencoder:
    training = dataclasses.replace(opts, n_init=1)  # k-means restarts do not affect training
    key = f"{hashlib.sha1(Z.tobytes()).hexdigest()}|{Z.shape}|{training!r}|{seed}"
    if key in _LAST:
        log.info("reusing the autoencoder trained on these profiles with these settings")
        return _LAST[key]
    out = train_autoencoder(Z, opts, seed=seed)
    _LAST.clear()
    _LAST[key] = out
    return out


def train_autoencoder(Z: np.ndarray, opts: Any, *, seed: int) -> TrainedAutoencoder:
    """Train the autoencoder on scaled profiles ``Z`` (n, L) with ``opts`` (``Options``)."""
    keras_setup.configure_keras(opts.threads)
    keras_setup.seed(seed)
    model, encoder = _autoencoder(opts, Z.shape[1])
    data = Z.astype(np.float32)[:, :, None]
    losses = _train_epochs(model, data, opts)
    codes = np.asarray(encoder.predict(data, batch_size=1024, verbose=0), dtype=np.float64)
    return TrainedAutoencoder(_encoder_weights(encoder), codes, losses, encoder)


def _autoencoder(opts: Any, length: int) -> tuple[Any, Any]:
    """A new (randomly initialised) LSTM autoencoder for days of ``length`` slots, as Keras
    models: the autoencoder (n, L, 1) -> (n, L, 1), and its encoder (n, L, 1) -> (n, D)."""
    import keras
    from keras import layers

    profile = keras.Input((length, 1), name="profile")
    hidden, last, _ = layers.LSTM(
        opts.hidden_size,
        activation="tanh",  # as assign.encode_lstm (also Keras's defaults)
        recurrent_activation="sigmoid",
        return_sequences=True,
        return_state=True,
        name="encoder_lstm",
    )(profile)
    mean = layers.GlobalAveragePooling1D(name="mean_hidden")(hidden)
    features = layers.Concatenate(name="last_and_mean")([last, mean])
    code = layers.Dense(opts.latent_dim, name="latent")(features)
    encoder = keras.Model(profile, code, name="lstm_encoder")
    repeated = layers.RepeatVector(length, name="repeat_code")(code)
    decoded = layers.LSTM(opts.hidden_size, return_sequences=True, name="decoder_lstm")(
        _time_of_day_layer()(repeated)
    )
    output = layers.Dense(1, name="slot_value")(decoded)
    return keras.Model(profile, output, name="lstm_autoencoder"), encoder


def _time_of_day_layer() -> Any:
    """A Keras layer appending each slot's time of day (sin, cos; a constant) to its features."""
    import keras
    from keras import ops

    class TimeOfDay(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            length = x.shape[1]
            angle = 2 * np.pi * np.arange(length) / length
            clock = np.stack([np.sin(angle), np.cos(angle)], 1)[None].astype(np.float32)
            clock = ops.broadcast_to(ops.convert_to_tensor(clock), (ops.shape(x)[0], length, 2))
            return ops.concatenate([x, ops.cast(clock, x.dtype)], axis=-1)

        def compute_output_shape(self, shape: tuple[Any, ...]) -> tuple[Any, ...]:
            return (*shape[:-1], shape[-1] + 2)

    return TimeOfDay(name="time_of_day")


def _train_epochs(model: Any, data: np.ndarray, opts: Any) -> list[float]:
    """Adam on the MSE reconstruction loss for ``opts.epochs`` shuffled passes over ``data``
    (n, L, 1) float32; logs each epoch and returns its mean loss."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate=opts.learning_rate), loss="mse")
    start = time.perf_counter()

    def report(epoch: int, logs: dict[str, float] | None) -> None:
        loss = (logs or {}).get("loss", float("nan"))
        elapsed = time.perf_counter() - start
        log.info(
            "autoencoder epoch %d/%d: loss %.5f (%.1f s)", epoch + 1, opts.epochs, loss, elapsed
        )

    history = model.fit(
        data,
        data,
        epochs=opts.epochs,
        batch_size=opts.batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=report)],
    )
    return [float(loss) for loss in history.history["loss"]]


def _encoder_weights(encoder: Any) -> dict[str, np.ndarray]:
    """The encoder's weights as float64 arrays in ``AutoencoderAssigner``'s layout: Keras's LSTM
    kernel (1, 4H), recurrent kernel (H, 4H) and bias (4H,) have the gates in the same order
    (input, forget, cell, output), so they are transposed, with a single bias (``b_hh`` = 0);
    the latent projection's kernel (2H, D) is transposed too."""
    kernel, recurrent, bias = encoder.get_layer("encoder_lstm").get_weights()
    w_out, b_out = encoder.get_layer("latent").get_weights()
    weights = {
        "w_ih": kernel.T,
        "w_hh": recurrent.T,
        "b_ih": bias,
        "b_hh": np.zeros_like(bias),
        "w_out": w_out.T,
        "b_out": b_out,
    }
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in weights.items()}
