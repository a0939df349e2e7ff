"""The LSTM sequence autoencoder on a small synthetic fleet with planted anomalies."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.lstm_autoencoder import LstmAutoencoder
from meterflow.series.fleet import TEST, FleetSeries, build_panel, split_dates

START = pd.Timestamp("2024-01-01")  # a Monday
N_DAYS = 70
BASE_WH = {"m0": 500.0, "m1": 800.0, "m2": 300.0}
SPIKE = ("m0", 3, 18)  # meter, test day, hour: reading x5
FLAT = ("m1", 2, range(8, 20))  # 12 hours at the first hour's value
SHIFT = ("m2", range(4, 7))  # 3 test days x0.4
INCOMPLETE = ("m0", 6)  # test day with 3 readings removed


def _clean_load() -> pd.DataFrame:
    """Hourly daily-sine load with a weekend dip and noise, 3 meters x 70 days."""
    rng = np.random.default_rng(7)
    stamps = pd.date_range(START, periods=N_DAYS * 24, freq="60min")
    hour = stamps.hour.to_numpy()
    weekend = np.where(stamps.dayofweek.to_numpy() >= 5, 0.85, 1.0)
    frames = []
    for meter, base in BASE_WH.items():
        shape = 1 + 0.6 * np.sin(2 * np.pi * (hour - 7) / 24)
        value = base * shape * weekend + rng.normal(0, 0.03 * base, len(stamps))
        frames.append(pd.DataFrame({"meter_id": meter, "timestamp": stamps, "value": value}))
    return pd.concat(frames, ignore_index=True)


def _plant(df: pd.DataFrame, test_start: pd.Timestamp) -> tuple[pd.DataFrame, dict]:
    """The load with the anomalies planted in the test split, and their timestamps."""
    day = pd.Timedelta(days=1)
    meter, d, h = SPIKE
    spike = [test_start + d * day + pd.Timedelta(hours=h)]
    meter_f, d_f, hours = FLAT
    flat = [test_start + d_f * day + pd.Timedelta(hours=h) for h in hours]
    meter_s, days = SHIFT
    shift = [test_start + d * day + pd.Timedelta(hours=h) for d in days for h in range(24)]
    out = df.copy()
    at = out["timestamp"]
    out.loc[(out["meter_id"] == meter) & at.isin(spike), "value"] *= 5
    flat_rows = (out["meter_id"] == meter_f) & at.isin(flat)
    out.loc[flat_rows, "value"] = out.loc[flat_rows, "value"].iloc[0]
    out.loc[(out["meter_id"] == meter_s) & at.isin(shift), "value"] *= 0.4
    gap = test_start + INCOMPLETE[1] * day + pd.Timedelta(hours=10)
    drop = (out["meter_id"] == INCOMPLETE[0]) & at.between(gap, gap + pd.Timedelta(hours=2))
    planted = {"spike": (meter, spike), "flat": (meter_f, flat), "shift": (meter_s, shift)}
    return out.loc[~drop].reset_index(drop=True), planted


@pytest.fixture(scope="module")
def trained() -> tuple[pd.DataFrame, FleetSeries, LstmAutoencoder, dict, float]:
    load = _clean_load()
    dates = split_dates(load["timestamp"], 0.7, 0.15)
    load, planted = _plant(load, dates.test_start)
    fleet = build_panel(load, 60, dates)
    settings = DetectorSettings(units=(16,), epochs=30, threads=1, seed=3)
    started = time.perf_counter()
    detector = LstmAutoencoder(settings).fit(fleet)
    return load, fleet, detector, planted, time.perf_counter() - started


def _mask(fleet: FleetSeries, meter: str, stamps: list[pd.Timestamp]) -> np.ndarray:
    at = fleet.timestamps(np.arange(len(fleet.values)))
    wanted = np.asarray(stamps, dtype="datetime64[ns]")
    return (fleet.meter_ids[fleet.meter_idx] == meter) & np.isin(at, wanted)


def _clean_test(fleet: FleetSeries, meter: str, anomalous: np.ndarray) -> np.ndarray:
    """Test readings of ``meter`` on days without a planted anomaly (a day's reconstruction
    reads the whole day, so the other readings of an anomalous day are not clean)."""
    day = fleet.time_idx // fleet.slots_per_day
    of_meter = fleet.meter_ids[fleet.meter_idx] == meter
    bad_days = np.unique(day[anomalous])
    return of_meter & (fleet.split == TEST) & ~np.isin(day, bad_days)


def _all(fleet: FleetSeries) -> tuple[FleetSeries, np.ndarray]:
    """The fleet and a mask asking for the evidence of every reading."""
    return fleet, np.ones(len(fleet.values), dtype=bool)


def test_evidence_finite_on_complete_days_nan_on_incomplete(trained) -> None:
    _, fleet, detector, _, seconds = trained
    print(f"training took {seconds:.1f} s")
    ev = detector.evidence(*_all(fleet))
    assert ev.dtype == np.float64 and ev.shape == fleet.values.shape
    day = fleet.time_idx // fleet.slots_per_day
    m0 = fleet.meter_ids[fleet.meter_idx] == INCOMPLETE[0]
    gap_day = (fleet.dates.test_start - fleet.t0).days + INCOMPLETE[1]
    incomplete = m0 & (day == gap_day)
    assert incomplete.sum() == 21
    assert np.isnan(ev[incomplete]).all()
    assert np.isfinite(ev[~incomplete]).all()
    example = detector.network_inputs(fleet)
    assert example[0].shape[1:] == (24, 4)


@pytest.mark.parametrize("kind", ["spike", "flat", "shift"])
def test_planted_anomalies_stand_out(trained, kind: str) -> None:
    _, fleet, detector, planted, _ = trained
    meter, stamps = planted[kind]
    anomalous = _mask(fleet, meter, stamps)
    assert anomalous.sum() == len(stamps)
    ev = np.abs(detector.evidence(*_all(fleet)))
    clean = ev[_clean_test(fleet, meter, anomalous) & np.isfinite(ev)]
    if kind == "flat":
        # A day-reconstruction autoencoder is weak on flat-lines: the flat value lies inside
        # the day's normal range and crosses the normal curve, where the residual is small
        # (some flat hours stay below the clean p99), so only the mean is asked to stand out.
        ratio = ev[anomalous].mean() / np.median(clean)
        print(f"{kind}: mean |evidence| / clean median = {ratio:.1f}")
        assert ratio > 2
    else:
        ratio = ev[anomalous].mean() / np.quantile(clean, 0.99)
        print(f"{kind}: mean |evidence| / clean p99 = {ratio:.1f}")
        assert ratio > 1.5


def test_pickled_detector_gives_identical_evidence(trained) -> None:
    _, fleet, detector, _, _ = trained
    blob = pickle.dumps(detector)
    assert b"keras" not in blob  # weights as numpy arrays, no Keras objects
    restored = pickle.loads(blob)
    assert restored._net is None
    np.testing.assert_array_equal(restored.evidence(*_all(fleet)), detector.evidence(*_all(fleet)))


def test_evidence_on_another_fleet_finds_meters_by_id(trained) -> None:
    load, fleet, detector, _, _ = trained
    cutoff = fleet.t0 + pd.Timedelta(days=5)
    one = load.loc[(load["meter_id"] == "m1") & (load["timestamp"] >= cutoff)]
    single = build_panel(one, 60, fleet.dates)
    assert single.t0 == cutoff
    in_full = (fleet.meter_ids[fleet.meter_idx] == "m1") & (
        fleet.timestamps(np.arange(len(fleet.values))) >= cutoff.to_datetime64()
    )
    np.testing.assert_allclose(
        detector.evidence(*_all(single)),
        detector.evidence(*_all(fleet))[in_full],
        rtol=0,
        atol=1e-6,
    )


def test_unknown_meter_gets_nan(trained) -> None:
    load, fleet, detector, _, _ = trained
    other = load.loc[load["meter_id"] == "m2"].assign(meter_id="new")
    assert np.isnan(detector.evidence(*_all(build_panel(other, 60, fleet.dates)))).all()


def test_large_training_sets_get_a_larger_batch_and_a_matched_rate() -> None:
    from meterflow.anomaly import lstm_autoencoder as ae

    # small sets keep the rate their smaller batches were tuned with
    assert ae.learning_rate(122) == ae.LEARNING_RATE
    assert ae.learning_rate(50 * ae.REFERENCE_BATCH) == ae.LEARNING_RATE
    # the largest batch: the rate times the square root of the batch ratio
    ratio = ae.BATCH_SIZE / ae.REFERENCE_BATCH
    assert ae.learning_rate(20_000) == pytest.approx(ae.LEARNING_RATE * ratio**0.5)
