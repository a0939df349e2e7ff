"""Labels, events, metrics and thresholds of the anomaly step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

from meterflow.anomaly.events import (
    align_labels,
    detection_metrics,
    find_events,
    guess_kinds,
    prepare_labels,
)
from meterflow.anomaly.thresholds import fit_residual_scale
from meterflow.errors import SchemaError

TZ = "Europe/Rome"


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
    events = pd.DataFrame({"kind": ["spike", "level_shift", "spike"]})
    events["label_kind"] = ["spike", "level shift", None]  # the last one is a false alarm
    m = detection_metrics(label, label_id, kind, score, flagged, events, n_meter_months=2.0)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["auc_roc"] == pytest.approx(7 / 9)
    assert m["recall_spike"] == 1.0 and m["recall_level_shift"] == 0.5
    assert m["event_recall"] == 1.0 and m["n_label_events"] == 2.0
    assert m["flagged_share"] == pytest.approx(0.5) and m["n_events"] == 3.0
    assert m["auc_pr"] == pytest.approx(average_precision_score(label, score))
    assert m["false_alarms_per_meter_month"] == 0.5
    assert m["kind_guess_accuracy"] == 0.5


def test_no_label_metrics_without_positives():
    flagged = np.array([True, False, False])
    score = np.array([3.0, 1.0, 0.5])
    for label in (None, np.zeros(3, dtype=bool)):
        ids = None if label is None else np.full(3, -1)
        kind = None if label is None else np.full(3, None, dtype=object)
        events = pd.DataFrame({"kind": ["spike"], "label_kind": [None]})
        m = detection_metrics(label, ids, kind, score, flagged, events, n_meter_months=1.0)
        assert set(m) == {"flagged_share", "n_events", "false_alarms_per_meter_month"}
        assert all(np.isfinite(v) for v in m.values())


# --- scores and thresholds -----------------------------------------------------------------


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


def test_kind_guesses_follow_the_evidence_that_flagged_the_event():
    t = pd.date_range("2024-03-01", periods=10, freq="h")
    scores = pd.DataFrame(
        {
            "meter_id": ["A"] * 10,
            "timestamp": t,
            "value": [5.0, 5.0, 9.0, 1.0, 1.0, 3.0, 0.0, 0.0, 30.0, 2.0],
            "flagged": [True] * 9 + [False],
            "component": [
                "flat",
                "flat",
                "point",
                "ratio",
                "base",
                "ratio",
                "flat",
                "flat",
                "spike",
                "none",
            ],
            "day_change": [0.0, 0.0, 0.0, -1.2, -1.2, 0.6, 0.0, 0.0, 0.0, 0.0],
        }
    )
    step = pd.Timedelta(hours=1)
    events = pd.DataFrame(
        {
            "meter_id": ["A"] * 6,
            "start": [t[0], t[2], t[3], t[5], t[6], t[8]],
            "end": [t[1] + step, t[2] + step, t[4] + step, t[5] + step, t[7] + step, t[8] + step],
            "n_flagged": [2, 1, 2, 1, 2, 1],
        }
    )
    assert guess_kinds(events, scores, 60) == [
        "flat_line",
        "spike",
        "theft",
        "level_shift",
        "stuck_zero",
        "spike",
    ]
