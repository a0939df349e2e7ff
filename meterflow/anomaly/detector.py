"""LSTM prediction-error anomaly detector (seed 003) on the harmonized profiles.

1. Train the forecasting LSTM (``meterflow.forecasting``) on the chronological training split,
   early stopping on validation (by default a day ahead, see ``_default_forecast``).
2. Forecast every point of the validation split from its window (real history) and fit the
   score scale (``thresholds``: per-meter/slot robust spread of the residuals) and the
   threshold on it: the test split is never used for either.
3. Forecast validation + test again in time order, in blocks of ``horizon`` slots; a reading
   that scores at or above the threshold is replaced by its forecast in the series that later
   windows read (``max_clean`` consecutive slots at most), so an anomaly neither hides
   itself nor echoes as a false alarm a horizon later.
4. Score = ``|z|`` of the normalised residual (optionally also the trailing run over
   ``smooth_window`` slots); test points at or above the threshold are flagged; events = runs
   of flagged points.
5. With labels, point-wise and event-level metrics on the test split (``events``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from meterflow.anomaly import figures
from meterflow.anomaly.events import align_labels, detection_metrics, find_events, prepare_labels
from meterflow.anomaly.predictor import AnomalyPredictor
from meterflow.anomaly.thresholds import (
    THRESHOLD_METHODS,
    ResidualScale,
    choose_threshold,
    combine_scores,
    fit_residual_scale,
    fit_run_weight,
)
from meterflow.domain import LOCAL_TIMEZONE
from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting.lstm import TrainingHistory, torch_threads
from meterflow.forecasting.series import TEST, VAL, DateSplit, FleetSeries, build_fleet
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.train import (
    FittedForecaster,
    fit_forecaster,
    make_predictor,
    predict_positions,
    predictor_rows,
)
from meterflow.forecasting.windows import label_positions

log = logging.getLogger(__name__)


def _default_forecast() -> ForecastSettings:
    # A day ahead at hourly resolution: an anomaly shorter than the horizon is not yet in the
    # window that forecasts it, so sustained shifts keep large residuals (a one-slot-ahead
    # forecaster follows them after a slot or two and only flags their edges).
    return ForecastSettings(model="lstm", horizon=24)


@dataclass(frozen=True)
class AnomalySettings:
    """Detector settings; ``forecast`` configures the underlying LSTM (model must be lstm)."""

    forecast: ForecastSettings = field(default_factory=_default_forecast)
    timezone: str = LOCAL_TIMEZONE  # of the naive local profile timestamps (labels are UTC)
    threshold: Literal["quantile", "sigma", "best_f1"] = "quantile"
    quantile: float = 0.995
    sigma_k: float = 4.0
    smooth_window: int = 24  # trailing run of residuals also scored (1 = points only)
    merge_gap: int = 1  # unflagged slots bridged inside one event
    max_clean: int = 336  # flagged readings kept out of later windows (consecutive slots; 0 off)
    shrinkage: float = 10.0  # pseudo-points of the per-slot residual scale

    def __post_init__(self) -> None:
        if self.forecast.model != "lstm":
            raise ConfigError("the anomaly detector uses the lstm forecaster (model='lstm')")
        if self.threshold not in THRESHOLD_METHODS:
            raise ConfigError(
                f"threshold must be one of {THRESHOLD_METHODS}, got {self.threshold!r}"
            )
        if not 0 < self.quantile < 1:
            raise ConfigError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.sigma_k <= 0 or self.shrinkage < 0:
            raise ConfigError("sigma_k must be > 0 and shrinkage >= 0")
        if self.smooth_window < 1 or self.merge_gap < 0 or self.max_clean < 0:
            raise ConfigError("smooth_window must be >= 1, merge_gap and max_clean >= 0")
        try:
            pd.Timestamp("2000-01-01", tz=self.timezone)
        except Exception as exc:
            raise ConfigError(f"unknown timezone {self.timezone!r}") from exc


@dataclass
class AnomalyResult:
    """Scores of the test split, events, metrics, figures and the picklable predictor."""

    scores: pd.DataFrame  # meter_id, timestamp, value, predicted, residual, score, flagged, label
    events: pd.DataFrame  # meter_id, start, end, n_flagged, peak_score, kind
    metrics: dict[str, float]
    figures: dict[str, Figure]
    predictor: AnomalyPredictor
    threshold: float
    history: TrainingHistory
    split: DateSplit


@dataclass
class _Scored:
    pos: np.ndarray
    predicted: np.ndarray  # Wh
    residual: np.ndarray  # Wh
    z: np.ndarray  # signed normalised residual
    cleaned: np.ndarray  # (N,) scaled series with flagged readings replaced by forecasts


def _z(fitted: FittedForecaster, scale: ResidualScale | None, pos, predicted) -> np.ndarray:
    fleet = fitted.fleet
    m = fleet.meter_idx[pos]
    scaled = (fleet.values[pos] - predicted) / fitted.scaler.scale[m]
    if scale is None:
        return scaled
    return scale.z(m, fleet.time_idx[pos] % fleet.slots_per_day, scaled)


def _score(
    fitted: FittedForecaster,
    pos: np.ndarray,
    first: np.ndarray,
    scale: ResidualScale | None = None,
    threshold: float = np.inf,
    max_clean: int = 0,
    smooth_window: int = 1,
    run_weight: float = 1.0,
) -> _Scored:
    """Forecast the points at ``pos`` (sorted by meter then time) block by block in time, each
    block ``horizon`` slots long so that its windows only hold earlier blocks' readings; after
    each block, readings whose score (``combine_scores``) is at or above ``threshold`` are
    replaced by their forecast in the series later windows read (at most ``max_clean``
    consecutive slots per meter, after which a lasting change is accepted as the new normal)."""
    fleet, horizon = fitted.fleet, fitted.settings.horizon
    work = replace(fitted, scaled=fitted.scaled.copy())
    predicted = np.empty(len(pos))
    if max_clean == 0 or scale is None or not np.isfinite(threshold) or len(pos) == 0:
        predicted[:], _ = predict_positions(work, pos, first)
        z = _z(work, scale, pos, predicted)
        return _Scored(pos, predicted, fleet.values[pos] - predicted, z, work.scaled)
    times, meters = fleet.time_idx[pos], fleet.meter_idx[pos]
    block = (times - times.min()) // horizon
    order = np.argsort(block, kind="stable")
    edges = np.searchsorted(block[order], np.arange(int(block.max()) + 2))
    z = np.zeros(len(pos))
    run = np.zeros(len(fleet.meter_ids), dtype=np.int64)
    last = np.full(len(fleet.meter_ids), -2, dtype=np.int64)
    n_clean = 0
    for b in range(len(edges) - 1):
        sel = order[edges[b] : edges[b + 1]]
        if len(sel) == 0:
            continue
        predicted[sel], _ = predict_positions(work, pos[sel], first[sel])
        z[sel] = _z(work, scale, pos[sel], predicted[sel])
        # trailing runs only look back: later blocks' zeros do not change these scores
        score = combine_scores(meters, times, z, smooth_window, run_weight)[sel]
        for i in np.flatnonzero(score >= threshold):
            k = sel[i]
            m, t = meters[k], times[k]
            run[m] = run[m] + 1 if last[m] == t - 1 else 1
            last[m] = t
            if run[m] <= max_clean:
                work.scaled[pos[k]] = (predicted[k] - fitted.scaler.mean[m]) / fitted.scaler.scale[
                    m
                ]
                n_clean += 1
        if b % 50 == 0:
            log.info("scored block %d/%d (%d readings cleaned)", b + 1, len(edges) - 1, n_clean)
    return _Scored(pos, predicted, fleet.values[pos] - predicted, z, work.scaled)


def _aligned(
    fleet: FleetSeries, pos: np.ndarray, labels: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    if labels is None:
        return None
    ids = fleet.meter_ids[fleet.meter_idx[pos]].astype(str)
    return align_labels(ids, fleet.timestamps(pos), labels, fleet.resolution_min)


def detect_anomalies(
    profiles: pd.DataFrame, labels: pd.DataFrame | None, cfg: AnomalySettings
) -> AnomalyResult:
    """Train, score, threshold and (with labels) evaluate; see the module docstring.

    Metrics: always ``threshold``, ``flagged_share``, ``n_events``, ``n_scored``,
    ``train_seconds``; with labelled anomalies in the test split also ``precision``,
    ``recall``, ``f1``, ``auc_roc``, ``recall_<kind>``, ``event_recall[_<kind>]``.
    """
    t_start = time.perf_counter()
    fc = cfg.forecast
    prepared = prepare_labels(labels, cfg.timezone) if labels is not None else None
    with torch_threads(fc.num_threads):
        fleet = build_fleet(profiles, fc.train_frac, fc.val_frac)
        fitted = fit_forecaster(fleet, None, fc)
        first_all = fleet.history_start(np.arange(len(fleet.values)), fc.test_padding)

        def positions(splits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
            return label_positions(
                fleet, splits, first_all, fc.seq_length, fc.horizon, fc.min_history, fitted.usable
            )

        val_pos, val_first = positions((VAL,))
        eval_pos, eval_first = positions((VAL, TEST))
        test_pos = eval_pos[fleet.split[eval_pos] == TEST]
        if len(val_pos) == 0 or len(test_pos) == 0:
            raise SchemaError("anomaly input: validation or test split has no scorable point")
        # 1. validation residuals as they come: robust scale and threshold
        raw_val = _score(fitted, val_pos, val_first)
        scale = fit_residual_scale(
            fleet.meter_idx[val_pos],
            fleet.time_idx[val_pos] % fleet.slots_per_day,
            raw_val.z,
            len(fleet.meter_ids),
            fleet.slots_per_day,
            cfg.shrinkage,
        )
        val_z = _z(fitted, scale, val_pos, raw_val.predicted)
        val_m, val_t = fleet.meter_idx[val_pos], fleet.time_idx[val_pos]
        run_weight = fit_run_weight(val_m, val_t, val_z, cfg.smooth_window, cfg.quantile)
        val_scores = combine_scores(val_m, val_t, val_z, cfg.smooth_window, run_weight)
        val_aligned = _aligned(fleet, val_pos, prepared)
        threshold = choose_threshold(
            val_scores,
            cfg.threshold,
            cfg.quantile,
            cfg.sigma_k,
            val_aligned[0] if val_aligned is not None else None,
        )
        # 2. validation + test in time order, flagged readings kept out of later windows
        scored = _score(
            fitted, eval_pos, eval_first, scale, threshold, cfg.max_clean, cfg.smooth_window,
            run_weight,
        )  # fmt: skip
        forecast_predictor = make_predictor(fitted, test_pos, first_all[test_pos])
    all_scores = combine_scores(
        fleet.meter_idx[eval_pos], fleet.time_idx[eval_pos], scored.z, cfg.smooth_window, run_weight
    )
    is_test = fleet.split[eval_pos] == TEST
    test_scores = all_scores[is_test]
    test_predicted = scored.predicted[is_test]
    flagged = test_scores >= threshold
    meter_ids = fleet.meter_ids[fleet.meter_idx[test_pos]].astype(str)
    stamps = fleet.timestamps(test_pos)
    test_aligned = _aligned(fleet, test_pos, prepared)
    label, kind, label_id = test_aligned if test_aligned is not None else (None, None, None)
    scores = pd.DataFrame(
        {
            "meter_id": meter_ids,
            "timestamp": stamps,
            "value": fleet.values[test_pos],
            "predicted": test_predicted,
            "residual": fleet.values[test_pos] - test_predicted,
            "score": test_scores,
            "flagged": flagged,
            "label": pd.array(label if label is not None else [pd.NA] * len(flagged), "boolean"),
            "kind": kind if kind is not None else None,
        }
    )
    events = find_events(
        meter_ids, stamps, flagged, test_scores, fleet.resolution_min, cfg.merge_gap, kind
    )
    metrics = detection_metrics(label, label_id, kind, test_scores, flagged, len(events))
    metrics.update(
        threshold=threshold,
        run_weight=run_weight,
        n_scored=float(len(test_pos)),
        train_seconds=fitted.history.seconds,
        total_seconds=time.perf_counter() - t_start,
    )
    log.info(
        "anomaly: threshold %.2f, %d of %d test points flagged in %d events%s",
        threshold,
        int(flagged.sum()),
        len(flagged),
        len(events),
        f", f1 {metrics['f1']:.3f}" if "f1" in metrics else "",
    )
    # the windows the detector scored: readings it flagged are replaced by their forecasts
    # first test points of a meter, after the validation points their trailing runs look back on
    j = int(np.searchsorted(eval_pos, test_pos[0]))
    example_pos = eval_pos[max(0, j - cfg.smooth_window + 1) : j + 8]
    cleaned_wh = (
        scored.cleaned * fitted.scaler.scale[fleet.meter_idx] + fitted.scaler.mean[fleet.meter_idx]
    )
    example = predictor_rows(fitted, example_pos, first_all[example_pos], cleaned_wh)
    example["value"] = fleet.values[example_pos]
    predictor = AnomalyPredictor(
        forecast_predictor, scale, threshold, cfg.smooth_window, run_weight, example
    )
    figs = {
        "flagged_examples": figures.flagged_examples(scores, prepared),
        "score_histogram": figures.score_histogram(scores, threshold),
    }
    return AnomalyResult(
        scores, events, metrics, figs, predictor, threshold, fitted.history, fleet.dates
    )
