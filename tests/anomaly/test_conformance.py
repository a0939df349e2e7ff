"""Every registered detector through the same checks: the class follows the protocol and its
registry line, its evidence has the contract shape and finds meters by id, a seed gives the same
fit, the anomaly step calibrates it into scores, flags and a threshold, and its predictor scores
the same after a pickle round trip; and a new detector is one class plus one registry line,
passing the same checks."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly import registry
from meterflow.anomaly.base import Detector, DetectorProtocol, DetectorSettings
from meterflow.anomaly.detection import AnomalyResult, AnomalySettings, detect_anomalies
from meterflow.anomaly.scoring import COMPONENTS
from meterflow.series.fleet import TEST, TRAIN, FleetSeries, build_panel, split_dates
from tests.anomaly.synthetic import clean_series

FAST = DetectorSettings(epochs=2, units=(8,), max_train_windows=1000, threads=1)


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    """A small synthetic fleet (the step plants its own anomalies into copies)."""
    return clean_series(n_meters=4)


def fleet_of(series: pd.DataFrame) -> FleetSeries:
    """The fleet the anomaly step builds of ``series`` (its default split)."""
    cfg = AnomalySettings(detector="robust_z", detectors=())
    dates = split_dates(series["timestamp"], cfg.train_frac, cfg.val_frac, cfg.test_start)
    return build_panel(series, 60, dates)


def run_step(name: str, series: pd.DataFrame) -> AnomalyResult:
    """The anomaly step with ``name`` alone, without labels."""
    return detect_anomalies(series, 60, None, AnomalySettings(detector=name, training=FAST))


def check_declaration(name: str) -> None:
    """The class carries its registry name."""
    cls = registry.detector_class(name)
    assert cls.name == name and isinstance(cls.signed, bool)


def check_evidence(detector: DetectorProtocol, fleet: FleetSeries) -> np.ndarray:
    """The protocol (asked of a fitted detector: a network exists once fitted), a context;
    evidence of the test readings: the contract shape, NaN outside ``where``, finite on most
    readings, and the same for meters found by id in a fleet of fewer meters in another order
    (unless the detector reads other meters). Returns the evidence."""
    assert isinstance(detector, DetectorProtocol) and detector.context_days >= 0
    where = fleet.split == TEST
    out = detector.evidence(fleet, where)
    assert out.shape == (len(fleet.values),) and out.dtype == np.float64
    assert np.isnan(out[fleet.split == TRAIN]).all()
    assert np.isfinite(out[where]).mean() > 0.5
    if not detector.reads_other_meters:
        keep = np.asarray(fleet.meter_ids)[[3, 0]]
        rows = pd.DataFrame(
            {
                "meter_id": np.asarray(fleet.meter_ids)[fleet.meter_idx],
                "timestamp": fleet.timestamps(np.arange(len(fleet.values))),
                "value": fleet.values,
            }
        )
        few = build_panel(rows[rows["meter_id"].isin(keep)], 60, fleet.dates)
        part = detector.evidence(few, few.split == TEST)
        ids = np.asarray(few.meter_ids)[few.meter_idx]
        for meter in keep:
            mine = out[(np.asarray(fleet.meter_ids)[fleet.meter_idx] == meter) & where]
            np.testing.assert_allclose(part[(ids == meter) & (few.split == TEST)], mine, 1e-5)
    return out


def check_seeded_fit(name: str, fleet: FleetSeries, evidence: np.ndarray) -> None:
    """A second fit with the same settings gives the same evidence."""
    again = registry.make_detector(name, FAST).fit(fleet)
    np.testing.assert_allclose(again.evidence(fleet, fleet.split == TEST), evidence, 1e-6)


def check_step(result: AnomalyResult, series: pd.DataFrame) -> None:
    """Scores of every test reading, flags at the threshold, a predictor that pickles."""
    scores, predictor = result.scores, result.predictor
    assert len(scores) == (series["timestamp"] >= result.split.test_start).sum()
    assert (scores["flagged"] == (scores["score"] >= predictor.threshold)).all()
    assert np.isfinite(predictor.threshold) and set(predictor.thresholds) == set(COMPONENTS)
    assert np.isfinite(list(result.metrics.values())).all()
    rows = result.holdout.drop(columns="label")
    expected = predictor.predict(rows)
    again = pickle.loads(pickle.dumps(predictor)).predict(rows)
    pd.testing.assert_frame_equal(again, expected)


def check_detector(name: str, result: AnomalyResult, series: pd.DataFrame) -> None:
    """Every check above on detector ``name`` and its step ``result``."""
    check_declaration(name)
    fleet = fleet_of(series)
    evidence = check_evidence(result.predictor.detector, fleet)
    check_seeded_fit(name, fleet, evidence)
    check_step(result, series)


@pytest.mark.parametrize("name", list(registry.DETECTORS))
def test_a_registered_detector_meets_the_contract(series, name):
    check_detector(name, run_step(name, series), series)


class SlotMedianGap(Detector):
    """A toy detector for the registry test: the reading less its meter's training median at
    the same slot of day."""

    name = "slot_median_gap"
    medians: pd.Series

    def fit(self, fleet: FleetSeries, meters: pd.DataFrame | None = None) -> SlotMedianGap:
        train = np.flatnonzero(fleet.split == TRAIN)
        self.medians = self._frame(fleet, train).groupby(["meter", "slot"])["value"].median()
        return self

    def evidence(self, fleet: FleetSeries, where: np.ndarray) -> np.ndarray:
        out = np.full(len(fleet.values), np.nan)
        pos = np.flatnonzero(where)
        keys = pd.MultiIndex.from_frame(self._frame(fleet, pos)[["meter", "slot"]])
        out[pos] = fleet.values[pos] - self.medians.reindex(keys).to_numpy(dtype=np.float64)
        return out

    @staticmethod
    def _frame(fleet: FleetSeries, pos: np.ndarray) -> pd.DataFrame:
        """Meter id, slot of day and reading at ``pos``."""
        return pd.DataFrame(
            {
                "meter": np.asarray(fleet.meter_ids)[fleet.meter_idx[pos]].astype(str),
                "slot": fleet.time_idx[pos] % fleet.slots_per_day,
                "value": fleet.values[pos],
            }
        )


def test_a_new_detector_is_one_class_and_one_registry_line(monkeypatch, series):
    where = f"{__name__}:{SlotMedianGap.__name__}"
    monkeypatch.setitem(registry.DETECTORS, SlotMedianGap.name, where)
    result = run_step(SlotMedianGap.name, series)
    assert result.chosen == SlotMedianGap.name
    check_detector(SlotMedianGap.name, result, series)
