"""Every detector end to end on a small synthetic fleet with planted anomalies."""

from __future__ import annotations

import dataclasses
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from meterflow import defaults
from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.detection import AnomalySettings, detect_anomalies
from meterflow.anomaly.registry import DETECTORS, make_detector
from meterflow.anomaly.scoring import COMPONENTS
from meterflow.errors import ConfigError, SchemaError
from meterflow.orchestration.decision import decide, holdout_score
from meterflow.series.fleet import build_panel, split_dates
from tests.anomaly.synthetic import CLEAN_METERS, TEST_DAY, clean_series, planted

FAST = DetectorSettings(epochs=4, units=(16,), max_train_windows=3000, threads=1)
KINDS = ("spike", "flat_line", "level_shift", "theft")


def settings(detector: str, **extra: object) -> AnomalySettings:
    return AnomalySettings(detector=detector, detectors=(), training=FAST, **extra)


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return planted(clean_series())


@pytest.fixture(scope="module")
def results(fleet):
    series, labels = fleet
    return {name: detect_anomalies(series, 60, labels, settings(name)) for name in DETECTORS}


@pytest.mark.parametrize("name", list(DETECTORS))
def test_each_detector_finds_every_planted_kind(results, name):
    m = results[name].metrics
    for kind in KINDS:
        assert m[f"event_recall_{kind}"] == 1.0, (name, kind)
    assert m["auc_roc"] > 0.9 and m["auc_pr"] > 0.3
    assert all(np.isfinite(v) for v in m.values())
    scores = results[name].scores
    assert (scores["timestamp"] >= pd.Timestamp("2024-01-01") + pd.Timedelta(days=TEST_DAY)).all()
    assert (scores["flagged"] == (scores["score"] >= results[name].predictor.threshold)).all()
    assert set(results[name].predictor.thresholds) == set(COMPONENTS)


@pytest.mark.parametrize("name", list(DETECTORS))
def test_a_meter_without_anomalies_raises_few_false_alarms(results, name):
    # over 25 test days; the day-level forest flags whole days, its threshold rests on 104
    # validation meter-days
    events = results[name].events
    most = 3 if name == "isolation_forest" else 1
    for meter in CLEAN_METERS:
        assert (events["meter_id"] == meter).sum() <= most, (name, meter)
    assert results[name].metrics["false_alarms_per_meter_month"] < 2.0


def test_point_evidence_alone_finds_the_spike(fleet):
    series, labels = fleet
    for name in ("lstm_residual", "robust_z"):
        result = detect_anomalies(series, 60, labels, settings(name, windowed=False))
        assert result.metrics["event_recall_spike"] == 1.0, name
        assert set(result.scores["component"].dropna()) == {"point"}


def test_events_carry_a_kind_guess_and_the_label_kind(results):
    events = results["robust_z"].events
    assert {"meter_id", "start", "end", "kind", "label_kind", "peak_score"} <= set(events)
    found = events.dropna(subset=["label_kind"])
    assert (found["kind"] == found["label_kind"]).mean() >= 0.75
    assert results["robust_z"].metrics["kind_guess_accuracy"] >= 0.75


def test_detectors_are_compared_side_by_side_and_auto_keeps_the_best_on_validation(fleet):
    series, labels = fleet
    cfg = AnomalySettings(
        detector="robust_z", detectors=("isolation_forest", "robust_z"), training=FAST
    )
    result = detect_anomalies(series, 60, labels, cfg)
    assert list(result.comparison["detector"]) == ["robust_z", "isolation_forest"]
    for key in ("f1", "auc_pr", "planted_f1", "val_planted_objective"):
        assert f"other_isolation_forest_{key}" in result.metrics
    assert set(result.figures) == {"scores_over_time", "score_histogram", "pr_curves"}
    assert result.chosen == "robust_z" and "asked for" in result.reason
    auto = detect_anomalies(series, 60, None, dataclasses.replace(cfg, detector="auto"))
    objective = auto.comparison.set_index("detector")["val_planted_objective"]
    assert auto.chosen == objective.idxmax() and auto.chosen in auto.reason
    assert auto.comparison["detector"].iloc[0] == auto.chosen


def test_thresholds_and_normalisation_never_see_the_test_period(fleet, results):
    series, labels = fleet
    wild = series.copy()
    test = wild["timestamp"] >= pd.Timestamp("2024-01-01") + pd.Timedelta(days=TEST_DAY)
    wild.loc[test, "value"] *= 50
    again = detect_anomalies(wild, 60, labels, settings("robust_z"))
    before, after = results["robust_z"].predictor.model, again.predictor.model
    assert after.thresholds == before.thresholds
    np.testing.assert_array_equal(after.point.scale, before.point.scale)
    np.testing.assert_array_equal(after.ratio.scale, before.ratio.scale)
    np.testing.assert_array_equal(after.repeat_p, before.repeat_p)
    no_labels = detect_anomalies(series, 60, None, settings("robust_z"))
    assert not {"precision", "recall", "f1", "auc_roc", "auc_pr"} & set(no_labels.metrics)
    assert no_labels.scores["label"].isna().all()


@pytest.mark.parametrize("name", ["lstm_residual", "lstm_autoencoder", "isolation_forest"])
def test_a_reloaded_model_scores_the_holdout_as_the_run_did(results, name, tmp_path):
    result = results[name]
    holdout = result.holdout
    path = tmp_path / "predictor.pkl"
    path.write_bytes(pickle.dumps(result.predictor))
    holdout.to_pickle(tmp_path / "holdout.pkl")
    script = tmp_path / "fresh.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pickle, numpy as np, pandas as pd
            predictor = pickle.loads(open({str(path)!r}, "rb").read())
            out = predictor.predict(pd.read_pickle({str(tmp_path / "holdout.pkl")!r}))
            np.save({str(tmp_path / "score.npy")!r}, out["score"].to_numpy(float))
            """
        )
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    score = np.load(tmp_path / "score.npy")
    scored = holdout["label"].notna().to_numpy()
    in_process = result.predictor.predict(holdout)["score"].to_numpy(float)
    np.testing.assert_allclose(score, in_process, rtol=1e-6)
    assert np.isnan(score[~scored]).all()  # the history rows are not scored
    # the holdout is the planted test copy: its F1 is the run's planted_f1
    truth = holdout.loc[scored, "label"].to_numpy(bool)
    assert truth.any() and (~truth).any()
    f1 = f1_score(truth, score[scored] >= result.predictor.threshold)
    assert f1 == pytest.approx(result.metrics["planted_f1"], abs=0.02)


def test_predictor_input_errors_name_the_row(results):
    predictor = results["robust_z"].predictor
    example = predictor.input_example()
    assert len(example) == (predictor.context_days + 1) * 24
    assert example["history"].sum() == predictor.context_days * 24
    with pytest.raises(SchemaError, match="value"):
        predictor.predict(example.drop(columns="value"))
    late = example.copy()
    late.loc[late.index[5], "timestamp"] += pd.Timedelta(minutes=7)
    with pytest.raises(SchemaError, match=r"row 5 .*off the grid"):
        predictor.predict(late)
    twice = pd.concat([example, example.iloc[[3]]])
    with pytest.raises(SchemaError, match="repeated"):
        predictor.predict(twice)
    unknown = example.assign(meter_id="NEW")  # an unseen meter: fleet-level normalisation
    assert np.isfinite(predictor.predict(unknown)["score"]).any()


def test_settings_and_registry_are_checked():
    with pytest.raises(ConfigError, match="unknown anomaly detector"):
        AnomalySettings(detector="magic")
    with pytest.raises(ConfigError, match="unknown anomaly detector"):
        make_detector("magic", FAST)
    with pytest.raises(ConfigError, match="timezone"):
        AnomalySettings(timezone="Mars/Olympus")
    with pytest.raises(ConfigError, match="alarm_budget"):
        AnomalySettings(alarm_budget=0)
    with pytest.raises(ConfigError, match="at least one detector"):
        AnomalySettings(detector="auto", detectors=())
    same = AnomalySettings(detector="robust_z", detectors=("robust_z",))
    assert same.run_names == ("robust_z",)


def test_the_residual_detector_takes_the_hybrid_forecaster(fleet, tmp_path):
    series, labels = fleet
    rng = np.random.default_rng(0)
    meters = pd.DataFrame(
        {
            "meter_id": sorted(series["meter_id"].unique()),
            "latitude": 42.5 + rng.uniform(0, 0.3, 8),
            "longitude": 12.5 + rng.uniform(0, 0.3, 8),
        }
    )
    training = dataclasses.replace(FAST, forecast_model="hybrid")
    cfg = AnomalySettings(detector="lstm_residual", detectors=(), training=training)
    result = detect_anomalies(series, 60, labels, cfg, meters)
    assert result.predictor.detector.forecaster.settings.model == "hybrid"
    assert result.predictor.detector.reads_other_meters  # its meters are scored in one block
    for kind in KINDS:
        assert result.metrics[f"event_recall_{kind}"] == 1.0, kind
    again = pickle.loads(pickle.dumps(result.predictor)).predict(result.holdout)
    np.testing.assert_allclose(again["score"], result.predictor.predict(result.holdout)["score"])


def test_the_residual_cleaning_is_fitted_block_by_block(results, fleet, monkeypatch):
    series, _ = fleet
    fitted = results["lstm_residual"].predictor.detector
    detector = pickle.loads(pickle.dumps(fitted))
    assert not detector.reads_other_meters
    whole = build_panel(series, 60, split_dates(series["timestamp"], 0.7, 0.1))
    monkeypatch.setattr(defaults, "BLOCK_METERS", 3)
    detector._fit_cleaning(whole)
    np.testing.assert_array_equal(detector.clean_center, fitted.clean_center)
    np.testing.assert_array_equal(detector.clean_scale, fitted.clean_scale)
    assert detector.clean_threshold == fitted.clean_threshold


def test_an_unlabelled_run_can_promote_a_better_model_on_its_planted_holdout(fleet):
    series, _ = fleet
    weak = detect_anomalies(series, 60, None, settings("robust_z", windowed=False))
    strong = detect_anomalies(series, 60, None, settings("robust_z"))
    holdout = strong.holdout  # the challenger's planted test copy and its truth, no labels
    assert holdout["label"].fillna(False).any()
    rows = holdout.drop(columns="label")
    challenger = holdout_score("anomaly", holdout, strong.predictor.predict(rows))
    champion = holdout_score("anomaly", holdout, weak.predictor.predict(rows))
    assert challenger > champion
    assert decide("anomaly", challenger, champion, 0.01).promote
    assert not decide("anomaly", champion, challenger, 0.01).promote


class _PieceCounter:
    """A bound network's ``point_forecasts``, recording the size of each call."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def point_forecasts(self, pos: np.ndarray, first: np.ndarray) -> np.ndarray:
        self.sizes.append(len(pos))
        return pos.astype(np.float64) * 2


def test_residual_forecasts_come_in_unpadded_pieces():
    from meterflow.anomaly import lstm_residual as residual

    bound = _PieceCounter()
    pos = np.arange(2400)
    out = residual.predict_unpadded(bound, pos, pos)
    assert bound.sizes == [2048, 256, 64, 32]  # 2 432 rows through the network, not 4 096
    np.testing.assert_array_equal(out, pos * 2.0)
