"""Thresholds learned from anomalies planted into copies of the validation days.

Real load data carries large evidence of its own (holidays, heat waves, quantised readings), so
no fixed quantile of unlabelled scores says where an anomaly begins. Calibration instead:

1. fits the score model (``scoring``) on the clean validation readings;
2. plants one anomaly per meter of the calibration sample (every meter of a fleet of at most
   ``fleetparts.SAMPLE_METERS``, else a seeded sample of that many; ``planting``, every kind in
   turn) into copies of the validation days, as many copies as it takes to plant
   ``MIN_PLANTED`` anomalies (at most ``MAX_COPIES``), and scores them; labelled real
   anomalies in validation, when given, count as anomalies too;
3. chooses one threshold per component (``allocate_thresholds``). Each starts where the
   component's daily maxima on the clean validation days exceed its equal share of the alarm
   budget (false meter-days per meter-month; ``tail_levels``: empirical where validation holds
   enough meter-days, else an exponential tail fitted to the largest), then the budget left on the
   copies is spent lowering the thresholds that find the most planted anomalies per false
   meter-day, never below the level at which the component alone would spend the whole
   budget.

The thresholds rest on the sample's validation readings; every meter's own normalisation on its
own. Both passes over the fleet go meter block by meter block (``calibration_blocks``).

The result also says how well the detector found the planted anomalies (``val_planted_*``
metrics), which is how ``detector=auto`` chooses between detectors.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from meterflow.anomaly.blocked import Blocking, Changes, DailyGrids, blocks_for, daily_grids
from meterflow.anomaly.calibration_blocks import (
    PlantedInputs,
    clean_validation,
    plant_copy,
    planted_copy,
)
from meterflow.anomaly.fleetparts import sample_meters
from meterflow.anomaly.planting import KINDS, Planter
from meterflow.anomaly.predictor import AnomalyPredictor
from meterflow.anomaly.scoring import COMPONENTS, FLAG_LEVEL, ScoreModel
from meterflow.errors import SchemaError
from meterflow.series.fleet import DateSplit, FleetSeries, build_panel

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44
MIN_PLANTED = 6 * len(KINDS)  # planted anomalies calibration wants at least
MAX_COPIES = 8
STEPS = 40  # budget spent in about this many steps
TAIL_MIN = 10  # largest day maxima an exponential tail is fitted to
MIN_TAIL_SCALE = 0.5  # z units: the tail never falls faster than this


@dataclass(frozen=True)
class Scored:
    """Components of the scored readings of the planted copies, with their truth."""

    z: np.ndarray  # (n_components, N) z-scale components (NaN = unknown)
    event: np.ndarray  # (N,) anomaly id (planted or labelled), -1 = normal
    kind: np.ndarray  # (N,) object: the anomaly's kind, None = normal
    day: np.ndarray  # (N,) meter-day id (unique across copies)
    n_meter_days: int

    @property
    def normal(self) -> np.ndarray:
        """Readings of meter-days without an anomaly: a flag there is a false alarm."""
        return (self.event < 0) & ~aftermath(self.day, self.event >= 0)


@dataclass
class CalibrationData:
    """What calibration reads that no detector changes: the calibration window's fleet, its
    sample and day grids, their change grids and the planted copies (made on first use), so
    that the detectors of one run share them."""

    fleet: FleetSeries
    sample: np.ndarray
    daily: DailyGrids
    _changes: dict[int, Changes] = field(default_factory=dict)
    _copies: dict[tuple, PlantedInputs] = field(default_factory=dict)

    def changes(self, peers: dict[str, tuple[str, ...]] | None) -> Changes:
        """The change grids with ``peers`` (kept for the next detector with the same peers)."""
        if id(peers) not in self._changes:
            self._changes = {id(peers): self.daily.changes(self.fleet.meter_ids, peers)}
        return self._changes[id(peers)]

    def planted(
        self,
        predictor: AnomalyPredictor,
        planter: Planter,
        copy: tuple[int, int],
        blocking: Blocking,
    ) -> PlantedInputs:
        """The copy ``planter`` plants (``copy``: its seed and number, which say which it is)
        in the predictor's meter blocks (kept for the next detector)."""
        blocks = blocks_for(predictor, len(self.sample), blocking)
        key = (*copy, tuple(len(b) for b in blocks), id(predictor.peers))
        if key not in self._copies:
            self._copies[key] = plant_copy(
                *(self.fleet, self.daily, self.sample, planter, blocks, predictor.peers)
            )
        return self._copies[key]


def calibration_data(
    window: pd.DataFrame, resolution_min: int, dates: DateSplit, seed: int, blocking: Blocking
) -> CalibrationData:
    """The ``CalibrationData`` of a calibration window (see ``calibrate``)."""
    fleet = build_panel(window, resolution_min, dates)
    sample = sample_meters(fleet.meter_ids, seed)
    return CalibrationData(fleet, sample, daily_grids(fleet, blocking))


def aftermath(day: np.ndarray, anomalous: np.ndarray) -> np.ndarray:
    """Readings of the meter-days an anomaly touches and of the day after each: a flag there
    is neither found nor false (a day's energy changed by a spike, or a detector comparing
    with yesterday echoing it)."""
    touched = np.unique(day[anomalous])
    return np.isin(day, touched) | np.isin(day, touched + 1)


def calibrate(
    predictor: AnomalyPredictor,
    window: pd.DataFrame | None,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    budget: float,
    seed: int,
    blocking: Blocking | None = None,
    data: CalibrationData | None = None,
) -> dict[str, float]:
    """Fit ``predictor``'s score model and thresholds on the validation readings of
    ``window`` (which starts at least ``context_days`` before validation: the daily-change
    spread and the repeat rates are fitted on all of its days), ``blocking`` meters at a time
    (``calibration_blocks``); return the ``val_planted_*`` metrics of the finished predictor
    on the planted copies. ``data``: the window's ``calibration_data``, when the detectors of
    a run share it (``window`` is then not read)."""
    blocking = blocking or Blocking()
    if data is None:
        if window is None:
            raise ValueError("calibrate needs the calibration window or its data")
        data = calibration_data(window, predictor.resolution_min, dates, seed, blocking)
    fleet, sample, daily = data.fleet, data.sample, data.daily
    changes = data.changes(predictor.peers)
    clean = clean_validation(predictor, fleet, daily, sample, labels, blocking, changes)
    if not np.isfinite(clean.z).any():
        raise SchemaError("anomaly input: no validation reading could be scored")
    normal = ~aftermath(clean.day, clean.labelled)
    start = tail_levels(clean.z[:, normal], clean.day[normal], budget / len(COMPONENTS))
    floors = tail_levels(clean.z[:, normal], clean.day[normal], budget)
    del normal
    scored = score_planted(predictor, clean.model, data, labels, seed, blocking)
    budget_days = budget * scored.n_meter_days / DAYS_PER_MONTH
    thresholds = allocate_thresholds(scored, budget_days, start, floors)
    predictor.model = clean.model.with_thresholds(thresholds)
    metrics = planted_metrics(scored, thresholds)
    log.info(
        "%s: thresholds %s on %d planted anomalies (validation: %s)",
        predictor.detector.name,
        ", ".join(f"{c} {t:.2f}" for c, t in zip(COMPONENTS, thresholds, strict=True)),
        int(metrics["val_planted_events"]),
        ", ".join(f"{k[12:]} {v:.3f}" for k, v in metrics.items() if k.endswith(("f1", "call"))),
    )
    return metrics


def score_planted(
    predictor: AnomalyPredictor,
    model: ScoreModel,
    data: CalibrationData,
    labels: pd.DataFrame | None,
    seed: int,
    blocking: Blocking,
) -> Scored:
    """Plant anomalies into copies of the validation days of the sample's meters of the
    calibration window (``data``; each copy planted once per run) and score them."""
    fleet, daily, sample = data.fleet, data.daily, data.sample
    n_copies = min(MAX_COPIES, max(1, math.ceil(MIN_PLANTED / len(sample))))
    dates, res = fleet.dates, fleet.resolution_min
    parts, offset, day_offset, meter_days = [], 0, 0, 0
    for copy in range(n_copies):
        planter = Planter(dates.val_start, dates.test_start, res, seed + copy, first_kind=copy)
        inputs = data.planted(predictor, planter, (seed, copy), blocking)
        planted = planted_copy(
            *(predictor, model, fleet, daily, sample, planter, labels, blocking, inputs)
        )
        event = np.where(planted.event >= 0, planted.event + offset, -1)
        parts.append((planted.z, event, planted.kind, planted.day + day_offset))
        offset = int(event.max()) + 1 if (event >= 0).any() else offset
        day_offset += int(planted.day.max()) + 1 if len(planted.day) else 0
        meter_days += len(np.unique(planted.day))
    z, event, kind, day = (np.concatenate(p, axis=-1) for p in zip(*parts, strict=True))
    return Scored(z, event, kind, day, meter_days)


def tail_levels(clean: np.ndarray, day: np.ndarray, budget: float) -> np.ndarray:
    """Per component, the level its daily maxima on clean validation readings exceed on
    ``budget`` meter-days a month: empirical where validation holds enough days, else
    extrapolated with an exponential tail fitted to the ``TAIL_MIN`` (or 5 %) largest."""
    rate = budget / DAYS_PER_MONTH  # per meter-day
    floors = np.zeros(len(clean))
    for c, z in enumerate(clean):
        maxima = _day_maxima(np.where(np.isfinite(z), z, -np.inf), day)
        maxima = np.sort(maxima[np.isfinite(maxima)])[::-1]
        n = len(maxima)
        if n == 0:
            continue
        if n * rate >= 5:
            floors[c] = float(np.quantile(maxima, 1 - rate))
            continue
        k = min(max(TAIL_MIN, n // 20), n)
        top, base = maxima[: k - 1], maxima[k - 1]
        scale = max(float(np.mean(top - base)) if k > 1 else 0.0, MIN_TAIL_SCALE)
        floors[c] = float(base + scale * np.log(k / (n * rate)))
    return np.maximum(floors, 0.0)


def _day_maxima(z: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Largest ``z`` of each distinct ``day`` (order of the sorted day ids)."""
    _, inverse = np.unique(day, return_inverse=True)
    out = np.full(inverse.max() + 1 if len(inverse) else 0, -np.inf)
    np.maximum.at(out, inverse, z)
    return out


def flagged_by(z: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Readings whose score (largest ``component / threshold``) reaches ``FLAG_LEVEL``."""
    with np.errstate(invalid="ignore"):
        ratio = z / np.asarray(thresholds, dtype=np.float64)[:, None]
    return (np.where(np.isfinite(ratio), ratio, -np.inf) >= FLAG_LEVEL).any(axis=0)


class _Objective:
    """Half the share of anomalies found, half their mean share of flagged readings (so that
    a one-hour spike counts as much as a two-week theft), and the false meter-days."""

    def __init__(self, scored: Scored) -> None:
        self.z = scored.z
        self.normal = scored.normal
        self.truth = scored.event >= 0
        _, self.event, counts = np.unique(
            scored.event[self.truth], return_inverse=True, return_counts=True
        )
        self.size = counts.astype(np.float64)
        _, self.day = np.unique(scored.day[self.normal], return_inverse=True)
        self.n_days = int(self.day.max()) + 1 if len(self.day) else 0

    def value(self, flagged: np.ndarray) -> float:
        if not len(self.size):
            return 0.0
        hit = np.bincount(self.event, weights=flagged[self.truth], minlength=len(self.size))
        return 0.5 * float(np.mean(hit > 0)) + 0.5 * float(np.mean(hit / self.size))

    def false_days(self, flagged: np.ndarray) -> np.ndarray:
        return np.bincount(self.day, weights=flagged[self.normal], minlength=self.n_days) > 0

    def day_maxima(self, c: int) -> np.ndarray:
        """Largest normal reading of component ``c`` on each normal meter-day."""
        z = self.z[c, self.normal]
        return _day_maxima(np.where(np.isfinite(z), z, -np.inf), self.day)


def allocate_thresholds(
    scored: Scored, budget_days: float, start: np.ndarray, floors: np.ndarray
) -> np.ndarray:
    """One threshold per component (see the module docstring): from ``start``, lower the
    threshold that finds the most planted anomalies per false meter-day, a few days at a
    time, never below ``floors``, until ``budget_days`` are spent or nothing gains."""
    goal = _Objective(scored)
    maxima = [goal.day_maxima(c) for c in range(len(scored.z))]
    theta = np.where([np.isfinite(m).any() for m in maxima], np.maximum(start, floors), np.inf)
    flagged = flagged_by(scored.z, theta)
    false, current = goal.false_days(flagged), goal.value(flagged)
    step = max(1, math.ceil(budget_days / STEPS))
    while True:
        room = int(budget_days - false.sum())
        best = None
        for c, day_max in enumerate(maxima):
            for admit in (0, step):  # lower for free, or admitting a few false meter-days
                trial = _lowered(theta, c, day_max[~false], admit, floors[c])
                if trial is None:
                    continue
                fl = flagged_by(scored.z, trial)
                new_false = goal.false_days(fl)
                cost = int(new_false.sum() - false.sum())
                gain = (goal.value(fl) - current) / max(cost, 1)
                if cost <= room and gain > 0 and (best is None or gain > best[0]):
                    best = (gain, trial, fl, new_false)
        if best is None:
            break
        _, theta, flagged, false = best
        current = goal.value(flagged)
    return np.where(np.isfinite(theta), np.maximum(theta, 1e-6), np.inf)


def _lowered(
    theta: np.ndarray, c: int, day_max: np.ndarray, admit: int, floor: float
) -> np.ndarray | None:
    """``theta`` with component ``c`` lowered to just above the ``admit + 1``-th largest of the
    normal days' maxima still below it (so ``admit`` of them are flagged), not below
    ``floor``; None when that does not lower it."""
    below = np.sort(day_max[day_max < theta[c]])[::-1]
    level = below[admit] + 1e-9 if admit < len(below) else -np.inf
    level = max(level, floor)
    if not level < theta[c]:
        return None
    out = theta.copy()
    out[c] = level
    return out


def planted_metrics(scored: Scored, thresholds: np.ndarray) -> dict[str, float]:
    """How the thresholds find the planted (and labelled) anomalies of the validation copies."""
    flagged = flagged_by(scored.z, thresholds)
    truth = scored.event >= 0
    tp = float((flagged & truth).sum())
    precision = tp / max(float((flagged & (truth | scored.normal)).sum()), 1.0)
    recall = tp / max(float(truth.sum()), 1.0)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    goal = _Objective(scored)
    out = {
        "val_planted_f1": f1,
        "val_planted_precision": precision,
        "val_planted_recall": recall,
        "val_planted_objective": goal.value(flagged),
        "val_planted_events": float(len(goal.size)),
        "val_false_days_per_meter_month": float(goal.false_days(flagged).sum())
        / max(scored.n_meter_days / DAYS_PER_MONTH, 1e-9),
    }
    found = pd.Series(flagged[truth]).groupby(scored.event[truth]).any()
    kinds = pd.Series(scored.kind[truth]).groupby(scored.event[truth]).first()
    out["val_planted_event_recall"] = float(found.mean()) if len(found) else 0.0
    for kind, hit in found.groupby(kinds):
        out[f"val_planted_event_recall_{kind}"] = float(hit.mean())
    for c, name in enumerate(COMPONENTS):
        out[f"threshold_{name}"] = float(thresholds[c])
    return out
