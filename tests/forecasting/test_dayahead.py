"""Day-ahead forecasting: exact baselines, the model earned on validation, no leakage across
test_start, multi-output shapes, ordered quantiles, scopes and series files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.forecasting import ForecastSettings, evaluate_forecaster
from meterflow.forecasting.calibration import apply_scales, interval_scales
from meterflow.forecasting.inputs import split_test_inputs
from meterflow.forecasting.scope import aggregate, dominant_clusters, scoped_series
from meterflow.series.fleet import build_panel, split_dates
from meterflow.sources.seriesfile import read_series_file

SPD = 24
QUICK = dict(epochs=1, max_train_windows=500, max_val_windows=200, threads=1, horizon=SPD)


def weekly_series(n_days: int = 35, series_id: str = "S1", scale: float = 1.0) -> pd.DataFrame:
    """An exactly week-periodic hourly series: each (weekday, hour) has its own value."""
    stamps = pd.date_range("2024-01-01", periods=n_days * SPD, freq="h")  # a Monday
    slot_of_week = np.arange(len(stamps)) % (7 * SPD)
    value = scale * (100.0 + slot_of_week + 10 * np.sin(slot_of_week))
    return pd.DataFrame({"meter_id": series_id, "timestamp": stamps, "value": value})


def panel(series: pd.DataFrame, test_start: str = "2024-01-29", exog: tuple[str, ...] = ()):
    dates = split_dates(series["timestamp"], 0.7, 0.1, pd.Timestamp(test_start), 7)
    return build_panel(series, 60, dates, exog)


@pytest.fixture(scope="module")
def weekly_result():
    return evaluate_forecaster(panel(weekly_series()), None, ForecastSettings(**QUICK))


def test_every_baseline_is_known_exactly_on_a_weekly_series(weekly_result):
    table = weekly_result.predictions
    truth = weekly_series().set_index("timestamp")["value"]
    ends, targets = table["window_end"], table["timestamp"]
    np.testing.assert_array_equal(table["persistence"], truth.loc[ends].to_numpy())
    np.testing.assert_array_equal(
        table["seasonal_naive_day"], truth.loc[targets - pd.Timedelta(days=1)].to_numpy()
    )
    np.testing.assert_array_equal(table["seasonal_naive_week"], table["actual"])
    week_mean = np.mean([truth.loc[targets - pd.Timedelta(days=d)] for d in range(1, 8)], axis=0)
    np.testing.assert_allclose(table["seasonal_mean_7d"], week_mean)
    train = truth.loc[: weekly_result.split.val_start - pd.Timedelta(hours=1)]
    by_hour = train.groupby(train.index.hour).mean()
    np.testing.assert_allclose(table["climatology"], by_hour.loc[targets.dt.hour].to_numpy())
    m = weekly_result.metrics
    assert m["baseline_seasonal_naive_week_mae"] == 0.0
    # the week lag is one of its inputs (its first training week only has the day's fallback)
    assert m["baseline_linear_mae"] < 0.5 * m["baseline_seasonal_naive_day_mae"]
    assert m["baseline_dshw_mae"] < 1e-3 * truth.mean()  # noiseless double seasonality
    assert weekly_result.best_baseline in ("seasonal_naive_week", "linear", "dshw")


def test_multi_output_shapes_ordered_quantiles_and_the_kept_model(weekly_result):
    table = weekly_result.predictions
    assert (table["step"].iloc[:SPD] == np.arange(1, SPD + 1)).all()
    assert (table["q10"] <= table["q50"]).all() and (table["q50"] <= table["q90"]).all()
    np.testing.assert_array_equal(table["prediction"], table["q50"])
    assert (table["timestamp"] > table["window_end"]).all()
    m = weekly_result.metrics
    assert {f"test_mape_h{k}" for k in range(1, SPD + 1)} <= set(m)
    assert 0 <= m["test_coverage"] <= 1 and m["test_coverage_nominal"] == pytest.approx(0.8)
    by_step = weekly_result.by_step
    assert set(by_step["model"]) >= {"lstm", "dshw", "seasonal_naive_week"}
    kept = weekly_result.choice.name
    assert len(by_step.loc[by_step["model"] == kept]) == SPD
    # the kept model is the combination learned on validation, never worse there than its
    # best candidate; on an exactly weekly series that is dshw, exact up to rounding, which
    # only the seasonal naive week (exact to the bit) can beat
    scores = weekly_result.scores.set_index("candidate")
    pool = ["lstm", "dshw", "linear"]
    assert scores.loc[kept, "val_mae"] <= scores.loc[pool, "val_mae"].min() + 1e-9
    assert m["test_mae"] <= 1e-6 * weekly_series()["value"].mean()
    assert set(weekly_result.beaten_by) <= {"seasonal_naive_week"}


def test_nothing_from_test_start_on_reaches_training():
    """Values from test_start on may change arbitrarily: the fitted models and the kept
    combination stay the same."""
    series = weekly_series()
    changed = series.copy()
    after = changed["timestamp"] >= pd.Timestamp("2024-01-29")
    changed.loc[after, "value"] *= 50
    cfg = ForecastSettings(**{**QUICK, "epochs": 2})
    a = evaluate_forecaster(panel(series), None, cfg)
    b = evaluate_forecaster(panel(changed), None, cfg)
    for wa, wb in zip(a.candidates["lstm"].weights, b.candidates["lstm"].weights, strict=True):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_array_equal(
        a.candidates["linear"].model.coef, b.candidates["linear"].model.coef
    )
    assert a.choice.val_mae == b.choice.val_mae
    for name, weight in a.choice.weights.items():
        np.testing.assert_array_equal(weight, b.choice.weights[name])
    assert a.predictions["timestamp"].min() >= pd.Timestamp("2024-01-29")
    assert a.split.test_start == pd.Timestamp("2024-01-29")


def test_origin_hour_and_exogenous_inputs():
    series = weekly_series()
    series["temperature"] = np.cos(np.arange(len(series)) / 50.0)
    cfg = ForecastSettings(**QUICK, exog=("temperature",), origin_hour=6, model="lstm")
    fleet = panel(series, exog=("temperature",))
    result = evaluate_forecaster(fleet, None, cfg)
    assert (result.predictions.groupby("window_end")["timestamp"].min().dt.hour == 6).all()
    test = split_test_inputs(fleet, cfg)
    assert np.isfinite(result.model.predict(test)).all()


def test_scope_totals_and_dominant_clusters():
    a, b = weekly_series(series_id="A"), weekly_series(series_id="B", scale=2.0)
    b = b.drop(index=b.index[:5])  # B misses its first five hours
    totals, counts = aggregate(pd.concat([a, b]), pd.Series("all", index=["A", "B"]), 0.5)
    # where B is missing the total is A's scaled to both members; elsewhere the exact sum
    assert totals["value"].iloc[0] == 2 * a["value"].iloc[0]
    assert totals["value"].iloc[10] == a["value"].iloc[10] + b["value"].iloc[5]
    assert counts["aggregate_estimated_slots"] == 5
    _, strict = aggregate(pd.concat([a, b]), pd.Series("all", index=["A", "B"]), 1.0)
    assert strict["aggregate_gap_slots"] == 5
    assignments = pd.DataFrame({"meter_id": ["A", "A", "A", "B", "B"], "cluster": [1, 1, 0, 2, 2]})
    assert dominant_clusters(assignments).to_dict() == {"A": "cluster_1", "B": "cluster_2"}
    scoped, _ = scoped_series(pd.concat([a, b]), "cluster", assignments)
    assert sorted(scoped["meter_id"].unique()) == ["cluster_1", "cluster_2"]


def test_series_file_resolution_and_errors(tmp_path: Path):
    good = tmp_path / "good.csv"
    stamps = pd.date_range("2024-01-01", periods=100, freq="15min", tz="Europe/Rome")
    pd.DataFrame({"timestamp": stamps, "value": 1.0, "temp": 2.0}).drop(index=[7]).to_csv(
        good, index=False
    )
    file = read_series_file(good)
    assert file.resolution_min == 15 and file.exog == ("temp",)
    assert read_series_file(good, ignore=("temp",)).exog == ()
    assert read_series_file(good, inputs=False).exog == ()
    assert file.series["timestamp"].iloc[0] == pd.Timestamp("2023-12-31 23:00")  # UTC
    cases = {
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:00,2\n": "duplicate.*row=1",
        "timestamp,value\n2024-01-01 00:00,1\nnot a time,2\n": "unparsable.*row=1",
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 01:00,x\n": "not numeric.*row=1",
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:07,2\n": "divide a day",
        "time,value\n2024-01-01 00:00,1\n": "missing column",
        "timestamp,value,label\n2024-01-01 00:00,1,0\n2024-01-01 01:00,2,1\n": "label.*ignore",
        "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 01:00,inf\n": "not finite.*row=1",
        "timestamp,value\n"
        + "".join(
            f"2024-01-01 {h:02d}:00,{1e300 if h == 5 else h + 1}\n" for h in range(10)
        ): "absurdly large.*meter=series, row=5",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.csv"
        path.write_text(text)
        with pytest.raises(SourceError, match=message):
            read_series_file(path)


def test_interval_calibration_reaches_the_nominal_coverage():
    rng = np.random.default_rng(0)
    actual = rng.normal(0, 2.0, size=(4000, 3))
    too_narrow = np.stack([np.full_like(actual, q) for q in (-1.0, 0.0, 1.0)], axis=-1)
    scales = interval_scales(too_narrow, actual, (0.1, 0.5, 0.9), median=1)
    widened = apply_scales(too_narrow, scales, median=1)
    inside = (widened[..., 0] <= actual) & (actual <= widened[..., 2])
    np.testing.assert_allclose(inside.mean(axis=0), 0.8, atol=0.01)
    np.testing.assert_allclose(scales, 2 * 1.2816, rtol=0.05)  # the normal's 90 % point
    np.testing.assert_array_equal(widened[..., 1], too_narrow[..., 1])


def test_the_lstm_reads_the_references_the_evaluation_shares(weekly_result):
    """The LSTM's test forecasts from the recent statistics and seasonal references cached on
    the evaluation's inputs equal those it computes from its own readings."""
    from meterflow.forecasting.deep import predict_steps, shared_references

    lstm = weekly_result.candidates["lstm"]
    test = weekly_result.test
    bound = lstm.bind(test.fleet)
    refs = shared_references(bound, test)
    assert refs is not None
    args = (bound, test.origin, test.window_first, test.history_first)
    np.testing.assert_array_equal(predict_steps(*args, refs), predict_steps(*args))
    cleaned = lstm.bind(test.fleet, fresh=True)
    cleaned.values[0] += 1.0  # readings cleaned in place (the anomaly step): nothing shared
    assert shared_references(cleaned, test) is None
