"""Picklable predictors that assign new daily profiles to the clusters of a fitted model.

Each assigner holds only numpy arrays and plain settings (slot count, normalisation, DTW window),
so it unpickles in a fresh process with nothing but ``meterflow`` and its dependencies, and it
needs neither the training data nor the library that fitted the model (the LSTM encoder runs in
numpy). ``predict`` = argmin of ``distances``; ties go to the lowest cluster index.

Input: an array (n, L), or a DataFrame with the training file's slot columns (``slot_names``),
or with ``slot_00``.. columns, or with exactly L numeric columns; other columns are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from meterflow.blocks import map_blocks
from meterflow.clustering.distances import euclidean_cross, sbd_cross
from meterflow.clustering.registry import DTW_FAMILY
from meterflow.clustering.representation import represent
from meterflow.errors import InputError, SchemaError
from meterflow.profiles.dtw.variants import distance_cross
from meterflow.profiles.normalize import normalize_values
from meterflow.schemas import slot_columns

_NEIGHBOUR_CHUNK = 1024  # profiles per block of distances to every member
ASSIGN_ROWS = 50_000  # profiles per block of ``assign_all``


@dataclass(kw_only=True, eq=False)
class Assigner:
    """Common part: input checks, normalisation, ``predict`` and an input example."""

    n_slots: int
    normalize: str = "none"  # per-profile normalisation applied before any distance
    example_rows: np.ndarray = field(repr=False)  # a few rows for the MLflow input example
    slot_names: tuple[str, ...] = ()  # the training file's slot column names, if it had its own
    representation: str = "profile"  # what the centres compare, after normalising
    # the logged model takes any of the inputs above, so MLflow must not enforce one schema
    schema_free_input = True

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; assigners saved before the rename say ``znorm`` for ``zscore``, and those
        saved before ``slot_names`` and ``representation`` existed have the defaults."""
        if state.get("normalize") == "znorm":
            state = {**state, "normalize": "zscore"}
        self.__dict__.update({"slot_names": (), "representation": "profile"} | state)

    @property
    def n_clusters(self) -> int:
        raise NotImplementedError

    def prepare(self, X: Any) -> np.ndarray:
        """Check ``X`` and return it normalised and in the model's representation, as float64:
        the space of the centres."""
        return represent(self.normalized(X), self.representation)

    def normalized(self, X: Any) -> np.ndarray:
        """Check ``X`` and return the profiles normalised, as float64 (n, L)."""
        arr = self._as_array(X)
        if arr.ndim != 2 or arr.shape[1] != self.n_slots:
            raise SchemaError(
                f"expected profiles with {self.n_slots} slots per row, got shape {arr.shape}"
            )
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            raise SchemaError(f"profile row {int(np.flatnonzero(~finite)[0])} has NaN/inf values")
        return normalize_values(arr, self.normalize)

    def _as_array(self, X: Any) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            return np.asarray(X, dtype=np.float64)
        for names in (list(self.slot_names), slot_columns(self.n_slots)):
            present = [c for c in names if c in X.columns]
            if names and len(present) == len(names):
                return X[names].to_numpy(dtype=np.float64)
            if present:  # some slots but not all: never fill in with other numeric columns
                missing = [c for c in names if c not in X.columns]
                raise SchemaError(
                    f"expected the {self.n_slots} slot columns {names[0]}..{names[-1]}, "
                    f"missing {missing[:5]}"
                )
        numeric = X.select_dtypes("number")
        if numeric.shape[1] == self.n_slots:
            return numeric.to_numpy(dtype=np.float64)
        own = f"{self.slot_names[0]}..{self.slot_names[-1]}, " if self.slot_names else ""
        raise SchemaError(
            f"expected the {self.n_slots} slot columns ({own}slot_00..slot_{self.n_slots - 1:02d}) "
            f"or exactly {self.n_slots} numeric columns; got columns {list(X.columns)[:8]}"
        )

    def distances(self, X: Any) -> np.ndarray:
        """Distances (n, k) of each profile to each cluster in the method's own metric."""
        return self._distances(self.prepare(X))

    def _distances(self, Xp: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        """Cluster index (n,) int64 of each profile."""
        return self.distances(X).argmin(axis=1).astype(np.int64)

    def input_example(self) -> pd.DataFrame:
        """A small profile table (the training file's slot columns, else slot_NN)."""
        return pd.DataFrame(
            self.example_rows, columns=list(self.slot_names) or slot_columns(self.n_slots)
        )

    def settings(self) -> dict[str, Any]:
        """Plain settings that define the assignment rule (for logging)."""
        return {
            "n_slots": self.n_slots,
            "normalize": self.normalize,
            "representation": self.representation,
            "rule": type(self).__name__,
        }


@dataclass(kw_only=True, eq=False)
class CentroidAssigner(Assigner):
    """Nearest centre under ``metric``: ``euclidean``; a DTW-family distance (``dtw``, ``ddtw``,
    ``wdtw``, ``wddtw``: the project's kernels, band ``window``); or ``sbd`` (k-Shape's
    shape-based distance on z-normalised profiles)."""

    centers: np.ndarray = field(repr=False)  # (k, L) in the normalised space
    metric: str = "euclidean"
    window: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in ("euclidean", "sbd", *DTW_FAMILY):
            raise InputError(f"unknown assignment metric {self.metric!r}")
        self.centers = np.ascontiguousarray(self.centers, dtype=np.float64)

    @property
    def n_clusters(self) -> int:
        return int(self.centers.shape[0])

    def _distances(self, Xp: np.ndarray) -> np.ndarray:
        if self.metric in DTW_FAMILY:
            return distance_cross(self.metric, Xp, self.centers, self.window)
        if self.metric == "sbd":
            return sbd_cross(Xp, self.centers)
        return euclidean_cross(Xp, self.centers)

    def settings(self) -> dict[str, Any]:
        out = super().settings() | {"metric": self.metric, "n_clusters": self.n_clusters}
        if self.metric in DTW_FAMILY:
            out["window"] = self.window
        return out


@dataclass(kw_only=True, eq=False)
class NeighbourAssigner(Assigner):
    """Cluster of the nearest fitted profile (``members``) under ``metric``: ``euclidean`` or a
    DTW-family distance with band ``window``. The out-of-sample rule of hierarchical clustering:
    every fitted profile keeps its cluster of the linkage cut. The distance to a cluster is the
    distance to its nearest member."""

    members: np.ndarray = field(repr=False)  # (m, L) fitted profiles, prepared space
    member_labels: np.ndarray = field(repr=False)  # (m,) their clusters, each of 0..k-1 present
    metric: str = "euclidean"
    window: int | None = None

    def __post_init__(self) -> None:
        if self.metric not in ("euclidean", *DTW_FAMILY):
            raise InputError(f"unknown assignment metric {self.metric!r}")
        labels = np.asarray(self.member_labels, dtype=np.int64)
        if len(labels) != len(self.members) or not np.array_equal(
            np.unique(labels), np.arange(labels.max(initial=-1) + 1)
        ):
            raise InputError("member_labels must give each member a cluster 0..k-1, none empty")
        order = np.argsort(labels, kind="stable")  # clusters contiguous, for reduceat
        self.members = np.ascontiguousarray(np.asarray(self.members)[order], dtype=np.float64)
        self.member_labels = labels[order]

    @property
    def n_clusters(self) -> int:
        return int(self.member_labels[-1]) + 1

    def _distances(self, Xp: np.ndarray) -> np.ndarray:
        firsts = np.searchsorted(self.member_labels, np.arange(self.n_clusters))
        out = np.empty((len(Xp), self.n_clusters))
        for start in range(0, len(Xp), _NEIGHBOUR_CHUNK):
            block = Xp[start : start + _NEIGHBOUR_CHUNK]
            if self.metric in DTW_FAMILY:
                to_members = distance_cross(self.metric, block, self.members, self.window)
            else:
                to_members = euclidean_cross(block, self.members)
            out[start : start + len(block)] = np.minimum.reduceat(to_members, firsts, axis=1)
        return out

    def settings(self) -> dict[str, Any]:
        out = super().settings() | {
            "metric": self.metric,
            "n_clusters": self.n_clusters,
            "members": len(self.members),
        }
        if self.metric in DTW_FAMILY:
            out["window"] = self.window
        return out


@dataclass(kw_only=True, eq=False)
class SOMAssigner(CentroidAssigner):
    """Winning node of a self-organising map: the node whose weight vector is nearest
    (Euclidean), nodes numbered row-major over the ``grid`` (rows, cols)."""

    grid: tuple[int, int] = (1, 1)

    @property
    def weights_grid(self) -> np.ndarray:
        """Node weights as (rows, cols, L)."""
        return self.centers.reshape(self.grid[0], self.grid[1], self.n_slots)

    def settings(self) -> dict[str, Any]:
        return super().settings() | {"grid": f"{self.grid[0]}x{self.grid[1]}"}


@dataclass(kw_only=True, eq=False)
class AutoencoderAssigner(Assigner):
    """Encode with the LSTM encoder (numpy forward pass of the trained Keras weights), then take
    the nearest k-means centre in the latent space.

    Scaling: ``(x - scale_mean) / scale_std`` with scalars fitted on the training profiles.
    ``weights``: ``w_ih`` (4H, 1), ``w_hh`` (4H, H), ``b_ih``, ``b_hh`` (4H,), gate blocks in the
    order input, forget, cell, output (sigmoid gates, tanh cell), then ``w_out`` (D, 2H),
    ``b_out`` (D,) of the latent projection of [last hidden state, mean hidden state over the
    day]. Keras's weights are stored transposed into this layout (``b_hh`` = 0), the layout of
    models fitted before the move to Keras, so those still load and predict.
    """

    weights: dict[str, np.ndarray] = field(repr=False)
    scale_mean: float = 0.0
    scale_std: float = 1.0
    latent_centers: np.ndarray = field(repr=False)  # (k, D)

    @property
    def n_clusters(self) -> int:
        return int(self.latent_centers.shape[0])

    def encode(self, X: Any) -> np.ndarray:
        """Latent codes (n, D) of the profiles."""
        return encode_lstm(self.weights, (self.prepare(X) - self.scale_mean) / self.scale_std)

    def _distances(self, Xp: np.ndarray) -> np.ndarray:
        codes = encode_lstm(self.weights, (Xp - self.scale_mean) / self.scale_std)
        return euclidean_cross(codes, self.latent_centers)

    def settings(self) -> dict[str, Any]:
        return super().settings() | {
            "n_clusters": self.n_clusters,
            "hidden_size": int(self.weights["w_hh"].shape[1]),
            "latent_dim": int(self.latent_centers.shape[1]),
        }


# the key columns of a profile table, accepted and ignored, so its rows go in as they are
PROFILE_KEYS = (
    ("meter_id", "string", False),
    ("date", "datetime", False),
    ("source", "string", False),
)


@dataclass(eq=False)
class NamedClusters:
    """The logged clustering model: an assigner and the clusters' names (``naming``).

    ``predict`` returns a table with the cluster index (``cluster``, int64) and its name
    (``cluster_name``) of each profile. The input is a profile table: its signature lists the
    slot columns ``slot_00``.. (required), or, for a model trained on a file with its own slot
    column names, those and ``slot_00``.. (each optional: either layout; the assigner checks),
    and the profile table's keys ``meter_id``, ``date``, ``source`` (optional, ignored).
    """

    assigner: Assigner
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.names) != self.assigner.n_clusters:
            raise InputError(
                f"{len(self.names)} cluster names for {self.assigner.n_clusters} clusters"
            )
        self.names = tuple(self.names)

    def predict(self, X: Any) -> pd.DataFrame:
        labels = self.assigner.predict(X)
        return pd.DataFrame(
            {"cluster": labels, "cluster_name": np.asarray(self.names, dtype=object)[labels]}
        )

    def input_example(self) -> pd.DataFrame:
        return self.assigner.input_example()

    def input_columns(self) -> list[tuple[str, str, bool]]:
        """(name, MLflow type, required) of each input column (class doc)."""
        own = list(self.assigner.slot_names)
        standard = slot_columns(self.assigner.n_slots)
        if not own or own == standard:
            slots = [(name, "double", True) for name in standard]
        else:
            slots = [(name, "double", False) for name in dict.fromkeys([*own, *standard])]
        taken = {name for name, _, _ in slots}
        return slots + [key for key in PROFILE_KEYS if key[0] not in taken]


def encode_lstm(weights: dict[str, np.ndarray], Z: np.ndarray) -> np.ndarray:
    """Single-layer LSTM over each row of ``Z`` (n, L) as a univariate sequence; returns the
    latent projection of [last hidden state, mean hidden state], float64 (n, D)."""
    w_ih, w_hh = weights["w_ih"], weights["w_hh"]
    bias = weights["b_ih"] + weights["b_hh"]
    hidden = w_hh.shape[1]
    n, length = Z.shape
    h = np.zeros((n, hidden))
    c = np.zeros((n, hidden))
    total = np.zeros((n, hidden))
    for t in range(length):
        gates = Z[:, t : t + 1] @ w_ih.T + h @ w_hh.T + bias
        i, f, g, o = np.split(gates, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        total += h
    features = np.concatenate([h, total / length], axis=1)
    return features @ weights["w_out"].T + weights["b_out"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def assign_all(assigner: Assigner, X: np.ndarray, scheduler: str = "") -> np.ndarray:
    """``assigner.predict(X)`` in blocks of ``ASSIGN_ROWS`` profiles: here, or as tasks on the
    Dask cluster at ``scheduler`` (the same labels: each profile is assigned on its own)."""
    starts = range(0, len(X), ASSIGN_ROWS)
    parts = map_blocks(
        _predict_block,
        [X[lo : lo + ASSIGN_ROWS] for lo in starts],
        (assigner,),
        scheduler=scheduler,
        label="assigning profiles to clusters",
    )
    return np.concatenate([np.zeros(0, dtype=np.int64), *parts])


def _predict_block(X: np.ndarray, assigner: Assigner) -> np.ndarray:
    return assigner.predict(X)
