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

from meterflow import defaults
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
from meterflow.forecasting.rows import (
    holdout_rows,
    holdout_selection,
    make_predictor,
    predictor_rows,
)
from meterflow.forecasting.series import TEST, VAL, DateSplit, FleetSeries, build_fleet
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.train import FittedForecaster, fit_forecaster, predict_positions
from meterflow.forecasting.training import TrainingHistory
from meterflow.forecasting.windows import label_positions

log = logging.getLogger(__name__)


# The residual forecaster predicts one point, the reading ``horizon`` slots ahead, on the MSE.
RESIDUAL_FORECASTER: dict[str, object] = {
    "output": "last",
    "quantiles": (),
    "seasonal_inputs": False,
    "patience": 3,
    "min_updates": 0,
}


def _default_forecast() -> ForecastSettings:
    # A day ahead at hourly resolution: an anomaly shorter than the horizon is not yet in the
    # window that forecasts it, so sustained shifts keep large residuals (a one-slot-ahead
    # forecaster follows them after a slot or two and only flags their edges).
    return ForecastSettings(
        model="lstm",
        horizon=defaults.ANOMALY_HORIZON,
        epochs=defaults.EPOCHS,
        units=defaults.LSTM_UNITS,
        max_train_windows=defaults.MAX_TRAIN_WINDOWS,
        **RESIDUAL_FORECASTER,
    )


@dataclass(frozen=True)
class AnomalySettings:
    """Detector settings; ``forecast`` configures the underlying LSTM (model must be lstm)."""

    forecast: ForecastSettings = field(default_factory=_default_forecast)
    timezone: str = LOCAL_TIMEZONE  # of the naive local profile timestamps (labels are UTC)
    threshold: Literal["quantile", "sigma", "best_f1"] = "quantile"
    quantile: float = defaults.THRESHOLD_QUANTILE
    sigma_k: float = 4.0
    smooth_window: int = 24  # trailing run of residuals also scored (1 = points only)
    merge_gap: int = 1  # unflagged slots bridged inside one event
    max_clean: int = 336  # flagged readings kept out of later windows (consecutive slots; 0 off)
    shrinkage: float = 10.0  # pseudo-points of the per-slot residual scale

    def __post_init__(self) -> None:
        if self.forecast.model != "lstm":
            raise ConfigError("the anomaly detector uses the lstm forecaster (model='lstm')")
        # residuals need one point forecast per reading, whatever the forecaster's defaults
        object.__setattr__(self, "forecast", replace(self.forecast, **RESIDUAL_FORECASTER))
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
    holdout: pd.DataFrame  # test points as the predictor takes them, with value and label


@dataclass
class _Scored:
    """Forecasts and normalised residuals of the points at ``pos``."""

    pos: np.ndarray
    predicted: np.ndarray  # Wh
    residual: np.ndarray  # Wh
    z: np.ndarray  # signed normalised residual
    cleaned: np.ndarray  # (N,) scaled series with flagged readings replaced by forecasts


def _z(
    fitted: FittedForecaster, scale: ResidualScale | None, pos: np.ndarray, predicted: np.ndarray
) -> np.ndarray:
    """Residuals at ``pos`` in the meter's scaled units, normalised by ``scale`` when given."""
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
    cleaner = _Cleaner(work, max_clean)
    for b in range(len(edges) - 1):
        sel = order[edges[b] : edges[b + 1]]
        if len(sel) == 0:
            continue
        predicted[sel], _ = predict_positions(work, pos[sel], first[sel])
        z[sel] = _z(work, scale, pos[sel], predicted[sel])
        # trailing runs only look back: later blocks' zeros do not change these scores
        score = combine_scores(meters, times, z, smooth_window, run_weight)[sel]
        flagged = sel[score >= threshold]
        cleaner.clean(pos[flagged], meters[flagged], times[flagged], predicted[flagged])
        if b % 50 == 0:
            log.info("scored block %d/%d (%d readings cleaned)", b + 1, len(edges) - 1, cleaner.n)
    return _Scored(pos, predicted, fleet.values[pos] - predicted, z, work.scaled)


class _Cleaner:
    """Replaces flagged readings by their forecasts in ``work.scaled``, at most ``max_clean``
    consecutive slots per meter (a longer run is a lasting change: later readings stay)."""

    def __init__(self, work: FittedForecaster, max_clean: int) -> None:
        self.work = work
        self.max_clean = max_clean
        n_meters = len(work.fleet.meter_ids)
        self.run = np.zeros(n_meters, dtype=np.int64)  # consecutive flagged slots so far
        self.last = np.full(n_meters, -2, dtype=np.int64)  # time of the last flagged slot
        self.n = 0  # readings replaced

    def clean(
        self, pos: np.ndarray, meters: np.ndarray, times: np.ndarray, predicted: np.ndarray
    ) -> None:
        """Handle the flagged points of one block, in the order given."""
        scaler = self.work.scaler
        for p, m, t, forecast in zip(pos, meters, times, predicted, strict=True):
            self.run[m] = self.run[m] + 1 if self.last[m] == t - 1 else 1
            self.last[m] = t
            if self.run[m] <= self.max_clean:
                self.work.scaled[p] = (forecast - scaler.mean[m]) / scaler.scale[m]
                self.n += 1


def _aligned(
    fleet: FleetSeries, pos: np.ndarray, labels: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(label, kind, label_id)`` of the points at ``pos``; None without labels."""
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
    fleet = build_fleet(profiles, fc.train_frac, fc.val_frac)
    fitted = fit_forecaster(fleet, None, fc)
    first_all = fleet.history_start(np.arange(len(fleet.values)), fc.test_padding)
    pos = _scorable_positions(fitted, first_all)
    # 1. validation residuals as they come: robust scale and threshold
    cal = _calibrate(fitted, pos, prepared, cfg)
    # 2. validation + test in time order, flagged readings kept out of later windows
    scored = _score(
        fitted,
        pos.val_test,
        pos.val_test_first,
        cal.scale,
        cal.threshold,
        cfg.max_clean,
        cfg.smooth_window,
        cal.run_weight,
    )
    forecast_predictor = make_predictor(fitted, pos.test, first_all[pos.test])
    test = _test_points(fitted, pos, scored, cal, prepared, cfg.smooth_window)
    scores = test.table()
    events = test.events(fleet.resolution_min, cfg.merge_gap)
    metrics = _metrics(test, len(events), cal, fitted.history.seconds, t_start)
    example = _predictor_example(fitted, pos, scored, first_all, cfg.smooth_window)
    predictor = AnomalyPredictor(
        forecast_predictor, cal.scale, cal.threshold, cfg.smooth_window, cal.run_weight, example
    )
    figs = {
        "flagged_examples": figures.flagged_examples(scores, prepared),
        "score_histogram": figures.score_histogram(scores, cal.threshold),
    }
    holdout = _holdout(fitted, pos, scored, first_all, test.label)
    return AnomalyResult(
        scores,
        events,
        metrics,
        figs,
        predictor,
        cal.threshold,
        fitted.history,
        fleet.dates,
        holdout,
    )


@dataclass
class _Positions:
    """Scorable label positions of the fleet by split, with where each one's window starts."""

    val: np.ndarray
    val_first: np.ndarray
    val_test: np.ndarray  # validation + test
    val_test_first: np.ndarray
    test: np.ndarray


@dataclass(frozen=True)
class _Calibration:
    """What the validation split fixes: residual scale, run weight and threshold."""

    scale: ResidualScale
    run_weight: float
    threshold: float


@dataclass
class _TestPoints:
    """The scored test points in the order of ``_Positions.test``, with their labels if any."""

    meter_ids: np.ndarray
    stamps: np.ndarray
    value: np.ndarray
    predicted: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    label: np.ndarray | None
    kind: np.ndarray | None
    label_id: np.ndarray | None

    def events(self, resolution_min: int, merge_gap: int) -> pd.DataFrame:
        """Runs of flagged points (``find_events``), with their most frequent label kind."""
        return find_events(
            self.meter_ids,
            self.stamps,
            self.flagged,
            self.score,
            resolution_min,
            merge_gap,
            self.kind,
        )

    def table(self) -> pd.DataFrame:
        """The ``AnomalyResult.scores`` table."""
        n = len(self.flagged)
        return pd.DataFrame(
            {
                "meter_id": self.meter_ids,
                "timestamp": self.stamps,
                "value": self.value,
                "predicted": self.predicted,
                "residual": self.value - self.predicted,
                "score": self.score,
                "flagged": self.flagged,
                "label": pd.array(self.label if self.label is not None else [pd.NA] * n, "boolean"),
                "kind": self.kind,
            }
        )


def _scorable_positions(fitted: FittedForecaster, first_all: np.ndarray) -> _Positions:
    """Label positions of the validation and test splits; SchemaError if either has none."""
    fleet, fc = fitted.fleet, fitted.settings

    def positions(splits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        return label_positions(
            fleet, splits, first_all, fc.seq_length, fc.horizon, fc.min_history, fitted.usable
        )

    val_pos, val_first = positions((VAL,))
    both_pos, both_first = positions((VAL, TEST))
    test_pos = both_pos[fleet.split[both_pos] == TEST]
    if len(val_pos) == 0 or len(test_pos) == 0:
        raise SchemaError("anomaly input: validation or test split has no scorable point")
    return _Positions(val_pos, val_first, both_pos, both_first, test_pos)


def _calibrate(
    fitted: FittedForecaster, pos: _Positions, labels: pd.DataFrame | None, cfg: AnomalySettings
) -> _Calibration:
    """Residual scale, run weight and threshold from the validation residuals as they come
    (no cleaning); ``best_f1`` uses the validation labels."""
    fleet = fitted.fleet
    raw = _score(fitted, pos.val, pos.val_first)
    meters, times = fleet.meter_idx[pos.val], fleet.time_idx[pos.val]
    scale = fit_residual_scale(
        meters,
        times % fleet.slots_per_day,
        raw.z,
        len(fleet.meter_ids),
        fleet.slots_per_day,
        cfg.shrinkage,
    )
    z = _z(fitted, scale, pos.val, raw.predicted)
    run_weight = fit_run_weight(meters, times, z, cfg.smooth_window, cfg.quantile)
    scores = combine_scores(meters, times, z, cfg.smooth_window, run_weight)
    aligned = _aligned(fleet, pos.val, labels)
    truth = aligned[0] if aligned is not None else None
    threshold = choose_threshold(scores, cfg.threshold, cfg.quantile, cfg.sigma_k, truth)
    return _Calibration(scale, run_weight, threshold)


def _test_points(
    fitted: FittedForecaster,
    pos: _Positions,
    scored: _Scored,
    cal: _Calibration,
    labels: pd.DataFrame | None,
    smooth_window: int,
) -> _TestPoints:
    """Scores and flags of the test points (trailing runs also see the validation points)."""
    fleet = fitted.fleet
    meters, times = fleet.meter_idx[pos.val_test], fleet.time_idx[pos.val_test]
    all_scores = combine_scores(meters, times, scored.z, smooth_window, cal.run_weight)
    is_test = fleet.split[pos.val_test] == TEST
    score = all_scores[is_test]
    aligned = _aligned(fleet, pos.test, labels)
    label, kind, label_id = aligned if aligned is not None else (None, None, None)
    return _TestPoints(
        meter_ids=fleet.meter_ids[fleet.meter_idx[pos.test]].astype(str),
        stamps=fleet.timestamps(pos.test),
        value=fleet.values[pos.test],
        predicted=scored.predicted[is_test],
        score=score,
        flagged=score >= cal.threshold,
        label=label,
        kind=kind,
        label_id=label_id,
    )


def _metrics(
    test: _TestPoints, n_events: int, cal: _Calibration, train_seconds: float, t_start: float
) -> dict[str, float]:
    """Detection metrics of the test split plus the run's figures; logs a summary line."""
    metrics = detection_metrics(
        test.label, test.label_id, test.kind, test.score, test.flagged, n_events
    )
    metrics.update(
        threshold=cal.threshold,
        run_weight=cal.run_weight,
        n_scored=float(len(test.score)),
        train_seconds=train_seconds,
        total_seconds=time.perf_counter() - t_start,
    )
    log.info(
        "anomaly: threshold %.2f, %d of %d test points flagged in %d events%s",
        cal.threshold,
        int(test.flagged.sum()),
        len(test.flagged),
        n_events,
        f", f1 {metrics['f1']:.3f}" if "f1" in metrics else "",
    )
    return metrics


def _holdout(
    fitted: FittedForecaster,
    pos: _Positions,
    scored: _Scored,
    first_all: np.ndarray,
    label: np.ndarray | None,
) -> pd.DataFrame:
    """The held-out test points as the predictor takes them (windows with flagged readings
    replaced, as the detector saw them), their value and label (NA without labels)."""
    meters = fitted.fleet.meter_idx
    cleaned_wh = scored.cleaned * fitted.scaler.scale[meters] + fitted.scaler.mean[meters]
    test = pos.test
    value = fitted.fleet.values[test]
    rows = holdout_rows(fitted, test, first_all[test], value, "value", cleaned_wh)
    keep = holdout_selection(fitted, test)
    flags = label[keep] if label is not None else [pd.NA] * int(keep.sum())
    rows["label"] = pd.array(flags, dtype="boolean")
    return rows


def _predictor_example(
    fitted: FittedForecaster,
    pos: _Positions,
    scored: _Scored,
    first_all: np.ndarray,
    smooth_window: int,
) -> pd.DataFrame:
    """The predictor's input example: the first test points of a meter, after the validation
    points their trailing runs look back on, in the windows the detector scored (readings it
    flagged replaced by their forecasts)."""
    fleet = fitted.fleet
    j = int(np.searchsorted(pos.val_test, pos.test[0]))
    example_pos = pos.val_test[max(0, j - smooth_window + 1) : j + 8]
    meters = fleet.meter_idx
    cleaned_wh = scored.cleaned * fitted.scaler.scale[meters] + fitted.scaler.mean[meters]
    example = predictor_rows(fitted, example_pos, first_all[example_pos], cleaned_wh)
    example["value"] = fleet.values[example_pos]
    return example
