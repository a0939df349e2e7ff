"""Anomaly detection: label alignment, events, metrics, thresholds, detector, predictor."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly import AnomalySettings, detect_anomalies
from meterflow.anomaly.events import align_labels, detection_metrics, find_events, prepare_labels
from meterflow.anomaly.thresholds import choose_threshold, combine_scores, fit_residual_scale
from meterflow.errors import ConfigError, SchemaError
from meterflow.forecasting import ForecastSettings
from meterflow.schemas import slot_columns

SPD = 24
TZ = "Europe/Rome"


def synthetic_profiles(n_meters: int = 6, n_days: int = 60, seed: int = 3) -> pd.DataFrame:
    """Hourly daily-periodic load with noise (winter dates: Rome = UTC+1)."""
    rng = np.random.default_rng(seed)
    hours = np.arange(SPD)
    shape = 0.4 + 0.5 * np.exp(-(((hours - 8) / 1.5) ** 2)) + np.exp(-(((hours - 20) / 2.5) ** 2))
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D").astype("datetime64[ns]")
    frames = []
    for m in range(n_meters):
        level = rng.uniform(300, 900)
        values = level * (shape[None, :] + rng.normal(0, 0.04, (n_days, SPD)))
        df = pd.DataFrame(values, columns=slot_columns(SPD))
        df.insert(0, "source", "sql")
        df.insert(0, "date", dates)
        df.insert(0, "meter_id", f"M{m:02d}")
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def inject(profiles: pd.DataFrame, from_day: int, factor: float = 1.0, seed: int = 5):
    """Two spikes and one 8-hour level shift per meter after ``from_day``; labels in UTC."""
    rng = np.random.default_rng(seed)
    out = profiles.copy()
    cols = slot_columns(SPD)
    labels = []
    for meter, part in out.groupby("meter_id"):
        rows = part.index[from_day:]
        level = part[cols].to_numpy().mean()
        days = rng.choice(len(rows) - 1, size=3, replace=False)
        for i, (kind, length, jump) in enumerate(
            [("spike", 1, 2.0), ("spike", 1, -1.5), ("level_shift", 8, 0.8)]
        ):
            row, hour = rows[days[i]], int(rng.integers(0, SPD - length))
            out.loc[row, cols[hour : hour + length]] += factor * jump * level
            start = pd.Timestamp(out.loc[row, "date"]) + pd.Timedelta(hours=hour)
            bounds = pd.DatetimeIndex([start, start + pd.Timedelta(hours=length)])
            utc = bounds.tz_localize(TZ).tz_convert("UTC")
            labels.append((meter, kind, utc[0], utc[1], jump))
    columns = ["meter_id", "kind", "start_utc", "end_utc", "magnitude"]
    return out, pd.DataFrame(labels, columns=columns)


FAST = dict(
    horizon=24,
    epochs=6,
    learning_rate=1e-2,
    max_train_windows=2000,
    max_val_windows=1000,
    threads=1,
)
TEST_FROM_DAY = 48  # 60 days at 0.7/0.1/0.2: the test split starts on day 48


@pytest.fixture(scope="module")
def clean_profiles() -> pd.DataFrame:
    return synthetic_profiles()


@pytest.fixture(scope="module")
def detection(clean_profiles):
    profiles, labels = inject(clean_profiles, TEST_FROM_DAY)
    cfg = AnomalySettings(forecast=ForecastSettings(**FAST))
    return detect_anomalies(profiles, labels, cfg), labels


# --- labels, events, metrics ---------------------------------------------------------------


def test_labels_are_converted_from_utc_and_overlap_slots():
    stamps = pd.date_range("2024-07-01 00:00", periods=6, freq="h").to_numpy()
    meter_ids = np.array(["A"] * 6 + ["B"] * 6, dtype=object)
    labels = prepare_labels(
        pd.DataFrame(
            {
                "meter_id": ["A", "C"],
                "kind": ["spike", "flatline"],
                # 23:30Z = 01:30 local (CEST, UTC+2); 01:00Z = 03:00 local, exclusive
                "start_utc": pd.to_datetime(["2024-06-30 23:30", "2024-07-01 00:00"], utc=True),
                "end_utc": pd.to_datetime(["2024-07-01 01:00", "2024-07-01 05:00"], utc=True),
                "magnitude": [1.0, 1.0],
            }
        ),
        TZ,
    )
    flag, kind, label_id = align_labels(meter_ids, np.r_[stamps, stamps], labels, 60)
    # slots 01:00 and 02:00 of A overlap [01:30, 03:00); 03:00 does not; B and C untouched
    np.testing.assert_array_equal(np.flatnonzero(flag), [1, 2])
    assert list(kind[[1, 2]]) == ["spike", "spike"] and kind[0] is None
    assert set(label_id[[1, 2]]) == {0}
    # naive label bounds are read as UTC: same result
    naive = labels.copy()
    raw = pd.DataFrame(
        {
            "meter_id": ["A"],
            "kind": ["spike"],
            "start_utc": ["2024-06-30 23:30"],
            "end_utc": ["2024-07-01 01:00"],
        }
    )
    assert prepare_labels(raw, TZ)["start"].iloc[0] == naive["start"].iloc[0]


def test_bad_labels_name_the_problem():
    with pytest.raises(SchemaError, match="end_utc"):
        prepare_labels(pd.DataFrame({"meter_id": ["A"], "kind": ["x"], "start_utc": [1]}), TZ)
    bad = pd.DataFrame(
        {
            "meter_id": ["A"],
            "kind": ["x"],
            "start_utc": pd.to_datetime(["2024-01-02"], utc=True),
            "end_utc": pd.to_datetime(["2024-01-01"], utc=True),
        }
    )
    with pytest.raises(SchemaError, match="row 0"):
        prepare_labels(bad, TZ)


def test_events_are_runs_of_flagged_points():
    stamps = pd.date_range("2024-01-01", periods=8, freq="h").to_numpy()
    ids = np.array(["A"] * 8, dtype=object)
    flagged = np.array([1, 1, 0, 1, 0, 0, 1, 0], dtype=bool)
    scores = np.arange(8, dtype=float)
    kind = np.array(["spike", "spike", None, None, None, None, None, None], dtype=object)
    events = find_events(ids, stamps, flagged, scores, 60, merge_gap=1, kind=kind)
    # points 0,1 and 3 merge across one unflagged slot; 6 is alone
    assert len(events) == 2
    assert events["start"].iloc[0] == pd.Timestamp("2024-01-01 00:00")
    assert events["end"].iloc[0] == pd.Timestamp("2024-01-01 04:00")  # exclusive
    assert list(events["n_flagged"]) == [3, 1] and list(events["peak_score"]) == [3.0, 6.0]
    assert events["kind"].iloc[0] == "spike" and pd.isna(events["kind"].iloc[1])
    assert len(find_events(ids, stamps, flagged, scores, 60, merge_gap=0)) == 3
    assert find_events(ids, stamps, np.zeros(8, bool), scores, 60).empty


def test_detection_metrics_on_hand_made_labels():
    label = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    flagged = np.array([1, 0, 0, 1, 1, 0], dtype=bool)
    score = np.array([0.9, 0.3, 0.1, 0.8, 0.7, 0.2])
    kind = np.array(["spike", "level shift", None, None, "level shift", None], dtype=object)
    label_id = np.array([0, 1, -1, -1, 1, -1])
    m = detection_metrics(label, label_id, kind, score, flagged, n_events=3)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["auc_roc"] == pytest.approx(7 / 9)
    assert m["recall_spike"] == 1.0 and m["recall_level_shift"] == 0.5
    assert m["event_recall"] == 1.0 and m["n_label_events"] == 2.0
    assert m["flagged_share"] == pytest.approx(0.5) and m["n_events"] == 3.0


def test_no_label_metrics_without_positives():
    flagged = np.array([True, False, False])
    score = np.array([3.0, 1.0, 0.5])
    for label in (None, np.zeros(3, dtype=bool)):
        ids = None if label is None else np.full(3, -1)
        kind = None if label is None else np.full(3, None, dtype=object)
        m = detection_metrics(label, ids, kind, score, flagged, n_events=1)
        assert set(m) == {"flagged_share", "n_events"}
        assert all(np.isfinite(v) for v in m.values())


# --- scores and thresholds -----------------------------------------------------------------


def test_thresholds_from_validation_scores():
    scores = np.arange(1000, dtype=float)
    assert choose_threshold(scores, "quantile", quantile=0.99) == pytest.approx(989.01)
    assert choose_threshold(scores, "sigma", sigma_k=2) == pytest.approx(
        scores.mean() + 2 * scores.std()
    )
    labels = scores >= 950
    assert choose_threshold(scores, "best_f1", val_labels=labels) == 950.0
    assert choose_threshold(scores, "best_f1", quantile=0.9) == pytest.approx(899.1)
    with pytest.raises(ConfigError):
        choose_threshold(scores, "magic")


def test_combined_score_adds_up_sustained_residuals():
    z = np.array([0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 9.0, 0.0, -0.5, 0.2, 0.0])
    meter = np.zeros(len(z), dtype=int)
    time_idx = np.r_[np.arange(9), np.arange(10, 15)]  # a gap before the 9.0
    np.testing.assert_array_equal(combine_scores(meter, time_idx, z, 1), np.abs(z))
    s = combine_scores(meter, time_idx, z, 8)
    # eight residuals of 2: long and short (8 // 4 = 2) means agree -> 2 x sqrt(8)
    assert s[8] == pytest.approx(2 * np.sqrt(8))
    assert s[9] == 9.0  # after the gap the run restarts, the spike keeps its point score
    # the spike counts as 3 in the run; right after it the short mean drops to 1.5
    assert s[10] == pytest.approx(max(0.0, np.sqrt(2) * 1.5))
    assert s[11] == 0.5  # short mean (0 - 0.5) / 2 < 0 disagrees with the long mean > 0
    assert combine_scores(meter, time_idx, z, 8, run_weight=0.5)[8] == pytest.approx(np.sqrt(8))


def test_residual_scale_is_per_meter_and_slot():
    rng = np.random.default_rng(0)
    n = 4000
    slot = np.tile([0, 1], n // 2)
    residual = rng.normal(0.5, np.where(slot == 0, 1.0, 10.0))
    scale = fit_residual_scale(np.zeros(n, dtype=int), slot, residual, 1, 2, shrinkage=10)
    assert scale.center[0] == pytest.approx(0.5, abs=0.5)
    assert scale.scale[0, 0] == pytest.approx(1.0, rel=0.15)
    assert scale.scale[0, 1] == pytest.approx(10.0, rel=0.15)
    # an unknown meter (-1) is scored with centre 0 and the fleet spread
    assert scale.z(np.array([-1]), np.array([0]), np.array([1.0]))[0] == 1.0 / scale.fleet_scale


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="lstm"):
        AnomalySettings(forecast=ForecastSettings(model="hybrid"))
    with pytest.raises(ConfigError, match="timezone"):
        AnomalySettings(timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="threshold"):
        AnomalySettings(threshold="magic")


# --- detector end to end -------------------------------------------------------------------


def test_detector_finds_injected_spikes_and_level_shifts(detection):
    result, labels = detection
    m = result.metrics
    prevalence = result.scores["label"].astype(bool).mean()
    chance_f1 = 2 * prevalence / (1 + prevalence)  # flagging everything
    assert 0.01 < prevalence < 0.1
    assert m["f1"] > 0.6 > 5 * chance_f1
    assert m["auc_roc"] > 0.9
    assert m["recall_spike"] >= 0.9 and m["event_recall_level_shift"] >= 0.8
    assert m["event_recall"] >= 0.9 and m["n_label_events"] == len(labels)
    assert all(np.isfinite(v) for v in m.values())
    scores = result.scores
    assert list(scores.columns) == [
        "meter_id", "timestamp", "value", "predicted", "residual", "score", "flagged", "label",
        "kind",
    ]  # fmt: skip
    assert (scores["timestamp"] >= result.split.test_start).all()
    assert (scores["flagged"] == (scores["score"] >= result.threshold)).all()
    assert m["threshold"] == result.threshold
    np.testing.assert_allclose(scores["residual"], scores["value"] - scores["predicted"])
    events = result.events
    assert len(events) == m["n_events"] and (events["end"] > events["start"]).all()
    assert {"spike", "level_shift"} <= set(events["kind"].dropna())
    assert set(result.figures) == {"flagged_examples", "score_histogram"}


def test_threshold_ignores_the_test_split_and_no_labels_no_metrics(clean_profiles, detection):
    result, _ = detection
    # much larger anomalies in the test split, no labels: training, validation and therefore
    # the threshold are unchanged; only the label-free metrics are reported
    bigger, _ = inject(clean_profiles, TEST_FROM_DAY, factor=3.0)
    again = detect_anomalies(bigger, None, AnomalySettings(forecast=ForecastSettings(**FAST)))
    assert again.threshold == result.threshold
    assert not {"precision", "recall", "f1", "auc_roc", "event_recall"} & set(again.metrics)
    assert all(np.isfinite(v) for v in again.metrics.values())
    assert again.scores["label"].isna().all()
    assert again.scores["flagged"].sum() > 0


def test_predictor_matches_detector_and_survives_a_fresh_process(detection, tmp_path):
    result, _ = detection
    predictor = result.predictor
    example = predictor.input_example()
    assert {"meter_id", "window_end", "value", "lag_00", "lag_29"} <= set(example.columns)
    out = predictor.predict(example)
    # the example holds the validation rows the test rows' trailing runs look back on, then
    # the meter's first test rows: those must score exactly as in the detector
    target = example["window_end"] + pd.Timedelta(hours=24)
    in_test = (target >= result.split.test_start).to_numpy()
    assert in_test.sum() == 8 and len(example) == 8 + 23
    expected = result.scores.set_index(["meter_id", "timestamp"]).loc[
        list(zip(example["meter_id"][in_test], target[in_test], strict=True))
    ]
    np.testing.assert_allclose(out["score"][in_test], expected["score"], rtol=1e-5, atol=1e-5)
    assert (out["flagged"][in_test].to_numpy() == expected["flagged"].to_numpy()).all()
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(predictor))
    example.to_pickle(tmp_path / "example.pkl")
    script = tmp_path / "fresh.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pickle, numpy as np, pandas as pd
            with open({str(tmp_path / "model.pkl")!r}, "rb") as fh:
                predictor = pickle.load(fh)
            example = pd.read_pickle({str(tmp_path / "example.pkl")!r})
            out = predictor.predict(example)
            np.save({str(tmp_path / "score.npy")!r}, out["score"].to_numpy())
            """
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "score.npy"), out["score"].to_numpy())
    with pytest.raises(SchemaError, match="value"):
        predictor.predict(example.drop(columns="value"))
