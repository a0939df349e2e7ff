"""The spatial grid of the ``hybrid`` forecaster (seed 001, the hybrid spatio-temporal
forecasting project): each meter's neighbours' recent load.

The grid of a meter is ``grid_size x grid_size`` cells centred on the meter (north up), sized to
hold its ``n_neighbours`` nearest meters (great-circle distance from latitude/longitude). Each
cell holds, for each of the last ``spatial_lags`` slots up to the window end, the mean scaled
reading of the neighbours in that cell (0 where none has a reading), plus one static channel with
the share of the neighbours placed in the cell. The meter itself is not on its grid.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.errors import SchemaError

log = logging.getLogger(__name__)

EARTH_RADIUS_KM = 6371.0


@dataclass(frozen=True)
class SpatialLayout:
    """Neighbours of each meter and the grid cell each neighbour falls in."""

    meter_ids: tuple[str, ...]
    neighbours: np.ndarray  # (n_meters, K) int64 positions in meter_ids, -1 = none
    cells: np.ndarray  # (n_meters, K) int64 flat cell index, -1 = none
    occupancy: np.ndarray  # (n_meters, G*G) float32 share of the K neighbours per cell
    grid_size: int

    @property
    def n_neighbours(self) -> int:
        return self.neighbours.shape[1]

    def index_of(self, meter_ids: np.ndarray | pd.Series) -> np.ndarray:
        """Positions of ``meter_ids`` in the layout, -1 where unknown."""
        return pd.Index(self.meter_ids).get_indexer(pd.Index(np.asarray(meter_ids, dtype=object)))


def build_layout(
    meter_ids: np.ndarray, meters: pd.DataFrame, n_neighbours: int, grid_size: int
) -> SpatialLayout:
    """Nearest neighbours and grid cells of ``meter_ids`` from the meters table's coordinates.

    Meters without coordinates have no neighbours and are nobody's neighbour."""
    for col in ("meter_id", "latitude", "longitude"):
        if col not in meters.columns:
            raise SchemaError(f"meters table lacks column {col!r} needed by the hybrid model")
    ids = np.asarray(meter_ids, dtype=object).astype(str)
    coords = (
        meters.assign(meter_id=meters["meter_id"].astype(str))
        .drop_duplicates("meter_id")
        .set_index("meter_id")[["latitude", "longitude"]]
        .reindex(ids)
        .to_numpy(dtype=np.float64)
    )
    known = np.isfinite(coords).all(axis=1)
    if (~known).any():
        log.warning(
            "hybrid: %d meter(s) lack coordinates (e.g. %s); their grids stay empty",
            int((~known).sum()),
            ids[~known][:3].tolist(),
        )
    n = len(ids)
    k = max(0, min(n_neighbours, int(known.sum()) - 1))
    neighbours = np.full((n, n_neighbours), -1, dtype=np.int64)
    cells = np.full((n, n_neighbours), -1, dtype=np.int64)
    occupancy = np.zeros((n, grid_size * grid_size), dtype=np.float32)
    if k == 0:
        return SpatialLayout(tuple(ids), neighbours, cells, occupancy, grid_size)
    lat, lon = np.radians(coords[:, 0]), np.radians(coords[:, 1])
    cand = np.flatnonzero(known)
    for i in cand:
        dy = EARTH_RADIUS_KM * (lat[cand] - lat[i])
        dx = EARTH_RADIUS_KM * (lon[cand] - lon[i]) * np.cos(lat[i])
        dist = np.hypot(dx, dy)
        dist[cand == i] = np.inf
        near = np.argsort(dist, kind="stable")[:k]
        half = max(np.abs(dx[near]).max(), np.abs(dy[near]).max(), 1e-9)
        col = np.clip(
            ((dx[near] + half) / (2 * half) * grid_size).astype(np.int64), 0, grid_size - 1
        )
        row = np.clip(
            ((half - dy[near]) / (2 * half) * grid_size).astype(np.int64), 0, grid_size - 1
        )
        neighbours[i, :k] = cand[near]
        cells[i, :k] = row * grid_size + col
        np.add.at(occupancy[i], cells[i, :k], 1.0 / k)
    return SpatialLayout(tuple(ids), neighbours, cells, occupancy, grid_size)


def grids_from_recent(layout: SpatialLayout, targets: np.ndarray, recent: np.ndarray) -> np.ndarray:
    """Grids ``(B, G, G, L + 1)`` float32 (channels last) of meters ``targets`` (layout
    positions, -1 = no grid) from their neighbours' recent scaled readings ``recent (B, K, L)``
    (NaN = absent)."""
    b, k, lags = recent.shape
    g2 = layout.grid_size**2
    total = np.zeros((b, lags, g2), dtype=np.float64)
    count = np.zeros((b, lags, g2), dtype=np.float64)
    tgt = np.maximum(targets, 0)
    cells = np.where((targets >= 0)[:, None], layout.cells[tgt], -1)
    rows = np.arange(b)
    for j in range(k):
        cell = cells[:, j]
        vals = recent[:, j, :]
        ok = (cell >= 0)[:, None] & np.isfinite(vals)
        total[rows, :, np.maximum(cell, 0)] += np.where(ok, vals, 0.0)
        count[rows, :, np.maximum(cell, 0)] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, 0.0)
    occ = np.where((targets >= 0)[:, None], layout.occupancy[tgt], 0.0)
    grid = np.concatenate([mean, occ[:, None, :]], axis=1).astype(np.float32)
    grid = grid.reshape(b, lags + 1, layout.grid_size, layout.grid_size)
    return np.ascontiguousarray(grid.transpose(0, 2, 3, 1))


def recent_from_wide(
    layout: SpatialLayout, wide: np.ndarray, targets: np.ndarray, end_time: np.ndarray, lags: int
) -> np.ndarray:
    """Neighbours' scaled readings at the ``lags`` slots up to ``end_time`` (inclusive) from a
    ``(n_meters, n_times)`` matrix (NaN = no reading): ``(B, K, lags)``."""
    nb = np.where((targets >= 0)[:, None], layout.neighbours[np.maximum(targets, 0)], -1)
    times = np.asarray(end_time, dtype=np.int64)[:, None] - lags + 1 + np.arange(lags)
    ok = (nb >= 0)[:, :, None] & (times >= 0)[:, None, :]
    vals = wide[np.maximum(nb, 0)[:, :, None], np.maximum(times, 0)[:, None, :]]
    return np.where(ok, vals, np.nan)
