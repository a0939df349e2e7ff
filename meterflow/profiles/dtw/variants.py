"""DTW variants: derivative DTW (DDTW), weighted DTW (WDTW) and both (WDDTW), plus a dispatch by
name over them, plain DTW and the elastic distances of ``elastic.py`` (ERP, MSM, TWE, shape-DTW),
in the condensed lower-triangle layout of ``kernel.py``.

Distances (``DISTANCES``), all with the square root of our DTW (``sqrt`` of the accumulated cost;
aeon and the papers report the unrooted cost, so ours is its square root):

- ``dtw``: ``kernel.dtw_rows`` unchanged.
- ``ddtw`` (Keogh & Pazzani 2001): DTW of the derivatives (``derivative``: aeon's "average of
  slopes", ``m - 2`` values per profile of ``m`` slots).
- ``wdtw`` (Jeong, Jeong & Omitaomu 2011): each cell ``(a, b)`` costs
  ``w(|a - b|) * (x[a] - y[b])**2`` with the modified logistic weight
  ``w(k) = w_max / (1 + exp(-g * (k - L/2)))``, ``L`` the length of the series compared;
  ``g`` defaults to ``WDTW_G = 0.05`` (the paper's value and aeon's default), ``w_max`` to 1.
- ``wddtw``: WDTW of the derivatives (``L = m - 2`` in the weight, as aeon does).

- ``erp``, ``msm``, ``twe``, ``shape_dtw``: ``elastic.py`` (definitions, parameters and how
  each value relates to aeon's in ``erp.py``, ``msm.py``, ``twe.py``, ``shape_dtw.py``: ERP, MSM
  and TWE are L1 costs returned as they are, shape-DTW the square root like our DTW).

Callers always pass raw profiles (``m`` slots); the derivative is taken inside.

Window: as in ``kernel.py`` (dtaidistance's meaning, ``|a - b| < window``, None/0 =
unconstrained), a band restricting the cells on top of the weight. Unconstrained is the
standard WDTW. For the derivative variants the band is on the derivative's indices; derivative
value ``i`` sits at slot ``i + 1``, so the window still bounds the shift in slots, and any
``window >= m - 2`` is unconstrained.

The weighted kernel is the DTW kernel's template with cell weights (``vector_kernels.py``, or
its plain numba fallback): the weight of a cell depends only on ``|a - b|``, one scalar for all
``LANES`` column profiles.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import partial
from numbers import Real

import numba
import numpy as np

from meterflow.errors import ConfigError, SchemaError

from .compiled import run_kernel
from .elastic import ELASTIC, elastic_cross, elastic_rows
from .erp import ERP_G
from .kernel import (
    RowComputer,
    as_profile_array,
    band_cells,
    band_width,
    dtw_cross,
    dtw_rows,
    fill_rows,
)
from .lanes import lane_blocks
from .msm import MSM_C
from .shape_dtw import SHAPE_REACH, check_reach
from .twe import TWE_LMBDA, TWE_NU
from .vector_kernels import column_pad

DISTANCES = ("dtw", "ddtw", "wdtw", "wddtw", *ELASTIC)
WDTW_G = 0.05  # Jeong et al. 2011; aeon's default
W_MAX = 1.0
_TAG = re.compile(r"[A-Za-z0-9_.-]+")


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class Distance:
    """One distance of ``DISTANCES`` with its parameters, each used by one distance only:
    ``g`` and ``w_max`` the weighted ones', ``erp_g`` ERP's gap value, ``msm_c`` MSM's split /
    merge cost, ``twe_nu`` and ``twe_lmbda`` TWE's stiffness and edit penalty, ``reach``
    shape-DTW's descriptor half-width (defaults: aeon's)."""

    name: str
    g: float = WDTW_G
    w_max: float = W_MAX
    erp_g: float = ERP_G
    msm_c: float = MSM_C
    twe_nu: float = TWE_NU
    twe_lmbda: float = TWE_LMBDA
    reach: int = SHAPE_REACH

    def __post_init__(self) -> None:
        if self.name not in DISTANCES:
            raise ConfigError(f"unknown DTW distance {self.name!r}; choose one of {DISTANCES}")
        _check_real("WDTW steepness g", self.g, low=0.0)
        _check_real("WDTW w_max", self.w_max, low=0.0, strict=True)
        _check_real("ERP gap value erp_g", self.erp_g)
        _check_real("MSM cost msm_c", self.msm_c, low=0.0)
        _check_real("TWE stiffness twe_nu", self.twe_nu, low=0.0)
        _check_real("TWE penalty twe_lmbda", self.twe_lmbda, low=0.0)
        check_reach(self.reach)

    @property
    def derivative(self) -> bool:
        """Whether the profiles are replaced by their derivative first."""
        return self.name in ("ddtw", "wddtw")

    @property
    def weighted(self) -> bool:
        """Whether cells are weighted by the logistic weight of ``|a - b|``."""
        return self.name in ("wdtw", "wddtw")

    @property
    def elastic(self) -> bool:
        """Whether it is one of ``elastic.ELASTIC`` (its own kernel, not DTW's)."""
        return self.name in ELASTIC

    @property
    def params(self) -> np.ndarray:
        """The elastic kernel's parameters (``elastic.py``), float64."""
        by_name = {
            "erp": [self.erp_g],
            "msm": [self.msm_c],
            "twe": [self.twe_nu, self.twe_lmbda],
            "shape_dtw": [self.reach],
        }
        return np.array(by_name.get(self.name, []), dtype=np.float64)

    @property
    def tag(self) -> str:
        """Short name with its parameters, e.g. ``wddtw-g0.05``, ``msm-c1.0`` (empty for
        plain ``dtw``)."""
        if self.name in ("dtw", "ddtw"):
            return "" if self.name == "dtw" else self.name
        if self.weighted:
            tag = f"{self.name}-g{float(self.g)!r}"
            return tag if self.w_max == W_MAX else f"{tag}-wmax{float(self.w_max)!r}"
        return {
            "erp": f"erp-g{float(self.erp_g)!r}",
            "msm": f"msm-c{float(self.msm_c)!r}",
            "twe": f"twe-nu{float(self.twe_nu)!r}-l{float(self.twe_lmbda)!r}",
            "shape_dtw": f"shape_dtw-r{int(self.reach)}",
        }[self.name]


def _is_real(value: object) -> bool:
    """A real number, not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _check_real(what: str, value: object, low: float | None = None, strict: bool = False) -> None:
    """ConfigError unless ``value`` is a finite real, ``>= low`` (``> low`` if ``strict``)."""
    ok = _is_real(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if strict else value >= low
    if not ok:
        bound = "" if low is None else f" and {'>' if strict else '>='} {low:g}"
        raise ConfigError(f"{what} must be finite{bound}, got {value!r}")


def distance_spec(metric: str | Distance) -> Distance:
    """``metric`` as a ``Distance`` (a name gets the default ``g`` and ``w_max``)."""
    if isinstance(metric, Distance):
        return metric
    if not isinstance(metric, str):
        raise ConfigError(f"DTW distance must be one of {DISTANCES}, got {metric!r}")
    return Distance(metric)


def cache_tag(metric: str | Distance, normalization: str) -> str:
    """Tag naming normalisation and distance for a ``DtwCache`` folder: ``normalization`` itself
    for plain DTW (existing caches stay valid), else e.g. ``l2.wddtw-g0.05``."""
    spec = distance_spec(metric)
    tag = f"{normalization}.{spec.tag}" if spec.tag else normalization
    if not _TAG.fullmatch(tag):
        raise ConfigError(f"cache tag {tag!r}: normalization must use letters, digits, _.-")
    return tag


# --------------------------------------------------------------------------- transforms


def derivative(X: np.ndarray) -> np.ndarray:
    """Keogh & Pazzani's derivative of each profile (aeon's ``slope_derivative``):
    ``d[i - 1] = ((q[i] - q[i-1]) + (q[i+1] - q[i-1]) / 2) / 2`` for ``i = 1 .. m-2``.

    ``X``: (profiles x ``m`` slots), finite, ``m >= 3``; returns (profiles x ``m - 2``) float64.
    """
    x = as_profile_array(X)
    if x.shape[1] < 3:
        raise SchemaError(f"derivative DTW needs profiles of >= 3 slots, got {x.shape[1]}")
    left, mid, right = x[:, :-2], x[:, 1:-1], x[:, 2:]
    return np.ascontiguousarray(((mid - left) + (right - left) / 2.0) / 2.0)


def wdtw_weights(length: int, g: float = WDTW_G, w_max: float = W_MAX) -> np.ndarray:
    """``w(k) = w_max / (1 + exp(-g * (k - length / 2)))`` for ``k = 0 .. length - 1``."""
    k = np.arange(length, dtype=np.float64)
    return w_max / (1.0 + np.exp(-g * (k - length / 2)))


def _prepared(spec: Distance, X: np.ndarray, name: str = "X") -> np.ndarray:
    """Checked profiles, derived if the distance asks for it."""
    x = as_profile_array(X, name=name)
    return derivative(x) if spec.derivative else x


# --------------------------------------------------------------------------- weighted DTW


def wdtw_rows(
    X: np.ndarray,
    start: int,
    stop: int,
    window: int | None = None,
    *,
    g: float = WDTW_G,
    w_max: float = W_MAX,
    out: np.ndarray | None = None,
    parallel: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Rows ``start .. stop-1`` of the condensed WDTW matrix of ``X[:stop]`` (no derivative).

    Same contract as ``kernel.dtw_rows`` (layout, ``out``, ``parallel=False`` = calling thread
    only); the weight uses ``L = X.shape[1]``. Values are ``sqrt`` of the weighted cost.
    """
    Distance("wdtw", g=g, w_max=w_max)  # validates g and w_max
    x = as_profile_array(X)
    length = x.shape[1]
    band = band_width(window, length)
    pad = column_pad(length, band)
    wv = wdtw_weights(length, g, w_max)
    columns = lane_blocks(x[: max(stop - 1, 1)], pad)
    kernel = "rows_parallel" if parallel else "rows_serial"

    def compute(r0: int, r1: int, target: np.ndarray) -> None:
        run_kernel(kernel, x, columns, r0, r1, band, pad, wv, target)

    return fill_rows(
        x,
        start,
        stop,
        compute,
        band_cells(length, band),
        out=out,
        parallel=parallel,
        progress=progress,
        caller="wdtw_rows",
    )


def wdtw_cross(
    A: np.ndarray,
    B: np.ndarray,
    window: int | None = None,
    *,
    g: float = WDTW_G,
    w_max: float = W_MAX,
) -> np.ndarray:
    """WDTW between every row of ``A`` and every row of ``B``: ``(len(A), len(B))`` float64."""
    Distance("wdtw", g=g, w_max=w_max)
    a = as_profile_array(A, name="A")
    b = as_profile_array(B, name="B")
    if a.shape[1] != b.shape[1]:
        raise SchemaError(f"wdtw_cross: A has {a.shape[1]} slots but B has {b.shape[1]}")
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.float64)
    band = band_width(window, a.shape[1])
    pad = column_pad(a.shape[1], band)
    if out.size:
        wv = wdtw_weights(a.shape[1], g, w_max)
        with numba.parallel_chunksize(1):
            run_kernel("cross_parallel", a, lane_blocks(b, pad), b.shape[0], band, pad, wv, out)
    return out


# --------------------------------------------------------------------------- dispatch


def distance_rows(
    metric: str | Distance,
    X: np.ndarray,
    start: int,
    stop: int,
    window: int | None = None,
    *,
    out: np.ndarray | None = None,
    parallel: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Rows ``start .. stop-1`` of the condensed matrix of distance ``metric`` (a name of
    ``DISTANCES`` or a ``Distance``) over the raw profiles ``X``; contract of ``dtw_rows``."""
    spec = distance_spec(metric)
    x = _prepared(spec, X)
    kwargs = {"out": out, "parallel": parallel, "progress": progress}
    if spec.elastic:
        return elastic_rows(spec.name, spec.params, x, start, stop, window, **kwargs)
    if spec.weighted:
        return wdtw_rows(x, start, stop, window, g=spec.g, w_max=spec.w_max, **kwargs)
    return dtw_rows(x, start, stop, window, **kwargs)


def distance_cross(
    metric: str | Distance, A: np.ndarray, B: np.ndarray, window: int | None = None
) -> np.ndarray:
    """Distance ``metric`` between every row of ``A`` and of ``B`` (raw profiles, equal slots)."""
    spec = distance_spec(metric)
    a = as_profile_array(A, name="A")
    b = as_profile_array(B, name="B")
    if a.shape[1] != b.shape[1]:
        raise SchemaError(f"distance_cross: A has {a.shape[1]} slots but B has {b.shape[1]}")
    a, b = _prepared(spec, a, "A"), _prepared(spec, b, "B")
    if spec.elastic:
        return elastic_cross(spec.name, spec.params, a, b, window)
    if spec.weighted:
        return wdtw_cross(a, b, window, g=spec.g, w_max=spec.w_max)
    return dtw_cross(a, b, window)


def distance_condensed(
    metric: str | Distance, X: np.ndarray, window: int | None = None, *, progress: bool = True
) -> np.ndarray:
    """All-pairs distance ``metric`` of the rows of ``X``, condensed lower triangle, float64."""
    x = as_profile_array(X)
    return distance_rows(metric, x, 0, x.shape[0], window, progress=progress)


def _compute_rows(
    metric: Distance,
    progress: bool,
    x: np.ndarray,
    start: int,
    stop: int,
    window: int | None,
    out: np.ndarray,
) -> None:
    """``RowComputer`` body of ``row_computer`` (module level, so it pickles)."""
    distance_rows(metric, x, start, stop, window, out=out, progress=progress)


def row_computer(metric: str | Distance, *, progress: bool = True) -> RowComputer | None:
    """``RowComputer`` for ``DtwCache.update(rows=...)`` computing ``metric`` in this process;
    None for plain ``dtw`` (the cache's default). Pair it with ``cache_tag`` as normalisation."""
    spec = distance_spec(metric)
    return None if spec.name == "dtw" else partial(_compute_rows, spec, progress)
