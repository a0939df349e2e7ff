"""LSTM autoencoder features + k-means (as in the reference study, seed 000).

Encoder: a single-layer LSTM reads each day as a univariate sequence (values scaled by the
training mean and standard deviation of all slots); a linear layer maps [last hidden state, mean
hidden state over the day] to a latent code (the mean keeps early slots of long days, e.g. 96, in
reach of the gradient). Decoder: an LSTM fed at every slot with the code and the slot's time of
day (sin, cos), then a linear layer to the slot value. Training: Adam, MSE, 30 epochs of
mini-batches of 32 by default (option ``epochs`` for fewer), shuffled with the seed.
The codes are clustered with k-means. Prediction runs the encoder in numpy
(``assign.encode_lstm``), so k-means is fitted on exactly the codes the predictor computes;
``info["encoder_check"]`` is the largest difference between those and PyTorch's codes. Centres
reported in profile space are the members' mean profiles. The trained network is kept for the
next call with the same profiles, options and seed (only k differs), e.g. from ``select_k``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from meterflow import defaults
from meterflow.clustering.assign import AutoencoderAssigner, encode_lstm
from meterflow.clustering.base import ClusteringAlgorithm, FitContext, FitOutput
from meterflow.errors import ConfigError

log = logging.getLogger(__name__)


class LSTMAutoencoderClustering(ClusteringAlgorithm):
    """Autoencoder (PyTorch, CPU) then k-means in the latent space."""

    name = "lstm_autoencoder"

    @dataclass(frozen=True)
    class Options:
        epochs: int = defaults.AUTOENCODER_EPOCHS
        batch_size: int = 32
        hidden_size: int = defaults.HIDDEN_SIZE
        latent_dim: int = 8
        learning_rate: float = 1e-3
        n_init: int = 10  # k-means restarts on the codes
        torch_threads: int = 1  # small LSTMs train fastest on one thread; restored afterwards

        def __post_init__(self) -> None:
            for name in ("epochs", "batch_size", "hidden_size", "latent_dim", "n_init"):
                if getattr(self, name) < 1:
                    raise ConfigError(f"lstm_autoencoder option {name} must be >= 1")
            if self.learning_rate <= 0 or self.torch_threads < 1:
                raise ConfigError("lstm_autoencoder learning_rate and torch_threads must be > 0")

    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        opts = self.options
        mean = float(X.mean())
        std = float(X.std()) or 1.0
        Z = (X - mean) / std
        weights, torch_codes, losses = _train_once(Z, opts, seed=ctx.seed)
        codes = encode_lstm(weights, Z)
        check = float(np.abs(codes - torch_codes).max())
        km = KMeans(n_clusters=ctx.k, n_init=opts.n_init, random_state=ctx.seed).fit(codes)
        latent = np.asarray(km.cluster_centers_, dtype=np.float64)
        native = np.asarray(km.labels_, dtype=np.int64)
        centers = np.empty((ctx.k, X.shape[1]))
        for c in range(ctx.k):
            members = native == c
            if members.any():
                centers[c] = X[members].mean(axis=0)
            else:  # cannot happen after k-means' last assignment step, kept for safety
                centers[c] = X[np.argmin(np.linalg.norm(codes - latent[c], axis=1))]
        assigner = AutoencoderAssigner(
            n_slots=X.shape[1],
            weights=weights,
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
                "train_loss": losses,
                "final_loss": losses[-1],
                "latent_inertia": float(km.inertia_),
                "encoder_check": check,
            },
        )


# The last trained autoencoder: the network does not depend on k, so choosing k (select_k) or
# refitting with another k on the same profiles, options and seed trains it only once.
_LAST: dict[str, tuple[dict[str, np.ndarray], np.ndarray, list[float]]] = {}


def _train_once(
    Z: np.ndarray, opts: Any, *, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, list[float]]:
    training = dataclasses.replace(opts, n_init=1)  # k-means restarts do not affect training
    key = f"{hashlib.sha1(Z.tobytes()).hexdigest()}|{Z.shape}|{training!r}|{seed}"
    if key in _LAST:
        log.info("reusing the autoencoder trained on these profiles with these settings")
        return _LAST[key]
    out = train_autoencoder(Z, opts, seed=seed)
    _LAST.clear()
    _LAST[key] = out
    return out


def train_autoencoder(
    Z: np.ndarray, opts: Any, *, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray, list[float]]:
    """Train the autoencoder on scaled profiles ``Z`` (n, L). Returns the encoder weights as
    float64 numpy arrays (layout of ``AutoencoderAssigner``), PyTorch's codes of ``Z`` (n, D)
    and the mean training loss per epoch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(opts.torch_threads)
    try:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model = _autoencoder(opts, Z.shape[1])
        data = torch.from_numpy(Z.astype(np.float32)).unsqueeze(-1)
        losses = _train_epochs(model, data, opts, rng)
        with torch.no_grad():
            codes = model.encode(data).double().numpy()
    finally:
        torch.set_num_threads(threads)
    return _encoder_weights(model), codes, losses


def _autoencoder(opts: Any, length: int) -> Any:
    """A new (randomly initialised) LSTM autoencoder ``torch.nn.Module`` for days of ``length``
    slots: ``encode(x)`` gives the latent codes, calling it the reconstruction."""
    import torch
    from torch import nn

    angle = 2 * np.pi * np.arange(length) / length
    time_of_day = torch.from_numpy(np.stack([np.sin(angle), np.cos(angle)], 1).astype(np.float32))

    class Autoencoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.LSTM(1, opts.hidden_size, batch_first=True)
            self.to_latent = nn.Linear(2 * opts.hidden_size, opts.latent_dim)
            self.decoder = nn.LSTM(opts.latent_dim + 2, opts.hidden_size, batch_first=True)
            self.to_output = nn.Linear(opts.hidden_size, 1)

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            out, (h, _) = self.encoder(x)
            return self.to_latent(torch.cat([h[-1], out.mean(dim=1)], dim=1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            z = self.encode(x).unsqueeze(1).expand(-1, length, -1)
            clock = time_of_day.unsqueeze(0).expand(len(x), -1, -1)
            out, _ = self.decoder(torch.cat([z, clock], dim=2))
            return self.to_output(out)

    return Autoencoder()


def _train_epochs(model: Any, data: Any, opts: Any, rng: np.random.Generator) -> list[float]:
    """Adam on the MSE reconstruction loss for ``opts.epochs`` shuffled passes over ``data``
    (n, L, 1); returns the mean loss of each epoch."""
    import torch
    from torch import nn

    optimiser = torch.optim.Adam(model.parameters(), lr=opts.learning_rate)
    loss_fn = nn.MSELoss()
    losses: list[float] = []
    start = time.perf_counter()
    for epoch in range(opts.epochs):
        order = torch.from_numpy(rng.permutation(len(data)))
        total = 0.0
        for begin in range(0, len(data), opts.batch_size):
            batch = data[order[begin : begin + opts.batch_size]]
            optimiser.zero_grad()
            loss = loss_fn(model(batch), batch)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        losses.append(total / len(data))
        log.info(
            "autoencoder epoch %d/%d: loss %.5f (%.1f s)",
            epoch + 1,
            opts.epochs,
            losses[-1],
            time.perf_counter() - start,
        )
    return losses


def _encoder_weights(model: Any) -> dict[str, np.ndarray]:
    """The encoder's weights as float64 arrays, keyed as ``AutoencoderAssigner`` expects."""
    enc = model.encoder
    weights = {
        "w_ih": enc.weight_ih_l0,
        "w_hh": enc.weight_hh_l0,
        "b_ih": enc.bias_ih_l0,
        "b_hh": enc.bias_hh_l0,
        "w_out": model.to_latent.weight,
        "b_out": model.to_latent.bias,
    }
    return {k: v.detach().double().numpy() for k, v in weights.items()}
