"""Scoring a fleet meter block by meter block, here or on a Dask cluster, with a bounded
working set.

A reading's evidence needs only its own meter's readings, except the daily-energy and base-load
changes, whose peer correction couples meters: those come first, as day grids of the whole
fleet (``fleet_changes``: each block's daily statistics, then ``windowed.change_of`` on the
fleet's grids, one number per meter-day). Then each block of ``block_meters`` meters is scored
on its own with its rows of those grids (``score_fleet``): the detector's evidence, spikes,
clock shifts and flat runs, the z components and the score; only per-reading results come back.
``blocks.map_blocks`` runs the blocks here or as tasks on the Dask scheduler and returns them
in order, so both give the same numbers. A detector that reads other meters (the hybrid
forecaster's neighbours) is scored as one block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from meterflow import defaults
from meterflow.anomaly.fleetparts import n_days
from meterflow.anomaly.scoring import COMPONENTS
from meterflow.anomaly.windowed import change_of, daily_base, daily_import, day_index
from meterflow.blocks import map_blocks, meter_blocks
from meterflow.series.fleet import FleetSeries

if TYPE_CHECKING:
    from meterflow.anomaly.predictor import AnomalyPredictor

T = TypeVar("T")
Changes = tuple[np.ndarray, np.ndarray]  # (n_meters, n_days) daily-energy and base-load change


@dataclass(frozen=True)
class Blocking:
    """How per-meter work runs: ``block_meters`` meters at a time, here or on the Dask cluster
    at ``scheduler`` (``''`` = here)."""

    block_meters: int = defaults.BLOCK_METERS
    scheduler: str = ""

    def blocks(self, n_meters: int) -> list[np.ndarray]:
        return meter_blocks(n_meters, self.block_meters)

    def run(
        self, func: Callable[..., T], items: Sequence[Any], shared: tuple[Any, ...], label: str
    ) -> Iterator[T]:
        """``func(item, *shared)`` of every item, in order."""
        return map_blocks(func, items, shared, scheduler=self.scheduler, label=label)


class LazyBlocks(Sequence):
    """``make(block)`` of each block, made only when its turn comes (a block's inputs exist
    while it is in flight, not all at once)."""

    def __init__(self, blocks: Sequence[Any], make: Callable[[Any], Any]) -> None:
        self.blocks, self.make = blocks, make

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, i: int) -> Any:  # type: ignore[override]
        return self.make(self.blocks[i])

    def __iter__(self) -> Iterator[Any]:
        return (self.make(block) for block in self.blocks)


def span(fleet: FleetSeries, block: np.ndarray) -> slice:
    """The positions of the readings of a block of consecutive meters."""
    first, end = np.searchsorted(fleet.meter_idx, [block[0], block[-1] + 1])
    return slice(int(first), int(end))


def part(fleet: FleetSeries, block: np.ndarray) -> FleetSeries:
    """The fleet of a block of consecutive meters."""
    return fleet.series_range(int(block[0]), int(block[-1]) + 1)


@dataclass(frozen=True)
class DailyGrids:
    """``(n_meters, n_days)`` each meter-day's imported energy and base load."""

    energy: np.ndarray
    base: np.ndarray

    def changes(self, meter_ids: np.ndarray, peers: dict[str, tuple[str, ...]] | None) -> Changes:
        return change_of(self.energy, meter_ids, peers), change_of(self.base, meter_ids, peers)


def daily_grids(fleet: FleetSeries, blocking: Blocking) -> DailyGrids:
    """The daily statistics of every meter-day of the fleet, block by block."""
    shape = (len(fleet.meter_ids), n_days(fleet))
    out = DailyGrids(np.full(shape, np.nan), np.full(shape, np.nan))
    for block in blocking.blocks(shape[0]):
        daily = block_daily(part(fleet, block), shape[1])
        out.energy[block], out.base[block] = daily.energy, daily.base
    return out


def block_daily(fleet: FleetSeries, days: int) -> DailyGrids:
    """The daily statistics of one block, on ``days`` days."""
    grids = []
    for statistic in (daily_import, daily_base):
        grid = np.full((len(fleet.meter_ids), days), np.nan)
        values = statistic(fleet)
        grid[:, : values.shape[1]] = values[:, :days]
        grids.append(grid)
    return DailyGrids(*grids)


def fleet_changes(
    fleet: FleetSeries, peers: dict[str, tuple[str, ...]] | None, blocking: Blocking
) -> Changes:
    """The fleet's daily-energy and base-load change grids (``windowed.change_of``)."""
    return daily_grids(fleet, blocking).changes(fleet.meter_ids, peers)


@dataclass(frozen=True)
class ScoreBlock:
    """What one block's scoring needs besides the predictor."""

    fleet: FleetSeries
    where: np.ndarray  # readings to score
    changes: Changes  # the block's rows of the fleet's change grids


@dataclass(frozen=True)
class BlockScores:
    """Per-reading results of a fleet or of one of its blocks (NaN where not scored)."""

    parts: np.ndarray  # (n_components, N) z-scale components
    score: np.ndarray  # (N,)
    best: np.ndarray  # (N,) int8 the component that decided (where the score is known)
    day_change: np.ndarray  # (N,) the day's energy change against own history and peers


def score_block(block: ScoreBlock, predictor: AnomalyPredictor) -> BlockScores:
    """Scores of one block's readings in ``where`` (one task)."""
    fleet, where = block.fleet, block.where
    ev = predictor.evidence(fleet, where, block.changes)
    model = predictor.calibrated_model
    parts = model.components(fleet, ev)
    parts[:, ~where] = np.nan
    day_change = np.where(where, ev.ratio[fleet.meter_idx, day_index(fleet)], np.nan)
    best = np.argmax(np.where(np.isfinite(parts), parts, -np.inf), axis=0).astype(np.int8)
    return BlockScores(parts, model.score(parts), best, day_change)


def score_fleet(
    predictor: AnomalyPredictor, fleet: FleetSeries, where: np.ndarray, blocking: Blocking
) -> BlockScores:
    """``score_block`` of every block of the fleet, put together in the fleet's order."""
    changes = fleet_changes(fleet, predictor.peers, blocking)
    blocks = blocks_for(predictor, len(fleet.meter_ids), blocking)
    items = LazyBlocks(
        blocks,
        lambda b: ScoreBlock(part(fleet, b), where[span(fleet, b)], (changes[0][b], changes[1][b])),
    )
    n = len(fleet.values)
    nan = np.full(n, np.nan)
    out = BlockScores(np.full((len(COMPONENTS), n), np.nan), nan, np.zeros(n, np.int8), nan.copy())
    results = blocking.run(score_block, items, (predictor,), "anomaly scores by meter block")
    for block, result in zip(blocks, results, strict=True):
        at = span(fleet, block)
        out.parts[:, at], out.score[at] = result.parts, result.score
        out.best[at], out.day_change[at] = result.best, result.day_change
    return out


def blocks_for(predictor: AnomalyPredictor, n_meters: int, blocking: Blocking) -> list[np.ndarray]:
    """The meter blocks of a predictor's scoring: one block when its detector reads other
    meters (they must be in the same fleet)."""
    if predictor.detector.reads_other_meters:
        return meter_blocks(n_meters, max(n_meters, 1))
    return blocking.blocks(n_meters)
