"""Cumulative registers to interval readings: resets, rollovers, decreases, duplicates, context."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.etl.counters import registers_to_readings
from meterflow.sources.formats import REGISTER_ROLLOVER_KWH

METERS = pd.DataFrame(
    {"meter_id": ["A", "B"], "contractual_power_kw": [3.0, 3.0], "production_kw": [0.0, 2.0],
     "type": "household", "latitude": 0.0, "longitude": 0.0}
)  # fmt: skip
T0 = pd.Timestamp("2024-01-10 00:00", tz="UTC")


def docs(meter: str, imp_kwh, exp_kwh=None, start: pd.Timestamp = T0) -> pd.DataFrame:
    imp = np.asarray(imp_kwh, float)
    exp = np.zeros(len(imp)) if exp_kwh is None else np.asarray(exp_kwh, float)
    return pd.DataFrame(
        {"meter_id": meter, "ts": start + pd.Timedelta(minutes=15) * np.arange(len(imp)),
         "import_kwh": imp, "export_kwh": exp}
    )  # fmt: skip


def translate(frame: pd.DataFrame):
    return registers_to_readings(
        frame, METERS, CleaningConfig(), source="newmongo", rollover_kwh=REGISTER_ROLLOVER_KWH
    )


def imports(readings: pd.DataFrame) -> pd.DataFrame:
    return readings[readings["register"] == "import"].sort_values("timestamp")


def test_differences_start_at_previous_read_and_first_read_is_the_baseline():
    r, q = translate(docs("A", [10.0, 10.1, 10.3, 10.6]))
    imp = imports(r)
    assert list(imp["energy_wh"]) == pytest.approx([100.0, 200.0, 300.0])
    assert list(imp["timestamp"]) == [
        T0,
        T0 + pd.Timedelta(minutes=15),
        T0 + pd.Timedelta(minutes=30),
    ]
    assert set(q["reason"]) == {"counter_baseline"} and len(q) == 2  # import + export
    assert len(r) + len(q) == 2 * 4  # every document gives two readings or quarantine rows


def test_missing_documents_give_one_reading_spanning_the_gap():
    frame = docs("A", [10.0, 10.1, 10.2, 10.3, 10.4]).drop(index=[2, 3])
    r, _ = translate(frame)
    imp = imports(r)
    assert list(imp["span"]) == [1, 3] and list(imp["energy_wh"]) == pytest.approx([100, 300])


def test_rollover_is_reconstructed_and_reset_is_quarantined():
    top = REGISTER_ROLLOVER_KWH
    roll, _ = translate(docs("A", [top - 0.15, top - 0.05, 0.05, 0.15]))
    imp = imports(roll)
    assert list(imp["energy_wh"]) == pytest.approx([100.0, 100.0, 100.0])
    _, q = translate(docs("A", [top - 0.15, top - 0.05, 0.05, 0.15]))
    row = q[q["reason"] == "counter_rollover"].iloc[0]
    assert row["action"] == "corrected" and row["new_value"] == pytest.approx(100.0)

    r, q = translate(docs("A", [25_000.0, 25_000.2, 0.1, 0.3]))  # meter replaced
    reset = q[q["reason"] == "counter_reset"]
    assert len(reset) == 1 and reset.iloc[0]["original_value"] == pytest.approx(-25_000_100.0)
    assert list(imports(r)["energy_wh"]) == pytest.approx([200.0, 200.0])  # no spike


def test_other_decreases_are_quarantined_and_differencing_continues():
    r, q = translate(docs("A", [500.0, 500.1, 300.0, 300.2]))
    assert list(q.loc[q["register"] == "import", "reason"]) == [
        "counter_baseline",
        "counter_decrease",
    ]
    assert list(imports(r)["energy_wh"]) == pytest.approx([100.0, 200.0])


def test_export_register_is_negative_and_duplicates_resolved_at_document_level():
    frame = docs("B", [1.0, 1.1, 1.2, 1.3], [5.0, 5.05, 5.15, 5.2])
    dup_exact = frame.iloc[[1]]
    dup_conflict = frame.iloc[[2]].assign(import_kwh=1.9)
    r, q = translate(pd.concat([frame, dup_exact, dup_conflict], ignore_index=True))
    exp = r[r["register"] == "export"].sort_values("timestamp")
    assert list(exp["energy_wh"]) == pytest.approx([-50.0, -100.0, -50.0])
    assert list(imports(r)["energy_wh"]) == pytest.approx([100.0, 100.0, 100.0])
    assert q.groupby("reason").size().to_dict() == {
        "counter_baseline": 2, "duplicate": 2, "conflicting_duplicate": 2,
    }  # fmt: skip


def test_unknown_meter_missing_value_and_off_grid_documents_are_quarantined():
    frame = pd.concat(
        [docs("A", [1.0, 1.1, 1.2]), docs("GHOST", [1.0]),
         docs("A", [np.nan], start=T0 + pd.Timedelta(hours=1)),
         docs("A", [1.3], start=T0 + pd.Timedelta(minutes=50))],
        ignore_index=True,
    )  # fmt: skip
    r, q = translate(frame)
    counts = q.groupby("reason").size().to_dict()
    assert counts == {"unknown_meter": 2, "missing_value": 2, "off_grid_timestamp": 2,
                      "counter_baseline": 2}  # fmt: skip
    assert len(r) + len(q) == 2 * len(frame)


def test_context_documents_continue_the_series_and_are_not_counted():
    frame = docs("A", [10.0, 10.1, 10.2, 10.3])
    frame["context"] = [True, True, False, False]
    r, q = translate(frame)
    assert q.empty  # the baseline was counted by the earlier run
    imp = imports(r)
    assert list(imp["context"]) == [True, False, False]
    assert list(imp["energy_wh"]) == pytest.approx([100.0, 100.0, 100.0])


def test_missing_fields_raise_source_error():
    with pytest.raises(SourceError, match="import_kwh"):
        translate(docs("A", [1.0]).drop(columns=["import_kwh"]))
