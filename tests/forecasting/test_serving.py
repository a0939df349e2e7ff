"""The served model: raw readings in, day-ahead rows out, the same forecasts as the evaluation;
one clear line for every bad input; held-out forecasts stratified across series and days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SchemaError
from meterflow.forecasting import ForecastSettings, evaluate_forecaster
from meterflow.forecasting.holdout import CONTEXT_DAYS, holdout_tables, stratified_origins
from meterflow.forecasting.report import report_of
from meterflow.series.fleet import build_panel, split_dates

SPD = 24
QUICK = dict(epochs=2, max_train_windows=800, max_val_windows=300, threads=1, horizon=SPD)


def two_meters(n_days: int = 49) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    stamps = pd.date_range("2024-01-01", periods=n_days * SPD, freq="h")
    hour = np.arange(len(stamps)) % SPD
    frames = [
        pd.DataFrame(
            {
                "meter_id": m,
                "timestamp": stamps,
                "value": level * (1.2 + np.sin(2 * np.pi * hour / SPD))
                + rng.normal(0, 5, len(stamps)),
            }
        )
        for m, level in (("A", 100.0), ("B", 400.0))
    ]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def served():
    series = two_meters()
    dates = split_dates(series["timestamp"], 0.7, 0.1, pd.Timestamp("2024-02-05"), 7)
    fleet = build_panel(series, 60, dates)
    cfg = ForecastSettings(**QUICK)
    result = evaluate_forecaster(fleet, None, cfg)
    return series, fleet, result, report_of(result, fleet, cfg, "Europe/Rome")


def history(series: pd.DataFrame, meter: str, end: str, days: int = CONTEXT_DAYS) -> pd.DataFrame:
    """The raw readings of ``meter`` in the ``days`` days up to ``end`` (inclusive)."""
    end_ts = pd.Timestamp(end)
    keep = (series["meter_id"] == meter) & (series["timestamp"] <= end_ts)
    keep &= series["timestamp"] > end_ts - pd.Timedelta(days=days)
    return series.loc[keep, ["meter_id", "timestamp", "value"]].reset_index(drop=True)


def test_raw_readings_give_the_evaluation_forecasts(served):
    """With the whole history the served model is the evaluated one; with the last
    CONTEXT_DAYS it reads the same windows and references (dshw resumes from its fitted states
    across the days it is not given), so its forecasts stay close."""
    series, _, result, report = served
    table = result.predictions
    end = pd.Timestamp("2024-02-10 23:00")
    everything = pd.concat([history(series, m, str(end), 99) for m in "AB"], ignore_index=True)
    out = report.model.predict(everything)
    assert list(out.columns[:3]) == ["meter_id", "target_time", "step"]
    assert {"prediction", "q10", "q50", "q90"} <= set(out.columns)
    assert len(out) == 2 * SPD and (out["target_time"] > end).all()
    expected = table.loc[table["window_end"] == end].sort_values(["meter_id", "step"])
    for col in ("prediction", "q10", "q90"):
        np.testing.assert_allclose(out[col], expected[col], rtol=1e-9)
    recent = pd.concat([history(series, m, str(end)) for m in "AB"], ignore_index=True)
    np.testing.assert_allclose(
        report.model.predict(recent)["prediction"], expected["prediction"], rtol=0.05
    )
    candidates = report.candidates.predict(recent)
    assert {"lstm", "dshw", "seasonal_naive_week"} <= set(candidates.columns)
    np.testing.assert_allclose(candidates["seasonal_naive_week"], expected["seasonal_naive_week"])


def test_several_forecasts_of_one_meter_in_one_request(served):
    series, _, _, report = served
    ends = ("2024-02-08 23:00", "2024-02-12 11:00")
    rows = pd.concat(
        [history(series, "A", e).assign(forecast_id=e) for e in ends], ignore_index=True
    )
    out = report.model.predict(rows)
    assert list(out["forecast_id"].unique()) == list(ends)
    firsts = out.groupby("forecast_id")["target_time"].min()
    assert [str(t) for t in firsts] == ["2024-02-09 00:00:00", "2024-02-12 12:00:00"]


def test_timestamps_with_an_offset_are_read_on_the_model_clock(served):
    series, _, _, report = served
    local = history(series, "A", "2024-02-10 23:00")
    aware = local.assign(timestamp=local["timestamp"].dt.tz_localize("Europe/Rome"))
    np.testing.assert_allclose(
        report.model.predict(aware)["prediction"], report.model.predict(local)["prediction"]
    )


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda r: r.drop(columns="value"), "lacks column"),
        (lambda r: r.assign(meter_id="Z"), "row 0: meter Z is unknown"),
        (lambda r: r.assign(timestamp=r["timestamp"] + pd.Timedelta(minutes=30)), "off the"),
        (lambda r: pd.concat([r, r.iloc[[3]]]), "given twice"),
        (lambda r: r.iloc[-3 * SPD :], "days of history"),
        (lambda r: r.assign(value=r["value"].where(r.index != 7, np.inf)), "row 7.*finite"),
        (
            lambda r: r.assign(timestamp=r["timestamp"].astype(str).where(r.index != 4, "x")),
            "row 4.*unparsable",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_meter_and_row(served, damage, message):
    series, _, _, report = served
    rows = history(series, "A", "2024-02-10 23:00")
    with pytest.raises(SchemaError, match=message):
        report.model.predict(damage(rows))


def test_held_out_forecasts_cover_every_series_and_many_test_days(served):
    _, fleet, result, report = served
    holdout, truth = report.tables["holdout"], report.tables["holdout_truth"]
    assert set(holdout["meter_id"]) == {"A", "B"}
    origins = holdout.groupby("forecast_id")["timestamp"].max()
    assert origins.dt.normalize().nunique() >= 10
    assert (origins.dt.hour == 23).all()  # day-ahead, made at the end of a day
    assert len(truth) == SPD * len(origins)
    assert holdout.groupby("forecast_id").size().max() == CONTEXT_DAYS * SPD
    rows, again = holdout_tables(fleet, result.test, result.model.settings)
    assert rows.equals(holdout) and again.equals(truth)
    assert len(stratified_origins(fleet, result.test, 3)) == 3
