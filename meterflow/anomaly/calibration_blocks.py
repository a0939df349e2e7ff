"""The two block passes of calibration (``calibration``), each with a bounded working set.

1. ``clean_validation``: every meter block's evidence on the calibration window gives its part of
   the score model's statistics (``scoring.score_stats``); the meters of the calibration sample
   (``fleetparts.sample_meters``: every meter of a fleet of at most ``SAMPLE_METERS``, else a
   seeded sample of that many) also give the residuals that set the fleet's own centres and
   spreads, and their validation readings' evidence, scored once the model is finished.
2. ``planted_copy``: anomalies are planted into the sample's meters block by block (the draws
   going on from block to block as in one ``plant_anomalies`` call), the planted meters' daily
   statistics replace theirs in the fleet's day grids (peers couple meters), and each planted
   block is scored with the finished model.

A block runs here or on the Dask scheduler (``blocked.Blocking``); the results are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from meterflow.anomaly.blocked import (
    Blocking,
    Changes,
    DailyGrids,
    LazyBlocks,
    block_daily,
    blocks_for,
    part,
)
from meterflow.anomaly.events import align_labels
from meterflow.anomaly.fleetparts import fleet_frame, n_days, readings_at, select_meters
from meterflow.anomaly.planting import Planter
from meterflow.anomaly.predictor import AnomalyPredictor
from meterflow.anomaly.scoring import (
    Evidence,
    ScoreModel,
    ScoreStats,
    finish_score_model,
    score_stats,
)
from meterflow.series.fleet import VAL, FleetSeries


@dataclass(frozen=True)
class FitBlock:
    """One block of the first pass."""

    fleet: FleetSeries
    changes: Changes
    pool: np.ndarray  # (n_meters,) the block's meters in the calibration sample


@dataclass(frozen=True)
class BlockFit:
    """One block's statistics, and its sample meters' validation readings and evidence."""

    stats: ScoreStats
    val: FleetSeries
    evidence: Evidence


def fit_block(block: FitBlock, predictor: AnomalyPredictor) -> BlockFit:
    """The first pass on one block (one task)."""
    fleet = block.fleet
    is_val = predictor.scored(fleet, fleet.split != VAL)
    ev = predictor.evidence(fleet, is_val, block.changes)
    everything = np.ones(len(is_val), dtype=bool)
    stats = score_stats(fleet, ev, is_val, everything, predictor.windowed, block.pool)
    keep = is_val & block.pool[fleet.meter_idx]
    pool = np.flatnonzero(block.pool)
    sample_ev = replace(ev.at(keep), ratio=ev.ratio[pool], base=ev.base[pool], clock=ev.clock[pool])
    return BlockFit(stats, select_meters(readings_at(fleet, keep), pool), sample_ev)


@dataclass(frozen=True)
class CleanValidation:
    """The score model, and the sample's validation readings scored with it."""

    model: ScoreModel
    z: np.ndarray  # (n_components, n) z components
    day: np.ndarray  # (n,) meter-day ids
    labelled: np.ndarray  # (n,) inside a given (real) label


def clean_validation(
    predictor: AnomalyPredictor,
    fleet: FleetSeries,
    daily: DailyGrids,
    sample: np.ndarray,
    labels: pd.DataFrame | None,
    blocking: Blocking,
    changes: Changes | None = None,
) -> CleanValidation:
    """The first pass (module docstring) on the calibration window's ``fleet`` (``changes``:
    its change grids, when already known)."""
    if changes is None:
        changes = daily.changes(fleet.meter_ids, predictor.peers)
    pool = np.zeros(len(fleet.meter_ids), dtype=bool)
    pool[sample] = True
    blocks = blocks_for(predictor, len(fleet.meter_ids), blocking)
    items = LazyBlocks(
        blocks, lambda b: FitBlock(part(fleet, b), (changes[0][b], changes[1][b]), pool[b])
    )
    fits = list(blocking.run(fit_block, items, (predictor,), "calibration by meter block"))
    ids = tuple(str(m) for m in fleet.meter_ids)
    model = finish_score_model(
        [f.stats for f in fits],
        *(ids, fleet.slots_per_day, predictor.detector.signed, predictor.windowed),
    )
    days, z, day, labelled = n_days(fleet), [], [], []
    for block, fit in zip(blocks, fits, strict=True):
        meters = block[pool[block]]
        z.append(model.components(fit.val, fit.evidence))
        day.append(meters[fit.val.meter_idx] * days + fit.val.time_idx // fleet.slots_per_day)
        labelled.append(labelled_readings(fit.val, labels))
    return CleanValidation(
        model, np.concatenate(z, axis=1), np.concatenate(day), np.concatenate(labelled)
    )


def labelled_readings(fleet: FleetSeries, labels: pd.DataFrame | None) -> np.ndarray:
    """Whether each reading of ``fleet`` is inside a given (real) label."""
    if labels is None:
        return np.zeros(len(fleet.values), dtype=bool)
    ids = fleet.meter_ids[fleet.meter_idx]
    stamps = fleet.timestamps(np.arange(len(fleet.values)))
    return align_labels(ids, stamps, labels, fleet.resolution_min)[0]


@dataclass(frozen=True)
class PlantedBlock:
    """One planted block of the second pass."""

    fleet: FleetSeries  # the block's sample meters, anomalies planted
    changes: Changes
    meters: np.ndarray  # their positions in the calibration window's fleet


@dataclass(frozen=True)
class PlantedScores:
    """Components of the planted copy's validation readings, with their truth."""

    z: np.ndarray  # (n_components, n)
    event: np.ndarray  # (n,) anomaly id (planted, then real), -1 = normal
    kind: np.ndarray  # (n,) object: the anomaly's kind, None = normal
    day: np.ndarray  # (n,) meter-day ids


@dataclass(frozen=True)
class PlantedInputs:
    """One planted copy of the sample's validation days, before any detector scores it."""

    blocks: list[np.ndarray]  # positions in ``sample`` of each block's meters
    edits: list[tuple[np.ndarray, np.ndarray]]  # per block: changed positions, new values
    truth: pd.DataFrame  # the planted anomalies
    changes: Changes  # the fleet's change grids with the planted days


def plant_copy(
    fleet: FleetSeries,
    daily: DailyGrids,
    sample: np.ndarray,
    planter: Planter,
    blocks: list[np.ndarray],
    peers: dict[str, tuple[str, ...]] | None,
) -> PlantedInputs:
    """Anomalies planted into the ``sample`` meters ``blocks`` at a time (the draws going on
    from block to block), the planted meters' daily statistics in the fleet's day grids."""
    grids = DailyGrids(daily.energy.copy(), daily.base.copy())
    edits, truths = [], []
    for block in blocks:
        sub = select_meters(fleet, sample[block])
        planted, truth = planter.plant(fleet_frame(sub), [str(m) for m in sub.meter_ids])
        values = planted["value"].to_numpy(dtype=np.float64)
        edits.append(_edit(sub.values, values))
        planted_daily = block_daily(replace(sub, values=values), grids.energy.shape[1])
        grids.energy[sample[block]] = planted_daily.energy
        grids.base[sample[block]] = planted_daily.base
        truths.append(truth)
    changes = grids.changes(fleet.meter_ids, peers)
    return PlantedInputs(blocks, edits, pd.concat(truths, ignore_index=True), changes)


def planted_copy(
    predictor: AnomalyPredictor,
    model: ScoreModel,
    fleet: FleetSeries,
    daily: DailyGrids,
    sample: np.ndarray,
    planter: Planter,
    labels: pd.DataFrame | None,
    blocking: Blocking,
    inputs: PlantedInputs | None = None,
) -> PlantedScores:
    """The second pass (module docstring): one copy of the validation days of the sample's
    meters with an anomaly planted into each, scored with ``model`` (``inputs``: the copy
    already planted by ``plant_copy`` with the predictor's blocks, shared by detectors)."""
    if inputs is None:
        blocks = blocks_for(predictor, len(sample), blocking)
        inputs = plant_copy(fleet, daily, sample, planter, blocks, predictor.peers)
    changes = inputs.changes
    items = LazyBlocks(
        list(zip(inputs.blocks, inputs.edits, strict=True)),
        lambda item: _planted_block(fleet, sample[item[0]], item[1], changes),
    )
    shared = (predictor, model, inputs.truth, labels, n_days(fleet))
    parts = list(blocking.run(score_planted_block, items, shared, "planted validation copy"))
    return PlantedScores(
        np.concatenate([p.z for p in parts], axis=1),
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("event", "kind", "day")),
    )


def _edit(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The positions where ``after`` differs from ``before`` and its values there."""
    changed = np.flatnonzero(~((before == after) | (np.isnan(before) & np.isnan(after))))
    return changed, after[changed]


def _planted_block(
    fleet: FleetSeries, meters: np.ndarray, edit: tuple[np.ndarray, np.ndarray], changes: Changes
) -> PlantedBlock:
    sub = select_meters(fleet, meters)
    values = sub.values.copy()
    values[edit[0]] = edit[1]
    rows = (changes[0][meters], changes[1][meters])
    return PlantedBlock(replace(sub, values=values), rows, meters)


def score_planted_block(
    block: PlantedBlock,
    predictor: AnomalyPredictor,
    model: ScoreModel,
    truth: pd.DataFrame,
    labels: pd.DataFrame | None,
    days: int,
) -> PlantedScores:
    """The scored validation readings of one planted block (one task)."""
    fleet = block.fleet
    where = predictor.scored(fleet, fleet.split != VAL)
    z = model.components(fleet, predictor.evidence(fleet, where, block.changes))[:, where]
    event, kind = _truth(fleet, where, truth, labels)
    day = block.meters[fleet.meter_idx] * days + fleet.time_idx // fleet.slots_per_day
    return PlantedScores(z, event, kind, day[where])


def _truth(
    fleet: FleetSeries, where: np.ndarray, planted: pd.DataFrame, labels: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly id and kind of each scored reading: planted first, then real labels."""
    ids = fleet.meter_ids[fleet.meter_idx[where]]
    stamps = fleet.timestamps(np.flatnonzero(where))
    hit, kind, event = align_labels(ids, stamps, planted, fleet.resolution_min)
    if labels is not None:
        real, real_kind, real_id = align_labels(ids, stamps, labels, fleet.resolution_min)
        add = real & ~hit
        event = np.where(add, real_id + len(planted), event)
        kind = np.where(add, real_kind, kind)
    return np.where(event >= 0, event, -1), kind
