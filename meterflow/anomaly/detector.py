"""Fit, calibrate and evaluate anomaly detectors side by side on a chronological split.

For each detector (the chosen one and its baselines, ``registry``):

1. fit it on the TRAIN split of the series (VAL only for early stopping);
2. score the VAL readings (with the history they need before them) and fit the score model on
   them: per-meter normalisations (``scoring``) and the threshold (``thresholds``: the
   F1-best one against the validation labels, or a quantile of the validation scores);
3. score the TEST readings with the finished ``AnomalyPredictor``, exactly as a reloaded model
   scores the ``holdout`` table, and evaluate against the labels (``events``).

The test split is never used to fit, normalise or threshold anything.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow import defaults
from meterflow.anomaly import figures
from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.events import (
    align_labels,
    detection_metrics,
    find_events,
    guess_kinds,
    prepare_labels,
)
from meterflow.anomaly.predictor import AnomalyPredictor
from meterflow.anomaly.registry import check_detector, make_detector
from meterflow.anomaly.scoring import fit_score_model
from meterflow.anomaly.thresholds import THRESHOLD_METHODS, choose_threshold
from meterflow.anomaly.windowed import fit_peers
from meterflow.domain import LOCAL_TIMEZONE
from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting.series import VAL, DateSplit, build_panel, split_dates
from meterflow.forecasting.training import TrainingHistory

log = logging.getLogger(__name__)

DAYS_PER_MONTH = 30.44


@dataclass(frozen=True)
class AnomalySettings:
    """What to run and how to split, score and threshold."""

    detector: str = defaults.ANOMALY_DETECTOR
    baselines: tuple[str, ...] = defaults.ANOMALY_BASELINES
    training: DetectorSettings = field(default_factory=DetectorSettings)
    train_frac: float = 0.7
    val_frac: float = 0.1  # the test split is the rest, the most recent days
    test_start: pd.Timestamp | None = None
    timezone: str = LOCAL_TIMEZONE  # of the naive series timestamps (labels are UTC)
    threshold: Literal["auto", "quantile", "best_f1"] = "auto"
    quantile: float = defaults.THRESHOLD_QUANTILE
    windowed: bool = True  # add the daily-energy ratio and flat-line evidence
    merge_hours: float = 24.0  # flagged readings this close are one event (one alert)
    shrinkage: float = 10.0  # pseudo-points of the per-slot residual scale

    def __post_init__(self) -> None:
        for name in (self.detector, *self.baselines):
            check_detector(name)
        if self.threshold not in THRESHOLD_METHODS:
            raise ConfigError(
                f"threshold must be one of {THRESHOLD_METHODS}, got {self.threshold!r}"
            )
        if not 0 < self.quantile < 1:
            raise ConfigError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.merge_hours < 0 or self.shrinkage < 0:
            raise ConfigError("merge_hours and shrinkage must be >= 0")
        try:
            pd.Timestamp("2000-01-01", tz=self.timezone)
        except Exception as exc:
            raise ConfigError(f"unknown timezone {self.timezone!r}") from exc

    @property
    def detectors(self) -> tuple[str, ...]:
        """The chosen detector first, then the baselines (each once)."""
        return tuple(dict.fromkeys((self.detector, *self.baselines)))


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
    """The chosen detector's results, its baselines' metrics and the tables to log."""

    scores: pd.DataFrame
    events: pd.DataFrame  # meter_id, start, end, n_flagged, peak_score, kind (guess), label_kind
    metrics: dict[str, float]
    comparison: pd.DataFrame  # one row per detector
    figures: dict[str, Figure]
    predictor: AnomalyPredictor
    history: TrainingHistory | None
    split: DateSplit
    holdout: pd.DataFrame  # the predictor's input for the test readings, with their label


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
    runs = []
    for name in cfg.detectors:
        t0 = time.perf_counter()
        detector = make_detector(name, cfg.training).fit(fleet, meters)
        predictor = AnomalyPredictor(detector, resolution_min, cfg.windowed, peers)
        run = _evaluate(name, predictor, series, dates, prepared, cfg, t0)
        log.info("detector %s: %s", name, _summary(run.metrics))
        runs.append(run)
    return _result(runs, series, dates, prepared, cfg)


def _window(series: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp | None) -> pd.DataFrame:
    stamps = series["timestamp"]
    keep = (stamps >= start) & (stamps < end) if end is not None else stamps >= start
    return series.loc[keep].reset_index(drop=True)


def _evaluate(
    name: str,
    predictor: AnomalyPredictor,
    series: pd.DataFrame,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
    t0: float,
) -> DetectorRun:
    """Calibrate ``predictor`` on validation, then score and evaluate the test readings."""
    context = pd.Timedelta(days=predictor.context_days)
    calibration = _window(series, dates.val_start - context, dates.test_start)
    _calibrate(predictor, calibration, dates, labels, cfg)
    holdout = _holdout_input(series, dates, predictor.context_days)
    out = predictor.predict(holdout)
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
    metrics["threshold"] = predictor.threshold
    seconds = time.perf_counter() - t0
    return DetectorRun(name, predictor, scores, events, metrics, seconds)


def _labels_of(
    scores: pd.DataFrame, labels: pd.DataFrame | None, resolution_min: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(label, kind, label_id)`` of readings sorted by meter then time; None without labels."""
    if labels is None:
        return None
    stamps = scores["timestamp"].to_numpy(dtype="datetime64[ns]")
    return align_labels(scores["meter_id"].to_numpy(dtype=object), stamps, labels, resolution_min)


def _calibrate(
    predictor: AnomalyPredictor,
    window: pd.DataFrame,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
) -> None:
    """Fit the score model and threshold on the validation readings of ``window`` (which
    starts ``context_days`` before validation)."""
    fleet = build_panel(window, predictor.resolution_min, dates)
    is_val = predictor.scored(fleet, fleet.split != VAL)
    ev = predictor.evidence(fleet, is_val)
    model = fit_score_model(
        fleet,
        ev,
        is_val,
        np.ones(len(is_val), bool),
        predictor.detector.signed,
        cfg.windowed,
        cfg.shrinkage,
    )
    score = model.score(model.components(fleet, ev))
    keep = is_val & np.isfinite(score)
    if not keep.any():
        raise SchemaError("anomaly input: no validation reading could be scored")
    truth, events = None, 0
    if labels is not None:
        ids = fleet.meter_ids[fleet.meter_idx[keep]]
        stamps = fleet.timestamps(np.flatnonzero(keep))
        truth, _, label_id = align_labels(ids, stamps, labels, fleet.resolution_min)
        events = len(np.unique(label_id[truth]))
    threshold = choose_threshold(score[keep], cfg.threshold, cfg.quantile, truth, events)
    predictor.model = model.with_threshold(threshold)


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
    runs: list[DetectorRun],
    series: pd.DataFrame,
    dates: DateSplit,
    labels: pd.DataFrame | None,
    cfg: AnomalySettings,
) -> AnomalyResult:
    main, baselines = runs[0], runs[1:]
    metrics = {**main.metrics, "seconds": main.seconds}
    for run in baselines:
        for key in ("f1", "auc_pr", "precision", "recall", "auc_roc", "event_recall"):
            if key in run.metrics:
                metrics[f"baseline_{run.name}_{key}"] = run.metrics[key]
    holdout = _holdout(main, series, dates)
    main.predictor.example = _example(holdout)
    figs = {
        "scores_over_time": figures.scores_over_time(main.scores, main.predictor.threshold, labels),
        "score_histogram": figures.score_histogram(main.scores, main.predictor.threshold),
    }
    if labels is not None and main.scores["label"].fillna(False).any():
        figs["pr_curves"] = figures.pr_curves({r.name: r.scores for r in runs})
    history = getattr(main.predictor.detector, "history", None)
    return AnomalyResult(
        main.scores,
        main.events,
        metrics,
        comparison_table(runs),
        figs,
        main.predictor,
        history,
        dates,
        holdout,
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


def _holdout(main: DetectorRun, series: pd.DataFrame, dates: DateSplit) -> pd.DataFrame:
    """The predictor's input for the test readings (with their history) and their label
    (NA for history rows), for scoring any later model on the same readings."""
    holdout = _holdout_input(series, dates, main.predictor.context_days)
    label = pd.array([pd.NA] * len(holdout), dtype="boolean")
    test = ~holdout["history"].to_numpy()
    label[test] = main.scores["label"].to_numpy()
    holdout["label"] = label
    return holdout


def _example(holdout: pd.DataFrame) -> pd.DataFrame:
    """The first meter's history rows in the holdout and its first test day (input example)."""
    first = holdout.loc[holdout["meter_id"] == holdout["meter_id"].iloc[0]]
    end = first.loc[~first["history"], "timestamp"].min().normalize() + pd.Timedelta(days=1)
    return first.loc[first["timestamp"] < end, ["meter_id", "timestamp", "value", "history"]]
