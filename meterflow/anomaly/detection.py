"""Fit, calibrate and evaluate anomaly detectors side by side on a chronological split.

For each detector of the settings (``registry``):

1. fit it on the TRAIN split of the series (VAL only for early stopping);
2. calibrate it on the VAL readings (``calibration``): the score model, and one threshold per
   evidence component learned from anomalies planted into copies of the validation days
   within a false-alarm budget (labelled validation anomalies, when given, join them);
3. score the TEST readings with the finished ``AnomalyPredictor``, exactly as a reloaded model
   scores the ``holdout`` table, and evaluate against the labels when given (``events``);
4. score a copy of the TEST readings with anomalies planted into it (the same copy for every
   detector, of every meter or of a sample of ``fleetparts.SAMPLE_METERS`` of a larger fleet;
   ``planted_*`` metrics), which is also the ``holdout`` the Model Registry compares champion
   and challenger on: no labels needed.

Scoring and calibration go meter block by meter block (``AnomalySettings.blocking``: here or on
a Dask cluster, with the same results); fitting uses bounded samples of windows and days.

``detector="auto"`` keeps the detector that found the planted validation anomalies best
(``val_planted_objective``). The test split is never used to fit, normalise, threshold or
choose anything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.anomaly import figures
from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.blocked import Blocking
from meterflow.anomaly.calibration import CalibrationData, calibrate, calibration_data
from meterflow.anomaly.events import (
    align_labels,
    detection_metrics,
    find_events,
    guess_kinds,
    prepare_labels,
)
from meterflow.anomaly.fleetparts import meter_positions, sample_meters
from meterflow.anomaly.params import AnomalyParams as Declared
from meterflow.anomaly.planting import Planter
from meterflow.anomaly.predictor import AnomalyPredictor
from meterflow.anomaly.registry import check_detector, make_detector
from meterflow.anomaly.windowed import fit_peers
from meterflow.domain import LOCAL_TIMEZONE
from meterflow.errors import ConfigError, SchemaError
from meterflow.nets.training import TrainingHistory
from meterflow.params import column_names
from meterflow.series.fleet import DateSplit, FleetSeries, build_panel, split_dates

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44
AUTO = "auto"
HOLDOUT_SEED_OFFSET = 7919  # the test copy's anomalies differ from the validation copies'
HOLDOUT_EXTRA_DAYS = 7
# days before validation whose daily changes and repeats set their normal spread (seasons)
CALIBRATION_HISTORY_DAYS = 182


@dataclass(frozen=True)
class AnomalySettings:
    """What to run and how to split, calibrate and score."""

    detector: str = Declared.default("detector")  # a registry name, or "auto"
    detectors: tuple[str, ...] = column_names(Declared.default("detectors"))  # run and compared
    training: DetectorSettings = field(default_factory=DetectorSettings)
    train_frac: float = 0.7
    val_frac: float = 0.1  # the test split is the rest, the most recent days
    test_start: pd.Timestamp | None = None
    timezone: str = LOCAL_TIMEZONE  # of the naive series timestamps (labels are UTC)
    alarm_budget: float = Declared.default("alarm_budget")  # false alarms per meter-month
    windowed: bool = True  # add the daily-energy ratio and flat-line evidence
    merge_hours: float = 24.0  # flagged readings this close are one event (one alert)
    shrinkage: float = 10.0  # pseudo-points of the per-slot residual scale
    blocking: Blocking = field(default_factory=Blocking)  # meters per block, Dask scheduler

    def __post_init__(self) -> None:
        if self.detector != AUTO:
            check_detector(self.detector)
        for name in self.detectors:
            check_detector(name)
        if not self.run_names:
            raise ConfigError("detector=auto needs at least one detector to choose from")
        if self.alarm_budget <= 0:
            raise ConfigError(f"alarm_budget must be > 0, got {self.alarm_budget}")
        if self.merge_hours < 0 or self.shrinkage < 0:
            raise ConfigError("merge_hours and shrinkage must be >= 0")
        try:
            pd.Timestamp("2000-01-01", tz=self.timezone)
        except Exception as exc:
            raise ConfigError(f"unknown timezone {self.timezone!r}") from exc

    @property
    def run_names(self) -> tuple[str, ...]:
        """Every detector run: the chosen one first (when named), then the others, once each."""
        named = () if self.detector == AUTO else (self.detector,)
        return tuple(dict.fromkeys((*named, *self.detectors)))


@dataclass
class DetectorRun:
    """One detector fitted, calibrated and evaluated."""

    name: str
    predictor: AnomalyPredictor
    scores: pd.DataFrame  # test readings: meter_id, timestamp, value, score, flagged, ...
    events: pd.DataFrame
    metrics: dict[str, float]
    seconds: float


@dataclass
class AnomalyResult:
    """The chosen detector's results, the other detectors' metrics and the tables to log."""

    scores: pd.DataFrame
    events: pd.DataFrame  # meter_id, start, end, n_flagged, peak_score, kind (guess), label_kind
    metrics: dict[str, float]
    comparison: pd.DataFrame  # one row per detector
    figures: dict[str, Figure]
    predictor: AnomalyPredictor
    history: TrainingHistory | None
    split: DateSplit
    holdout: pd.DataFrame  # the predictor's input for the planted test copy, with its label
    chosen: str  # the detector's name
    reason: str  # why it is the one


@dataclass(frozen=True)
class TestCopies:
    """The series with anomalies planted into its test days, and the truth of each copy."""

    planted: pd.DataFrame
    planted_truth: pd.DataFrame  # planted anomalies, then the real labels (prepared)
    real_truth: pd.DataFrame | None  # the real labels (prepared)


def detect_anomalies(
    series: pd.DataFrame,
    resolution_min: int,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
    meters: pd.DataFrame | None = None,
) -> AnomalyResult:
    """Run every detector of ``cfg`` on the long table ``meter_id, timestamp, value``
    (``meters``: the meter table, for detectors that use it)."""
    series = series[["meter_id", "timestamp", "value"]].sort_values(
        ["meter_id", "timestamp"], kind="stable", ignore_index=True
    )
    if series.empty:
        raise SchemaError("anomaly input has no readings")
    dates = split_dates(series["timestamp"], cfg.train_frac, cfg.val_frac, cfg.test_start)
    prepared = prepare_labels(labels, cfg.timezone) if labels is not None else None
    fleet = build_panel(series, resolution_min, dates)
    peers = fit_peers(fleet) if cfg.windowed else None
    fitted = [_fit(name, fleet, meters, peers, resolution_min, cfg) for name in cfg.run_names]
    context = max(p.context_days for p, _ in fitted) + HOLDOUT_EXTRA_DAYS
    copies = _test_copies(series, fleet, dates, prepared, cfg, context)
    del fleet
    runs, shared = [], {}  # the calibration data of a window, shared by the detectors
    for name, (predictor, fit_seconds) in zip(cfg.run_names, fitted, strict=True):
        run = _evaluate(name, predictor, series, dates, copies, cfg, fit_seconds, shared)
        log.info("detector %s: %s", name, _summary(run.metrics))
        runs.append(run)
    chosen, reason = choose_detector(runs, cfg.detector)
    log.info("anomaly detector: %s (%s)", chosen.name, reason)
    return _result(chosen, runs, series, dates, copies, reason)


def _fit(
    name: str,
    fleet: FleetSeries,
    meters: pd.DataFrame | None,
    peers: dict[str, tuple[str, ...]] | None,
    resolution_min: int,
    cfg: AnomalySettings,
) -> tuple[AnomalyPredictor, float]:
    """Detector ``name`` fitted on the fleet, as an uncalibrated predictor, and the seconds."""
    t0 = time.perf_counter()
    detector = make_detector(name, cfg.training).fit(fleet, meters)
    predictor = AnomalyPredictor(detector, resolution_min, cfg.windowed, peers)
    return predictor, time.perf_counter() - t0


def _test_copies(
    series: pd.DataFrame,
    fleet: FleetSeries,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
    context_days: int,
) -> TestCopies:
    """Plant one anomaly into the test days of each meter (a sample of large fleets), block by
    block (``fleet``: the fleet of ``series``, its positions the rows of ``series``); the copy
    keeps each meter's readings from ``context_days`` before the test on."""
    seed = cfg.training.seed + HOLDOUT_SEED_OFFSET
    sample = sample_meters(fleet.meter_ids, seed)
    slot = np.timedelta64(fleet.resolution_min, "m")
    end = pd.Timestamp(fleet.timestamps(np.array([len(fleet.values) - 1]))[0] + slot)
    planter = Planter(dates.test_start, end, fleet.resolution_min, seed)
    first = np.datetime64(dates.test_start - pd.Timedelta(days=context_days), "ns")
    parts, truths = [], []
    for block in cfg.blocking.blocks(len(sample)):
        rows = series.iloc[meter_positions(fleet, sample[block])[0]]
        planted, truth = planter.plant(rows, [str(m) for m in fleet.meter_ids[sample[block]]])
        parts.append(planted.loc[planted["timestamp"].to_numpy() >= first])
        truths.append(truth)
    truth = pd.concat(truths, ignore_index=True)
    if labels is not None:
        real = labels.assign(label_id=labels["label_id"] + len(truth))
        truth = pd.concat([truth, real[truth.columns.intersection(real.columns)]])
    return TestCopies(pd.concat(parts, ignore_index=True), truth.reset_index(drop=True), labels)


def choose_detector(runs: list[DetectorRun], wanted: str) -> tuple[DetectorRun, str]:
    """The named detector, or with ``auto`` the one with the best ``val_planted_objective``
    (the faster one on a tie to three decimals), and why."""
    if wanted != AUTO:
        return runs[0], f"detector={wanted} was asked for"
    score = {r.name: r.metrics.get("val_planted_objective", 0.0) for r in runs}
    best = max(runs, key=lambda r: (round(score[r.name], 3), -r.seconds))
    others = ", ".join(f"{n} {v:.3f}" for n, v in score.items() if n != best.name)
    return best, (
        f"auto: {best.name} found the anomalies planted into the validation days best "
        f"(objective {score[best.name]:.3f}; {others or 'no other detector'})"
    )


def _window(series: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp | None) -> pd.DataFrame:
    stamps = series["timestamp"]
    keep = (stamps >= start) & (stamps < end) if end is not None else stamps >= start
    return series.loc[keep].reset_index(drop=True)


def _evaluate(
    name: str,
    predictor: AnomalyPredictor,
    series: pd.DataFrame,
    dates: DateSplit,
    copies: TestCopies,
    cfg: AnomalySettings,
    fit_seconds: float,
    shared: dict[pd.Timestamp, CalibrationData] | None = None,
) -> DetectorRun:
    """Calibrate ``predictor`` on validation, then score the test readings and their planted
    copy (``fit_seconds``: the fit's, counted in the run's seconds; ``shared``: calibration
    data by window start, made by the first detector and reused by the next)."""
    t0 = time.perf_counter() - fit_seconds
    context = pd.Timedelta(days=max(predictor.context_days, CALIBRATION_HISTORY_DAYS))
    shared = {} if shared is None else shared
    start = dates.val_start - context
    if start not in shared:
        window = _window(series, start, dates.test_start)
        data = calibration_data(
            window, predictor.resolution_min, dates, cfg.training.seed, cfg.blocking
        )
        shared.clear()  # one window's data at a time
        shared[start] = data
    val = calibrate(
        *(predictor, None, dates, copies.real_truth, cfg.alarm_budget),
        *(cfg.training.seed, cfg.blocking, shared[start]),
    )
    scores, events, metrics = _score_test(predictor, series, dates, copies.real_truth, cfg)
    _, _, planted = _score_test(predictor, copies.planted, dates, copies.planted_truth, cfg)
    metrics.update(val)
    metrics.update({f"planted_{k}": v for k, v in planted.items()})
    return DetectorRun(name, predictor, scores, events, metrics, time.perf_counter() - t0)


def _score_test(
    predictor: AnomalyPredictor,
    series: pd.DataFrame,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Scores, events and metrics of the test readings of ``series`` against ``labels``."""
    holdout = _holdout_input(series, dates, predictor.context_days)
    out = predictor.predict(holdout, cfg.blocking)
    test = ~holdout["history"].to_numpy()
    scores = pd.concat([holdout.loc[test], out.loc[test]], axis=1).reset_index(drop=True)
    scores = scores.drop(columns="history")
    scores["score"] = scores["score"].astype(np.float64)
    aligned = _labels_of(scores, labels, predictor.resolution_min)
    label, kind, label_id = aligned if aligned else (None, None, None)
    scores["label"] = pd.array(label if label is not None else [pd.NA] * len(scores), "boolean")
    scores["label_kind"] = kind
    events = _events(scores, predictor.resolution_min, cfg.merge_hours)
    n_meter_months = scores["meter_id"].nunique() * dates.n_days[2] / DAYS_PER_MONTH
    score = np.nan_to_num(scores["score"].to_numpy(), nan=0.0)
    flagged = scores["flagged"].to_numpy(bool)
    metrics = detection_metrics(label, label_id, kind, score, flagged, events, n_meter_months)
    return scores, events, metrics


def _labels_of(
    scores: pd.DataFrame, labels: pd.DataFrame | None, resolution_min: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(label, kind, label_id)`` of readings sorted by meter then time; None without labels."""
    if labels is None:
        return None
    stamps = scores["timestamp"].to_numpy(dtype="datetime64[ns]")
    return align_labels(scores["meter_id"].to_numpy(dtype=object), stamps, labels, resolution_min)


def _events(scores: pd.DataFrame, resolution_min: int, merge_hours: float) -> pd.DataFrame:
    """Runs of flagged test readings with the label kind they overlap and a guessed kind."""
    events = find_events(
        scores["meter_id"].to_numpy(dtype=object),
        scores["timestamp"].to_numpy(dtype="datetime64[ns]"),
        scores["flagged"].to_numpy(bool),
        np.nan_to_num(scores["score"].to_numpy(), nan=0.0),
        resolution_min,
        int(merge_hours * 60 // resolution_min),
        scores["label_kind"].to_numpy(dtype=object),
    )
    events = events.rename(columns={"kind": "label_kind"})
    events.insert(5, "kind", guess_kinds(events, scores, resolution_min))
    return events


def _summary(metrics: dict[str, float]) -> str:
    keys = ("f1", "precision", "recall", "auc_pr", "event_recall", "flagged_share")
    return ", ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)


def _result(
    main: DetectorRun,
    runs: list[DetectorRun],
    series: pd.DataFrame,
    dates: DateSplit,
    copies: TestCopies,
    reason: str,
) -> AnomalyResult:
    metrics = {**main.metrics, "seconds": main.seconds}
    for run in runs:
        if run is main:
            continue
        for key in ("f1", "auc_pr", "event_recall", "planted_f1", "val_planted_objective"):
            if key in run.metrics:
                metrics[f"other_{run.name}_{key}"] = run.metrics[key]
    holdout = _holdout(main, copies, dates)
    main.predictor.example = _example(holdout, dates, main.predictor.context_days)
    labels = copies.real_truth
    figs = {
        "scores_over_time": figures.scores_over_time(main.scores, main.predictor.threshold, labels),
        "score_histogram": figures.score_histogram(main.scores, main.predictor.threshold),
    }
    if labels is not None and main.scores["label"].fillna(False).any():
        figs["pr_curves"] = figures.pr_curves({r.name: r.scores for r in runs})
    history = getattr(main.predictor.detector, "history", None)
    ordered = [main, *(r for r in runs if r is not main)]
    return AnomalyResult(
        *(main.scores, main.events, metrics, comparison_table(ordered), figs),
        *(main.predictor, history, dates, holdout, main.name, reason),
    )


def comparison_table(runs: list[DetectorRun]) -> pd.DataFrame:
    """One row per detector: its metrics and seconds (the chosen detector first)."""
    rows = [{"detector": r.name, **r.metrics, "seconds": r.seconds} for r in runs]
    table = pd.DataFrame(rows)
    first = ["detector", "f1", "precision", "recall", "auc_roc", "auc_pr", "event_recall"]
    ordered = [c for c in first if c in table.columns]
    return table[ordered + sorted(c for c in table.columns if c not in ordered)]


def _holdout_input(series: pd.DataFrame, dates: DateSplit, context_days: int) -> pd.DataFrame:
    """The test readings and the ``context_days`` days before them (marked ``history``)."""
    holdout = _window(series, dates.test_start - pd.Timedelta(days=context_days), None)
    holdout["history"] = (holdout["timestamp"] < dates.test_start).to_numpy()
    return holdout


def _holdout(main: DetectorRun, copies: TestCopies, dates: DateSplit) -> pd.DataFrame:
    """The predictor's input for the planted test copy (with ``HOLDOUT_EXTRA_DAYS`` more
    history than it needs, for champions that need more) and its label (planted or labelled
    anomaly; NA for history rows): any later model is scored on the same rows."""
    context = main.predictor.context_days + HOLDOUT_EXTRA_DAYS
    holdout = _holdout_input(copies.planted, dates, context)
    test = ~holdout["history"].to_numpy()
    label = pd.array([pd.NA] * len(holdout), dtype="boolean")
    scored = holdout.loc[test]
    truth = _labels_of(scored, copies.planted_truth, main.predictor.resolution_min)
    label[test] = truth[0] if truth is not None else False
    holdout["label"] = label
    return holdout


def _example(holdout: pd.DataFrame, dates: DateSplit, context_days: int) -> pd.DataFrame:
    """The first meter's first test day and the ``context_days`` before it (input example)."""
    first = holdout.loc[holdout["meter_id"] == holdout["meter_id"].iloc[0]]
    start = dates.test_start - pd.Timedelta(days=context_days)
    end = first.loc[~first["history"], "timestamp"].min().normalize() + pd.Timedelta(days=1)
    keep = (first["timestamp"] >= start) & (first["timestamp"] < end)
    return first.loc[keep, ["meter_id", "timestamp", "value", "history"]].reset_index(drop=True)
