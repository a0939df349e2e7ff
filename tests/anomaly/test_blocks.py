"""The anomaly step in meter blocks: the same results as one block, here or on Dask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from meterflow import defaults
from meterflow.anomaly import fleetparts
from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.blocked import Blocking
from meterflow.anomaly.detection import AnomalySettings, detect_anomalies
from meterflow.anomaly.fleetparts import readings_at, sample_meters, select_meters
from meterflow.anomaly.isolation_forest import IsolationForest, day_matrix
from meterflow.anomaly.planting import Planter, plant_anomalies
from meterflow.anomaly.windowed import (
    SIMILARITY_GRID,
    _most_similar,
    fit_peers,
    smallest_k,
    week_shapes,
)
from meterflow.series.fleet import TRAIN, build_panel, fit_scaler, split_dates
from tests.anomaly.synthetic import START, VAL_DAY, clean_series, planted

FAST = DetectorSettings(epochs=2, units=(8,), max_train_windows=3000, threads=1)


def dense_peers(unit: np.ndarray, k: int) -> np.ndarray:
    """The dense algorithm ``fit_peers`` replaced (meters x meters similarities, one argsort),
    kept as the reference."""
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, : min(k, len(unit) - 1)]


def random_shapes(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit rows on the similarity grid with zero rows, duplicated rows and coarse values
    (many exact ties)."""
    x = np.round(rng.normal(size=(n, width)))
    x[rng.choice(n, n // 4)] = 0.0
    x[rng.choice(n, n // 5)] = x[rng.choice(n, n // 5)]
    with np.errstate(invalid="ignore"):
        unit = np.nan_to_num(x / np.linalg.norm(x, axis=1, keepdims=True))
    return week_grid(unit)


def week_grid(unit: np.ndarray) -> np.ndarray:
    return np.round(unit / SIMILARITY_GRID) * SIMILARITY_GRID


def fleet_of(series: pd.DataFrame):
    return build_panel(series, 60, split_dates(series["timestamp"], 0.7, 0.1))


@pytest.mark.parametrize("seed", range(6))
def test_blockwise_peers_are_the_dense_peers_with_ties_and_zero_rows(seed):
    rng = np.random.default_rng(seed)
    n, width, k = int(rng.integers(2, 120)), int(rng.choice([2, 5, 24])), int(rng.integers(1, 12))
    unit = random_shapes(rng, n, width)
    reference = dense_peers(unit, k)
    for block in (1, 7, 50, n):
        rows = [np.arange(lo, min(lo + block, n)) for lo in range(0, n, block)]
        got = np.concatenate([_most_similar(unit, r, min(k, n - 1)) for r in rows])
        np.testing.assert_array_equal(got, reference)


def test_smallest_k_is_a_stable_argsort_prefix():
    rng = np.random.default_rng(4)
    key = rng.integers(0, 4, size=(40, 30)).astype(np.float64)  # ties everywhere
    key[3] = 0.0
    for k in (1, 5, 30):
        np.testing.assert_array_equal(
            smallest_k(key, k), np.argsort(key, axis=1, kind="stable")[:, :k]
        )


def test_fit_peers_of_a_fleet_in_small_blocks_is_the_dense_answer():
    series = clean_series(n_meters=30, seed=5)
    quiet = series["meter_id"].isin(["M03", "M04"])  # two meters that never import: zero rows
    series.loc[quiet, "value"] = 0.0
    fleet = fleet_of(series)
    unit = week_shapes(fleet)
    assert not unit[[3, 4]].any()
    # the rounded shapes make every similarity exact: any block of rows gives the same numbers
    np.testing.assert_array_equal(unit[5:9] @ unit.T, (unit @ unit.T)[5:9])
    reference = dense_peers(unit, 10)
    ids = list(fleet.meter_ids)
    expected = {m: tuple(ids[j] for j in reference[i]) for i, m in enumerate(ids)}
    assert fit_peers(fleet, block=4) == fit_peers(fleet) == expected


def test_fleet_parts_keep_the_clock():
    fleet = fleet_of(clean_series(n_meters=5))
    part = select_meters(fleet, np.array([1, 3]))
    alone = build_panel(
        pd.concat([clean_series(n_meters=5).query("meter_id == @m") for m in ("M01", "M03")]),
        60,
        fleet.dates,
    )
    for name in ("meter_idx", "time_idx", "values", "seg_start", "split"):
        np.testing.assert_array_equal(getattr(part, name), getattr(alone, name))
    assert list(part.meter_ids) == ["M01", "M03"] and part.t0 == fleet.t0
    block = fleet.series_range(2, 4)
    np.testing.assert_array_equal(block.values, select_meters(fleet, np.array([2, 3])).values)
    val = readings_at(fleet, fleet.split == 1)
    assert len(val.meter_ids) == 5 and (val.split == 1).all()
    assert sample_meters(fleet.meter_ids, 1).tolist() == [0, 1, 2, 3, 4]
    few = sample_meters(fleet.meter_ids, 1, most=2)
    assert len(few) == 2 and few[0] < few[1] and (few == sample_meters(fleet.meter_ids, 1, 2)).all()


def test_planting_block_by_block_is_one_planting():
    series = clean_series(n_meters=9)
    start = pd.Timestamp(START) + pd.Timedelta(days=VAL_DAY)
    end = start + pd.Timedelta(days=13)
    whole, labels = plant_anomalies(series, start, end, 60, seed=5, first_kind=2)
    planter = Planter(start, end, 60, seed=5, first_kind=2)
    parts = [
        planter.plant(series.loc[series["meter_id"].isin(m)], list(m))
        for m in (["M00", "M01"], ["M02", "M03", "M04", "M05"], ["M06", "M07", "M08"])
    ]
    np.testing.assert_array_equal(
        pd.concat([p[0] for p in parts])["value"].to_numpy(), whole["value"].to_numpy()
    )
    pd.testing.assert_frame_equal(pd.concat([p[1] for p in parts], ignore_index=True), labels)


def test_isolation_forest_trains_on_the_same_sample_of_days_in_blocks(monkeypatch):
    fleet = fleet_of(clean_series(n_meters=7))
    settings = dataclasses.replace(FAST, max_train_windows=150)
    forest = IsolationForest(settings)
    forest.scaler = fit_scaler(fleet)
    everything, _, _ = day_matrix(fleet, forest.scaler, np.flatnonzero(fleet.split == TRAIN))
    keep = np.random.default_rng(settings.seed).choice(len(everything), 150, replace=False)
    monkeypatch.setattr(defaults, "BLOCK_METERS", 3)
    np.testing.assert_array_equal(forest._training_days(fleet), everything[np.sort(keep)])


def outputs(result) -> dict[str, object]:
    """What a run logs and decides, without its timings."""
    return {
        "scores": result.scores,
        "events": result.events,
        "holdout": result.holdout,
        "metrics": {k: v for k, v in result.metrics.items() if k != "seconds"},
        "thresholds": result.predictor.thresholds,
        "model": result.predictor.model,
    }


def assert_same(a, b) -> None:
    for key in ("scores", "events", "holdout"):
        pd.testing.assert_frame_equal(a[key], b[key], check_exact=True)
    assert a["metrics"] == b["metrics"] and a["thresholds"] == b["thresholds"]
    for name in ("point", "spike", "ratio", "base", "clock"):
        one, other = getattr(a["model"], name), getattr(b["model"], name)
        np.testing.assert_array_equal(one.scale, other.scale)
        np.testing.assert_array_equal(one.center, other.center)


@pytest.fixture(scope="module")
def fleet() -> tuple[pd.DataFrame, pd.DataFrame]:
    return planted(clean_series())


@pytest.fixture(scope="module")
def one_block(fleet):
    series, labels = fleet
    cfg = AnomalySettings(detector="robust_z", detectors=(), training=FAST)
    return outputs(detect_anomalies(series, 60, labels, cfg))


def test_meter_blocks_give_the_results_of_one_block(fleet, one_block):
    series, labels = fleet
    cfg = AnomalySettings(
        detector="robust_z", detectors=(), training=FAST, blocking=Blocking(block_meters=3)
    )
    assert_same(outputs(detect_anomalies(series, 60, labels, cfg)), one_block)


def test_a_small_calibration_sample_bounds_the_fitted_sample(fleet, one_block, monkeypatch):
    # a fleet larger than the sample: thresholds and planted copies rest on SAMPLE_METERS
    # meters, every meter keeps its own normalisation, and every meter's test is scored
    series, labels = fleet
    monkeypatch.setattr(fleetparts, "SAMPLE_METERS", 4)
    cfg = AnomalySettings(
        detector="robust_z", detectors=(), training=FAST, blocking=Blocking(block_meters=3)
    )
    result = detect_anomalies(series, 60, labels, cfg)
    assert result.holdout["meter_id"].nunique() == 4
    assert result.scores["meter_id"].nunique() == 8
    assert result.predictor.model.point.scale.shape == one_block["model"].point.scale.shape
    assert np.isfinite(result.metrics["planted_f1"])


def test_dask_blocks_give_the_local_results(fleet):
    from distributed import LocalCluster

    series, labels = fleet
    runs = {}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        for where in ("", cluster.scheduler_address):
            cfg = AnomalySettings(
                detector="lstm_autoencoder",
                detectors=("robust_z",),
                training=FAST,
                blocking=Blocking(block_meters=3, scheduler=where),
            )
            runs[where] = outputs(detect_anomalies(series, 60, labels, cfg))
    local, remote = runs.values()
    assert_same(local, remote)
