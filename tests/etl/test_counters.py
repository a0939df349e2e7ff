"""Cumulative registers to interval readings: resets, rollovers, glitches, decreases,
duplicates, context, drifted documents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from meterflow.domain import REGISTER_ROLLOVER_KWH
from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.etl.counters import registers_to_readings
from meterflow.etl.documents import normalize_documents
from meterflow.etl.pipeline import clean_readings

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
        frame,
        METERS,
        CleaningConfig(resolution_min=15),
        source="newmongo",
        rollover_kwh=REGISTER_ROLLOVER_KWH,
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


# glitches: one read off its trend and back at the next read


def local_day(meter: str, imp_kwh: np.ndarray) -> pd.DataFrame:
    """Reads from local midnight to the next (97 reads: 96 intervals of one local day)."""
    start = pd.Timestamp("2024-01-10", tz="Europe/Rome").tz_convert("UTC")
    return docs(meter, np.r_[1000.0, 1000.0 + np.cumsum(imp_kwh)], start=start)


def day_energy(frame: pd.DataFrame) -> float:
    readings, quarantine = translate(frame)
    result = clean_readings(readings, METERS, CleaningConfig(resolution_min=15), source="newmongo",
                            adapter_quarantine=quarantine)  # fmt: skip
    assert result.metrics["readings_in"] == 2 * len(frame)
    assert result.metrics["readings_in"] == (
        result.metrics["readings_kept"] + result.metrics["readings_quarantined"]
    )
    assert len(result.profiles) == 1
    return float(result.profiles.filter(like="slot_").sum(axis=1).iloc[0])


@pytest.mark.parametrize("glitch", ["dip", "spike"])
def test_a_day_with_a_register_glitch_keeps_its_true_energy(glitch: str):
    energy = 0.05 + 0.1 * (np.arange(96) % 7)  # kWh per interval
    frame = local_day("A", energy)
    i = 40
    frame.loc[i, "import_kwh"] = (
        frame.loc[i - 1, "import_kwh"] - 3.0
        if glitch == "dip"
        else frame.loc[i + 1, "import_kwh"] + 3.0
    )
    assert day_energy(frame) == pytest.approx(1000 * energy.sum())
    _, q = translate(frame)
    row = q[q["reason"] == "counter_glitch"]
    assert len(row) == 1 and row.iloc[0]["register"] == "import"
    assert row.iloc[0]["action"] == "dropped" and row.iloc[0]["location"] == f"documents row {i}"
    values = [frame.loc[i + k, "import_kwh"] for k in (-1, 0, 1)]
    assert row.iloc[0]["detail"] == "register " + " -> ".join(str(round(v, 6)) for v in values)


def test_glitch_read_is_skipped_and_the_next_read_spans_two_intervals():
    r, q = translate(docs("A", [10.0, 10.1, 9.0, 10.3, 10.4]))
    imp = imports(r)
    assert list(imp["span"]) == [1, 2, 1]
    assert list(imp["energy_wh"]) == pytest.approx([100.0, 200.0, 100.0])
    assert list(imp["timestamp"]) == [T0 + pd.Timedelta(minutes=15) * k for k in (0, 1, 3)]
    assert list(q.loc[q["register"] == "import", "reason"]) == [
        "counter_baseline",
        "counter_glitch",
    ]
    exp = r[r["register"] == "export"]
    assert len(exp) == 4 and (exp["span"] == 1).all()  # the other register is not touched
    assert len(r) + len(q) == 2 * 5


def test_decrease_without_rebound_rollover_and_reset_are_not_glitches():
    top = REGISTER_ROLLOVER_KWH
    _, q = translate(docs("A", [500.0, 500.1, 300.0, 300.2, 300.3]))  # no rebound: a decrease
    assert "counter_glitch" not in set(q["reason"]) and "counter_decrease" in set(q["reason"])
    r, q = translate(docs("A", [top - 0.15, top - 0.05, 0.05, 0.15, 0.25]))
    assert set(q["reason"]) == {"counter_baseline", "counter_rollover"}
    assert list(imports(r)["energy_wh"]) == pytest.approx([100.0] * 4)
    r, q = translate(docs("A", [25_000.0, 25_000.2, 0.1, 0.3, 0.4]))
    assert set(q["reason"]) == {"counter_baseline", "counter_reset"}
    _, q = translate(docs("A", [500.0, 500.1, 300.0]))  # a dip at the last read: no rebound yet
    assert list(q.loc[q["register"] == "import", "reason"])[-1] == "counter_decrease"


# drifted documents


def test_unambiguous_drift_is_coerced_and_recorded_on_the_documents_readings():
    frame = docs("A", [10.0, 10.1, 10.2, 10.3]).astype({"import_kwh": object, "ts": object})
    frame.loc[1, "import_kwh"] = "10,1"
    frame.loc[2, "ts"] = "2024-01-10T02:30:00+02:00"  # the same instant as read 2
    frame["_id"] = ["a", "b", "c", "d"]
    r, q = translate(frame)
    assert list(imports(r)["energy_wh"]) == pytest.approx([100.0, 100.0, 100.0])
    fixed = q[q["reason"] == "coerced_value"].sort_values(["timestamp", "register"])
    assert list(zip(fixed["register"], fixed["location"], strict=True)) == [
        ("import", "documents/_id=b"), ("export", "documents/_id=c"), ("import", "documents/_id=c"),
    ]  # fmt: skip
    assert (fixed["action"] == "corrected").all()
    assert fixed["detail"].iloc[0] == "import_kwh '10,1' read as 10.1"
    assert np.isnan(fixed["original_value"].iloc[0]) and fixed["new_value"].iloc[0] == 100.0
    assert "read as 2024-01-10T00:30:00+00:00" in fixed["detail"].iloc[1]


@pytest.mark.parametrize(
    ("text", "value", "problem"),
    [
        ("1234.5", 1234.5, ""), (" 1234,5 ", 1234.5, ""), ("0,123", 0.123, ""),
        ("1234,567", 1234.567, ""), ("1e3", 1000.0, ""), ("1,234", None, "ambiguous"),
        ("n/a", None, "is not a number"), ("", None, "is not a number"),
        ("1.234,5", None, "is not a number"), ("nan", None, "is not a number"),
    ],
)  # fmt: skip
def test_register_text_is_read_only_when_unambiguous(text: str, value, problem: str):
    frame = pd.DataFrame({"meter_id": ["A"], "ts": [T0], "import_kwh": [text], "export_kwh": [0]})
    out = normalize_documents(frame)
    if value is None:
        assert out["issue"].iloc[0] == "malformed_value" and np.isnan(out["import_kwh"].iloc[0])
        assert problem in out["issue_detail"].iloc[0] and repr(text) in out["issue_detail"].iloc[0]
    else:
        assert out["issue"].iloc[0] == "" and out["import_kwh"].iloc[0] == value
        assert out["coercions"].iloc[0] == f"import_kwh {text!r} read as {value!r}"


def test_read_times_and_meter_ids_of_other_types():
    ms = int(T0.value // 10**6)
    frame = pd.DataFrame(
        {"meter_id": pd.Series(["A", 7, None, True, "A", "A", "  "], dtype=object),
         "ts": pd.Series([T0.tz_localize(None).to_pydatetime(), ms, T0, T0, ms // 1000,
                          "2024-13-01", T0], dtype=object),
         "import_kwh": 1.0, "export_kwh": 0.0}
    )  # fmt: skip
    out = normalize_documents(frame)
    assert [None if pd.isna(m) else m for m in out["meter_id"]] == [
        "A", "7", None, None, "A", "A", None,
    ]  # fmt: skip
    assert list(out["issue"]) == ["", ""] + ["missing_key"] * 5
    assert out["ts"].iloc[1] == T0 and out["coercions"].iloc[1] == (
        f"meter_id 7 read as '7'; ts {ms} read as {T0.isoformat()} (epoch milliseconds)"
    )
    details = list(out["issue_detail"].iloc[2:])
    assert details[0] == "meter_id missing; fields: ts, import_kwh, export_kwh"
    assert details[1].startswith("meter_id True is not a meter id")
    assert details[2].startswith(f"ts {ms // 1000} is not a time in epoch milliseconds")
    assert details[3].startswith("ts '2024-13-01' is not an ISO 8601 time")
    assert details[4].startswith("meter_id blank")
    assert str(out["ts"].dtype) == "datetime64[ns, UTC]" and out["ts"].iloc[2:4].notna().all()


def test_missing_keys_are_never_filled_from_a_neighbour_and_name_the_fields():
    frame = docs("A", [10.0, 10.1, 10.2, 10.3]).astype({"ts": object})
    frame.loc[2, "ts"] = None
    frame["timestamp"] = [None, None, T0 + pd.Timedelta(minutes=30), None]  # a renamed field
    r, q = translate(frame)
    key = q[q["reason"] == "missing_key"]
    assert len(key) == 2 and key["timestamp"].isna().all()
    assert key["detail"].iloc[0] == (
        "ts missing; fields: meter_id, import_kwh, export_kwh, timestamp"
    )
    assert list(imports(r)["span"]) == [1, 2]  # read 3 is differenced against read 1
    assert len(r) + len(q) == 2 * 4


def test_normalised_documents_survive_parquet_and_normalising_again(tmp_path):
    frame = docs("A", [10.0, 10.1, 10.2]).astype({"import_kwh": object, "ts": object})
    frame.loc[1, "import_kwh"], frame.loc[2, "ts"] = "10,1", None
    out = normalize_documents(frame)
    out.to_parquet(tmp_path / "d.parquet")
    back = pd.read_parquet(tmp_path / "d.parquet")
    again = normalize_documents(back)
    for col in ("issue", "issue_detail", "coercions", "meter_id", "import_kwh"):
        assert list(again[col].fillna(-1)) == list(out[col].fillna(-1)), col
    assert str(again["ts"].dtype) == "datetime64[ns, UTC]"
