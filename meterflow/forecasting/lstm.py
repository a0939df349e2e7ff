"""The temporal LSTM forecaster and the training loop shared by every torch model.

The network follows the notebook: stacked LSTM layers with dropout and a linear head, Adam and
MSE; training stops early on the validation loss and restores the best weights.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


class LSTMEncoder(nn.Module):
    """``(batch, seq_length, n_features) -> (batch, hidden_size)``: stacked LSTM (dropout
    between layers) and dropout on the top layer's last hidden state."""

    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.dropout(out[:, -1, :])


class LSTMForecaster(nn.Module):
    """``(batch, seq_length, n_features) -> (batch,)``: LSTM encoder and a linear head."""

    def __init__(self, n_features: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.encoder = LSTMEncoder(n_features, hidden_size, num_layers, dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(-1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (unchanged when ``n`` is None)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


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


def predict_batches(
    model: nn.Module, inputs: Sequence[np.ndarray], batch_size: int = 8192
) -> np.ndarray:
    """Model outputs for ``inputs`` (arrays with a common first axis) in eval mode."""
    model.eval()
    n = len(inputs[0])
    out = np.empty(n, dtype=np.float32)
    with torch.no_grad():
        for lo in range(0, n, batch_size):
            batch = [
                torch.from_numpy(np.ascontiguousarray(a[lo : lo + batch_size])) for a in inputs
            ]
            out[lo : lo + batch_size] = model(*batch).numpy()
    return out


def fit_network(
    model: nn.Module,
    train: Sequence[np.ndarray],
    y_train: np.ndarray,
    val: Sequence[np.ndarray],
    y_val: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
) -> TrainingHistory:
    """Adam + MSE with early stopping on the validation loss; the best weights are restored."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=learning_rate)
    loss_fn = nn.MSELoss()
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in train]
    target = torch.from_numpy(np.ascontiguousarray(y_train, dtype=np.float32))
    y_val32 = np.asarray(y_val, dtype=np.float32)
    history = TrainingHistory()
    best, best_state, bad = np.inf, copy.deepcopy(model.state_dict()), 0
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = torch.randperm(len(target), generator=gen)
        train_loss = _train_epoch(model, opt, loss_fn, tensors, target, order, batch_size)
        val_loss = float(np.mean((predict_batches(model, val) - y_val32) ** 2))
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        log.info(
            "epoch %d/%d: train mse %.4f, validation mse %.4f (%.1f s)",
            epoch,
            epochs,
            history.train_loss[-1],
            val_loss,
            time.perf_counter() - t_start,
        )
        if val_loss < best - 1e-6:
            best, best_state, bad = val_loss, copy.deepcopy(model.state_dict()), 0
            history.best_epoch = epoch
        else:
            bad += 1
            if bad >= patience:
                log.info("early stop after epoch %d (best %d)", epoch, history.best_epoch)
                break
    model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - t_start
    return history


def _train_epoch(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    loss_fn: nn.Module,
    tensors: Sequence[torch.Tensor],
    target: torch.Tensor,
    order: torch.Tensor,
    batch_size: int,
) -> float:
    """One pass over the training windows in ``order`` (clipped gradients); the mean loss."""
    model.train()
    total = 0.0
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        opt.zero_grad()
        loss = loss_fn(model(*[t[idx] for t in tensors]), target[idx])
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        total += loss.item() * len(idx)
    return total / len(target)
