"""What every clustering algorithm shares: its interface, its result, and input checks.

An algorithm is a class with a name, the distance metrics it supports, a frozen ``Options``
dataclass of its own settings, and ``fit(X, ctx) -> FitOutput``. ``fit.fit_clustering`` does
the checks, the optional per-profile normalisation and the timing, and turns the output into a
:class:`ClusteringResult` whose ``labels`` are, by definition, ``assigner.predict`` on the
training profiles (so a reloaded model reproduces them exactly).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from meterflow.errors import ConfigError, SchemaError
from meterflow.profiles.dtw.kernel import as_profile_array

if TYPE_CHECKING:  # the assigners load the distance kernels; the interface does not need them
    from meterflow.clustering.assign import Assigner


@dataclass(frozen=True)
class FitContext:
    """Settings common to every algorithm, already validated."""

    k: int
    distance_metric: str
    window: int | None  # dtaidistance band; None = unconstrained
    seed: int
    dtw: np.ndarray | None = field(default=None, repr=False)  # (n, n), rows as in X


@dataclass
class FitOutput:
    """What an algorithm's ``fit`` returns (before labels are derived from the assigner)."""

    centers: np.ndarray  # (k, L) in the space the assigner works in
    center_kind: str
    assigner: Assigner
    native_labels: np.ndarray  # the labels of the underlying library, for diagnostics
    info: dict[str, Any] = field(default_factory=dict)
    network: Any = None  # a trained Keras model, for MLflow's Keras flavor (autoencoder only)
    network_example: np.ndarray | None = None  # a small float32 input of ``network``


@dataclass
class ClusteringResult:
    """A fitted clustering.

    ``labels`` (n,) int64 equal ``assigner.predict(X)`` on the training profiles. ``centers``
    (k, L) live in the space of the normalised profiles (``assigner.normalized(X)``): raw
    profiles unless a normalisation was applied (k-Shape always z-normalises). ``center_kind``
    says what a centre is: ``mean``, ``dba_barycentre``, ``medoid``, ``som_node``,
    ``shape_centroid``, ``member_mean``, or ``mean (<representation> clusters)`` when the
    clusters were found on another representation. ``options`` are the resolved settings
    (defaults filled in), ready to log as parameters; ``info`` holds diagnostics (inertia,
    medoid rows, loss history, ...).
    """

    name: str
    distance_metric: str
    k: int
    labels: np.ndarray
    centers: np.ndarray
    center_kind: str
    assigner: Assigner
    options: dict[str, Any]
    fit_seconds: float
    info: dict[str, Any] = field(default_factory=dict)
    network: Any = field(default=None, repr=False)  # as FitOutput.network
    network_example: np.ndarray | None = field(default=None, repr=False)

    @property
    def sizes(self) -> np.ndarray:
        """Members per cluster, (k,) int64 (empty clusters count 0)."""
        return np.bincount(self.labels, minlength=self.k).astype(np.int64)


class ClusteringAlgorithm(ABC):
    """Base class of the registry entries. Subclasses set the class variables and ``fit``."""

    name: ClassVar[str]
    distance_metrics: ClassVar[tuple[str, ...]] = ("euclidean",)
    # metrics for which ``fit`` reads the precomputed DTW matrix (ctx.dtw must be given)
    dtw_matrix_metrics: ClassVar[tuple[str, ...]] = ()
    # normalisation the method always applies itself (k-Shape: z-normalisation)
    forced_normalize: ClassVar[str | None] = None

    @dataclass(frozen=True)
    class Options:
        """No algorithm-specific settings."""

    def __init__(self, options: Any) -> None:
        self.options = options

    @classmethod
    def needs_dtw_matrix(cls, distance_metric: str) -> bool:
        return distance_metric in cls.dtw_matrix_metrics

    @abstractmethod
    def fit(self, X: np.ndarray, ctx: FitContext) -> FitOutput:
        """Cluster ``X`` (n, L) float64 (already normalised) into ``ctx.k`` clusters."""


def parse_options(cls: type, values: Mapping[str, Any], *, where: str) -> Any:
    """Build the frozen dataclass ``cls`` from ``values``, coercing strings to the field types.

    Keys that are not fields of ``cls`` are the caller's business (they are not passed here).
    ``""`` for an optional field means "default/None".
    """
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        kwargs[f.name] = _coerce(values[f.name], hints[f.name], f"{where} option {f.name!r}")
    return cls(**kwargs)


def option_names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


def _coerce(value: Any, tp: Any, what: str) -> Any:
    args = typing.get_args(tp)
    optional = (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args
    if optional:
        if value is None or value == "":
            return None
        (tp,) = [a for a in args if a is not type(None)]
    try:
        if tp is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                return value.lower() in ("true", "1")
            return bool(value)
        if tp is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if tp is float:
            return float(value)
        if tp is str:
            return str(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{what}: cannot read {value!r} as {tp.__name__}") from e
    return value


def check_profiles(X: Any) -> np.ndarray:
    """``X`` as a C-contiguous float64 (n, L) array of complete profiles with L >= 2;
    SchemaError naming the first bad row."""
    arr = as_profile_array(X, name="profiles")
    if arr.shape[1] < 2:
        raise SchemaError(f"profiles need at least 2 slots, got shape {arr.shape}")
    return arr


def check_dtw(dtw: Any, n: int) -> np.ndarray:
    """Validate a square DTW matrix for ``n`` profiles: shape, finite, >= 0, zero diagonal."""
    mat = np.asarray(dtw, dtype=np.float64)
    if mat.shape != (n, n):
        raise SchemaError(
            f"DTW matrix has shape {mat.shape} but there are {n} profiles; it must be the square "
            "(n x n) matrix of the same profiles in the same row order"
        )
    for start in range(0, n, 2048):
        block = mat[start : start + 2048]
        bad = ~np.isfinite(block) | (block < 0)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise SchemaError(
                f"DTW matrix entry ({start + r}, {c}) is {block[r, c]}; a full square matrix "
                "with finite non-negative distances is required (convert dtaidistance's "
                "upper-triangular output with distances.square_dtw)"
            )
    diag = np.abs(np.diagonal(mat))
    if diag.max(initial=0.0) > 1e-9:
        raise SchemaError(f"DTW matrix diagonal is not zero (row {int(diag.argmax())})")
    return mat
